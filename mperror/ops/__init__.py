"""Emulated low-precision arithmetic on explicit operations.

* :mod:`~mperror.ops.elementwise`: ``add, sub, mul, div, sqrt, fma``, correctly rounded to any
  format of precision at most 25 (or fp64), every rounding mode.
* :mod:`~mperror.ops.reduce`: ``sum, dot, matmul`` under an explicit accumulation model
  (:class:`Accumulation`: accumulation format, summation order, block-FMA chunks).
* :mod:`~mperror.ops.fourier`: ``fft, ifft, rfft, irfft, fftn`` as staged radix-2 transforms whose
  every butterfly stage is rounded to the format (Bluestein for other sizes).

Every function takes tensors, a target format ``fmt`` and a rounding ``mode`` (plus a
``generator`` for the stochastic modes) and returns values of ``fmt``: in the input's dtype for
the elementwise ops and reductions, complex64 or complex128 for the transforms (float32 or float64
for ``irfft``; :mod:`~mperror.ops.fourier` says which). Rounding is :func:`mperror.round`
throughout.
"""

from mperror.ops.elementwise import add, div, fma, mul, sqrt, sub
from mperror.ops.fourier import fft, fftn, ifft, irfft, rfft
from mperror.ops.reduce import Accumulation, dot, matmul, sum

__all__ = [
    "Accumulation",
    "add",
    "div",
    "dot",
    "fft",
    "fftn",
    "fma",
    "ifft",
    "irfft",
    "matmul",
    "mul",
    "rfft",
    "sqrt",
    "sub",
    "sum",
]
