"""Neural operators with precision modes of their own (:mod:`mperror.models.fno`)."""

from __future__ import annotations

from mperror.models.fno import (
    BACKENDS,
    FNO,
    MODES,
    PrecisionSchedule,
    SpectralConv,
    SpectralPrecision,
    parse_model_precision,
)

__all__ = [
    "BACKENDS",
    "FNO",
    "MODES",
    "PrecisionSchedule",
    "SpectralConv",
    "SpectralPrecision",
    "parse_model_precision",
]
