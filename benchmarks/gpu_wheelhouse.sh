#!/usr/bin/env bash
# benchmarks/gpu_wheelhouse.sh [DEST]: the wheels benchmarks/gpu_bench.sh installs on the lent GPU
# machine (no network there) when a runtime package is missing or older than pyproject.toml asks.
#
# The machine's image (/work/.library/device/KINDS.md, read 2026-11) has Python 3.12.3 with JAX
# 0.11.2 + CUDA 13 plugins, Flax, Optax and NumPy, and lists every other runtime dependency of
# this project too (PyYAML, orbax-checkpoint and its dependencies, tokenizers, sentencepiece,
# tqdm, SciPy, Matplotlib). So these wheels are insurance, kept small: what the trainer and the
# sweep import (x86-64 manylinux, CPython 3.12), --no-deps, pinned to the versions tested here.
# Left out on size (the tree the device tool carries, wheels included, must stay under ~60 MiB):
# SciPy (~35 MiB; only `scaling cbs` needs it) and Matplotlib (figures only); orbax-checkpoint's
# own dependencies (tensorstore alone is ~20 MiB).
#
# DEST defaults to ./wheelhouse (git-ignored); the device call names it in `carry`.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$REPO/wheelhouse}"
PYTHON_VERSION="3.12"  # the GPU image's python3 (KINDS.md)
# pip matches manylinux tags exactly: name each one the wheels below are built for
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64
           manylinux1_x86_64)
WHEELS=(pyyaml==6.0.3 orbax-checkpoint==0.12.8 tokenizers==0.23.3 sentencepiece==0.2.3 tqdm==4.70.1)

mkdir -p "$DEST"
args=(--no-deps --only-binary=:all: --python-version "$PYTHON_VERSION" --implementation cp -d "$DEST")
for p in "${PLATFORMS[@]}"; do args+=(--platform "$p"); done
python3 -m pip download -q "${args[@]}" "${WHEELS[@]}"
ls -l "$DEST"
du -sh "$DEST"
