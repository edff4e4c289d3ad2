"""Execute every notebook with small sizes; any error fails the test.

The executed full-size copies in docs/notebooks/ (``make notebooks``) are what the docs site
shows: every cell there that draws a figure must carry it as an image.
"""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
EXECUTED = sorted((Path(__file__).parent.parent / "docs" / "notebooks").glob("*.ipynb"))
# a cell draws a figure when it calls a ddm.plotting function or pyplot's drawing calls
DRAWS = re.compile(r"\bplot_\w+\(|\bplt\.(figure|subplots|plot|semilogy|imshow|scatter)\(|"
                   r"\.subplots\(|\bdisplay\(")  # fmt: skip
# what each notebook must print (a sign it reached its point, not just that it ran)
PRINTS = {
    "memory.ipynb": "preferred-direction fraction",  # the cycling experiment
    "quickstart.ipynb": "sliced Wasserstein / spread",  # the fidelity table
    "energy_and_irreversibility.ipynb": "entropy production, network",
    "custom_target.ipynb": "noise read-out covariance error",
    "chaotic_attractors.ipynb": "4th / 1st =",
    "scaling.ipynb": "smallest n with attractor drift error below 1%",
    "from_recordings.ipynb": "no correction",  # the last table: with vs without the correction
}


# One notebook runs in a Jupyter kernel, as a reader runs it (and as ``make notebooks`` runs
# all of them for the docs); the others run their cells in this process, in an IPython shell of
# their own: the same code without a kernel's start-up, import and first compilations (the
# seven took 101 s run one after another, against 131.5 s all through kernels).
IN_KERNEL = "quickstart.ipynb"


def _run_in_this_process(nb, capsys) -> str:
    """Every code cell of ``nb`` in a fresh IPython namespace; what the cells printed."""
    import matplotlib.pyplot as plt
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell()
    shell.enable_gui = lambda gui=None: None  # `%matplotlib inline` needs no event loop here
    capsys.readouterr()
    try:
        for cell in nb.cells:
            if cell.cell_type == "code":
                shell.run_cell(cell.source, store_history=False).raise_error()
    finally:
        plt.close("all")
        shell.clear_instance()
    return capsys.readouterr().out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch, capsys):
    monkeypatch.setenv("DDM_SMALL", "1")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    if path.name != IN_KERNEL:
        monkeypatch.chdir(path.parent)
        assert PRINTS[path.name] in _run_in_this_process(nb, capsys)
        return
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=False).execute(
        cwd=str(path.parent)
    )
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert PRINTS[path.name] in text


def test_every_notebook_says_what_it_must_print():
    """Without an entry the run test would only check that nothing raised."""
    assert sorted(PRINTS) == sorted(p.name for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    """Executed copies belong in docs/notebooks/ (``make notebooks``), not here."""
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert not [cell for cell in code if cell.get("outputs")], f"{path.name} has outputs"
    assert all(cell.get("execution_count") is None for cell in code)


def test_every_notebook_has_an_executed_copy():
    assert [p.name for p in EXECUTED] == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: p.name)
def test_executed_notebook_shows_its_figures(path):
    """A cell that draws has an image/png output, and no figure is left as ``<Figure ...>``."""
    nb = nbformat.read(path, as_version=4)
    missing, text_only = [], []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        data = [o.get("data", {}) for o in cell.get("outputs", [])]
        has_png = any("image/png" in d for d in data)
        if DRAWS.search(cell.source) and not has_png:
            missing.append(i)
        if any(str(d.get("text/plain", "")).startswith("<Figure") and "image/png" not in d
               for d in data):  # fmt: skip
            text_only.append(i)
    assert not missing, f"{path.name}: cells {missing} draw a figure but show no image"
    assert not text_only, f"{path.name}: cells {text_only} show a Figure's repr, not the figure"
