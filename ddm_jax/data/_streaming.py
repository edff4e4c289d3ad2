"""The projection of a recording larger than memory: chunked passes over a (B, T, N) array.

`stream_projection` computes what `project_recording` does (the mean, the lag-0..4
autocovariances, k, the map, the measurement noise) and the latents, reading the activity one
chunk of ``chunk`` samples (plus 4 of overlap) of one trajectory at a time: pass one the mean
and the per-neuron counts, pass two the centred lagged products, pass three the latents. A
memory-mapped ``.npy`` (``np.load(path, mmap_mode="r")``) or an NWB series read lazily
(`load_nwb` with ``lazy=True``, an `NWBSeries`) is never loaded whole: the peak
memory is a chunk (``chunk x N`` in float64), five ``N x N`` sums and the ``(B, T, k)``
latents. A ``np.memmap`` of a whole file is read through a fresh map of each chunk, unmapped
once copied, so the file's pages do not pile up in the resident set either (a read through one
long-lived map keeps every page it touched resident until the kernel reclaims it). A lagged
pair counts when every sample from t to t + h is recorded, as in
`lag_covariances` over `trajectory_segments`, so both give the same numbers. The sums are
additive: shards of trajectories on several devices or hosts can each sum their part, and the
sums are added before the eigen-decomposition.
"""

import mmap

import numpy as np

from ._data import _check_dt
from ._latent_space import PROJECTIONS, LatentMap, latent_space

LAGS = 5


def _reader(activity):
    """``read(b, start, stop)``: rows of trajectory b as float64, from a fresh map of a file."""
    whole = (isinstance(activity, np.memmap) and isinstance(activity.base, mmap.mmap)
             and activity.filename is not None and activity.flags.c_contiguous)  # fmt: skip
    if not whole:
        return lambda b, start, stop: np.asarray(activity[b, start:stop], float)
    _, T, N = activity.shape

    def read(b, start, stop):
        offset = activity.offset + (b * T + start) * N * activity.itemsize
        part = np.memmap(activity.filename, activity.dtype, "r", offset, (stop - start, N))
        x = np.array(part, float)
        del part  # unmapped: its pages leave the resident set
        return x

    return read


def _chunks(activity, chunk: int):
    """``(b, start, x, ok)`` over windows of ``chunk`` samples plus ``LAGS - 1`` of overlap."""
    B, T, _ = activity.shape
    read = _reader(activity)
    for b in range(B):
        for start in range(0, T, chunk):
            x = read(b, start, min(start + chunk + LAGS - 1, T))
            if np.any(np.isinf(x)):
                raise ValueError("Expected finite activity (NaN for missing samples); got inf.")
            yield b, start, x, np.all(np.isfinite(x), axis=1)


def stream_projection(
    activity, dt, latent_dim: int | None = None, *, chunk: int = 65536, projection: str = "lag1"
):
    """`project_recording` and the latents of a ``(B, T, N)`` array read in chunks.

    Args:
        activity: ``(B, T, N)`` array-like with NaN for missing samples (e.g. a memory map,
            or an `NWBSeries`).
        dt: sampling interval (checked).
        latent_dim: k (default: chosen as in `choose_latent_dim`).
        chunk: samples per read.
        projection: ``"lag1"`` or ``"fa"``, as in `project_recording`.

    Returns:
        ``(LatentMap, LatentChoice, noise_sd (N,), R (k, k), latents (B, T, k))``.
    """
    _check_dt(dt)
    if not isinstance(projection, str) or projection not in PROJECTIONS:
        raise ValueError(f"Expected projection in {PROJECTIONS}; got {projection!r}.")
    if len(getattr(activity, "shape", ())) != 3:
        raise ValueError(f"Expected activity of shape (B, T, N); got {np.shape(activity)}.")
    N = activity.shape[2]
    total, count, seen = np.zeros(N), 0, np.zeros(N, int)
    for _, _start, x, ok in _chunks(activity, chunk):
        own = slice(0, min(chunk, len(x)))
        total += x[own][ok[own]].sum(0)
        count += int(ok[own].sum())
        seen += np.isfinite(x[own]).sum(0)
    if np.any(seen == 0):
        raise ValueError(
            f"Expected every neuron recorded at some sample; neuron(s) "
            f"{np.flatnonzero(seen == 0)[:10].tolist()} are all NaN: drop them."
        )
    if count < 2:
        raise ValueError("Expected at least two fully recorded samples; got fewer.")
    mean = total / count
    sums, nums = [np.zeros((N, N)) for _ in range(LAGS)], np.zeros(LAGS, int)
    for _, _start, x, ok in _chunks(activity, chunk):
        xc = np.where(ok[:, None], x - mean, 0.0)
        run = np.concatenate([[0], np.cumsum(ok)])
        n_own = min(chunk, len(x))
        for h in range(LAGS):
            t = np.arange(max(0, min(n_own, len(x) - h)))
            pair = (run[t + h + 1] - run[t]) == h + 1  # every sample t..t+h recorded
            a, b = xc[t[pair] + h], xc[t[pair]]
            sums[h] += a.T @ b
            nums[h] += int(pair.sum())
    if np.any(nums == 0):
        raise ValueError(f"Expected runs of at least {LAGS} consecutive recorded samples.")
    covs = [s / n for s, n in zip(sums, nums, strict=True)]
    W, L, choice, noise_sd, R = latent_space(covs, latent_dim, projection)
    latent_map = LatentMap(mean, W, L)
    latents = np.full((*activity.shape[:2], W.shape[0]), np.nan)
    for b, start, x, _ in _chunks(activity, chunk):
        own = min(chunk, len(x))
        latents[b, start : start + own] = latent_map.encode(x[:own])
    return latent_map, choice, noise_sd, R, latents
