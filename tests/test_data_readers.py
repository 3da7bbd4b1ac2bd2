"""Readers, `scaling data prepare` and token files, on C4-format fixtures written here."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pytest

from scaling.cli import main
from scaling.data import readers
from scaling.data.prepare import prepare
from scaling.data.shards import open_token_dir, write_token_dir
from scaling.data.split import split_of
from scaling.data.tokenizers import ByteTokenizer, load_tokenizer, token_dtype
from scaling.errors import ScalingError

C4_DOCS = [
    {"text": "The quick brown fox.\nIt jumps over the lazy dog.", "timestamp": "2019-04-25T12:57:54Z",
     "url": "https://example.com/a"},
    {"text": "Ünïcödé text, emoji \U0001f600, and \"quotes\".", "timestamp": "2019-04-20T08:00:00Z",
     "url": "https://example.com/b"},
    {"text": "", "timestamp": "2019-04-21T08:00:00Z", "url": "https://example.com/empty"},
    {"text": "Third document\n\nwith a blank line inside.", "timestamp": "2019-04-22T09:00:00Z",
     "url": "https://example.com/c"},
]
C4_VAL = [{"text": f"validation document number {i}.", "timestamp": "2019-04-23T00:00:00Z",
           "url": f"https://example.com/v{i}"} for i in range(3)]


def write_gz_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


@pytest.fixture
def c4_dir(tmp_path):
    root = tmp_path / "c4"
    write_gz_jsonl(root / "en" / "c4-train.00000-of-01024.json.gz", C4_DOCS[:2])
    write_gz_jsonl(root / "en" / "c4-train.00001-of-01024.json.gz", C4_DOCS[2:])
    write_gz_jsonl(root / "en" / "c4-validation.00000-of-00008.json.gz", C4_VAL)
    return root


def test_c4_fixture_read_back_exactly(c4_dir):
    files, fmt = readers.list_files(c4_dir)
    assert fmt == "c4"
    assert [p.name for p in files] == ["c4-train.00000-of-01024.json.gz", "c4-train.00001-of-01024.json.gz",
                                       "c4-validation.00000-of-00008.json.gz"]
    got = [d.text for p in files[:2] for d in readers.iter_documents(p, fmt)]
    assert got == [d["text"] for d in C4_DOCS]
    assert [readers.c4_split(p) for p in files] == ["train", "train", "validation"]


def _err(fn):
    with pytest.raises(ScalingError) as e:
        fn()
    return str(e.value)


def test_truncated_gzip_names_file(tmp_path):
    good = tmp_path / "good.json.gz"
    write_gz_jsonl(good, [{"text": "x" * 2000 + str(i)} for i in range(200)])
    bad = tmp_path / "c4-train.00000-of-01024.json.gz"
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    msg = _err(lambda: list(readers.iter_jsonl(bad)))
    assert str(bad) in msg and "truncated" in msg
    stats = readers.ReadStats()
    docs = list(readers.iter_jsonl(bad, skip_bad=True, stats=stats))
    assert stats.corrupt_files == 1 and 0 < len(docs) < 200


def test_not_gzip_is_rejected(tmp_path):
    bad = tmp_path / "x.jsonl.gz"
    bad.write_bytes(b"this is not gzip at all\n")
    msg = _err(lambda: list(readers.iter_jsonl(bad)))
    assert str(bad) in msg and "corrupt" in msg


def test_bad_json_line_and_missing_field(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "one"}\n{"text": "two"\n{"body": "three"}\n{"text": 4}\n{"text": "five"}\n')
    assert _err(lambda: list(readers.iter_jsonl(p))) .startswith(f"{p}:2: not JSON")
    stats = readers.ReadStats()
    got = [d.text for d in readers.iter_jsonl(p, skip_bad=True, stats=stats)]
    assert got == ["one", "five"] and stats.skipped_lines == 3
    assert any(f"{p}:3: missing field 'text'" in m for m in stats.problems)
    assert any(f"{p}:4: field 'text' is int" in m for m in stats.problems)
    q = tmp_path / "e.jsonl"
    q.write_text('{"body": "x"}\n')
    assert _err(lambda: list(readers.iter_jsonl(q))) == f"{q}:1: missing field 'text'"
    assert [d.text for d in readers.iter_jsonl(q, text_field="body")] == ["x"]


def test_plain_text_documents(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("First doc line one.\nline two.\n\n\n  \nSecond doc.\n\nThird.")
    docs = list(readers.iter_text(p))
    assert [d.text for d in docs] == ["First doc line one.\nline two.", "Second doc.", "Third."]
    assert docs[1].where == f"{p}:6"


def test_prepare_c4_cli_and_noop(c4_dir, tmp_path, capsys):
    out = tmp_path / "tok"
    assert main(["data", "prepare", str(c4_dir), "--tokenizer", "bytes", "--out", str(out), "--no-progress"]) == 0
    tdir = open_token_dir(out)
    bt = ByteTokenizer()
    train_docs = [d["text"] for d in C4_DOCS]
    assert tdir.train.dtype == np.uint16
    assert tdir.index["splits"]["train"]["documents"] == len(train_docs)
    ids = np.asarray(tdir.train)
    pieces = np.split(ids, np.flatnonzero(ids == bt.eos_id) + 1)[:-1]
    assert [bt.decode(p[:-1]) for p in pieces] == train_docs
    assert tdir.index["splits"]["validation"]["documents"] == len(C4_VAL)
    assert tdir.index["tokenizer"]["identity"] == bt.identity
    mtime = (out / "train.bin").stat().st_mtime_ns
    assert main(["data", "prepare", str(c4_dir), "--tokenizer", "bytes", "--out", str(out), "--no-progress"]) == 0
    assert (out / "train.bin").stat().st_mtime_ns == mtime  # no-op


def test_prepare_bad_input_exits_2(tmp_path, capsys):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "ok"}\nnot json\n')
    out = tmp_path / "tok"
    assert main(["data", "prepare", str(p), "--tokenizer", "bytes", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{p}:2: not JSON" in err and len(err.strip().splitlines()) == 1
    assert not (out / "index.json").exists()
    assert main(["data", "prepare", str(p), "--tokenizer", "bytes", "--out", str(out), "--skip-bad",
                 "--no-progress"]) == 0
    assert open_token_dir(out).index["read"]["skipped_lines"] == 1
    assert main(["data", "prepare", str(tmp_path / "missing"), "--out", str(out)]) == 2


def test_interrupted_write_is_not_accepted(tmp_path):
    out = tmp_path / "tok"

    def docs():
        yield "train", "complete document"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_token_dir(out, docs(), ByteTokenizer(), fingerprint="f", source={})
    with pytest.raises(ScalingError, match="no index.json"):
        open_token_dir(out)
    assert not out.exists() and list(tmp_path.iterdir()) == []  # built beside, nothing left behind
    # a complete directory whose file was cut short afterwards is refused too
    write_token_dir(out, iter([("train", "abc"), ("validation", "de")]), ByteTokenizer(), fingerprint="g", source={})
    open_token_dir(out)
    with open(out / "train.bin", "r+b") as f:
        f.truncate(2)
    with pytest.raises(ScalingError, match="wrong size"):
        open_token_dir(out)


def test_generic_jsonl_split_rule_and_dtype(tmp_path):
    p = tmp_path / "docs.jsonl"
    texts = [f"document {i} " * 3 for i in range(300)]
    p.write_text("".join(json.dumps({"content": t}) + "\n" for t in texts))
    index = prepare(p, "bytes", tmp_path / "tok", text_field="content", progress=False)
    n_val = sum(split_of(t) == "validation" for t in texts)
    assert index["splits"]["validation"]["documents"] == n_val > 0
    assert index["splits"]["train"]["documents"] == len(texts) - n_val
    assert token_dtype(65536) == np.uint16 and token_dtype(65537) == np.uint32


def test_user_tokenizer_json_by_path(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.train_from_iterator(["hello world"] * 10, trainers.BpeTrainer(vocab_size=300, special_tokens=["</s>"],
                                                                       show_progress=False))
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    t = load_tokenizer(str(path))
    assert t.eos_id == tok.token_to_id("</s>") and t.vocab_size == tok.get_vocab_size()
    assert len(t.identity) == 64
    with pytest.raises(ScalingError, match="no such file"):
        load_tokenizer(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ScalingError, match="not a valid tokenizer.json"):
        load_tokenizer(str(bad))


def test_sentencepiece_model_by_path(tmp_path):
    import io

    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(["the cat sat on the mat"] * 50 + ["a dog ran"] * 50),
                                   model_writer=buf, vocab_size=16, minloglevel=2)
    path = tmp_path / "sp.model"
    path.write_bytes(buf.getvalue())
    t = load_tokenizer(str(path))
    assert t.eos_id >= 0 and t.vocab_size == 16
    assert t.decode(t.encode("the cat ran")) == "the cat ran"
    p = tmp_path / "d.txt"
    p.write_text("the cat sat\n\na dog ran on the mat")
    index = prepare(p, str(path), tmp_path / "tok", progress=False)
    assert index["tokenizer"]["identity"] == t.identity and index["dtype"] == "uint16"
