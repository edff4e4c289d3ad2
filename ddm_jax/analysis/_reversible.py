"""The network's reversible/irreversible split ``W_s = W_rev + W_irr`` on its fixed hidden layer.

``f = f_rev + f_irr`` with ``f_rev = D grad log p`` (constant D): the read-out that gives the
drift ``f_rev`` is found by linear least squares on the hidden layer ``h = phi(Gamma v + b)``,
since ``f_rev = S (-v + W_rev h) / tau`` is linear in ``W_rev``. The score ``grad log p``
comes from one of two estimators:

* ``"grid"`` (k = 2): the network's own stationary density from a finite-volume
  Fokker-Planck solve (`stationary_density`) on a box around the samples, then the
  least-squares fit of ``D grad log p`` weighted by p. No sampling noise: the samples only
  set the box.
* ``"score_matching"`` (any k): Hyvarinen's objective ``E_p[|s|^2 / 2 + div s]`` over the
  samples, quadratic in ``W_rev``, so its minimiser solves normal equations.

What limits the split (measured on the trained VDP-64 network of benchmarks/analysis.py):

* the fixed hidden layer, trained for f and not for the score: the best p-weighted fit of the
  grid's ``f_rev`` leaves a 24% relative error (f itself is fitted to 0.3%). Unconstrained,
  its error along the cycle, where ``f_irr`` is large, leaves ``E_p[f_irr . grad log p]`` at
  20% of its scale; the grid fit therefore imposes it (`_constrained_fit`).
* the conditioning: the normal equations span many decades, so without a ridge the read-out
  has entries of 10^4 (10^35 on cycling_wells-64) and the reversible sub-network's far field
  pushes mass out of the sampled region (its grid density ends at the box edge). The ridge
  is chosen per network: by the larger of the total variation and the covariance error
  between the reversible sub-network's grid density and the network's (``"grid"``), or by
  the score-matching objective over 5 held-out folds (``"score_matching"``). A fixed ridge
  fails: 1e-6 (the former default) let the VDP-64 reversible density escape.
* sampling: score matching on 192,000 simulated states (64 trajectories x 30 time units, an
  effective sample size of the trajectories' decorrelation) reaches a reversible density
  10% of the spread from the network's at best; the grid has no sampling noise.
* the grid's crosswind error, of order h^1.6 in the cell size h (see `reversible_split`).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from jaxtyping import Array, Float

from .._custom_types import LatentVec
from ..network import LowRankRNN
from ._fokker_planck import stationary_density, total_variation, whitened_box
from ._irreversibility import diffusion_matrix

GRID_RIDGES = (1e-12, 1e-11, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6)
SM_RIDGES = (1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3)
METHODS = ("auto", "grid", "score_matching")


class ReversibleSplit(eqx.Module):
    """``W_s = W_rev + W_irr`` on a network's fixed hidden layer ``h(v) = phi(Gamma v + b)``.

    In target coordinates ``z = c + S v`` the latent drift is
    ``f = S (-v + W_s h(v)) / tau = f_rev + f_irr`` with ``f_rev = S (-v + W_rev h) / tau``
    (the leak belongs to it) ``= D grad log p`` and ``f_irr = S W_irr h / tau``.

    Attributes:
        model: the full network.
        W_rev: ``(k, n)`` reversible read-out.
        W_irr: ``(k, n)`` irreversible read-out, ``W_s - W_rev``.
        D: ``(k, k)`` diffusion matrix in target coordinates.
        ridge: the ridge used (relative to the mean eigenvalue of the feature Gram matrix).
    """

    model: LowRankRNN
    W_rev: Float[Array, "k n"]
    W_irr: Float[Array, "k n"]
    D: Float[Array, "k k"]
    ridge: float = eqx.field(static=True, default=0.0)

    @property
    def reversible(self) -> LowRankRNN:
        """The reversible sub-network ``-x + Gamma W_rev phi(x) + b`` (same noise)."""
        return eqx.tree_at(lambda m: m.W_s, self.model, self.W_rev)

    def _hidden(self, z):
        v = (z - self.model.centre) / self.model.scale
        return v, self.model.phi(self.model.Gamma @ v + self.model.b)

    def f_rev(self, z: LatentVec) -> LatentVec:
        """The reversible drift ``D grad log p`` at z (target coordinates)."""
        v, h = self._hidden(z)
        return self.model.scale * (-v + self.W_rev @ h) / self.model.tau

    def f_irr(self, z: LatentVec) -> LatentVec:
        """The irreversible drift ``J / p`` at z (target coordinates)."""
        _, h = self._hidden(z)
        return self.model.scale * (self.W_irr @ h) / self.model.tau

    def score(self, z: LatentVec) -> LatentVec:
        """The implied score ``grad log p = D^-1 f_rev``."""
        return jnp.linalg.solve(self.D, self.f_rev(z))


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _features(model: LowRankRNN, zs):
    """``v``, ``h = phi(Gamma v + b)`` and ``phi'`` at the states, float64."""
    vs = (_f64(zs) - _f64(model.centre)) / _f64(model.scale)
    pre = vs @ _f64(model.Gamma).T + _f64(model.b)
    h = np.asarray(model.phi(jnp.asarray(pre)), dtype=np.float64)
    slope = jax.vmap(jax.grad(model.phi))(jnp.asarray(pre.ravel()))
    return vs, h, np.asarray(slope, dtype=np.float64).reshape(pre.shape)


def _ridged(gram, ridge: float):
    return gram + ridge * np.trace(gram) / gram.shape[0] * np.eye(gram.shape[0])


def _make(model, W_rev, D, ridge) -> ReversibleSplit:
    W_rev = jnp.asarray(W_rev, dtype=model.W_s.dtype)
    return ReversibleSplit(model, W_rev, model.W_s - W_rev, D, float(ridge))


# ---------------------------------------------------------------- score matching


class _Moments(eqx.Module):
    """Sums over a block of samples: ``h h^T``, ``v h^T``, ``v v^T``, ``E[dh/dv]`` and N."""

    hh: np.ndarray
    vh: np.ndarray
    vv: np.ndarray
    dh: np.ndarray
    num: int

    def __add__(self, other):
        return _Moments(*(a + b for a, b in zip(self._parts(), other._parts(), strict=True)))

    def __sub__(self, other):
        return _Moments(*(a - b for a, b in zip(self._parts(), other._parts(), strict=True)))

    def _parts(self):
        return self.hh, self.vh, self.vv, self.dh, self.num


def _moments(model, zs) -> _Moments:
    vs, h, slope = _features(model, zs)
    dh = slope.sum(axis=0)[:, None] * _f64(model.Gamma)  # sum dh/dv, (n, k)
    return _Moments(h.T @ h, vs.T @ h, vs.T @ vs, dh, len(zs))


def _score_matching_solve(m: _Moments, metric_inv, tau: float, ridge: float):
    """Minimiser of ``E[g^T M g / 2 + div_v g]``, ``g = (-v + W h) / tau``, ``M = S D^-1 S``."""
    rhs = m.vh / m.num - tau * metric_inv @ m.dh.T / m.num
    return np.linalg.solve(_ridged(m.hh / m.num, ridge), rhs.T).T  # the Gram is symmetric


def _score_matching_loss(W, m: _Moments, metric, tau: float) -> float:
    quad = np.trace(metric @ (W @ m.hh @ W.T - 2 * W @ m.vh.T + m.vv)) / (2 * tau**2)
    div = (np.sum(W * m.dh.T) - W.shape[0] * m.num) / tau
    return float((quad + div) / m.num)


def _split_by_score_matching(model, samples, D, ridge, held: int = 5):
    scale, tau = _f64(model.scale), float(model.tau)
    metric_inv = _f64(D) / scale[:, None] / scale[None, :]
    if ridge is not None:
        m = _moments(model, samples)
        return _make(model, _score_matching_solve(m, metric_inv, tau, ridge), D, ridge)
    # K-fold over contiguous blocks (whole trajectories when the samples are stacked
    # trajectory by trajectory): each fold is scored by a fit that did not see it
    folds = [
        _moments(model, samples[part]) for part in np.array_split(np.arange(len(samples)), held)
    ]
    total = sum(folds[1:], folds[0])
    metric = np.linalg.inv(metric_inv)

    def held_out(r):
        return sum(
            _score_matching_loss(
                _score_matching_solve(total - fold, metric_inv, tau, r), fold, metric, tau
            )
            for fold in folds
        )

    best = min(SM_RIDGES, key=held_out)
    return _make(model, _score_matching_solve(total, metric_inv, tau, best), D, best)


# ---------------------------------------------------------------- grid (k = 2)


def _constrained_fit(model, net, D, f, ridge: float):
    """The p-weighted fit of ``D grad log p`` with ``E_p[f_irr . D^-1 f_rev] = 0`` imposed.

    ``f_rev = a + Phi w`` (``a = -S v / tau`` the leak, ``w = vec W_rev``): the objective
    ``(w - w*)^T K (w - w*)`` has ``K = (S D^-1 S / tau^2) (x) E_p[h h^T]`` and the constraint
    ``g(w) = E_p[(f - a - Phi w)^T D^-1 (a + Phi w)] = c0 + c1^T w - w^T K w`` is quadratic
    with the same K, so the Lagrange condition gives ``w(lam) = ((1 - lam) K + R)^-1
    (b - lam c1 / 2)`` and a scalar root ``g(w(lam)) = 0`` (lam ~ 0.003 on VDP-64). Without
    it the identity fails by 20% of its scale on VDP-64 (the hidden layer's error along the
    cycle, where ``f_irr`` is large); with it the density moves by 0.2% in total variation.
    Falls back to the unconstrained fit where no root lies in ``[-0.5, 0.5]``.
    """
    scale, tau = _f64(model.scale), float(model.tau)
    vs, h, _ = _features(model, net.centres)
    p, Dinv, k, n = net.p, np.linalg.inv(_f64(D)), model.k, h.shape[1]
    lead = scale[:, None] * Dinv * scale[None, :] / tau**2
    gram = (h * p[:, None]).T @ h
    K = np.kron(lead, gram)
    reg = np.kron(np.diag(np.diag(lead)), ridge * np.trace(gram) / n * np.eye(n))
    a = -scale * vs / tau
    moment = lambda x: (scale[:, None] / tau) * (Dinv @ ((x * p[:, None]).T @ h))
    b, c1 = moment(net.f_rev - a).ravel(), moment(f - 2 * a).ravel()
    c0 = float(np.sum(p * np.einsum("ni,ij,nj->n", f - a, Dinv, a)))
    w_of = lambda lam: np.linalg.solve((1 - lam) * K + reg, b - lam * c1 / 2)
    g_of = lambda lam: (lambda w: c0 + c1 @ w - w @ K @ w)(w_of(lam))
    try:
        lam = scipy.optimize.brentq(g_of, -0.5, 0.5, xtol=1e-12)
    except ValueError:
        lam = 0.0
    return w_of(lam).reshape(k, n)


def _covariance_error(density, ref) -> float:
    """Relative (Frobenius) error of the covariance: it sees mass leaking to the box edge."""
    cov = lambda d: np.cov(d.centres.T, aweights=d.p, bias=True)
    return float(np.linalg.norm(cov(density) - cov(ref)) / np.linalg.norm(cov(ref)))


def _split_on_grid(model, samples, D, ridge, num: int):
    box = whitened_box(samples, D)
    dtype = model.W_s.dtype
    net = stationary_density(model.target_drift, D, *box, num=num, dtype=dtype)
    f = np.asarray(jax.vmap(model.target_drift)(jnp.asarray(net.centres, dtype)), np.float64)
    solve = lambda r: _make(model, _constrained_fit(model, net, D, f, r), D, r)
    if ridge is not None:
        return solve(ridge)

    def distance(split):
        rev = stationary_density(split.f_rev, D, *box, num=num, dtype=dtype)
        gap = max(total_variation(rev.p, net.p), _covariance_error(rev, net))
        return gap if np.isfinite(gap) else np.inf

    return min((solve(r) for r in GRID_RIDGES), key=distance)


def reversible_split(
    model: LowRankRNN,
    samples: Float[Array, "N k"] | Float[np.ndarray, "N k"],
    *,
    ridge: float | None = None,
    method: str = "auto",
    grid: int = 400,
) -> ReversibleSplit:
    """Split the read-out ``W_s = W_rev + W_irr`` by linear least squares on the hidden layer.

    The reversible read-out makes ``S (-v + W_rev h(v)) / tau`` the best fit of
    ``D grad log p`` (p the network's stationary density) on the fixed hidden layer; then
    ``f_irr = f - f_rev``. See the module for the two score estimators and what limits them.
    Score matching: ``W_rev = (E[v h^T] - tau S^-1 D S^-1 E[dh/dv^T]) (E[h h^T] + r I)^-1``
    (Hyvarinen's objective ``E_p[|s|^2 / 2 + div s]`` is minimised by the true score with no
    need to know p); grid: ``W_rev = E_p[(tau S^-1 f_rev + v) h^T] (E_p[h h^T] + r I)^-1``
    over the cells of a Fokker-Planck solve, with ``E_p[f_irr . grad log p] = 0`` imposed
    (see `_constrained_fit`). Both in float64.

    Args:
        model: a network with additive noise and no private noise.
        samples: ``(N, k)`` stationary states of the network in target coordinates, stacked
            trajectory by trajectory (the grid method uses them for its box only).
        ridge: Tikhonov regularisation ``r`` relative to the mean eigenvalue of ``E[h h^T]``;
            None (default) chooses it per network among `GRID_RIDGES` by the larger of the
            total variation between the reversible sub-network's grid density and the
            network's and the relative error of its covariance (which sees mass that leaks
            to the box edge, where total variation hardly does), or among
            `SM_RIDGES` by the score-matching objective over 5 held-out folds.
        method: ``"grid"`` (k = 2 only), ``"score_matching"``, or ``"auto"``: grid for k = 2.
        grid: cells per axis of the Fokker-Planck grid (about 5 s per solve at 400 on a
            2-core CPU; choosing the ridge takes one solve per candidate). The grid's
            crosswind error shows in ``E_p[f_irr . grad log p]``, which is 0 exactly: for the
            grid's own score on VDP-64 it is 0.30, 0.125, 0.066 and 0.040 (against a scale
            ``E_p[f_rev . grad log p]`` of 1.1) at 100, 200, 300 and 400 cells.

    Raises:
        ValueError: for state-dependent or private noise (see `diffusion_matrix`), bad
            samples, a negative ridge, an unknown method or the grid method with k != 2.
    """
    D = diffusion_matrix(model)
    samples = np.asarray(samples)
    if samples.ndim != 2 or samples.shape[1] != model.k or samples.shape[0] < 2:
        raise ValueError(
            f"Expected stationary samples of shape (N, {model.k}), N >= 2; got {samples.shape}."
        )
    if ridge is not None and not ridge >= 0:
        raise ValueError(f"Expected ridge >= 0 (or None to choose it); got {ridge}.")
    if method not in METHODS:
        raise ValueError(f"Expected method in {METHODS}; got {method!r}.")
    if method == "grid" and model.k != 2:
        raise ValueError(f"Expected a planar network (k = 2) for method 'grid'; got k={model.k}.")
    if method == "grid" or (method == "auto" and model.k == 2):
        return _split_on_grid(model, samples, D, ridge, grid)
    if ridge is None and samples.shape[0] < 20:
        raise ValueError(
            f"Expected at least 20 samples to choose the ridge; got {samples.shape[0]}."
        )
    return _split_by_score_matching(model, samples, D, ridge)
