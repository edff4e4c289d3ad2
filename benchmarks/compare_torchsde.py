"""How much faster is ddm-jax than torchsde at simulating the same low-rank network?

Both sides simulate the same full n-neuron network (weights copied from a ddm-jax model,
k = 3, additive low-rank noise Sigma = Gamma Ghat) with Euler-Maruyama, the same step count
and dt, float32, on the CPU (also where JAX sees a GPU), side by side in one run:
`ddm.simulate_network` (default path) against `torchsde.sdeint(method="euler")` with an Ito
SDE module whose drift and diffusion use the low-rank factors (never the n x n matrix).
Times are the minimum of repeats after a warm-up. Needs the optional extra:
`pip install ".[compare]"` (torch, torchsde); without it the script keeps results measured
earlier, or writes a 'skipped' note. Writes results/compare_torchsde.{json,md,png}.

    python benchmarks/compare_torchsde.py
"""

import json
import sys
import time

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from _results import RESULTS, plt, stamp, write_results

import ddm_jax as ddm

DT = 1e-3
CASES = [(1024, 1, 50000), (1024, 64, 2000), (64, 64, 20000)]  # (n, B, steps): 0.1 s or more


def torch_sde(model):
    import torch

    Gamma = torch.tensor(np.asarray(model.Gamma))
    W_s = torch.tensor(np.asarray(model.W_s))
    b = torch.tensor(np.asarray(model.b))
    sigma = torch.tensor(np.asarray(model.Gamma @ model.noise_const))  # (n, m)
    tau = float(model.tau)

    class Net(torch.nn.Module):
        noise_type = "general"
        sde_type = "ito"

        def f(self, t, x):  # (B, n)
            return (-x + (torch.tanh(x) @ W_s.T) @ Gamma.T + b) / tau

        def g(self, t, x):  # (B, n, m)
            return (sigma / tau).expand(x.shape[0], *sigma.shape)

    return Net()


def best_time(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    try:
        import torch
        import torchsde
    except ImportError:
        note = "torch and torchsde are not installed: `pip install '.[compare]'` to run this."
        previous = RESULTS / "compare_torchsde.json"
        if previous.exists() and "rows" in json.loads(previous.read_text()):
            print(f"{note} Kept the results measured earlier ({previous.name}).")
            return
        ddm.io.atomic_write_json(previous, {**stamp(), "skipped": note})
        ddm.io.atomic_write_text(RESULTS / "compare_torchsde.md", f"Skipped: {note}\n")
        print(note)
        return
    jax.config.update("jax_default_device", jax.devices("cpu")[0])  # CPU on both sides
    sys.setrecursionlimit(100_000)  # torchsde's Brownian interval tree recurses per step
    target = ddm.make_target("lorenz")
    rows = []
    for n, batch, steps in CASES:
        model = ddm.init_network(target, n, key=jr.key(n))
        z0s = jnp.tile(target.z0, (batch, 1))
        t1 = steps * DT
        jax_time = best_time(
            lambda model=model, z0s=z0s, t1=t1: jax.block_until_ready(
                ddm.simulate_network(model, z0s, key=jr.key(0), t1=t1, dt=DT, save_dt=t1).zs
            )
        )
        sde = torch_sde(model)
        x0 = torch.tensor(np.asarray(jax.vmap(model.embed)(z0s)))
        ts = torch.tensor([0.0, t1])

        def run_torch(sde=sde, x0=x0, ts=ts):
            with torch.no_grad():
                return torchsde.sdeint(sde, x0, ts, method="euler", dt=DT)

        torch_time = best_time(run_torch, repeats=2)
        rows.append({
            "n": n, "batch": batch, "steps": steps, "ddm_jax_s": jax_time,
            "torchsde_s": torch_time, "speedup": torch_time / jax_time,
            "ddm_jax_neuron_steps_per_s": n * batch * steps / jax_time,
            "torchsde_neuron_steps_per_s": n * batch * steps / torch_time,
        })  # fmt: skip
        r = rows[-1]
        print(f"n={n} B={batch}: ddm-jax {jax_time:.3f} s, torchsde {torch_time:.3f} s, "
              f"x{r['speedup']:.1f}", flush=True)  # fmt: skip
    lines = [
        f"torch {torch.__version__}, torchsde {torchsde.__version__}, "
        f"{torch.get_num_threads()} torch threads",
        "",
        "| n | B | steps | ddm-jax (s) | torchsde (s) | speed-up | ddm-jax M neuron-steps/s "
        "| torchsde M neuron-steps/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['batch']} | {r['steps']} | {r['ddm_jax_s']:.3f} "
            f"| {r['torchsde_s']:.3f} | {r['speedup']:.1f}x "
            f"| {r['ddm_jax_neuron_steps_per_s'] / 1e6:.0f} "
            f"| {r['torchsde_neuron_steps_per_s'] / 1e6:.1f} |"
        )

    def plot(path):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        labels = [f"n={r['n']}\nB={r['batch']}" for r in rows]
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [r["ddm_jax_neuron_steps_per_s"] for r in rows], 0.4, label="ddm-jax")
        ax.bar(x + 0.2, [r["torchsde_neuron_steps_per_s"] for r in rows], 0.4, label="torchsde")
        ax.set_yscale("log")
        ax.set_xticks(x, labels)
        ax.set_ylabel("neuron-steps / s")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)

    write_results("compare_torchsde", {**stamp(), "torch": torch.__version__, "rows": rows},
                  "\n".join(lines) + "\n", plot)  # fmt: skip


if __name__ == "__main__":
    main()
