"""``ddm-jax systems``: the registered targets, one line each (``--zoo``: dysts's flows)."""

from typing import Annotated

import numpy as np
import typer
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


def _zoo():
    table = Table(title="dysts flows (ddm-jax train dysts:NAME; time in periods of the flow)")
    for column in ("flow", "k", "period (dysts time)", "exponent per period (dysts estimate)"):
        table.add_column(column)
    for name in ddm.targets.dysts_systems():
        meta = ddm.targets.dysts_metadata(name)
        lam = meta["maximum_lyapunov_estimated"] * meta["period"]
        table.add_row(name, str(meta["dimension"]), f"{meta['period']:.4g}", f"{lam:.3g}")
    console = Console() if Console().is_terminal else Console(width=140)
    console.print(table)
    console.print(
        "delay equations and flows with unbounded coordinates (phases) cannot be embedded; "
        "ddm-jax train says why"
    )


def systems(
    zoo: Annotated[
        bool, typer.Option("--zoo", help="List dysts's flows instead (needs ddm-jax[zoo]).")
    ] = False,
):
    """List the registered target systems: dimension, default parameters, noise, paper size."""
    if zoo:
        return _zoo()
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
    console.print("or a flow of dysts: ddm-jax train dysts:Halvorsen (ddm-jax systems --zoo)")
