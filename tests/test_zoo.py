"""The dysts zoo: translated flows, their boxes and noise, refusals, and dysts:Name runs."""

import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import ddm_jax as ddm

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # dysts warns when numba is missing
    dysts_flows = pytest.importorskip("dysts.flows")
from scipy.integrate import solve_ivp  # noqa: E402

from ddm_jax.runs._target_spec import target_spec  # noqa: E402
from ddm_jax.targets import DystsError, from_dysts  # noqa: E402
from ddm_jax.targets._dysts import NOISE as NOISE_PER_PERIOD  # noqa: E402
from ddm_jax.targets._dysts_phases import KAPPA  # noqa: E402

# one flow of each form: _rhs with sorted parameters; the class's own rhs with a heaviside;
# an rhs calling another method (Hopfield's self.f); a max(0, x) (BelousovZhabotinsky); an rhs
# that fills np.zeros_like(X) in place (Lorenz96)
FORMS = ["Halvorsen", "AnishchenkoAstakhov", "Hopfield", "BelousovZhabotinsky", "Lorenz96"]


@pytest.fixture(scope="module")
def targets():
    return {name: from_dysts(name) for name in FORMS}


def dysts_run(name, z0, periods=20):
    system = getattr(dysts_flows, name)()
    sol = solve_ivp(lambda t, z: system.rhs(z, t), (0, periods * system.period), np.asarray(z0),
                    method="LSODA", rtol=1e-9, atol=1e-9, dense_output=True)  # fmt: skip
    return system, sol.sol(np.linspace(0, periods * system.period, 4000)).T


@pytest.mark.parametrize("name", FORMS)
def test_translation_matches_dysts_rhs(targets, name):
    target = targets[name]
    system = getattr(dysts_flows, name)()
    u = np.asarray(jr.uniform(jr.key(0), (6, target.dim)))
    points = np.asarray(target.box_low) + u * np.asarray(target.scale * 2)
    for z in [*points, np.asarray(target.z0)]:
        want = np.asarray(system.rhs(z.astype(float), 0.0), dtype=float) * system.period
        got = np.asarray(target.f(jnp.asarray(z)))
        assert np.allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max()), (name, z)


def test_box_holds_a_deterministic_trajectory_and_noise_is_as_stated(targets):
    target = targets["Halvorsen"]
    system, zs = dysts_run("Halvorsen", target.z0)  # dysts's own rhs, scipy's integrator
    assert np.all(zs >= np.asarray(target.box_low))
    assert np.all(zs <= np.asarray(target.box_high))
    # the box is tight: the run's range, enlarged 15% of the range on each side
    span = zs.max(0) - zs.min(0)
    assert np.all(np.asarray(target.scale) * 2 < 1.3 * span * 1.1)
    # G = 0.02 diag(spread) per square root of a period (the target's time unit)
    g = np.asarray(target.g(target.z0))
    assert target.additive
    assert np.allclose(g, np.diag(np.diag(g)))
    assert np.allclose(np.diag(g), NOISE_PER_PERIOD * zs.std(0), rtol=0.15)
    assert target.attractor == "chaotic"
    assert target.lyapunov is None


def test_native_time_unit_keeps_dysts_time():
    target = from_dysts("Rucklidge", time_unit="native")
    system = dysts_flows.Rucklidge()
    z = target.z0
    assert np.allclose(target.f(z), system.rhs(np.asarray(z, float), 0.0), rtol=1e-4, atol=1e-5)
    per_period = from_dysts("Rucklidge")
    # the same noise over one period, in either time unit
    ratio = np.diag(target.g(z)) ** 2 * system.period / np.diag(per_period.g(z)) ** 2
    assert np.allclose(ratio, 1, rtol=0.1)  # two chaotic runs: spreads agree to a few %


@pytest.mark.parametrize(
    ("name", "options", "why"),
    [("MackeyGlass", {}, "delay equation"),
     ("Torus", {}, "depends on time"),
     ("ForcedVanDerPol", {"phases": "refuse"},
      r"coordinates \[2\] grow without bound \(phases or angles\): no box holds them"),
     ("BickleyJet", {}, "coordinate 1 grows without bound and the right-hand side is not "
      "periodic in it"),
     ("Lorenz97", {}, "no continuous flow 'Lorenz97' .*Lorenz96")],
)  # fmt: skip
def test_untranslatable_flow_says_why_in_one_line(name, options, why):
    with pytest.raises(DystsError, match=why) as info:
        from_dysts(name, **options)
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def forced_van_der_pol():
    return from_dysts("ForcedVanDerPol"), dysts_flows.ForcedVanDerPol()


def on_circle(target, num, radius=1.0):
    """Points of the box whose (c, s) pair sits at ``radius``: angles spread round it."""
    u = np.asarray(jr.uniform(jr.key(3), (num, target.dim)))
    z = np.asarray(target.box_low) + u * np.asarray(target.scale * 2)
    angle = np.linspace(-np.pi, np.pi, num, endpoint=False) + 0.1
    z[:, 2], z[:, 3] = radius * np.cos(angle), radius * np.sin(angle)
    return z, angle


def test_a_phase_becomes_a_cos_sin_pair_turning_as_dysts_says(forced_van_der_pol):
    target, system = forced_van_der_pol
    assert target.dim == 4  # (x, y, phase) -> (x, y, cos phase, sin phase)
    assert target.coordinates == ("x0", "x1", "cos(x2)", "sin(x2)")
    assert np.isclose(np.hypot(*np.asarray(target.z0)[2:]), 1.0, atol=1e-6)
    assert np.allclose(target.box_low[2:], -1.3, atol=1e-3)  # the circle, enlarged 15%
    z, angle = on_circle(target, 8)
    for point, theta in zip(z, angle, strict=True):
        want = np.asarray(system.rhs(np.array([*point[:2], theta]), 0.0)) * system.period
        got = np.asarray(target.f(jnp.asarray(point)))
        tol = 1e-4 * np.abs(want).max()
        assert np.allclose(got[:2], want[:2], rtol=1e-4, atol=tol)  # period * f
        # d/dt (c, s) = w (-s, c), w the phase's rate in radians per period
        assert np.allclose(got[2:], want[2] * np.array([-point[3], point[2]]), rtol=1e-4, atol=tol)


def test_the_phase_circle_attracts(forced_van_der_pol):
    target, _ = forced_van_der_pol
    for radius in (0.7, 1.3):
        z, _ = on_circle(target, 8, radius)
        f = np.asarray(jax.vmap(target.f)(jnp.asarray(z)))
        inward = -(z[:, 2] * f[:, 2] + z[:, 3] * f[:, 3]) / radius  # -dr/dt
        # dr/dt = kappa r (1 - r^2), kappa one per period (the target's time unit)
        assert np.allclose(-inward, KAPPA * radius * (1 - radius**2), rtol=1e-4)
        assert np.all(inward > 0) if radius > 1 else np.all(inward < 0)


def test_a_clock_with_a_named_period_becomes_a_pair_too():
    target = from_dysts("LidDrivenCavityFlow")  # its clock drives a protocol of period tau
    assert target.coordinates[2:] == ("cos(2pi x2/1.1)", "sin(2pi x2/1.1)")
    assert target_spec("dysts:SprottB", None)["params"] == {}  # no phase: nothing to keep


def test_small_basin_pool_starts_adapt():
    """GenesioTesi escapes from z0 +- 0.5 box half-widths: the starts shrink towards z0."""
    target = from_dysts("GenesioTesi")
    pts = ddm.attractor_points(target, key=jr.key(0), num=2048, trajectories=16, burn_in=1.0)
    assert np.all(np.isfinite(pts))
    assert np.all(np.abs(pts - target.centre) <= 1.5 * target.scale)


def test_dysts_target_through_the_run_layer_round_trips(tmp_path):
    out = tmp_path / "run"
    settings = dict(
        neurons=8, steps=20, batch=32, chunk=10, sampler="box", noise_steps=1, remedy_rounds=0
    )
    trained = ddm.runs.train_run("dysts:Duffing", out, **settings)  # a flow with a phase
    spec = trained.config["settings"]["target"]
    assert spec == {"kind": "dysts", "name": "dysts:Duffing", "params": {"phases": "circle"}}
    assert trained.config["target"]["coordinates"] == ["x0", "x1", "cos(x2)", "sin(x2)"]
    run = ddm.runs.load_run(out)
    assert run.target.name == "dysts-Duffing"
    assert run.target.coordinates == trained.target.coordinates
    assert np.array_equal(run.target.box_low, trained.target.box_low)
    assert np.array_equal(run.target.z0, trained.target.z0)
    with pytest.raises(ddm.runs.RunError, match="delay equation"):
        ddm.runs.train_run("dysts:MackeyGlass", tmp_path / "other", **settings)
    assert not (tmp_path / "other").exists()


def test_importing_ddm_jax_does_not_import_dysts():
    code = "import sys, ddm_jax, ddm_jax.targets; sys.exit('dysts' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
