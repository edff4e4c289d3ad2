"""Dynamical-systems reconstruction measures: state-space divergence and spectral distance.

The two measures the reconstruction literature reports beside one-step errors (Koppe et al.,
PLoS Comput. Biol. 15, e1007263, 2019; Brenner et al., ICML 2022; Hess et al., ICML 2023):

- `state_space_divergence` ``D_stsp``: the Kullback-Leibler divergence ``KL(p_true || p_gen)``
  between the occupancy of state space by the true and by the generated trajectories. Up to
  5 dimensions both are histograms of ``bins`` (30) bins a dimension over the true data's
  range, every bin count plus a Laplace pseudo-count ``smoothing`` (1e-5) before normalising;
  above 5 dimensions (where a 30^d grid is empty) both densities are Gaussian mixtures with
  one isotropic component per (subsampled) state, of standard deviation ``scale`` times the
  true data's per-dimension spread, and the KL divergence is the Monte Carlo average of
  ``log p_true - log p_gen`` over the true states (a simplification of Koppe et al.'s version,
  which uses the generative model's own posterior covariances).
- `spectral_distance` ``D_H``: per dimension, the Hellinger distance
  ``(1/sqrt 2) ||sqrt(p) - sqrt(q)||`` between the power spectra of the z-scored true and
  generated series (averaged over trajectories, smoothed by a Gaussian kernel of ``smoothing``
  (20) frequency bins, normalised to sum 1), averaged over dimensions (Mikhaeil et al.,
  NeurIPS 2022; Hess et al., ICML 2023). The series must have the same length.

Both take ``(T, d)`` or ``(B, T, d)`` arrays (NaN-free) and return a float; both are 0 for
identical inputs.
"""

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import logsumexp

HISTOGRAM_MAX_DIM = 5


def _flat(x, name: str) -> np.ndarray:
    x = np.asarray(x, float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim not in (2, 3) or not np.all(np.isfinite(x)) or x.size == 0:
        raise ValueError(
            f"Expected {name} as finite (T, d) or (B, T, d) states; got shape {x.shape}"
            f"{'' if np.all(np.isfinite(x)) else ' with non-finite values'}."
        )
    return x.reshape(-1, x.shape[-1])


def state_space_divergence(
    true, generated, *, bins: int = 30, smoothing: float = 1e-5, scale: float = 0.1,
    max_states: int = 4000, seed: int = 0,
) -> float:  # fmt: skip
    """``D_stsp = KL(p_true || p_gen)`` of state-space occupancy (see the module docstring).

    Args:
        true: ``(T, d)`` or ``(B, T, d)`` states of the reference (the recording).
        generated: states of the model, any number, the same d.
        bins: histogram bins per dimension (d <= 5).
        smoothing: Laplace pseudo-count added to every bin (d <= 5).
        scale: mixture component width over the per-dimension spread (d > 5).
        max_states: states per mixture (evenly strided; d > 5).
        seed: unused by the histogram; kept for a reproducible subsample in the mixture.
    """
    x, y = _flat(true, "true"), _flat(generated, "generated")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"Expected the same dimension; got {x.shape[1]} and {y.shape[1]}.")
    d = x.shape[1]
    if d <= HISTOGRAM_MAX_DIM:
        low, high = x.min(0), x.max(0)
        high = np.where(high > low, high, low + 1.0)
        edges = [np.linspace(lo, hi, bins + 1) for lo, hi in zip(low, high, strict=True)]

        def density(pts):
            inside = np.all((pts >= low) & (pts <= high), axis=1)
            counts, _ = np.histogramdd(pts[inside], bins=edges)
            counts = counts.ravel() + smoothing
            return counts / counts.sum()

        p, q = density(x), density(y)
        return float(np.sum(p * (np.log(p) - np.log(q))))
    sd = np.maximum(x.std(0), 1e-12)
    xs, ys = x / sd, y / sd
    xs, ys = xs[:: max(1, len(xs) // max_states)], ys[:: max(1, len(ys) // max_states)]

    def log_mix(points, centres):
        out = np.empty(len(points))
        for i in range(0, len(points), 512):
            d2 = np.sum((points[i : i + 512, None] - centres[None]) ** 2, -1)
            out[i : i + 512] = logsumexp(-d2 / (2 * scale**2), axis=1) - np.log(len(centres))
        return out

    return float(np.mean(log_mix(xs, xs) - log_mix(xs, ys)))


def _spectrum(x: np.ndarray, smoothing: float) -> np.ndarray:
    """``(B, T)`` -> the trajectory-averaged power spectrum of the z-scored series, smoothed."""
    sd = x.std(axis=1, keepdims=True)
    z = (x - x.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)
    power = np.mean(np.abs(np.fft.rfft(z, axis=1)) ** 2, axis=0)
    if smoothing > 0:
        power = gaussian_filter1d(power, smoothing, mode="nearest")
    return power / power.sum()


def spectral_distance(true, generated, *, smoothing: float = 20.0) -> float:
    """``D_H``: Hellinger distance of smoothed power spectra, averaged over dimensions.

    Args:
        true: ``(T, d)`` or ``(B, T, d)`` reference series.
        generated: model series of the same length T and dimension d (B may differ).
        smoothing: standard deviation of the Gaussian kernel, in frequency bins.
    """
    x, y = np.asarray(true, float), np.asarray(generated, float)
    x, y = (a[None] if a.ndim == 2 else a for a in (x, y))
    _flat(x, "true"), _flat(y, "generated")
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(
            f"Expected series of equal length and dimension; got (T, d) = {x.shape[1:]} and "
            f"{y.shape[1:]}."
        )
    dists = []
    for i in range(x.shape[2]):
        p, q = _spectrum(x[..., i], smoothing), _spectrum(y[..., i], smoothing)
        dists.append(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2) / 2))
    return float(np.mean(dists))


def one_step_r2(observed_next, predicted_next) -> np.ndarray:
    """Per-neuron ``R^2 = 1 - mean (x - xhat)^2 / var(x)`` of one-step predictions ``(M, N)``."""
    x, xhat = np.asarray(observed_next, float), np.asarray(predicted_next, float)
    var = x.var(axis=0)
    return 1 - np.mean((x - xhat) ** 2, axis=0) / np.where(var > 0, var, np.nan)
