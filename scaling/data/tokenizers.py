"""Tokenizers: the shipped 8k byte-level BPE, raw bytes, or any user tokenizer by path.

One small interface (``Tokenizer``) with a backend per kind:

- ``"bytes"``: the 256 byte values of UTF-8 plus one end-of-document id (256); vocabulary 257.
  For tests and tiny demos; encoding is a ``numpy.frombuffer`` (no Python loop).
- ``"default"``: a byte-level BPE of 8192 entries trained with HF ``tokenizers`` on the training
  split of the embedded corpus (``scaling/data/default/tokenizer.json``).
- a path to a HF ``tokenizer.json`` or a SentencePiece ``.model``.

``identity`` is the sha256 of the tokenizer's definition (its file bytes, or a fixed string for
"bytes"); caches and shard indexes are keyed by it, so a changed tokenizer never reuses tokens.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from scaling.errors import ScalingError

DEFAULT_DIR = Path(__file__).resolve().parent / "default"
DEFAULT_TOKENIZER_PATH = DEFAULT_DIR / "tokenizer.json"
BYTE_VOCAB = 256  # byte values
BYTES_EOS_ID = BYTE_VOCAB  # the one extra id of the byte tokenizer
EOS_CANDIDATES = ("<|endoftext|>", "</s>", "<eos>", "<|eos|>", "[SEP]", "<|end_of_text|>")


class Tokenizer(Protocol):
    name: str
    identity: str
    vocab_size: int
    eos_id: int

    def encode(self, text: str) -> list[int]: ...

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ByteTokenizer:
    """UTF-8 bytes as ids 0..255, end-of-document = 256."""

    name: str = "bytes"
    identity: str = _sha256_bytes(b"scaling-byte-tokenizer-v1:256+eos")
    vocab_size: int = BYTE_VOCAB + 1
    eos_id: int = BYTES_EOS_ID

    def encode_array(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Sequence[int]) -> str:
        data = bytes(int(i) for i in ids if 0 <= int(i) < BYTE_VOCAB)
        return data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class HFTokenizer:
    """A HF ``tokenizers`` JSON definition (byte-level BPE, GPT-NeoX, GPT-2, ...)."""

    name: str
    identity: str
    vocab_size: int
    eos_id: int
    _tok: Any = field(repr=False, compare=False)

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        # encode_batch_fast (tokenizers >= 0.20) skips offset tracking: same ids, less work
        encode = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)
        return [e.ids for e in encode(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=True)


@dataclass(frozen=True)
class SentencePieceTokenizer:
    """A SentencePiece ``.model`` (T5, LLaMA-1, ...). EOS is the model's ``eos_id``."""

    name: str
    identity: str
    vocab_size: int
    eos_id: int
    _sp: Any = field(repr=False, compare=False)

    def encode(self, text: str) -> list[int]:
        return self._sp.encode(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return self._sp.encode(list(texts))

    def decode(self, ids: Sequence[int]) -> str:
        return self._sp.decode([int(i) for i in ids])


def _find_eos(tok) -> int:
    for cand in EOS_CANDIDATES:
        i = tok.token_to_id(cand)
        if i is not None:
            return int(i)
    raise ScalingError(
        f"tokenizer has no end-of-document token (looked for {', '.join(EOS_CANDIDATES)})")


def _load_hf(path: Path) -> HFTokenizer:
    from tokenizers import Tokenizer as _HF

    data = path.read_bytes()
    try:
        tok = _HF.from_str(data.decode("utf-8"))
    except Exception as e:  # tokenizers raises plain Exception subclasses
        raise ScalingError(f"{path}: not a valid tokenizer.json ({str(e).splitlines()[0]})") from None
    return HFTokenizer(name=path.name if path != DEFAULT_TOKENIZER_PATH else "default-bpe-8k",
                       identity=_sha256_bytes(data), vocab_size=int(tok.get_vocab_size(with_added_tokens=True)),
                       eos_id=_find_eos(tok), _tok=tok)


def _load_sentencepiece(path: Path) -> SentencePieceTokenizer:
    import sentencepiece as spm

    data = path.read_bytes()
    sp = spm.SentencePieceProcessor()
    try:
        sp.LoadFromSerializedProto(data)
    except Exception as e:
        raise ScalingError(f"{path}: not a valid SentencePiece model ({str(e).splitlines()[0]})") from None
    eos = int(sp.eos_id())
    if eos < 0:
        raise ScalingError(f"{path}: SentencePiece model has no eos id")
    return SentencePieceTokenizer(name=path.name, identity=_sha256_bytes(data),
                                  vocab_size=int(sp.get_piece_size()), eos_id=eos, _sp=sp)


def load_tokenizer(spec: str = "default") -> Tokenizer:
    """``"default"`` (shipped 8k BPE), ``"bytes"``, or a path to tokenizer.json / .model."""
    if spec == "bytes":
        return ByteTokenizer()
    if spec == "default":
        if not DEFAULT_TOKENIZER_PATH.exists():
            raise ScalingError(f"the default tokenizer is missing from the package ({DEFAULT_TOKENIZER_PATH})")
        return _load_hf(DEFAULT_TOKENIZER_PATH)
    path = Path(os.path.expanduser(spec))
    if not path.is_file():
        raise ScalingError(f"tokenizer {spec!r}: no such file (use 'default', 'bytes', a tokenizer.json or a .model)")
    if path.suffix == ".model":
        return _load_sentencepiece(path)
    return _load_hf(path)


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits, else uint32."""
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


def encode_documents(tokenizer: Tokenizer, texts: Sequence[str], dtype: np.dtype | None = None) -> np.ndarray:
    """Encode documents into one flat array, each document followed by EOS."""
    dtype = dtype or token_dtype(tokenizer.vocab_size)
    if isinstance(tokenizer, ByteTokenizer):
        encoded = [t.encode("utf-8") for t in texts]
        joined = b"\x00".join(encoded) + b"\x00" if encoded else b""
        arr = np.frombuffer(joined, dtype=np.uint8).astype(dtype)
        # the separators were written as byte 0: mark their positions exactly, not by value
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
        arr[np.cumsum(lengths + 1) - 1] = tokenizer.eos_id
        return arr
    pieces = []
    eos = np.array([tokenizer.eos_id], dtype=dtype)
    for ids in tokenizer.encode_batch(list(texts)):
        pieces.append(np.asarray(ids, dtype=dtype))
        pieces.append(eos)
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)
