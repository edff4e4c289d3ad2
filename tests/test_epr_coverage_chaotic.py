"""Coverage of the entropy production intervals on a chaotic target, run as `analyze` runs them.

The OU coverage test (test_analysis_irreversibility.py) starts from the exact stationary law.
Here the target is Lorenz (additive noise G = I, D = I / 2), whose stationary law is known
only by simulation, and each replicate is one ``ddm-jax analyze`` estimate of the target's
EPR at a smaller size: `_starts` picks the starts from the run's attractor pool, the target
runs the burn-in, then the estimated stretch (Euler-Maruyama, every step saved), and
`_estimates` calls both estimators as the run does. Only the number of trajectories is
smaller than the defaults (32 instead of 128); time, burn-in and step are the defaults.
"""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

import ddm_jax as ddm
from ddm_jax.runs._analyze import _estimates, _starts

# The reference EPR of Lorenz (sigma 10, rho 28, beta 8/3, G = I) is E_p[2 |f|^2] - 13.667,
# from an independent float64 Euler-Maruyama (this file's `reference`, run by
# `python tests/test_epr_coverage_chaotic.py`): 8,192 trajectories from z0 + 5 N(0, I), 20
# time units of burn-in, then 50 averaged, step 1e-3 (that of `analyze` and of this test):
# 24,127 +- 20 (the trajectory estimator: 24,126); standard error from the spread of the
# per-trajectory means. At step 5e-4 (2,048 trajectories) 24,020 +- 43: the step's bias,
# about 0.4%, and the reference's error are < 1/8 of the intervals' half-width here (4.1%).
LORENZ_EPR = 24_127.0
LORENZ_EPR_STDERR = 20.0

REPLICATES = 100  # analyze seeds 0..99 on one run (one pool)
TRAJECTORIES, TIME, BURN_IN, DT = 32, 20.0, 10.0, 1e-3  # analyze's defaults; 128 trajectories
CHUNK = 10  # replicates simulated at once (memory: 10 x 32 x 20,001 states)
# Binomial acceptance for a true coverage of 95%: P(X < 87) = 0.05%, P(X = 100) = 0.6%.
ACCEPT = (87, 99)
# The coverage of this procedure at this size is below 95%, about 93% (279 and 280 of 300
# other replicates), its misses mostly high: the per-trajectory means are skewed (skewness
# -1.5 at 20 time units: orbits that linger near the unstable foci C+- are slow), which
# Student's t ignores. At the default 128 trajectories it is about 95% (94.8%, resampling
# 8,192 trajectories of 20 units). P(X < 87) at 93%: 2.8%.


def test_analyze_intervals_cover_the_lorenz_epr(tmp_path):
    """Over 100 analyze seeds, each 95% interval covers the reference in 87-99 of them.

    Measured here: 96 and 96 of 100, mean of the replicates 24,174 (s.e. 44). It fails on
    starts uniform in the box with 5 time units of burn-in (92 covering, but the mean 2.1%
    low, 8 s.e.: orbits started near the foci C+- spiral out slowly), on every trajectory
    started at the one state z0 without burn-in (72 covering: the trajectories are
    correlated) and on intervals not divided by the square root of the trajectory count (100
    covering). Box starts with the full 10 units of burn-in pass (mean 0.2% low), as do z0
    starts with it: the burn-in makes them stationary and independent.
    """
    lorenz = ddm.make_target("lorenz")
    D = ddm.analysis.diffusion_matrix(lorenz)
    pool = ddm.attractor_points(lorenz, key=jr.key(0), num=4096)
    np.save(tmp_path / "pool.npy", np.asarray(pool))
    starts, keys = [], []
    for seed in range(REPLICATES):  # as analyze_run(seed=seed) splits its key
        k_start, k_burn, k_sim, _, _ = jr.split(jr.key(seed), 5)
        z0s, source = _starts(tmp_path, lorenz, TRAJECTORIES, k_start)
        assert source == "pool.npy"
        starts.append(z0s)
        keys.append(jnp.stack([jr.key_data(k_burn), jr.key_data(k_sim)]))  # raw: sliced below
    starts, keys = jnp.stack(starts), jnp.stack(keys)
    thin = max(1, int(round(0.01 / DT)))

    @jax.jit
    @jax.vmap
    def replicate(z0s, keys):
        k_burn, k_sim = jr.wrap_key_data(keys[0]), jr.wrap_key_data(keys[1])
        if BURN_IN > 0:
            burn = ddm.simulate_target(lorenz, z0s, key=k_burn, t1=BURN_IN, dt=DT,
                                       save_dt=BURN_IN)  # fmt: skip
            z0s = burn.zs[:, -1]
        zs = ddm.simulate_target(lorenz, z0s, key=k_sim, t1=TIME, dt=DT).zs
        est = _estimates(lorenz.f, D, zs, DT, thin)
        return {name: (e["low"], e["value"], e["high"]) for name, e in est.items()}

    chunks = [
        replicate(starts[i : i + CHUNK], keys[i : i + CHUNK]) for i in range(0, REPLICATES, CHUNK)
    ]
    for name in ("samples", "trajectories"):
        low, value, high = (np.concatenate([c[name][j] for c in chunks]) for j in range(3))
        covered = int(np.sum((low <= LORENZ_EPR) & (LORENZ_EPR <= high)))
        assert ACCEPT[0] <= covered <= ACCEPT[1], (name, covered, value.mean())
        # the mean over replicates (3,200 trajectories of 20 time units): within 3 s.e.
        stderr = np.hypot(value.std(ddof=1) / np.sqrt(REPLICATES), LORENZ_EPR_STDERR)
        assert abs(value.mean() - LORENZ_EPR) < 3 * stderr, (name, value.mean(), stderr)


def reference(dt=1e-3, trajectories=8192, time=50.0, burn_in=20.0, seed=0, chunk=1000):
    """The reference EPR of Lorenz with its standard error, float64 Euler-Maruyama (minutes).

    Independent of the library's simulation: both estimators are accumulated along the way,
    per trajectory; the standard error is the spread of the per-trajectory means.
    """
    from functools import partial

    jax.config.update("jax_enable_x64", True)
    sigma, rho, beta = 10.0, 28.0, 8 / 3

    def f(z):
        x, y, w = z[..., 0], z[..., 1], z[..., 2]
        return jnp.stack([sigma * (y - x), x * (rho - w) - y, x * y - beta * w], -1)

    @partial(jax.jit, static_argnums=2)
    def steps(z, key, accumulate):
        def body(carry, k):
            z, a_s, a_t = carry
            z1 = z + f(z) * dt + jnp.sqrt(dt) * jr.normal(k, z.shape, jnp.float64)  # D = I / 2
            if accumulate:  # f^T D^-1 f + div f, and f(mid)^T D^-1 dz / dt
                a_s = a_s + 2 * jnp.sum(f(z) ** 2, -1) - (sigma + 1 + beta)
                a_t = a_t + 2 * jnp.sum(f((z + z1) / 2) * (z1 - z), -1) / dt
            return (z1, a_s, a_t), None

        zero = jnp.zeros(z.shape[0])
        return jax.lax.scan(body, (z, zero, zero), jr.split(key, chunk))[0]

    k0, key = jr.split(jr.key(seed))
    z = jnp.array([1.0, 1.0, 20.0]) + 5.0 * jr.normal(k0, (trajectories, 3), jnp.float64)
    for i in range(round(burn_in / dt) // chunk):
        z = steps(z, jr.fold_in(key, i), False)[0]
    n = round(time / dt) // chunk
    sums = np.zeros((2, trajectories))
    for i in range(n):
        z, a_s, a_t = steps(z, jr.fold_in(key, 10**6 + i), True)
        sums += np.asarray([a_s, a_t])
    means = sums / (n * chunk)
    return means.mean(1), means.std(1, ddof=1) / np.sqrt(trajectories)


if __name__ == "__main__":
    (samples, trajectories), (se_samples, se_trajectories) = reference()
    print(f"samples {samples:.1f} +- {se_samples:.1f}, trajectories {trajectories:.1f}")
