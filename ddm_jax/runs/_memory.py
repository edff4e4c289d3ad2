"""``ddm-jax memory``: the memory experiments of a trained wells-family run folder.

Writes ``memory.json`` and ``figures/memory_*.png`` into the run folder. Every argument and
the run itself (finished, a target with wells metadata) are checked before anything is
written, and every file is written atomically, so a failed start leaves the folder as it was.
"""

import io
import os
from pathlib import Path

import jax.random as jr
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg

from ..io import atomic_write_bytes, atomic_write_json
from ..memory import memory_experiments, well_geometry
from ..plotting import plot_curves, plot_occupancy
from ._folder import RunError, check_count, check_finite
from ._loading import load_run
from ._lock import holds_run_folder


def _check_settings(trials, trajectories, time, burn_in, dt, seed) -> None:
    check_count("trials", trials, 1)
    check_count("trajectories", trajectories, 1)
    check_count("seed", seed, 0)
    for name, value in {"time": time, "burn_in": burn_in, "dt": dt}.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
            raise ValueError(f"Expected a number for {name}; got {value!r}.")
        check_finite(name, value)
    if not (dt > 0 and 0 <= burn_in < time):
        raise ValueError(
            f"Expected dt > 0 and 0 <= burn_in < time; got dt={dt}, burn_in={burn_in}, time={time}."
        )


def _png(fig) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


@holds_run_folder
def memory_run(
    run: str | os.PathLike,
    *,
    trials: int = 200,
    trajectories: int = 1000,
    time: float = 200.0,
    burn_in: float = 10.0,
    dt: float = 0.005,
    seed: int = 0,
    figures: bool = True,
) -> dict:
    """Switching, recall and cycling of a trained wells-family run, network beside target.

    Runs `memory_experiments` on the run's network and target with the same keys: switching
    (pulse amplitudes 0 ... 3) and recall (cue strengths 0 ... 3) with ``trials`` trials a
    point, and cycling with ``trajectories`` trajectories of ``time`` time units after
    ``burn_in``. Writes ``memory.json`` (the settings and every result) and, with
    ``figures``, ``figures/memory_switching.png``, ``memory_recall.png`` and
    ``memory_occupancy.png``.

    The cycling EPR is a direct estimate from the Euler-Maruyama stationary samples at
    ``dt``; its O(dt) bias is larger than its standard error (``cycling_wells``: 9.41 +- 0.04
    against the exact 9.047 at dt = 0.005), so where the target has an exact value
    (`exact_epr`) the result holds it (``epr_exact``) and the bias ``epr_bias = epr -
    epr_exact`` beside the estimate.

    Returns:
        What ``memory.json`` holds.

    Raises:
        ValueError: for a bad setting (before anything is read or written).
        RunError: when the folder is not a finished run of a wells-family target (one whose
            metadata gives ``well_centres`` and ``well_width``, see `Target`).
    """
    _check_settings(trials, trajectories, time, burn_in, dt, seed)
    loaded = load_run(run)
    if loaded.target.well_centres is None or loaded.target.well_width is None:
        raise RunError(
            f"{loaded.path} holds a {loaded.target.name!r} run; the memory experiments need a "
            "target of the wells family (with well_centres and well_width metadata)."
        )
    out = memory_experiments(
        loaded.target, loaded.model, key=jr.key(seed), trials=trials,
        trajectories=trajectories, t1=time, burn_in=burn_in, dt=dt,
    )  # fmt: skip
    settings = {"trials": trials, "trajectories": trajectories, "time": time,
                "burn_in": burn_in, "dt": dt, "seed": seed}  # fmt: skip
    out = {"settings": settings, "system": loaded.target.name, **out}
    for side in out["cycling"].values():  # the estimate beside the exact value, bias stated
        if side is not None and side.get("epr_exact") is not None:
            side["epr_bias"] = side["epr"] - side["epr_exact"]
    pngs = {}
    if figures:  # rendered before anything is written
        pngs = {
            "memory_switching": _png(plot_curves(
                out["switching"], xlabel="pulse amplitude", ylabel="P(end in the pulsed well)",
                title=f"switching, {loaded.target.name}")),
            "memory_recall": _png(plot_curves(
                out["recall"], xlabel="cue strength", ylabel="P(end in the cued well)",
                title="recall from a cue", chance=1 / len(well_geometry(loaded.target)[0]))),
            "memory_occupancy": _png(plot_occupancy(out["cycling"], title="occupancy")),
        }  # fmt: skip
    folder = Path(run)
    for name, data in pngs.items():
        atomic_write_bytes(folder / "figures" / f"{name}.png", data)
    atomic_write_json(folder / "memory.json", out)
    return out
