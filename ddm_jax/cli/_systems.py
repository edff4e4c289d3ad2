"""``ddm-jax systems``: the registered targets, one line each."""

import numpy as np
from rich.console import Console
from rich.table import Table

import ddm_jax as ddm


def _noise_text(g: np.ndarray) -> str:
    k, m = g.shape
    if k == m and np.allclose(g, g[0, 0] * np.eye(k)):
        return f"{g[0, 0]:.4g} I"
    if k == m and np.allclose(g, np.diag(np.diag(g))):
        return "diag(" + ", ".join(f"{v:.3g}" for v in np.diag(g)) + ")"
    return f"({k}x{m}) matrix"


def _value_text(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_value_text(v) for v in value) + ")"
    return str(value)


def systems():
    """List the registered target systems: dimension, default parameters, noise, paper size."""
    table = Table(title="registered systems (ddm-jax train SYSTEM)")
    for column in ("system", "k", "default parameters", "noise G", "paper n"):
        table.add_column(column)
    for name in ddm.SYSTEMS:
        target = ddm.make_target(name)
        params = ddm.targets.system_defaults(name)
        noise = params.pop("noise", None)
        g = np.asarray(target.g(target.centre))
        noise_text = _noise_text(g) + ("" if target.additive else " (state-dependent)")
        if noise is None:
            noise_text += " (from temperature)"
        table.add_row(
            name, str(target.dim),
            ", ".join(f"{key}={_value_text(v)}" for key, v in params.items()),
            noise_text, str(target.paper_neurons or "-"),
        )  # fmt: skip
    console = Console() if Console().is_terminal else Console(width=140)
    console.print(table)
    console.print("or a target of your own: ddm-jax train path/to/file.py:name")
