"""Peak memory and time of the streamed projection against the size of the recording.

Recordings of N = 256 neurons (``--neurons``; 3 latent Ornstein-Uhlenbeck variables, a
random mixing into the neurons plus white measurement noise of 20% of each neuron's spread;
4 trajectories, dt = 0.01, float32) are written as memory-mapped ``.npy`` files of
increasing length T. Each is read by `ddm.data.stream_projection` (the mean, the lag-0..4
autocovariances, k, the map, the measurement noise and the latents: the step of
`fit_recording(..., chunk=...)` that touches the activity) with a fixed chunk of CHUNK
samples, in a fresh subprocess, which reports its wall time, its peak resident set size
(``VmHWM`` of ``/proc/self/status``, which counts the file's pages the memory map keeps
resident; not ``ru_maxrss``, which Linux keeps across ``exec``, so a child's holds the
parent's peak at the fork) and its peak anonymous memory (``RssAnon``, sampled every 10 ms:
the memory the process itself allocates), both also before the projection (after the
imports). The files
are deleted afterwards. The work is O(T N^2) (five lagged N x N sums): at N = 1000 about 15
times that of N = 256 per sample. Writes results/recordings_scale.{json,md,png}.

    python benchmarks/recordings_scale.py [--quick] [--sizes T ...] [--neurons N] [--chunk C]
        [--dir DIR]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

N, K, B, DT, NOISE = 256, 3, 4, 0.01, 0.2
CHUNK = 8192
SIZES = (50_000, 200_000, 800_000)  # samples in all (B trajectories)
QUICK = (20_000, 80_000)


def write_recording(path: Path, total: int, neurons: int, seed: int = 0) -> None:
    """A ``(B, total // B, neurons)`` float32 ``.npy``, written block by block."""
    rng = np.random.default_rng(seed)
    T = total // B
    mix = rng.standard_normal((K, neurons)) / np.sqrt(K)
    rate = np.array([0.5, 1.0, 2.0])
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(B, T, neurons))
    block = 50_000
    for b in range(B):
        state = np.zeros(K)
        for start in range(0, T, block):
            m = min(block, T - start)
            shocks = np.sqrt(2 * rate * DT) * rng.standard_normal((m, K))
            z = np.empty((m, K))
            for i in range(K):  # z_{t+1} = (1 - rate dt) z_t + shock
                z[:, i], _ = lfilter([1.0], [1.0, -(1 - rate[i] * DT)], shocks[:, i],
                                     zi=[(1 - rate[i] * DT) * state[i]])  # fmt: skip
            state = z[-1]
            x = z @ mix
            x += NOISE * np.sqrt((mix**2).sum(0)) * rng.standard_normal((m, neurons))
            out[b, start : start + m] = x
    out.flush()
    del out


def _status_kib(field: str) -> int:
    """A memory field of ``/proc/self/status`` (``RssAnon``, ``VmHWM``) in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def _anon_kib() -> int:
    return _status_kib("RssAnon")


def child(path: str, chunk: int) -> None:
    """Run in a fresh process: the streamed projection of one file; prints one JSON line."""
    import ddm_jax as ddm

    peak, done = [_anon_kib()], threading.Event()
    before = {"rss_mib": _status_kib("VmHWM") / 1024,
              "anon_mib": peak[0] / 1024}  # fmt: skip

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _anon_kib())
            time.sleep(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    activity = np.load(path, mmap_mode="r")
    start = time.perf_counter()
    latent_map, choice, noise_sd, R, latents = ddm.data.stream_projection(activity, DT, chunk=chunk)
    seconds = time.perf_counter() - start
    done.set()
    thread.join()
    print(json.dumps({
        "seconds": seconds, "k": choice.latent_dim, "before": before,
        "rss_mib": _status_kib("VmHWM") / 1024,
        "anon_mib": max(peak[0], _anon_kib()) / 1024,
        "noise_sd_median": float(np.median(noise_sd)),
        "latents_mib": latents.nbytes / 2**20,
    }))  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", nargs="+", type=int, default=None, help="samples in all")
    parser.add_argument("--chunk", type=int, default=CHUNK)
    parser.add_argument("--neurons", type=int, default=N)
    parser.add_argument("--dir", default=None, help="where the temporary files go")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.chunk)
    from _results import plt, stamp, write_results

    started = stamp()  # the commit and load when the run began
    sizes = args.sizes or (QUICK if args.quick else SIZES)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for total in sizes:
            path = Path(tmp) / f"recording-{total}.npy"
            start = time.perf_counter()
            write_recording(path, total, args.neurons)
            write_s = time.perf_counter() - start
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path), "--chunk", str(args.chunk)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row |= {"samples": total, "file_mib": path.stat().st_size / 2**20,
                    "write_seconds": write_s}  # fmt: skip
            path.unlink()
            rows.append(row)
            print(row, flush=True)
    table = (
        f"Streamed projection (`ddm.data.stream_projection`, chunk {args.chunk} samples) of "
        f"memory-mapped float32 recordings of N = {args.neurons} neurons ({B} trajectories, "
        f"k = {K} latent OU variables, {100 * NOISE:.0f}% measurement noise), each in a fresh "
        "process. "
        "Peak RSS counts the file pages the memory map keeps resident (reclaimable page "
        "cache); peak anonymous memory is what the process allocates. 'Before': after the "
        "imports, before the projection.\n\n"
        "| samples | file (MiB) | time (s) | samples/s | peak RSS (MiB) | peak anonymous (MiB) | "
        "before: RSS / anonymous (MiB) | latents (MiB) | k found |\n|"
        + "---|" * 9
        + "\n"
        + "\n".join(
            f"| {r['samples']:,} | {r['file_mib']:.0f} | {r['seconds']:.1f} | "
            f"{r['samples'] / r['seconds']:,.0f} | {r['rss_mib']:.0f} | {r['anon_mib']:.0f} | "
            f"{r['before']['rss_mib']:.0f} / {r['before']['anon_mib']:.0f} | "
            f"{r['latents_mib']:.1f} | {r['k']} |"
            for r in rows
        )
        + "\n"
    )

    def plot(path):
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
        size = [r["file_mib"] for r in rows]
        ax[0].loglog(size, [r["rss_mib"] for r in rows], "o-", label="peak RSS")
        ax[0].loglog(size, [r["anon_mib"] for r in rows], "s-", label="peak anonymous")
        ax[0].loglog(size, size, "k:", label="file size")
        ax[0].set(xlabel="recording (MiB)", ylabel="memory (MiB)")
        ax[0].legend()
        ax[1].loglog(size, [r["seconds"] for r in rows], "o-")
        ax[1].set(xlabel="recording (MiB)", ylabel="time (s)")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)

    data = {**started, "N": args.neurons, "k": K, "trajectories": B, "chunk": args.chunk,
            "rows": rows}  # fmt: skip
    write_results("recordings_scale", data, table, plot)
    print(table)


if __name__ == "__main__":
    main()
