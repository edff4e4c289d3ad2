"""Recordings from NWB files (Neurodata Without Borders; `pynwb`, an optional dependency).

`load_nwb` reads one processed time series of an NWB file, ``(T, N)`` (e.g. ROI responses,
dF/F or binned rates), with its sampling interval (``1 / rate``, or the median step of its
timestamps), and cuts it into trials when the file has a trials table (each trial's samples
from ``start_time`` to ``stop_time`` become one trajectory). With ``lazy=True`` it reads no
activity: it returns an `NWBSeries`, a ``(B, T, N)`` view whose trials are ``(start, stop)``
row ranges of the HDF5 dataset, read on demand (`stream_projection` reads it chunk by chunk).
"""

import os
from pathlib import Path

import numpy as np


class NWBSeries:
    """A ``(B, T, N)`` view of an NWB time series, read from its HDF5 dataset on demand.

    Trajectory ``b`` is rows ``ranges[b] = (start, stop)`` of the dataset (a trial, or the
    whole series without a trials table), padded with NaN to ``T``, the longest trial.
    ``series[b, i:j]`` reads only those rows, as float64; ``np.asarray(series)`` reads it all.
    No file stays open: each read opens the file, reads its rows and closes it, so the
    view can outlive any fit and be pickled (e.g. to shard trajectories across processes).

    Attributes:
        path: the HDF5 file that holds the dataset.
        dataset: the dataset's path inside the file.
        ranges: ``((start, stop), ...)``, one row range per trajectory.
        shape: ``(B, T, N)``.
    """

    ndim = 3
    dtype = np.dtype(float)

    def __init__(self, path, dataset: str, ranges, n: int):
        self.path = str(path)
        self.dataset = dataset
        self.ranges = tuple((int(a), int(b)) for a, b in ranges)
        self.shape = (len(self.ranges), max(b - a for a, b in self.ranges), int(n))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"NWBSeries({self.path!r}, {self.dataset!r}, shape={self.shape})"

    def _rows(self, start: int, stop: int) -> np.ndarray:
        import h5py

        with h5py.File(self.path, "r") as f:
            return np.asarray(f[self.dataset][start:stop], float)

    def __getitem__(self, key) -> np.ndarray:
        b, rows = key if isinstance(key, tuple) else (key, slice(None))
        if not isinstance(b, int | np.integer) or not isinstance(rows, slice):
            raise TypeError(f"Expected series[b] or series[b, start:stop]; got {key!r}.")
        start, stop, step = rows.indices(self.shape[1])
        if step != 1:
            raise TypeError(f"Expected a slice of step 1; got {rows!r}.")
        a, z = self.ranges[b]  # an IndexError past the last trajectory
        out = np.full((max(0, stop - start), self.shape[2]), np.nan)
        have = max(0, min(stop, z - a) - start)
        if have:
            out[:have] = self._rows(a + start, a + start + have)
        return out

    def __array__(self, dtype=None, copy=None):
        out = np.stack([self[b] for b in range(len(self))])
        return out if dtype is None else out.astype(dtype)


def _series(nwb, name: str | None):
    from pynwb import TimeSeries

    found = [o for o in nwb.objects.values() if isinstance(o, TimeSeries)]
    two_d = [o for o in found if np.ndim(o.data) == 2 and o.data.shape[1] >= 2]
    if name is not None:
        named = [o for o in found if o.name == name]
        if not named:
            raise ValueError(
                f"Expected a time series named {name!r}; the file has {[o.name for o in found]}."
            )
        return named[0]
    if not two_d:
        raise ValueError(
            "Expected a (T, N) time series of N >= 2 neurons in the NWB file; got "
            f"{[(o.name, np.shape(o.data)) for o in found]}."
        )
    processed = [o for o in two_d if o.parent is not None and o.parent is not nwb]
    return (processed or two_d)[0]


def load_nwb(path: str | os.PathLike, series: str | None = None, *, lazy: bool = False):
    """Activity, sampling interval and neuron names from an NWB file.

    Args:
        path: the ``.nwb`` file.
        series: the name of the time series (default: the first 2-D one of N >= 2 columns,
            processed data before acquisition).
        lazy: read no activity; return an `NWBSeries` (trials as row ranges of the dataset,
            read on demand) for ``fit_recording(..., chunk=...)`` / `stream_projection`.

    Returns:
        ``(activity, dt, names)``: a list of ``(T_i, N)`` trial arrays (one array without a
        trials table), or with ``lazy`` an `NWBSeries`; the sampling interval; and None (NWB
        columns carry no neuron names).

    Raises:
        ValueError: without pynwb, for a file it cannot read, or without such a series.
    """
    try:
        from pynwb import NWBHDF5IO
    except ImportError as err:
        raise ValueError("Reading NWB files needs pynwb: pip install pynwb.") from err
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Expected an NWB file at {path}; it does not exist.")
    try:
        io = NWBHDF5IO(str(path), "r")
        nwb = io.read()
    except Exception as err:
        raise ValueError(f"{path}: expected an NWB file; it cannot be read ({err}).") from err
    try:
        ts = _series(nwb, series)
        shape = tuple(np.shape(ts.data))
        if len(shape) != 2:
            raise ValueError(f"Expected a (T, N) series; {ts.name!r} has shape {shape}.")
        if ts.rate is not None:
            dt, t0 = 1.0 / float(ts.rate), float(ts.starting_time or 0.0)
            times = t0 + dt * np.arange(shape[0])
        else:
            times = np.asarray(ts.timestamps[:], float)
            dt = float(np.median(np.diff(times)))
        trials = nwb.trials is not None and len(nwb.trials) > 0
        if trials:  # the samples with start_time <= t < stop_time (timestamps ascend)
            starts, stops = nwb.trials["start_time"][:], nwb.trials["stop_time"][:]
            ranges = np.stack([np.searchsorted(times, starts), np.searchsorted(times, stops)], 1)
            ranges = [(a, b) for a, b in ranges if b - a >= 2]
            if not ranges:
                raise ValueError(f"{path}: expected trials of at least 2 samples of {ts.name!r}.")
        else:
            ranges = [(0, shape[0])]
        if lazy:
            return NWBSeries(ts.data.file.filename, ts.data.name, ranges, shape[1]), dt, None
        data = np.asarray(ts.data[:], float)
        return ([data[a:b] for a, b in ranges] if trials else data), dt, None
    finally:
        io.close()
