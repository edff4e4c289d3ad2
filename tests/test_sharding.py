"""Ensembles and seed sweeps sharded over several (host) devices: the numbers of one device."""

import json
import os
import subprocess
import sys

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from ddm_jax.simulation._integrate import shard_batch

# Runs in a fresh process, since the device count is fixed when JAX starts.
SCRIPT = """
import json, jax, jax.random as jr, numpy as np, ddm_jax as ddm
target = ddm.make_target("lorenz")
model = ddm.init_network(target, 32, key=jr.key(0))
z0s = ddm.simulation.sample_box(jr.key(1), target, 8)
grid = dict(t1=0.5, dt=1e-3, save_dt=0.1)
out = {"devices": jax.device_count()}
for method in ("scan", "diffeqsolve"):
    run = ddm.simulate_network(model, z0s, key=jr.key(2), method=method, **grid)
    out[method] = np.asarray(run.zs).tolist()
    out[method + "_residual"] = run.residual
    out[method + "_shards"] = len(run.zs.sharding.device_set)
tgt = ddm.simulate_target(target, z0s, key=jr.key(3), **grid)
out["target"] = np.asarray(tgt.zs).tolist()
out["target_shards"] = len(tgt.zs.sharding.device_set)
uneven = ddm.simulate_network(model, z0s[:6], key=jr.key(2), **grid)  # 6 = 4 x 1.5: one device
out["uneven"] = np.asarray(uneven.zs).tolist()
out["uneven_shards"] = len(uneven.zs.sharding.device_set)
devices_seen = []
config = ddm.TrainConfig(steps=100, batch=64, chunk=50, remedy_rounds=0)
sweep = ddm.fit_seeds(ddm.make_target("vdp"), 16, seeds=[0, 1, 2, 3], config=config,
                      on_chunk=lambda s, _: devices_seen.append(len(s.step.sharding.device_set)))
out["sweep"] = [np.asarray(r.model.W_s).tolist() for r in sweep]
out["sweep_losses"] = [r.losses.tolist() for r in sweep]
out["sweep_devices"] = devices_seen
print(json.dumps(out))
"""


def _start(devices: int) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_sharded_ensemble_matches_single_device():
    one, four = map(_result, [_start(1), _start(4)])  # side by side
    assert one["devices"] == 1
    assert four["devices"] == 4
    for name in ("scan", "diffeqsolve", "target"):
        assert one[f"{name}_shards"] == 1
        assert four[f"{name}_shards"] == 4  # the ensemble really was spread over the devices
    # trajectory i uses key i wherever it runs, so sharding changes no trajectory beyond
    # rounding: the per-device batch is 2 rather than 8, and XLA may pick other kernels for
    # other shapes (bitwise on some CPUs, last digits on others). A key mix-up would differ
    # by O(1), far outside these tolerances.
    np.testing.assert_allclose(four["scan"], one["scan"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(four["target"], one["target"], rtol=1e-5, atol=1e-5)
    # the residual measures float32 rounding itself (5.19e-7 against 5.24e-7 measured on
    # one CPU), reduced over the ensemble in another order: the same order of magnitude
    assert max(one["scan_residual"], four["scan_residual"]) < 1e-5
    assert 0.5 < four["scan_residual"] / one["scan_residual"] < 2
    # diffeqsolve's compiled loop rounds differently with 2 rather than 8 trajectories per
    # device (measured: also on one device, ~4e-6 after 500 chaotic Lorenz steps)
    np.testing.assert_allclose(four["diffeqsolve"], one["diffeqsolve"], rtol=1e-5, atol=1e-5)
    # a batch that does not divide over the devices stays on one: the same program on the
    # same shapes as in the one-device process, so the same bits
    assert four["uneven_shards"] == 1
    np.testing.assert_array_equal(four["uneven"], one["uneven"])
    np.testing.assert_allclose(one["uneven"], np.asarray(one["scan"])[:6], rtol=1e-5, atol=1e-5)
    # a seed sweep trains one network per device, with the numbers of one device
    assert one["sweep_devices"] == [1, 1]
    assert four["sweep_devices"] == [4, 4]
    np.testing.assert_allclose(four["sweep"], one["sweep"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(four["sweep_losses"], one["sweep_losses"], rtol=1e-5)


def test_shard_batch_is_a_no_op_on_one_device():
    x, keys = jnp.ones((8, 3)), jr.split(jr.key(0), 8)
    y, k = shard_batch((x, keys))  # the test process sees one CPU device
    assert y is x
    assert k is keys


def test_shard_batch_rejects_mismatched_batches():
    with pytest.raises(ValueError, match="Expected every array to share the batch size 8"):
        shard_batch((jnp.ones((8, 3)), jnp.ones((4, 3))))
