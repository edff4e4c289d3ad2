"""Recordings from NWB files (Neurodata Without Borders; `pynwb`, an optional dependency).

`load_nwb` reads one processed time series of an NWB file, ``(T, N)`` (e.g. ROI responses,
dF/F or binned rates), with its sampling interval (``1 / rate``, or the median step of its
timestamps), and cuts it into trials when the file has a trials table (each trial's samples
from ``start_time`` to ``stop_time`` become one trajectory).
"""

import os
from pathlib import Path

import numpy as np


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


def load_nwb(path: str | os.PathLike, series: str | None = None):
    """Activity, sampling interval and neuron names from an NWB file.

    Args:
        path: the ``.nwb`` file.
        series: the name of the time series (default: the first 2-D one of N >= 2 columns,
            processed data before acquisition).

    Returns:
        ``(activity, dt, names)``: a list of ``(T_i, N)`` trial arrays (one array without a
        trials table), the sampling interval, and None (NWB columns carry no neuron names).

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
        data = np.asarray(ts.data[:], float)
        if data.ndim != 2:
            raise ValueError(f"Expected a (T, N) series; {ts.name!r} has shape {data.shape}.")
        if ts.rate is not None:
            dt, t0 = 1.0 / float(ts.rate), float(ts.starting_time or 0.0)
            times = t0 + dt * np.arange(len(data))
        else:
            times = np.asarray(ts.timestamps[:], float)
            dt = float(np.median(np.diff(times)))
        if nwb.trials is None or len(nwb.trials) == 0:
            return data, dt, None
        starts, stops = nwb.trials["start_time"][:], nwb.trials["stop_time"][:]
        trials = [data[(times >= a) & (times < b)] for a, b in zip(starts, stops, strict=True)]
        trials = [t for t in trials if len(t) >= 2]
        if not trials:
            raise ValueError(f"{path}: expected trials of at least 2 samples of {ts.name!r}.")
        return trials, dt, None
    finally:
        io.close()
