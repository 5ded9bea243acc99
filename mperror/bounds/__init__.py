"""Rounding-error bounds, each carrying its theorem (see theory/ for the notes and proofs)."""

from mperror.bounds._result import BoundResult
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

__all__ = [
    "FFT_ETA_LEADING_CONSTANT",
    "BoundResult",
    "CrossoverResult",
    "c_d",
    "crossover_resolution",
    "default_twiddle_error",
    "discretisation_bound",
    "fft_error_bound",
    "fft_eta",
    "fft_forward_mode_bound",
    "fft_overflows",
    "fft_precision_bound",
    "fft_relative_factor",
    "fourier_layer_bound",
    "input_rounding_bound",
]
