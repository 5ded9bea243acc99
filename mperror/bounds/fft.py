"""Rounding-error bounds for the radix-2 fast Fourier transform, and its overflow condition.

The bounds are Higham's (Accuracy and Stability of Numerical Algorithms, 2nd ed., 2002,
Theorem 24.2): for ``N = 2**t`` and a Cooley-Tukey radix-2 FFT whose computed twiddle factors are
within ``mu`` of the exact ones, the computed ``y^ = fl(F x)`` satisfies

    ||y^ - y||_2 / ||y||_2 <= t eta / (1 - t eta),    eta = mu + gamma_4 (sqrt 2 + mu).

The book's text could not be retrieved while writing this module; the statement is the one quoted
in the project's REFERENCES, and theory/fft-bound.md (``T-fft-higham``) proves it independently,
with a slightly smaller ``eta``, plus the componentwise form used for per-mode bounds.
"""

from __future__ import annotations

import math
import operator
from fractions import Fraction

from mperror._checks import is_integer
from mperror.bounds._checks import integer, nonnegative
from mperror.bounds._result import BoundResult
from mperror.bounds.classic import _gamma_unit
from mperror.formats import FloatFormat, FormatLike, as_format

__all__ = [
    "FFT_ETA_LEADING_CONSTANT",
    "default_twiddle_error",
    "fft_error_bound",
    "fft_eta",
    "fft_forward_mode_bound",
    "fft_overflows",
    "fft_relative_factor",
]

#: ``lim_{u -> 0} eta / u`` when the twiddle factors are rounded to the format (``mu = u``):
#: ``eta = u + gamma_4 (sqrt 2 + u) ~ (1 + 4 sqrt 2) u``. The per-mode bound of a forward-normalised
#: FFT is about ``FFT_ETA_LEADING_CONSTANT * u * log2(N) * max|x|`` (theory/fft-bound.md).
FFT_ETA_LEADING_CONSTANT = 1 + 4 * math.sqrt(2)

_THEOREM = "T-fft-higham"


def _check_power_of_two(n: object, argument: str) -> int:
    if not is_integer(n) or n < 1 or operator.index(n) & (operator.index(n) - 1):
        raise ValueError(f"{argument} must be a power of two (an int >= 1), got {n!r}")
    return operator.index(n)


def default_twiddle_error(fmt: FormatLike) -> float:
    """``mu`` for twiddle factors computed exactly and rounded to ``fmt`` (nearest), part by part.

    Each of ``Re w`` and ``Im w`` (both in ``[-1, 1]``) is rounded with error at most
    ``max(u |x|, h)``, ``h`` being half the spacing below ``2**emin`` (the subnormal spacing, or
    ``2**emin`` without subnormals). As ``|w| = 1``, ``|w~ - w|**2 <= u**2 + 2 h**2``.

    >>> default_twiddle_error("fp16") == math.sqrt(2.0**-22 + 2 * 2.0**-50)
    True

    Possible issues: twiddles built by a recurrence (``w_(k+1) = w_k w_1``) are far less accurate
    (their error grows like ``k u``); pass a measured ``twiddle_error`` for such FFTs.
    """
    fmt = as_format(fmt, argument="fmt")
    below = fmt.smallest_subnormal if fmt.subnormals else fmt.smallest_normal
    half_spacing = below / 2
    return math.sqrt(fmt.unit_roundoff**2 + 2 * half_spacing**2)


def fft_eta(fmt: FormatLike, *, twiddle_error: float | None = None) -> float:
    """Higham's per-stage constant ``eta = mu + gamma_4 (sqrt 2 + mu)`` (``inf`` if ``4u >= 1``).

    ``mu`` is ``twiddle_error``, by default :func:`default_twiddle_error` of ``fmt``.

    >>> u = 2.0**-11
    >>> fft_eta("fp16", twiddle_error=0.0) == 4 * u / (1 - 4 * u) * math.sqrt(2)
    True
    """
    fmt = as_format(fmt, argument="fmt")
    mu = (
        default_twiddle_error(fmt)
        if twiddle_error is None
        else nonnegative(twiddle_error, "twiddle_error")
    )
    return mu + _gamma_unit(4, fmt.unit_roundoff) * (math.sqrt(2) + mu)


def fft_relative_factor(n: int, fmt: FormatLike, *, twiddle_error: float | None = None) -> float:
    """``rho = t eta / (1 - t eta)`` with ``t = log2(n)``; ``inf`` when ``t eta >= 1``."""
    n = _check_power_of_two(n, "n")
    t = n.bit_length() - 1
    eta = fft_eta(fmt, twiddle_error=twiddle_error)
    if t == 0:
        return 0.0
    if t * eta >= 1:
        return math.inf
    return t * eta / (1 - t * eta)


def _assumptions(fmt: FloatFormat, twiddle_error: float | None) -> tuple[str, ...]:
    twiddles = (
        "twiddle factors computed exactly and rounded to the format (mu = "
        "default_twiddle_error(fmt))"
        if twiddle_error is None
        else f"computed twiddle factors within mu = {twiddle_error!r} of the exact ones"
    )
    return (
        "Cooley-Tukey radix-2 FFT (one-dimensional, or one-dimensional passes along each axis), "
        "N a power of two",
        f"every real operation in {fmt} rounded to nearest, with no overflow or underflow",
        "complex products by the 4-multiplication formula (an FMA only tightens the bound)",
        twiddles,
    )


def fft_error_bound(n: int, fmt: FormatLike, *, twiddle_error: float | None = None) -> BoundResult:
    """Relative 2-norm error of a radix-2 FFT of length ``n`` computed in ``fmt``.

    Symbols: ``N = n`` (the total number of points; an ``n1 x n2`` transform done axis by axis has
    ``N = n1 n2``), ``t = log2 N``, ``u = fmt.unit_roundoff``, ``mu = twiddle_error``.

        ||y^ - y||_2 / ||y||_2 <= t eta / (1 - t eta),   eta = mu + gamma_4 (sqrt 2 + mu),

    where ``y = F x`` is the exact unnormalised DFT and ``y^`` the computed one. The bound is
    unchanged by any normalisation by a power of two applied exactly (``norm="forward"``,
    ``"ortho"`` for even ``t``, ``"backward"``), and it holds for the inverse transform too.

    Assumptions: see the returned ``assumptions``; in short, radix-2, round to nearest, no
    overflow or underflow, twiddles within ``mu``.

    >>> r = fft_error_bound(2, "fp16", twiddle_error=0.0)
    >>> eta = 4 * 2.0**-11 / (1 - 4 * 2.0**-11) * math.sqrt(2)
    >>> r.bound == eta / (1 - eta)
    True
    >>> fft_error_bound(2**20, "fp16").bound  # t eta ~ 20 * 6.67 / 2048 = 0.0651; / (1 - 0.0651)
    0.0697

    Reference: Higham (2002), Theorem 24.2; theory/fft-bound.md, ``T-fft-higham`` (our proof,
    which gives the smaller ``eta' = (1 + u)(1 + mu)(1 + sqrt 2 gamma_2) - 1 <= eta``).

    Possible issues: infinite once ``t eta >= 1`` and vacuous once the relative bound reaches 1
    (``t eta >= 1/2``): for fp16 from ``N = 2**154``, never in practice; for bf16 from
    ``N = 2**19`` (a 512 x 1024 grid); for the FP8 formats at every ``N >= 2`` (e4m3fn has
    ``eta ~ 0.55``, e5m2 ``gamma_4 = 1``). A worst-case
    bound: errors of random data grow like ``sqrt(log2 N) u``, not ``log2 N u``. Implementations
    using radix 4 or 8, real-to-complex packing (``rfft``) or recurrence-built twiddles are not
    covered as stated.
    """
    fmt = as_format(fmt, argument="fmt")
    n = _check_power_of_two(n, "n")
    rho = fft_relative_factor(n, fmt, twiddle_error=twiddle_error)
    return BoundResult(
        theorem=_THEOREM,
        bound=rho,
        vacuous=not rho < 1,
        assumptions=_assumptions(fmt, twiddle_error),
    )


def fft_forward_mode_bound(
    n: int, max_abs: float, fmt: FormatLike, *, twiddle_error: float | None = None
) -> BoundResult:
    """Per-mode absolute error of a forward-normalised radix-2 FFT computed in ``fmt``.

    Symbols: ``N = n`` points (total), ``M = max_abs >= max_j |x_j|``, ``rho`` the relative
    factor of :func:`fft_error_bound`. For ``X(k) = (1/N) sum_j x_j exp(-2 pi i j k / N)``
    (``torch.fft.fft(x, norm="forward")``) and its computed value ``X^(k)``:

        max_k |X^(k) - X(k)| <= rho M,     rho = t eta / (1 - t eta) ~ (1 + 4 sqrt 2) u log2 N.

    Proof: the componentwise form of ``T-fft-higham`` gives
    ``|N X^(k) - N X(k)| <= ((1 + eta)**t - 1) ||x||_1 <= rho N M``; dividing by ``N`` is exact.
    (The normwise form gives the same: ``||y^ - y||_2 <= rho ||y||_2 = rho sqrt(N) ||x||_2``.)

    >>> r = fft_forward_mode_bound(4, 1.0, "fp16", twiddle_error=0.0)
    >>> eta = 4 * 2.0**-11 / (1 - 4 * 2.0**-11) * math.sqrt(2)
    >>> r.bound == 2 * eta / (1 - 2 * eta)
    True

    Reference: Higham (2002), Theorem 24.2; theory/fft-bound.md, ``T-fft-higham``.

    Possible issues: the bound charges every mode with the error of the whole transform; the
    division by ``N`` is exact only when its result stays normal (no underflow). Vacuous (the
    trivial bound is ``M``: both ``|X(k)|`` and the zero guess are within ``M``) once
    ``rho >= 1``. Overflow of the unnormalised transform is not covered: see
    :func:`fft_overflows`.
    """
    fmt = as_format(fmt, argument="fmt")
    n = _check_power_of_two(n, "n")
    max_abs = nonnegative(max_abs, "max_abs")
    rho = fft_relative_factor(n, fmt, twiddle_error=twiddle_error)
    bound = 0.0 if max_abs == 0 else rho * max_abs
    return BoundResult(
        theorem=_THEOREM,
        bound=bound,
        vacuous=not rho < 1,
        assumptions=(
            *_assumptions(fmt, twiddle_error),
            f"|x_j| <= {max_abs!r}; forward normalisation 1/N applied exactly (power of two, "
            "no underflow)",
            "no overflow: not fft_overflows(n, max_abs, fmt)",
        ),
    )


def fft_overflows(n_total: int, max_abs: float, fmt: FormatLike) -> bool:
    """Whether an unnormalised FFT of ``n_total`` points of size ``max_abs`` may overflow.

    Returns ``n_total * max_abs > fmt.max``. cuFFT computes the unnormalised transform and applies
    ``norm`` afterwards, so this is the condition whatever ``norm`` says. The largest value of an
    exact unnormalised DFT is ``|y_0| = |sum_j x_j| <= N max|x|``, attained by a constant input,
    and every intermediate of a radix-2 FFT is a partial DFT of at most ``N`` points, hence no
    larger. So ``True`` means some input with ``max|x| = max_abs`` does overflow (the constant
    one, through its DC coefficient, whenever ``N max_abs`` rounds above ``fmt.max``), and
    ``False`` means no exact intermediate exceeds ``fmt.max``.

    >>> fft_overflows(128 * 128, 1.0, "fp16"), fft_overflows(256 * 256, 1.0, "fp16")
    (False, True)
    >>> fft_overflows(256 * 256, 1 - 2.0**-11, "fp16")  # 65536 (1 - 2**-11) = 65504 = max
    False

    Reference: theory/fno-bounds.md, ``T-fno-prec`` (overflow paragraph); Tu et al. (ICLR 2024).

    Possible issues: ``False`` is exact-arithmetic safety: rounding can raise an intermediate by a
    factor up to ``(1 + eta)**t``, so inputs with ``N max_abs`` within that factor of
    ``fmt.max`` may still overflow. ``True`` near the threshold may not overflow in practice
    when ``N max_abs`` lies below ``fmt.max`` plus half an ulp (it rounds down to ``fmt.max``).
    In fp16, ``tanh`` reaches exactly 1.0 (for ``|x| >= 4.5`` or so), so a tanh-bounded input has
    ``max_abs = 1``: 128**2 points are safe, 256**2 are not.
    """
    fmt = as_format(fmt, argument="fmt")
    n_total = integer(n_total, "n_total", 1)
    max_abs = nonnegative(max_abs, "max_abs")
    # exactly, in rationals (a float64 product rounds, and overflows for n_total past 2**1024)
    return Fraction(n_total) * Fraction(max_abs) > Fraction(fmt.max)
