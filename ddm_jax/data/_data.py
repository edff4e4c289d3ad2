"""Recorded trajectories: reading them in, the box they span, and their increments.

Trajectories come as an array ``(B, T, k)`` (or one ``(T, k)`` trajectory) sampled every
``dt``, with NaN marking missing samples, or as a list of ``(T_i, k)`` arrays of different
lengths; files are ``.npy`` (one such array) or ``.npz`` (see `load_trajectories`). A missing
sample splits its trajectory: increments are only formed between consecutive recorded samples,
never across a gap.
"""

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np


def _check_dt(dt) -> float:
    try:
        value = float(dt)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Expected a sampling interval dt > 0 (a number); got {dt!r}.") from err
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"Expected a finite sampling interval dt > 0; got {dt!r}.")
    return value


def trajectory_segments(data, dt) -> list[np.ndarray]:
    """The runs of consecutive finite samples in ``data``, each ``(T_i, k)`` in float64.

    Args:
        data: ``(B, T, k)`` or ``(T, k)`` array, or a sequence of ``(T_i, k)`` arrays; a
            sample (a row) with any NaN counts as missing.
        dt: the sampling interval (> 0), checked here.

    Raises:
        ValueError: for non-positive dt, inconsistent shapes, or no usable samples.
    """
    _check_dt(dt)
    if isinstance(data, list | tuple):
        trajs = [np.asarray(t, dtype=float) for t in data]
    else:
        arr = np.asarray(data, dtype=float)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise ValueError(
                f"Expected trajectories of shape (B, T, k) or (T, k); got shape {arr.shape}."
            )
        trajs = list(arr)
    if not trajs:
        raise ValueError("Expected at least one trajectory; got none.")
    k = trajs[0].shape[-1] if trajs[0].ndim == 2 else None
    for i, t in enumerate(trajs):
        if t.ndim != 2 or t.shape[1] != k or k == 0:
            raise ValueError(
                f"Expected every trajectory of shape (T_i, k) with the same k = {k}; "
                f"trajectory {i} has shape {t.shape}."
            )
    if np.any(np.isinf(np.concatenate(trajs))):
        raise ValueError("Expected finite samples or NaN for missing ones; got inf.")
    segments = []
    for t in trajs:
        ok = np.all(np.isfinite(t), axis=1)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(int), [0]])))
        segments += [t[a:b] for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= 2]
    if not segments:
        raise ValueError(
            f"Expected at least two consecutive finite samples in some trajectory; all "
            f"{len(trajs)} trajectories are NaN or have only isolated samples."
        )
    return segments


def load_trajectories(
    path: str | os.PathLike,
) -> tuple[list[np.ndarray] | np.ndarray, float | None]:
    """Trajectories and (if stored) the sampling interval from a ``.npy`` or ``.npz`` file.

    A ``.npy`` file holds one ``(B, T, k)`` or ``(T, k)`` array. A ``.npz`` file holds either
    an array ``trajectories`` (or ``z``) of that shape, or trajectories of different lengths as
    arrays ``traj_0``, ``traj_1``, ... ; an optional scalar ``dt`` gives the sampling interval.

    Raises:
        ValueError: for another suffix, a missing file or an archive without trajectories.
    """
    path = Path(path)
    if path.suffix not in (".npy", ".npz"):
        raise ValueError(f"Expected a .npy or .npz trajectory file; got {path.name!r}.")
    if not path.is_file():
        raise ValueError(f"Expected a trajectory file at {path}; it does not exist.")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as err:
        raise ValueError(f"{path}: expected a NumPy file; it is corrupt ({err}).") from err
    if path.suffix == ".npy":
        return loaded, None
    with loaded:
        names = loaded.files
        dt = float(loaded["dt"]) if "dt" in names else None
        for name in ("trajectories", "z"):
            if name in names:
                return loaded[name], dt
        parts = sorted((n for n in names if n.startswith("traj_")), key=lambda n: int(n[5:]))
        if not parts:
            raise ValueError(
                f"{path}: expected an array 'trajectories' (or 'z'), or arrays traj_0, traj_1, "
                f"...; got {names}."
            )
        return [loaded[n] for n in parts], dt


def data_box(
    segments: list[np.ndarray], quantile: float = 0.005, enlarge: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """A box from the data: the ``quantile`` and ``1 - quantile`` of every coordinate, enlarged.

    Robust quantiles rather than the extremes, so that a few outliers do not stretch the
    network's coordinates; each side then moves out by ``enlarge`` times the half-width.
    """
    allz = np.concatenate(segments)
    low, high = np.quantile(allz, [quantile, 1 - quantile], axis=0)
    half = np.maximum((high - low) / 2, 1e-6 * np.maximum(np.abs(high), 1.0))
    centre = (low + high) / 2
    return centre - (1 + enlarge) * half, centre + (1 + enlarge) * half


class Increments(NamedTuple):
    """Increments of recorded trajectories at lags ``dt`` and ``2 dt``.

    Attributes:
        z: ``(N, k)`` the states ``z_t``.
        dz1: ``(N, k)`` ``z_{t + dt} - z_t``.
        dz2: ``(N, k)`` ``z_{t + 2 dt} - z_t``, or None when only lag 1 was asked for.
        dt: the sampling interval.
    """

    z: np.ndarray
    dz1: np.ndarray
    dz2: np.ndarray | None
    dt: float


def increments(segments: list[np.ndarray], dt: float, *, two_lags: bool = False) -> Increments:
    """Every increment of every segment; with ``two_lags`` only states with ``z_{t+2dt}``."""
    dt = _check_dt(dt)
    lag = 2 if two_lags else 1
    usable = [s for s in segments if s.shape[0] > lag]
    if not usable:
        raise ValueError(
            f"Expected a segment of at least {lag + 1} consecutive finite samples; none has."
        )
    z = np.concatenate([s[:-lag] for s in usable])
    dz1 = np.concatenate([s[1 : s.shape[0] - lag + 1] - s[:-lag] for s in usable])
    dz2 = np.concatenate([s[2:] - s[:-2] for s in usable]) if two_lags else None
    return Increments(z, dz1, dz2, dt)


def split_held_out(segments: list[np.ndarray], fraction: float = 0.2):
    """Segments for fitting and held out: the last ``fraction`` of each segment's samples.

    Splitting in time rather than by trajectory keeps every trajectory's region represented
    on both sides, however few trajectories were recorded.
    """
    fit, held = [], []
    for s in segments:
        cut = int(round(s.shape[0] * (1 - fraction)))
        if cut >= 2:
            fit.append(s[:cut])
        if s.shape[0] - cut >= 2:
            held.append(s[cut:])
    return fit, held
