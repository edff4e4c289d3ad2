"""Tolerance helpers shared by the tests."""

import numpy as np


def rel_err(a, b) -> float:
    """Relative Frobenius error ||a - b|| / ||b||."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def cov_standard_error(cov: np.ndarray, num: int) -> np.ndarray:
    """Standard error of the entries of a sample covariance of ``num`` Gaussian samples."""
    var = np.outer(np.diag(cov), np.diag(cov)) + cov**2
    return np.sqrt(var / num)
