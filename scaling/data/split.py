"""The fixed, deterministic train/validation rule for corpora that do not come split.

A document goes to validation iff the first 8 bytes of sha256(its UTF-8 text), read as a
big-endian integer, are divisible by ``VALIDATION_MODULUS`` (64: 1/64 = 1.56% of documents).
Whole documents are held out; the rule depends only on the text, so it does not change when
documents are reordered or added, and exact duplicates always land on the same side (train and
validation share no document text). C4 comes split and keeps its own split.
"""

from __future__ import annotations

import hashlib

VALIDATION_MODULUS = 64
SPLITS = ("train", "validation")
RULE = f"validation iff int(sha256(utf8(text))[:8 bytes]) % {VALIDATION_MODULUS} == 0"


def split_of(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "validation" if int.from_bytes(digest[:8], "big") % VALIDATION_MODULUS == 0 else "train"
