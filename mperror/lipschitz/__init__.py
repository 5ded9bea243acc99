"""Estimators of the Lipschitz constant L of a loss gradient (L = ‖∇²f‖₂ for a C² loss).

Every estimator is called as ``estimator(loss_fn, params)`` (the :class:`LipschitzEstimator`
protocol) and returns a :class:`LipschitzEstimate`. None of them is a certified upper bound:

- :class:`PowerIteration` and :class:`Lanczos` (``kind="estimate"``) find max |λ| of the Hessian
  at the current params from Hessian-vector products (:class:`HessianOperator`);
- :class:`Secant` and :class:`SampledLocalMax` (``kind="lower"``) are difference quotients of the
  gradient, lower estimates that can sit far below L;
- :class:`SecantTracker` computes the trajectory secant a trainer can record every step.

:data:`ESTIMATORS` maps a short name to each estimator class (all constructible with defaults).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from mperror.lipschitz._hvp import HVP_METHODS, HessianOperator, HVPMethod
from mperror.lipschitz._protocol import KINDS, LipschitzEstimate, LipschitzEstimator
from mperror.lipschitz.lanczos import Lanczos
from mperror.lipschitz.power import PowerIteration
from mperror.lipschitz.sampled import SampledLocalMax
from mperror.lipschitz.secant import Secant, SecantStatus, SecantStep, SecantTracker

__all__ = [
    "ESTIMATORS",
    "HVP_METHODS",
    "KINDS",
    "HVPMethod",
    "HessianOperator",
    "Lanczos",
    "LipschitzEstimate",
    "LipschitzEstimator",
    "PowerIteration",
    "SampledLocalMax",
    "Secant",
    "SecantStatus",
    "SecantStep",
    "SecantTracker",
]

#: name -> estimator class; each accepts ``generator=`` and has defaults for everything else.
ESTIMATORS: Mapping[str, Callable[..., LipschitzEstimator]] = MappingProxyType(
    {
        "power": PowerIteration,
        "lanczos": Lanczos,
        "secant": Secant,
        "sampled": SampledLocalMax,
    }
)
