#!/usr/bin/env python
"""Data pipeline speed: tokenization (MB/s) and batch loading (tokens/s delivered).

Measures, on this machine, in one run:
  1. tokenizer throughput on the default corpus text: shipped 8k BPE (HF tokenizers,
     encode_batch, all cores) and the byte tokenizer;
  2. end to end: the whole default corpus tokenized with the 8k BPE into a fresh cache
     (open_dataset, = `scaling data prepare` path), giving the corpus size in tokens;
  3. `scaling data prepare` on a C4-format directory (gzip JSON lines) written from the corpus;
  4. BatchLoader throughput (int32 batches from the memmapped token file), compared with the
     CPU trainer's ~40k tokens/s (DATA.md) -- the loader must be >= 10x that.

Writes benchmarks/results/bench_data.json (and prints it). Usage: python benchmarks/bench_data.py [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULT = Path(__file__).parent / "results" / "bench_data.json"
TRAINER_TOKENS_PER_S = 40_000  # CPU trainer, 0.45M params (DATA.md)
REQUIRED_RATIO = 10
LOADER_CASES = [(64, 32), (128, 64), (512, 64)]  # (seq_len, batch_size)
LOADER_SECONDS = 2.0
C4_FILES = 4


def machine() -> dict:
    import jax

    cpu = platform.processor()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import tokenizers

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "jax": jax.__version__,
            "numpy": np.__version__, "tokenizers": tokenizers.__version__, "platform": platform.platform()}


def timed(fn, *a, **k):
    t = time.perf_counter()
    r = fn(*a, **k)
    return r, time.perf_counter() - t


def bench_tokenizers(texts: list[str]) -> dict:
    from scaling.data.tokenizers import encode_documents, load_tokenizer

    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    out = {"text_mb": round(mb, 2)}
    for spec in ("default", "bytes"):
        tok = load_tokenizer(spec)
        arr, dt = timed(encode_documents, tok, texts)
        out[spec] = {"mb_per_s": round(mb / dt, 2), "seconds": round(dt, 3), "tokens": int(arr.size),
                     "tokens_per_byte": round((arr.size - len(texts)) / (mb * 1e6), 4)}
    return out


def bench_end_to_end(cache: Path) -> tuple[dict, object]:
    os.environ["SCALING_CACHE"] = str(cache)
    from scaling.data import corpus
    from scaling.data.dataset import open_dataset

    corpus.corpus_sha256.cache_clear()
    ds, dt = timed(open_dataset, "default", "default")
    sp = ds.meta["splits"]
    mb = (sp["train"]["bytes"] + sp["validation"]["bytes"]) / 1e6
    v = sp["validation"]
    return {"seconds": round(dt, 2), "mb_per_s": round(mb / dt, 2), "text_mb": round(mb, 2),
            "train_tokens": sp["train"]["tokens"], "validation_tokens": v["tokens"],
            "train_documents": sp["train"]["documents"], "validation_documents": v["documents"],
            "tokens_per_byte_validation": round((v["tokens"] - v["documents"]) / v["bytes"], 4)}, ds


def bench_prepare_c4(texts: list[str], work: Path) -> dict:
    from scaling.data.prepare import prepare

    root = work / "c4" / "en"
    root.mkdir(parents=True)
    for i in range(C4_FILES):
        with gzip.open(root / f"c4-train.{i:05d}-of-01024.json.gz", "wt", encoding="utf-8") as f:
            for t in texts[i::C4_FILES]:
                f.write(json.dumps({"text": t, "timestamp": "2019-04-25T12:57:54Z", "url": "https://x"}) + "\n")
    with gzip.open(root / "c4-validation.00000-of-00008.json.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps({"text": texts[0], "timestamp": "2019-04-25T12:57:54Z", "url": "https://x"}) + "\n")
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    index, dt = timed(prepare, root.parent, "default", work / "tok", progress=False)
    _, dt_noop = timed(prepare, root.parent, "default", work / "tok", progress=False)
    return {"text_mb": round(mb, 2), "seconds": round(dt, 2), "mb_per_s": round(mb / dt, 2),
            "tokens": index["splits"]["train"]["tokens"], "rerun_noop_seconds": round(dt_noop, 3)}


def bench_loader(train: np.ndarray) -> list[dict]:
    from scaling.data.loader import BatchLoader

    rows = []
    for seq_len, batch in LOADER_CASES:
        ld = BatchLoader(train, seq_len=seq_len, batch_size=batch, seed=0,  # epochs may wrap in 2 s
                         token_budget=100 * train.size, allow_repeat=True)
        ld.next_batch()  # warm the page cache path
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < LOADER_SECONDS:
            ld.next_batch()
            n += 1
        dt = time.perf_counter() - t0
        tps = n * batch * seq_len / dt
        rows.append({"seq_len": seq_len, "batch_size": batch, "steps_per_s": round(n / dt, 1),
                     "tokens_per_s": round(tps), "ratio_to_cpu_trainer": round(tps / TRAINER_TOKENS_PER_S, 1)})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample-mb", type=float, default=8.0, help="text used for the tokenizer micro-benchmark")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from scaling.data import corpus

    sample = [rec["text"] for rec in corpus.iter_corpus()][::7]  # every 7th document: all sources mixed
    keep, total = [], 0
    for t in sample:
        if total > args.sample_mb * 1e6:
            break
        keep.append(t)
        total += len(t.encode("utf-8"))
    result = {"benchmark": "benchmarks/bench_data.py", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "machine": machine()}
    result["tokenizers"] = bench_tokenizers(keep)
    with tempfile.TemporaryDirectory() as tmp:
        result["default_corpus_end_to_end"], ds = bench_end_to_end(Path(tmp) / "cache")
        result["prepare_c4_format"] = bench_prepare_c4(keep, Path(tmp))
        result["loader"] = bench_loader(ds.train)
        result["loader_min_ratio"] = min(r["ratio_to_cpu_trainer"] for r in result["loader"])
        result["loader_meets_10x"] = result["loader_min_ratio"] >= REQUIRED_RATIO
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
