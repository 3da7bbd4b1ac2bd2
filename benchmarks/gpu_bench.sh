#!/usr/bin/env bash
# benchmarks/gpu_bench.sh OUTDIR [--quick] [--parts bench,multirun,sweep]
#
# The whole GPU programme of issue #19 as one command, at most ~8 minutes on one H100/H200.
# Into OUTDIR, each file as soon as its part is done (a cut-off keeps what finished):
#   versions.json      the machine before JAX starts: packages, nvidia-smi, Python, git commit
#   bench_gpu.json     benchmarks/bench_gpu.py: MFU of the 85M model (d768 L12, seq 512, vocab
#                      50304, bf16 compute, fp32 state) at B = 64 and 256 against the bf16 matmul
#                      peak measured in the same process, memory, the largest batch without
#                      accumulation (rewritten after every attempt)
#   multirun.json      benchmarks/bench_multirun.py --preset gpu: K = 1, 8, 32 vectorised runs of
#                      a 3.1M-parameter model vs runs one after another (rewritten after every K)
#   sweep_steps.csv    `scaling steps` of a short sweep (benchmarks/grids/gpu_bench.yaml: two
#   sweep_cbs.json     groups of runs/grids/gpu_reference.yaml's smallest model), and `scaling cbs --json`
#   sweep_runs.tar.gz  the sweep's run records (metrics, summaries, configs; no checkpoints)
#   summary.json       which parts finished: status ok / timeout / failed, exit code, seconds, files
#   gpu_bench.log      every part's output
# That is 8 files, the most the device tool brings back; nothing else is written there.
#
# Each part runs under its own time guard (timeout(1), seconds below). Before anything, the
# runtime packages that are missing here or too old (benchmarks/gpu_bench_parts.py missing) are
# installed from ./wheelhouse (benchmarks/gpu_wheelhouse.sh; absent: nothing is installed) into
# a scratch folder put on PYTHONPATH; the checkout itself is put on PYTHONPATH, no install.
# --quick: the same programme on a CPU with tiny shapes (JAX_PLATFORMS=cpu and XLA's backend
# optimisation off unless set: it halves compile time), about a minute on 2 cores cold; CI
# runs it (tests/test_gpu_bench.py). --parts: a subset, to rerun what broke.
#
# On the lent GPU machine, from a session here (device tool `run`; README "GPU benchmark"):
#   bash benchmarks/gpu_wheelhouse.sh            # once, here: ./wheelhouse (~7 MiB, git-ignored)
#   run(command="bash benchmarks/gpu_bench.sh $OUT", carry=["wheelhouse"], timeout_s=540)
#   # rerun one part while the machine is still warm, e.g.:
#   run(command="bash benchmarks/gpu_bench.sh $OUT --parts sweep", carry=["wheelhouse"], timeout_s=240)
# then copy the returned files into benchmarks/results/ (they record the machine).
#
# Environment: PYTHON (default python3), GPU_BENCH_WORK (scratch; default a new temp dir),
# GPU_BENCH_LOSS_CHUNK (passed to bench_gpu.py --loss-chunk; default: the whole logits).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
HELP="usage: bash benchmarks/gpu_bench.sh OUTDIR [--quick] [--parts bench,multirun,sweep]"
OUTDIR=""
QUICK=0
PARTS="bench,multirun,sweep"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --parts) PARTS="${2:?$HELP}"; shift ;;
    --parts=*) PARTS="${1#--parts=}" ;;
    -h|--help) echo "$HELP"; exit 0 ;;
    -*) echo "error: unknown option $1; $HELP" >&2; exit 2 ;;
    *) [ -z "$OUTDIR" ] || { echo "error: one OUTDIR only; $HELP" >&2; exit 2; }; OUTDIR="$1" ;;
  esac
  shift
done
[ -n "$OUTDIR" ] || { echo "error: OUTDIR is required; $HELP" >&2; exit 2; }
for p in ${PARTS//,/ }; do
  case "$p" in bench|multirun|sweep) ;; *) echo "error: unknown part $p (bench, multirun, sweep)" >&2; exit 2 ;; esac
done
wants() { [[ ",$PARTS," == *",$1,"* ]]; }

if [ "$QUICK" = 1 ]; then
  export JAX_PLATFORMS="${JAX_PLATFORMS:-cpu}"
  export XLA_FLAGS="${XLA_FLAGS:---xla_backend_optimization_level=0}"
  # time guards (s): generous on a shared CPU; they only keep CI from hanging
  GUARD_SETUP=120 GUARD_BENCH=240 GUARD_MULTIRUN=300 GUARD_SWEEP=300 GUARD_ANALYSIS=120
  GRID="$REPO/benchmarks/grids/gpu_bench_quick.yaml"
  BENCH_ARGS=(--quick --batches 4 --search-max 4 --d-model 32 --n-layers 1 --n-heads 2 --seq-len 32
              --matmul-n 128 --time-budget-s 200)
  MULTIRUN_ARGS=(--preset quick)
else
  if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "error: no NVIDIA GPU here (nvidia-smi); use --quick on a CPU" >&2
    exit 2
  fi
  # time guards (s): 8 minutes in all on an H100/H200
  GUARD_SETUP=40 GUARD_BENCH=170 GUARD_MULTIRUN=115 GUARD_SWEEP=135 GUARD_ANALYSIS=20
  GRID="$REPO/benchmarks/grids/gpu_bench.yaml"
  # bench_gpu stops starting attempts GUARD_BENCH - 15 s in; 90% of the GPU's memory for JAX
  BENCH_ARGS=(--batches 64,256 --time-budget-s 155 --mem-fraction 0.9 --window-s 1 --repeats 5
              --search-max 4096 --search-granularity 128)
  MULTIRUN_ARGS=(--preset gpu)
fi
if [ -n "${GPU_BENCH_LOSS_CHUNK:-}" ]; then BENCH_ARGS+=(--loss-chunk "$GPU_BENCH_LOSS_CHUNK"); fi

mkdir -p "$OUTDIR" || exit 2
OUT="$(cd "$OUTDIR" && pwd)"
WORK="${GPU_BENCH_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_bench.XXXXXX")}"
mkdir -p "$WORK" || exit 2
LOG="$OUT/gpu_bench.log"
SUMMARY="$OUT/summary.json"
: >"$LOG"
rm -f "$SUMMARY"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export PY REPO OUT WORK
export PARTS_PY="$REPO/benchmarks/gpu_bench_parts.py"
export SUMMARY SWEEP="$WORK/sweep"
START=$SECONDS

log() { echo "[gpu_bench $(date +%H:%M:%S) +$((SECONDS - START))s] $*" | tee -a "$LOG" >&2; }

# run_part NAME GUARD_S "FILES" CMD...: run CMD (a command, or a function of this script, which
# runs in a child bash) under the guard, log it, record it in summary.json
run_part() {
  local name="$1" guard="$2" files="$3"; shift 3
  local t0=$SECONDS rc
  log "part $name: start (guard ${guard} s)"
  if declare -F "$1" >/dev/null; then
    timeout --kill-after=10 "$guard" bash -c "$(declare -f "$1"); $1" >>"$LOG" 2>&1
  else
    timeout --kill-after=10 "$guard" "$@" >>"$LOG" 2>&1
  fi
  rc=$?
  log "part $name: exit $rc after $((SECONDS - t0)) s"
  # shellcheck disable=SC2086  # FILES is a list of names
  "$PY" "$PARTS_PY" part "$SUMMARY" "$name" "$rc" "$((SECONDS - t0))" "$guard" $files >>"$LOG" 2>&1
  return $rc
}

# --- setup: the wheelhouse, then the versions (before JAX starts) ---------------------------
setup() {
  local missing
  missing="$("$PY" "$PARTS_PY" missing "$REPO/wheelhouse")" || return 1
  if [ -n "$missing" ]; then
    echo "installing from wheelhouse/: $missing"
    # shellcheck disable=SC2086
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --find-links "$REPO/wheelhouse" \
      --target "$WORK/site" $missing || return 1
  else
    echo "nothing to install (every runtime package is here, or has no wheel in wheelhouse/)"
  fi
  "$PY" "$PARTS_PY" versions "$OUT/versions.json" --installed "$missing"
}
run_part setup "$GUARD_SETUP" "versions.json" setup
[ -d "$WORK/site" ] && export PYTHONPATH="$WORK/site:$PYTHONPATH"

# the sweep's 8k BPE tokenization of the embedded corpus (~1.5 min on 2 cores) in the
# background while the benchmarks run; the sweep waits for it (a lock) if it is not done
TOKENIZE_PID=""
if [ "$QUICK" = 0 ] && wants sweep; then
  RAYON_NUM_THREADS=8 "$PY" -c "from scaling.data.dataset import build_default; build_default('default')" \
    >>"$LOG" 2>&1 &
  TOKENIZE_PID=$!
fi

# --- the parts --------------------------------------------------------------------------------
if wants bench; then
  run_part bench "$GUARD_BENCH" "bench_gpu.json" \
    "$PY" "$REPO/benchmarks/bench_gpu.py" --out "$OUT/bench_gpu.json" "${BENCH_ARGS[@]}"
fi
if wants multirun; then
  run_part multirun "$GUARD_MULTIRUN" "multirun.json" \
    "$PY" "$REPO/benchmarks/bench_multirun.py" --out "$OUT/multirun.json" "${MULTIRUN_ARGS[@]}"
fi
if wants sweep; then
  run_part sweep "$GUARD_SWEEP" "" "$PY" -m scaling sweep "$GRID" --out "$SWEEP" --quiet
  analysis() {  # on whatever the sweep finished, also after its guard fired
    "$PY" -m scaling status "$SWEEP" --json >"$WORK/status.json" || true
    "$PY" "$PARTS_PY" sweep-state "$SUMMARY" "$WORK/status.json"
    tar -czf "$WORK/sweep_runs.tar.gz" -C "$WORK" --exclude=checkpoints --exclude=locks sweep \
      && mv "$WORK/sweep_runs.tar.gz" "$OUT/sweep_runs.tar.gz"
    "$PY" -m scaling steps "$SWEEP" -o "$OUT/sweep_steps.csv" || return 1
    "$PY" -m scaling cbs "$OUT/sweep_steps.csv" --json >"$WORK/cbs.json" && mv "$WORK/cbs.json" "$OUT/sweep_cbs.json"
  }
  run_part analysis "$GUARD_ANALYSIS" "sweep_runs.tar.gz sweep_steps.csv sweep_cbs.json" analysis
fi
if [ -n "$TOKENIZE_PID" ]; then kill "$TOKENIZE_PID" 2>/dev/null; wait "$TOKENIZE_PID" 2>/dev/null; fi
log "done in $((SECONDS - START)) s; summary: $SUMMARY"
"$PY" - "$SUMMARY" "$QUICK" "$PARTS" "$((SECONDS - START))" <<'EOF'
import json, sys
from pathlib import Path
path, quick, parts, seconds = Path(sys.argv[1]), sys.argv[2] == "1", sys.argv[3].split(","), int(sys.argv[4])
summary = json.loads(path.read_text())
wanted = ["setup"] + parts + (["analysis"] if "sweep" in parts else [])
summary.update(quick=quick, parts_requested=parts, seconds=seconds,
               complete=all(summary["parts"].get(p, {}).get("status") == "ok" for p in wanted))
from scaling.store import atomic_write_json
atomic_write_json(path, summary)
print(f"complete: {summary['complete']}; finished: {', '.join(summary['finished'])}", file=sys.stderr)
EOF
