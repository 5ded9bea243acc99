"""Rounding-error bounds, each carrying its theorem (see theory/ for the notes and proofs).

* :mod:`mperror.bounds.classic`: ``gamma_n`` and the probabilistic ``gamma~_n(lambda)``;
  recursive, pairwise and blocked summation, dot products, matrix products and block-FMA
  (tensor-core) products (theory/T-gamma.md, theory/T-prob.md).
* :mod:`mperror.bounds.gd`: Theorem 1 of Hayford et al. (2024), the critical gradient norm,
  a trace checker, and exact lost-update prediction (theory/T1-gd-mixed-precision.md,
  theory/T-lost-update.md).
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
    "BoundResult",
    "DescentCheck",
    "EntrywiseBound",
    "Regime",
    "block_fma_bound",
    "block_fma_depth",
    "blocked_sum_bound",
    "check_descent",
    "cosine_distance_bound",
    "critical_gradient_norm",
    "descent_bound",
    "dot_bound",
    "dot_bound_probabilistic",
    "failure_probability",
    "gamma",
    "gamma_tilde",
    "gradient_perturbation",
    "guaranteed_decrease",
    "lambda_for_probability",
    "lost_update_probability",
    "lost_updates",
    "matmul_bound",
    "pairwise_sum_bound",
    "recursive_sum_bound",
    "summation_depth",
]
