"""The embedded default corpus, its manifest, the shipped tokenizer, and open_dataset."""

from __future__ import annotations

import hashlib
import itertools
import os

import numpy as np
import pytest

from scaling.cli import main
from scaling.data import corpus
from scaling.data.dataset import CACHE_ENV, open_dataset
from scaling.data.split import VALIDATION_MODULUS
from scaling.data.tokenizers import DEFAULT_DIR, load_tokenizer

ROUND_TRIP_EVERY = 40  # documents sampled for the BPE round trip (keeps the test fast)


@pytest.fixture(scope="session")
def records():
    return list(corpus.iter_corpus())


@pytest.fixture(scope="module")
def byte_dataset(tmp_path_factory):
    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("cache"))
    try:
        yield open_dataset("default", "bytes")
    finally:
        if old is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = old


def test_manifest_matches_shipped_files(records):
    m = corpus.manifest()
    assert m["sha256"] == corpus.corpus_sha256()
    assert m["documents"] == len(records)
    assert m["text_bytes"] == sum(len(r["text"].encode("utf-8")) for r in records) >= 50_000_000
    names = {s["name"] for s in m["sources"]}
    assert names == {r["source"] for r in records}
    for s in m["sources"]:
        assert s["package"] and s["version"] and s["licence"] and s["documents"] > 0
    tok = m["tokenizer"]
    assert tok["vocab_size"] == 8192
    assert hashlib.sha256((DEFAULT_DIR / "tokenizer.json").read_bytes()).hexdigest() == tok["sha256"]
    assert (DEFAULT_DIR / "NOTICE").read_text().count("Wikipedia") >= 1


def test_train_validation_disjoint(records):
    pairs = [(corpus.split_of(r["text"]), r["text"]) for r in records]
    train = {t for s, t in pairs if s == "train"}
    val = {t for s, t in pairs if s == "validation"}
    assert not train & val
    frac = sum(s == "validation" for s, _ in pairs) / len(pairs)
    assert 0.5 / VALIDATION_MODULUS < frac < 2.0 / VALIDATION_MODULUS  # ~1.6% of documents


def test_default_tokenizer_round_trip(records):
    tok = load_tokenizer("default")
    assert tok.vocab_size == 8192 and tok.eos_id == 0
    sample = [r["text"] for r in itertools.islice(records, 0, None, ROUND_TRIP_EVERY)]
    ids = tok.encode_batch(sample)
    assert [tok.decode(i) for i in ids] == sample
    assert all(tok.eos_id not in i for i in ids)
    n_bytes = sum(len(t.encode("utf-8")) for t in sample)
    assert 0.15 < sum(map(len, ids)) / n_bytes < 0.4  # a real BPE compresses English ~4x


def test_bytes_dataset_from_default_corpus(byte_dataset, records):
    ds = byte_dataset
    assert ds.vocab_size == 257 and ds.eos_id == 256 and ds.train.dtype == np.uint16
    val_texts = [r["text"] for r in records if corpus.split_of(r["text"]) == "validation"]
    assert ds.meta["splits"]["validation"]["documents"] == len(val_texts)
    expected = sum(len(t.encode("utf-8")) + 1 for t in val_texts)
    assert ds.validation.size == expected
    assert int((np.asarray(ds.validation) == ds.eos_id).sum()) == len(val_texts)
    again = open_dataset("default", "bytes")  # cached: same files, no rebuild
    assert again.path == ds.path and (again.train[:1000] == ds.train[:1000]).all()


def test_data_info_cli(byte_dataset, capsys):
    assert main(["data", "info", "--tokenizer", "bytes"]) == 0
    out = capsys.readouterr().out
    assert "tokens per byte" in out and "spamassassin" in out
