"""The documentation is tested: the site builds strictly and every code block runs.

- ``mkdocs build --strict`` (broken links, unknown cross-references and bad docstrings fail);
- every API name: each top-level name of ``ddm_jax`` and each stage's public name has its
  heading in the built API reference;
- every ```python block of the README, Getting started and the guides runs, each page's
  blocks in document order (with its ``ddm-jax`` lines) in one namespace, in a temporary
  folder; a block whose first line is ``# skip: <reason>`` is not run;
- every ``ddm-jax ...`` line of the README's and Getting started's ```bash blocks runs in
  the same folder, through the command line's own entry point, unless it ends with
  ``# skip: <reason>`` (other lines, such as ``make`` and ``pip``, are not run);
- no page cites a document that is not in the repository.
"""

import ast
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ddm_jax

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", DOCS / "getting-started.md", *sorted((DOCS / "guides").glob("*.md"))]
BLOCK = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.M | re.S)
STAGES = ["targets", "network", "simulation", "fidelity", "training", "data", "analysis",
          "memory", "io", "plotting", "runs", "cli"]  # fmt: skip


def runnable(code: str) -> bool:
    return not code.lstrip().startswith("# skip:")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if shutil.which("mkdocs") is None and not (Path(sys.executable).parent / "mkdocs").exists():
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]'; make test installs it)")
    out = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).parent / "mkdocs"
    command = [str(mkdocs) if mkdocs.exists() else "mkdocs", "build", "--strict", "-d", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_site_builds_strictly(site):
    assert (site / "index.html").exists()
    for name in ("quickstart", "memory"):  # the executed notebooks, figures inline
        html = (site / "notebooks" / name / "index.html").read_text()
        assert "data:image/png;base64" in html, name
    assert (site / "benchmarks" / "fidelity" / "index.html").exists()


def stage_names(stage: str) -> list[str]:
    tree = ast.parse((ROOT / "ddm_jax" / stage / "__init__.py").read_text())
    return [a.name for node in tree.body if isinstance(node, ast.ImportFrom) for a in node.names
            if a.asname == a.name and not a.name.startswith("_")]  # fmt: skip


def test_api_reference_covers_every_public_name(site):
    html = "".join(p.read_text() for p in (site / "api").rglob("index.html"))
    ids = set(re.findall(r'id="(ddm_jax\.[\w.]+)"', html))
    missing = [f"ddm_jax.{s}.{n}" for s in STAGES if s != "cli" for n in stage_names(s)
               if f"ddm_jax.{s}.{n}" not in ids]  # fmt: skip
    assert not missing, f"not in the API reference: {missing}"
    assert "ddm_jax.cli.main" in ids
    top = {n.rsplit(".", 1)[-1] for n in ids}
    assert not [n for n in ddm_jax.__all__ if n not in top and n not in STAGES]
    for stage in STAGES:
        assert f"ddm_jax.{stage}" in ids, stage


def test_api_pages_list_every_stage_name():
    """The stage pages list their members by hand: a new public name must be added there."""
    for stage in STAGES:
        page = (DOCS / "api" / f"{stage}.md").read_text()
        listed = re.findall(r"^\s+- (\w+)$", page, re.M)
        expected = ["main"] if stage == "cli" else stage_names(stage)
        assert listed == expected, stage


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_code_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": "__docs__"}
    from typer.testing import CliRunner

    from ddm_jax.cli import app

    for i, (lang, code) in enumerate(BLOCK.findall(path.read_text())):
        if not runnable(code):
            continue
        if lang == "python":
            exec(compile(code, f"{path.name}[block {i}]", "exec"), namespace)
        elif lang == "bash":
            for line in code.splitlines():
                if "# skip:" in line:  # a line that cannot run here says why
                    continue
                words = shlex.split(line, comments=True)
                if words[:1] != ["ddm-jax"]:
                    continue
                result = CliRunner().invoke(app, words[1:], prog_name="ddm-jax")
                assert result.exit_code == 0, f"{line}\n{result.output}"


SOURCES = [ROOT / "README.md", *DOCS.rglob("*.md")]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_cites_a_missing_document(path):
    text = path.read_text()
    assert not re.search(r"\bSPEC\b|FACTS(\.md)?\b|\bissue \d+", text), path.name
