"""The low-rank network and its latent read-out.

``tau dx = (-x + Gamma W_s tanh(x) + b) dt + Sigma dW`` keeps the subspace ``x = Gamma v + b``
invariant; on it ``dv/dt = -v + W_s tanh(Gamma v + b)``.
"""

from ._network import (
    LowRankRNN as LowRankRNN,
    init_network as init_network,
    off_subspace_residual as off_subspace_residual,
    private_noise_drift_bias as private_noise_drift_bias,
)
