"""``scaling train CONFIG.yaml [--set key=value ...] [--out RUN_DIR]``: one training run
(mirrors ``scaling.lm.train.train(load_config(CONFIG, overrides), run_dir)``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

HELP = "train one language model from a YAML config into a run directory (resumable)"
DEFAULT_RUNS = Path("runs") / "train"
WORKLOAD = "lm"


def add_arguments(p) -> None:
    p.add_argument("config", metavar="CONFIG", help="YAML training config (see examples/train_tiny.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=1e-3 (repeatable)")
    p.add_argument("--out", metavar="RUN_DIR", default=None,
                   help=f"run directory (default {DEFAULT_RUNS}/<run id>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")


def load_config(path, overrides: Sequence[str] = ()):
    """TrainConfig from a YAML file plus ``key=value`` overrides; ScalingError on bad input."""
    from scaling.lm.config import TrainConfig
    from scaling.config_io import apply_overrides, load_yaml
    from scaling.errors import ScalingError

    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ScalingError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    data = apply_overrides(data, overrides)
    if not data:
        raise ScalingError(f"{path}: empty config (no keys); see examples/train_tiny.yaml")
    return TrainConfig.from_dict(data)


def run(args) -> int:
    import sys

    from scaling import rundir
    from scaling.identity import run_id
    from scaling.store import check_output_dir, to_json

    config = load_config(args.config, args.overrides)  # bad input: exit 2 before JAX is imported
    run_dir = Path(args.out) if args.out else DEFAULT_RUNS / run_id(WORKLOAD, config)
    check_output_dir(run_dir)
    rundir.check_same_run(run_dir, run_id(WORKLOAD, config))
    previous = rundir.read_summary(run_dir)
    if previous is not None and previous.get("status") in rundir.RETRIED:
        print(f"scaling train: {run_dir}: the last attempt failed ({previous.get('reason') or 'no reason recorded'}); "
              "training it again", file=sys.stderr)

    from scaling.lm.train import train

    summary = train(config, run_dir, progress=not args.quiet)
    if args.json:
        print(to_json(summary, indent=None))
    else:
        s = summary
        steps = "-" if s.get("steps_to_target") is None else f"{s['steps_to_target']:.1f}"
        loss = s.get("final_eval_loss_ewa") if s.get("final_eval_loss_ewa") is not None else s.get("final_eval_loss")
        loss = "-" if loss is None else f"{loss:.4f}"
        print(f"{s['status']}: {s['reason']}; step {s['final_step']}, eval loss {loss}, "
              f"steps to target {steps}; {run_dir}", file=sys.stdout)
    return 0
