"""Estimators of the Lipschitz constant L of a loss gradient (‖∇²f‖₂ for a C² loss)."""

from mperror.lipschitz._hvp import HVP_METHODS, HessianOperator
from mperror.lipschitz._protocol import LipschitzEstimate, LipschitzEstimator
from mperror.lipschitz.power import PowerIteration

__all__ = [
    "HVP_METHODS",
    "HessianOperator",
    "LipschitzEstimate",
    "LipschitzEstimator",
    "PowerIteration",
]
