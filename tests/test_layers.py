"""The package's layers (docs/design.md, "Layers"): what may import what, and JAX in one place.

Bottom to top: the foundations (errors, store, machine, config_io, target, noise_scale, rundir,
identity, summary) -> data, analysis (NumPy/SciPy maths on tables) and trackers -> lm (the JAX
trainer) and nqm -> workloads -> sweep -> engines (Ray, SLURM) -> plots -> commands, the CLI and
the demo. A module may import its own layer or a lower one, never a higher one (checked
statically, function-level imports included).
Only ``scaling.lm`` imports JAX, Flax, Optax or Orbax: in a process where those imports fail,
every other module imports, and a real NQM sweep runs end to end through ``scaling steps`` and
``scaling cbs``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "scaling"
TRAINER = "lm"
JAX_FAMILY = ("jax", "jaxlib", "flax", "optax", "orbax")
LAYERS = (
    ("", "errors", "interrupts", "store", "machine", "config_io", "target", "noise_scale", "rundir", "identity",
     "summary"),
    ("data", "analysis", "trackers"),
    (TRAINER, "nqm"),
    ("workloads",),
    ("sweep",),
    ("engines",),
    ("plots",),
    ("commands", "cli", "demo", "__main__"),
)
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}
# (importer, imported top-level name) outside scaling.lm allowed to import the JAX family, with why.
JAX_OUTSIDE_TRAINER: dict = {}


def modules() -> dict:
    """module name -> path, for every .py file under scaling/."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def unit(module: str) -> str:
    """The layer unit of a scaling module: its first component under scaling ('' for the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports(module: str, path: Path, known: dict) -> set:
    """Absolute names imported anywhere in the module (``from pkg import sub`` counts as pkg.sub)."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            subs = {f"{name}.{a.name}" for a in node.names} & set(known)
            found.update(subs or {name})
    return found


def test_layer_table_names_every_unit():
    missing = sorted({unit(m) for m in modules()} - set(LAYER))
    assert not missing, f"add {missing} to LAYERS in tests/test_layers.py (and to docs/design.md)"


def test_no_module_imports_a_higher_layer():
    known = modules()
    upward = []
    for module, path in known.items():
        for name in sorted(imports(module, path, known)):
            if name.split(".")[0] == "scaling" and LAYER[unit(name)] > LAYER[unit(module)]:
                upward.append(f"{module} imports {name} (layer {LAYER[unit(name)]} > {LAYER[unit(module)]})")
    assert not upward, "\n".join(upward)


def test_only_the_trainer_imports_jax_flax_optax_orbax():
    known = modules()
    outside = []
    for module, path in known.items():
        if unit(module) == TRAINER:
            continue
        for name in imports(module, path, known):
            top = name.split(".")[0]
            if top in JAX_FAMILY and (module, top) not in JAX_OUTSIDE_TRAINER:
                outside.append(f"{module} imports {name}")
    assert not outside, "\n".join(outside)


# Run in a fresh interpreter: the JAX family cannot be imported, every other module is imported,
# then a real NQM sweep (tests/sweep_helpers.NQM_GRID) goes through `scaling steps`, `status`, `cbs`.
JAXLESS = textwrap.dedent("""
    import contextlib, importlib, importlib.abc, io, json, sys
    from pathlib import Path

    BLOCKED, names, tmp = set(sys.argv[1].split(",")), json.loads(sys.argv[2]), Path(sys.argv[3])

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked (JAX-less test)")
            return None

    sys.meta_path.insert(0, Blocked())
    for name in names:
        importlib.import_module(name)

    from scaling.cli import main
    from scaling.sweep import run_sweep
    from sweep_helpers import write_grid

    run_sweep(write_grid(tmp / "g.yaml"), out=tmp / "out", quiet=True, compile_cache=None, poll_s=0.05)
    assert main(["steps", str(tmp / "out"), "-o", str(tmp / "steps.csv")]) == 0
    assert main(["status", str(tmp / "out")]) == 0
    cbs = []
    for source in (tmp / "out", tmp / "steps.csv"):
        with contextlib.redirect_stdout(io.StringIO()) as text:
            assert main(["cbs", str(source), "--resamples", "50", "--json"]) == 0
        cbs.append([g["cbs"] for g in json.loads(text.getvalue())["groups"]])
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print("RESULT " + json.dumps({"loaded": loaded, "cbs": cbs}))
""")


def test_everything_but_the_trainer_imports_and_runs_without_jax(tmp_path):
    names = [m for m in modules() if m != "scaling.__main__"
             and (unit(m) != TRAINER or m in ("scaling.lm", "scaling.lm.config"))]
    out = subprocess.run([sys.executable, "-c", JAXLESS, ",".join(JAX_FAMILY), json.dumps(names), str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT / "tests", timeout=300,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "tests"), "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.rsplit("RESULT ", 1)[1])
    assert result["loaded"] == []
    from_runs, from_csv = result["cbs"]
    assert len(from_runs) == 2 and from_runs == from_csv  # one CBS per data size, either way in
