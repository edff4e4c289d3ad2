"""The package's shape: stages in one declared order, no import cycles, a small top level.

Every import is parsed, those inside functions included (a lazy import is still an import).
"""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import ddm_jax as ddm

ROOT = Path(ddm.__file__).parent
# Stages in the order data flows: a module may import its own stage and the ones before it.
STAGES = (
    "targets", "network", "simulation", "fidelity", "training", "data", "analysis", "memory",
    "io", "plotting", "runs", "cli",
)  # fmt: skip
SHARED = {"_custom_types"}  # the jaxtyping aliases every stage uses


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        is_pkg = parts[-1] == "__init__"
        name = ".".join(("ddm_jax", *parts[:-1])) if is_pkg else ".".join(("ddm_jax", *parts))
        yield name, path, is_pkg


def _imports(name, path, is_pkg):
    """``(line, imported module, imported names)`` of every ddm_jax import in one file."""
    package = name.split(".") if is_pkg else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            where = ".".join(base + ([node.module] if node.module else []))
            yield node.lineno, where, [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ddm_jax"):
            yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("ddm_jax"):
                    yield node.lineno, a.name, []


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


MODULES = list(_modules())


def test_every_folder_is_a_declared_stage():
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(STAGES)
    files = {p.stem for p in ROOT.glob("*.py")}
    assert files == {"__init__", *SHARED}, "modules belong in a stage folder"


def test_imports_flow_one_way_through_public_names():
    bad = []
    for name, path, is_pkg in MODULES:
        own = _stage(name)
        if own is None:
            continue  # the top-level package re-exports the stages
        for line, where, names in _imports(name, path, is_pkg):
            other = _stage(where)
            where_ = f"{path.relative_to(ROOT)}:{line}"
            if other in SHARED or other == own:
                continue
            if other is None and own != "cli":  # the command line uses the public API
                bad.append(f"{where_} imports the top-level package")
            elif other is None:
                continue
            elif STAGES.index(other) > STAGES.index(own):
                bad.append(f"{where_}: stage {own} imports the later stage {other}")
            elif where != f"ddm_jax.{other}":
                bad.append(f"{where_} reaches into {where} (import from ddm_jax.{other})")
            elif private := [n for n in names if n.startswith("_")]:
                bad.append(f"{where_} imports private names {private} of {other}")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = {name: set() for name, _, _ in MODULES}
    for name, path, is_pkg in MODULES:
        for _, where, names in _imports(name, path, is_pkg):
            for target in [f"{where}.{n}" for n in names] + [where]:
                if target in graph:
                    break
            if target in graph and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    state, cycles = {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # a stage's __init__ re-exports its own modules: an edge into it from its own module is
    # the hub, not a cycle, and is not followed above unless imported by name
    assert not cycles, "\n".join(cycles)


def test_a_small_top_level():
    public = [n for n in ddm.__all__ if not n.startswith("_")]
    assert len(public) <= 50, public
    assert sorted(public) == sorted(set(public))
    lowered = {}
    for n in public:
        assert n.lower() not in lowered, f"{n} and {lowered[n.lower()]} differ by case only"
        lowered[n.lower()] = n
    for n in public:
        assert getattr(ddm, n) is not None
    assert set(STAGES) - {"cli"} <= set(public)  # each stage is a namespace


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_says_what_it_holds(stage):
    module = importlib.import_module(f"ddm_jax.{stage}")
    assert len((module.__doc__ or "").strip()) > 20


def test_import_loads_the_main_path_only():
    code = (
        "import sys, ddm_jax; "
        "print(sorted(m for m in ('matplotlib', 'scipy.sparse', 'scipy.spatial', "
        "'scipy.optimize', 'ddm_jax.runs', 'ddm_jax.plotting', 'ddm_jax.analysis', "
        "'ddm_jax.memory', 'ddm_jax.cli') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
