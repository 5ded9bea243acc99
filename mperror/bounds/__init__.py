"""Rounding-error bounds, each carrying its theorem (see theory/ for the notes and proofs).

* :mod:`mperror.bounds.classic`: ``gamma_n`` and the probabilistic ``gamma~_n(lambda)``;
  recursive, pairwise and blocked summation, dot products, matrix products and block-FMA
  (tensor-core) products (theory/T-gamma.md, theory/T-prob.md).
* :mod:`mperror.bounds.gd`: Theorem 1 of Hayford et al. (2024), the critical gradient norm,
  a trace checker, and exact lost-update prediction (theory/T1-gd-mixed-precision.md,
  theory/T-lost-update.md).
* :mod:`mperror.bounds.fft` and :mod:`mperror.bounds.fno`: FFT rounding error and the Fourier
  neural operator bounds (theory/fft-bound.md, theory/fno-bounds.md).
"""

from mperror.bounds._result import BoundResult
from mperror.bounds.classic import (
    EntrywiseBound,
    block_fma_bound,
    block_fma_depth,
    blocked_sum_bound,
    dot_bound,
    dot_bound_probabilistic,
    failure_probability,
    gamma,
    gamma_tilde,
    lambda_for_probability,
    matmul_bound,
    pairwise_sum_bound,
    recursive_sum_bound,
    summation_depth,
)
from mperror.bounds.fft import (
    FFT_ETA_LEADING_CONSTANT,
    default_twiddle_error,
    fft_error_bound,
    fft_eta,
    fft_forward_mode_bound,
    fft_overflows,
    fft_relative_factor,
)
from mperror.bounds.fno import (
    CrossoverResult,
    c_d,
    crossover_resolution,
    discretisation_bound,
    fft_precision_bound,
    fourier_layer_bound,
    input_rounding_bound,
)
from mperror.bounds.gd import (
    CRITICAL_FACTOR,
    CRITICAL_FACTOR_SHARP,
    DescentCheck,
    Regime,
    check_descent,
    cosine_distance_bound,
    critical_gradient_norm,
    descent_bound,
    gradient_perturbation,
    guaranteed_decrease,
    lost_update_probability,
    lost_updates,
)

__all__ = [
    "CRITICAL_FACTOR",
    "CRITICAL_FACTOR_SHARP",
    "FFT_ETA_LEADING_CONSTANT",
    "BoundResult",
    "CrossoverResult",
    "DescentCheck",
    "EntrywiseBound",
    "Regime",
    "block_fma_bound",
    "block_fma_depth",
    "blocked_sum_bound",
    "c_d",
    "check_descent",
    "cosine_distance_bound",
    "critical_gradient_norm",
    "crossover_resolution",
    "default_twiddle_error",
    "descent_bound",
    "discretisation_bound",
    "dot_bound",
    "dot_bound_probabilistic",
    "failure_probability",
    "fft_error_bound",
    "fft_eta",
    "fft_forward_mode_bound",
    "fft_overflows",
    "fft_precision_bound",
    "fft_relative_factor",
    "fourier_layer_bound",
    "gamma",
    "gamma_tilde",
    "gradient_perturbation",
    "guaranteed_decrease",
    "input_rounding_bound",
    "lambda_for_probability",
    "lost_update_probability",
    "lost_updates",
    "matmul_bound",
    "pairwise_sum_bound",
    "recursive_sum_bound",
    "summation_depth",
]
