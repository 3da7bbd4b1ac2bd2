"""``scaling cbs --from-losses LOSSES.csv --target-loss L``: the iso-loss branch of ``scaling cbs``
(and ``scaling fit``), mirrors ``scaling.analysis.isoloss.iso_loss_cbs(load_losses(LOSSES), [L])``.
Not a command of its own."""

from __future__ import annotations


def iso_loss_result(args):
    """The iso-loss CBS for ``--from-losses`` (None without it); ScalingError on conflicting input."""
    from scaling.errors import ScalingError

    losses = getattr(args, "from_losses", None)
    if losses is None:
        if args.steps is None:
            raise ScalingError("give a steps table STEPS, or --from-losses LOSSES.csv --target-loss L")
        if getattr(args, "target_loss", None):
            raise ScalingError("--target-loss goes with --from-losses (a steps table carries its own targets)")
        return None
    if args.steps is not None:
        raise ScalingError("give either a steps table STEPS or --from-losses LOSSES.csv, not both")
    if not args.target_loss:
        raise ScalingError("--from-losses needs --target-loss L (the loss whose tokens to target are read off)")
    if getattr(args, "where", None) or getattr(args, "gns", False):
        raise ScalingError("--where and --gns read a steps table; they do not apply to --from-losses")
    from scaling.analysis.isoloss import iso_loss_cbs
    from scaling.analysis.lossgrid import load_losses

    return iso_loss_cbs(load_losses(losses), args.target_loss, reference_batch=args.reference_batch,
                        overhead=args.overhead, model=args.model, n_resamples=args.resamples,
                        confidence=args.confidence, seed=args.seed)


def render(iso) -> str:
    from scaling.analysis.report import fmt, table
    from scaling.commands.cbs import render as render_cbs

    rows = [[fmt(r["params"]), fmt(r["target_loss"]), fmt(r["batch_size"]), fmt(r["tokens_to_target"]),
             fmt(r["steps"]), fmt(r["best_lr"]), "yes" if r["used"] else "no (below B_opt)"]
            for g in iso.groups for r in g.rows()]
    b_opt = [f"params={fmt(g.params)} target {fmt(g.target_loss)}: B_opt {fmt(g.b_opt)}"
             + (" (at the smallest batch: tokens to target never rise again below it)" if g.b_opt_at_edge else "")
             for g in iso.groups]
    return "\n".join(
        ["iso-loss steps to target, read off the loss grid across data sizes:",
         table(["params", "target", "batch", "tokens_to_target", "steps", "best_lr", "in step-model fit"], rows),
         "", "B_opt (fewest tokens to the target; not the CBS): " + "; ".join(b_opt), "", render_cbs(iso.cbs), ""]
        + [f"assumes: {a}" for a in iso.assumptions])


def run(args) -> int:
    from scaling.analysis.report import print_warnings
    from scaling.store import to_json

    iso = iso_loss_result(args)
    if args.json:
        print(to_json(iso.to_dict()))
    else:
        print(render(iso))
        print_warnings("cbs", iso.warnings)
    return 0
