"""``scaling data``: prepare token files from a corpus; show corpus and tokenizer statistics.

    scaling data prepare SOURCE --tokenizer T --out DIR [--format c4|jsonl|text] [--text-field F] [--skip-bad]
    scaling data info [SOURCE] [--tokenizer T] [--json]

Mirrors ``scaling.data.prepare.prepare`` and ``scaling.data.dataset.open_dataset``.
"""

from __future__ import annotations

HELP = "prepare token files from a corpus (C4, JSON lines, text); show corpus/tokenizer statistics"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(parser))
    sub.required = True
    p = sub.add_parser("prepare", help="tokenize SOURCE (file or directory) into memory-mapped token files")
    p.add_argument("source", help="C4 directory (en/c4-*.json.gz), JSON-lines or text file/directory")
    p.add_argument("--tokenizer", default="default", help="'default' (8k BPE), 'bytes', or tokenizer.json / .model")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--format", default="auto", choices=["auto", "c4", "jsonl", "text"])
    p.add_argument("--text-field", default="text", help="JSON field holding the text (jsonl)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip (and count) bad lines and corrupt files instead of stopping")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the index as one JSON object")
    i = sub.add_parser("info", help="documents, tokens and tokens per byte of a data source")
    i.add_argument("source", nargs="?", default="default", help="'default' or a prepared directory")
    i.add_argument("--tokenizer", default="default", help="tokenizer for the default corpus")
    i.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    if args.data_command == "prepare":
        return _prepare(args)
    return _info(args)


def _prepare(args) -> int:
    from scaling.data.prepare import prepare
    from scaling.store import check_output_dir, to_json

    check_output_dir(args.out)  # before reading the corpus
    index = prepare(args.source, args.tokenizer, args.out, fmt=args.format, text_field=args.text_field,
                    skip_bad=args.skip_bad, progress=False if args.no_progress else None)
    if args.json:
        print(to_json(index, indent=None))
        return 0
    sp = index["splits"]
    print(f"{args.out}: tokenizer {index['tokenizer']['name']} (vocab {index['tokenizer']['vocab_size']}, "
          f"{index['dtype']})")
    for s in ("train", "validation"):
        print(f"  {s:10s} {sp[s]['documents']:>10,d} docs {sp[s]['tokens']:>14,d} tokens {sp[s]['bytes']:>14,d} bytes")
    read = index.get("read") or {}
    if read.get("skipped_lines") or read.get("corrupt_files"):
        print(f"  skipped {read['skipped_lines']} bad lines, {read['corrupt_files']} corrupt files "
              f"(first: {read['problems'][0] if read['problems'] else '-'})")
    return 0


def info(source: str = "default", tokenizer: str = "default") -> dict:
    """Statistics of a data source: per-split documents, tokens, bytes, tokens per byte."""
    from scaling.data import corpus
    from scaling.data.dataset import open_dataset

    ds = open_dataset(source, tokenizer)
    splits = ds.meta["splits"]
    out = {
        "source": source if source == "default" else str(ds.path),
        "tokenizer": ds.meta["tokenizer"],
        "splits": splits,
        "tokens_per_byte_validation": (splits["validation"]["tokens"] - splits["validation"]["documents"])
        / max(1, splits["validation"]["bytes"]),
        "split_rule": ds.meta["split_rule"],
        "cache": str(ds.path),
    }
    if source == "default":
        m = corpus.manifest()
        out["corpus"] = {"sha256": m.get("sha256"), "sources": [
            {k: s[k] for k in ("name", "package", "version", "licence", "documents", "bytes")} for s in m.get("sources", [])]}
    return out


def _info(args) -> int:
    from scaling.store import to_json

    r = info(args.source, args.tokenizer)
    if args.json:
        print(to_json(r, indent=None))
        return 0
    t = r["tokenizer"]
    print(f"source {r['source']}  tokenizer {t['name']} (vocab {t['vocab_size']}, eos {t['eos_id']})")
    for s, v in r["splits"].items():
        print(f"  {s:10s} {v['documents']:>9,d} docs {v['tokens']:>12,d} tokens {v['bytes']:>12,d} bytes")
    print(f"  tokens per byte (validation, EOS excluded): {r['tokens_per_byte_validation']:.4f}")
    for s in r.get("corpus", {}).get("sources", []):
        print(f"  - {s['name']:13s} {s['documents']:>6,d} docs {s['bytes'] / 1e6:6.2f} MB  "
              f"{s['package']} {s['version']}  [{s['licence']}]")
    return 0
