"""Bounds for Fourier neural operators in mixed precision (after Tu et al., ICLR 2024).

Setting: ``v`` on the torus ``[0, 1)^d`` with ``|v| <= M``, ``L``-Lipschitz for the Euclidean
norm; ``n`` grid points per dimension, ``N = n**d``; ``v^(w) = int v(x) exp(-2 pi i w.x) dx`` and
``v^_n(w) = fftn(v_grid, norm="forward")[w]``. The paper's text was not available: the bounds here
are our own derivation (theory/fno-bounds.md), of the form the paper describes.

* :func:`discretisation_bound` (``T-fno-disc``): ``|v^(w) - v^_n(w)| <= c_d (L + 2 pi |w| M) / n``.
* :func:`input_rounding_bound`, :func:`fft_precision_bound` (``T-fno-prec``): rounding the samples
  costs at most ``u M`` per mode, whatever ``n`` and ``d``; a radix-2 FFT in the format adds about
  ``(1 + 4 sqrt 2) u log2(N) M``.
* :func:`crossover_resolution`: the ``n`` beyond which the precision bound exceeds the
  discretisation bound.
* :func:`fourier_layer_bound` (``T-fno-layer``): forward FFT, mode truncation, weight contraction
  and inverse FFT, every rounding accounted for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mperror._checks import is_integer
from mperror._records import Record
from mperror.bounds._checks import integer, nonnegative
from mperror.bounds._result import BoundResult
from mperror.bounds.classic import _gamma_unit
from mperror.bounds.fft import fft_eta, fft_overflows, fft_relative_factor
from mperror.formats import FloatFormat, FormatLike, as_format

__all__ = [
    "GRIDS",
    "CrossoverResult",
    "c_d",
    "crossover_resolution",
    "discretisation_bound",
    "fft_precision_bound",
    "fourier_layer_bound",
    "input_rounding_bound",
]

#: Grid conventions: samples at cell centres ``(j + 1/2) / n`` or at cell corners ``j / n``.
GRIDS = ("centred", "corner")

# E||U[-1/2, 1/2]^d||_2, the mean distance from the centre of a unit cube to a uniform point.
_C1 = 1 / 4
_C2 = (math.sqrt(2) + math.asinh(1)) / 6  # asinh(1) = ln(1 + sqrt 2)
# mpmath: 0.48029597822752647971255397569690318..., rounded up so it stays an upper bound
# (theory/fno_bounds.py, c3_mpmath).
_C3 = float.fromhex("0x1.ebd2b57b8cdb1p-2")

_FNO_ASSUMPTIONS = ("v is M-bounded and L-Lipschitz (Euclidean norm) on the torus [0, 1)^d",)


def _check_grid(grid: object) -> str:
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}")
    return grid  # type: ignore[return-value]


def _mode_norm(w: int | Sequence[int], d: int) -> float:
    """``||w||_2`` of an integer mode given as an int (``d == 1``) or ``d`` ints."""
    if isinstance(w, (bool, np.bool_)):
        raise TypeError("w must be an int or a sequence of ints, got bool")
    if is_integer(w):
        if d != 1:
            raise ValueError(f"w must be a sequence of d={d} ints when d > 1, got the int {w!r}")
        return float(abs(w))
    if not isinstance(w, Sequence) or isinstance(w, str):
        raise TypeError(f"w must be an int or a sequence of ints, got {type(w).__name__}")
    if len(w) != d or not all(is_integer(k) for k in w):
        raise ValueError(f"w must hold exactly d={d} ints, got {w!r}")
    return math.sqrt(sum(int(k) ** 2 for k in w))


def c_d(d: int, grid: str = "centred") -> float:
    """The constant of the discretisation bound: ``E||U[-1/2, 1/2]^d||_2`` for centred grids.

    Exact for ``d = 1`` (``1/4``) and ``d = 2`` (``(sqrt 2 + ln(1 + sqrt 2)) / 6``); for ``d = 3``
    the mpmath value ``0.480295978227526...`` rounded up; for ``d >= 4`` the Jensen upper bound
    ``sqrt(d / 12)`` (``E||U|| <= sqrt(E||U||**2)``, ``E U_i**2 = 1/12``). Corner grids
    (``grid="corner"``) double it: a cell's sample then sits at a corner, and
    ``E||U[0, 1]^d|| = 2 E||U[0, 1/2]^d|| = 2 E||U[-1/2, 1/2]^d||``.

    >>> c_d(1), c_d(1, "corner"), c_d(12) == 1.0
    (0.25, 0.5, True)

    Reference: theory/fno-bounds.md, ``T-fno-disc``; theory/fno_bounds.py derives c_1 and c_2 in
    sympy and c_3 with mpmath.

    Possible issues: for ``d >= 4`` the value is an upper bound, not ``E||U||`` itself (at
    ``d = 3`` the two differ by 4%).
    """
    d = integer(d, "d", 1)
    grid = _check_grid(grid)
    centred = {1: _C1, 2: _C2, 3: _C3}.get(d, math.sqrt(d / 12))
    return centred if grid == "centred" else 2 * centred


def discretisation_bound(
    n: int,
    w: int | Sequence[int],
    lipschitz: float,
    bound_m: float,
    d: int = 1,
    *,
    grid: str = "centred",
) -> BoundResult:
    """Error of the DFT of ``n**d`` samples as an approximation of a Fourier coefficient.

    Symbols: ``n`` points per dimension, ``w`` the mode (an int when ``d = 1``, else ``d`` ints),
    ``L = lipschitz``, ``M = bound_m``, ``d`` the dimension, ``c_d = c_d(d, grid)``.

        |v^(w) - v^_n(w)| <= c_d (L + 2 pi ||w||_2 M) / n.

    ``v^_n(w) = (1/N) sum_j v(x_j) exp(-2 pi i w.x_j)`` is the rectangle (corner grid,
    ``x_j = j/n``) or midpoint (centred grid, ``x_j = (j + 1/2)/n``) rule. For corner grids that is
    ``fftn(v_grid, norm="forward")[w]``; for centred grids ``fftn`` returns it times the phase
    ``exp(pi i sum(w) / n)``, which must be removed first (the bound is about the midpoint rule).

    Proof: ``v(x) exp(-2 pi i w.x)`` is ``(L + 2 pi ||w|| M)``-Lipschitz; on each cell the rule's
    error is at most that constant times the mean distance to the sample point,
    ``c_d / n`` (centred) or ``2 c_d / n`` (corner).

    >>> discretisation_bound(16, 0, 1.0, 1.0).bound  # c_1 L / n = (1/4) / 16
    0.015625

    Reference: theory/fno-bounds.md, ``T-fno-disc`` (our derivation; Tu et al., ICLR 2024, state
    a bound of this form).

    Possible issues: tight up to a factor of about pi (``v = M sin(2 pi (n + w) x)`` has error
    exactly ``M/2``), but worst case: smooth inputs converge much faster than ``1/n``. Vacuous
    (``>= 2M``, the trivial bound) when ``n`` is small against ``||w|| + L/M``.
    """
    n = integer(n, "n", 1)
    d = integer(d, "d", 1)
    grid = _check_grid(grid)
    norm_w = _mode_norm(w, d)
    lipschitz = nonnegative(lipschitz, "lipschitz")
    bound_m = nonnegative(bound_m, "bound_m")
    bound = c_d(d, grid) * (lipschitz + 2 * math.pi * norm_w * bound_m) / n
    return BoundResult(
        theorem="T-fno-disc",
        bound=bound,
        vacuous=bound > 0 and bound >= 2 * bound_m,
        assumptions=(
            *_FNO_ASSUMPTIONS,
            f"{grid} grid with n={n} points per dimension"
            + (" (FFT phase exp(pi i sum(w)/n) removed)" if grid == "centred" else ""),
        ),
    )


def _input_rounding(bound_m: float, fmt: FloatFormat) -> float:
    if bound_m > fmt.max:
        return math.inf
    below = fmt.smallest_subnormal if fmt.subnormals else fmt.smallest_normal
    # half the spacing there, rounded up to a float64 value (fp64's 2**-1075 is none)
    half_step = max(below / 2, math.ulp(0.0))
    return max(fmt.unit_roundoff * bound_m, min(half_step, bound_m))


def input_rounding_bound(bound_m: float, fmt: FormatLike) -> BoundResult:
    """Per-mode error of the forward-normalised DFT caused by rounding the samples to ``fmt``.

    Symbols: ``M = bound_m >= max_j |v_j|``, ``u = fmt.unit_roundoff``, ``v~_j`` the samples
    rounded to nearest; ``h`` half the spacing below ``2**emin``.

        |(1/N) sum_j (v~_j - v_j) exp(-2 pi i w.j/n)| <= max_j |v~_j - v_j| <= max(u M, h) = u M

    for every mode ``w``, every ``n`` and ``d`` (the last equality when ``M >= 2**emin`` in a
    format with subnormals). The DFT itself is exact here; :func:`fft_precision_bound` adds its
    arithmetic.

    >>> input_rounding_bound(1.0, "fp16").bound == 2.0**-11
    True

    Reference: theory/fno-bounds.md, ``T-fno-prec`` (our derivation).

    Possible issues: round to nearest only (stochastic rounding doubles it); ``inf`` (vacuous)
    when ``M > fmt.max``, as the samples may overflow; below ``2**emin`` (or without subnormals)
    the absolute error ``h`` replaces ``u M``.
    """
    fmt = as_format(fmt, argument="fmt")
    bound_m = nonnegative(bound_m, "bound_m")
    bound = _input_rounding(bound_m, fmt)
    return BoundResult(
        theorem="T-fno-prec",
        bound=bound,
        vacuous=bound > 0 and bound >= bound_m,
        assumptions=(
            f"samples |v_j| <= {bound_m!r} <= fmt.max rounded to nearest in {fmt}",
            "the DFT of the rounded samples computed exactly (forward normalisation)",
        ),
    )


def fft_precision_bound(
    n: int,
    d: int,
    bound_m: float,
    fmt: FormatLike,
    *,
    input_error: float | None = None,
    twiddle_error: float | None = None,
) -> BoundResult:
    """Per-mode error of a forward-normalised radix-2 FFT in ``fmt`` of the rounded samples.

    Symbols: ``n`` points per dimension (a power of two), ``N = n**d``, ``t = log2 N``,
    ``M = bound_m``, ``delta = input_error`` (default :func:`input_rounding_bound`, ``u M``),
    ``rho = t eta / (1 - t eta)`` of :func:`mperror.bounds.fft.fft_error_bound`. Comparing the
    computed ``V(w)`` with the exact DFT of the exact samples ``v^_n(w)``:

        |V(w) - v^_n(w)| <= delta + rho (M + delta)  ~  (1 + (1 + 4 sqrt 2) log2 N) u M.

    Proof: the rounded samples' exact DFT is within ``delta`` (``T-fno-prec``); the FFT of
    samples bounded by ``M + delta`` adds at most ``rho (M + delta)`` per mode (``T-fft-higham``,
    componentwise form).

    >>> fft_precision_bound(1, 1, 1.0, "fp16").bound == 2.0**-11  # N = 1: only u M
    True
    >>> fft_precision_bound(128, 2, 1.0, "fp16").bound  # t eta = 14 * 6.67 / 2048 = 0.0456
    0.0483

    Reference: theory/fno-bounds.md, ``T-fno-prec``; Higham (2002), Theorem 24.2.

    Possible issues: ``inf`` when the unnormalised FFT may overflow
    (``N (M + delta) > fmt.max``, :func:`mperror.bounds.fft.fft_overflows`) or ``t eta >= 1``;
    vacuous once the bound reaches ``M``: for bf16 from ``N = 2**19``, for e4m3fn and e5m2
    at every ``N >= 2``. Worst case: measured fp16 errors sit near ``0.3 u M``.
    """
    fmt = as_format(fmt, argument="fmt")
    n = integer(n, "n", 1)
    d = integer(d, "d", 1)
    if n & (n - 1):
        raise ValueError(f"n must be a power of two (radix-2 FFT), got {n}")
    bound_m = nonnegative(bound_m, "bound_m")
    delta = (
        _input_rounding(bound_m, fmt)
        if input_error is None
        else nonnegative(input_error, "input_error")
    )
    n_total = n**d
    rho = fft_relative_factor(n_total, fmt, twiddle_error=twiddle_error)
    if fft_overflows(n_total, bound_m + delta, fmt):
        bound = math.inf
    else:
        bound = delta + rho * (bound_m + delta)
    return BoundResult(
        theorem="T-fno-prec",
        bound=bound,
        vacuous=bound > 0 and bound >= bound_m,
        assumptions=(
            f"samples |v_j| <= {bound_m!r}, fed to the FFT with error <= {delta!r}",
            f"radix-2 FFT of N = {n}**{d} points in {fmt}, round to nearest, forward "
            "normalisation applied exactly, no overflow or underflow",
            "twiddle factors within default_twiddle_error(fmt) of the exact ones"
            if twiddle_error is None
            else f"twiddle factors within {twiddle_error!r} of the exact ones",
        ),
    )


@dataclass(frozen=True, kw_only=True)
class CrossoverResult(Record):
    """Where the precision bound overtakes the discretisation bound.

    Attributes:
        theorem: ``"T-fno-prec"`` (the crossover compares ``T-fno-prec`` with ``T-fno-disc``).
        log2_resolution: ``log2 n*``, the real crossing (``0`` if the precision bound already
            wins at ``n = 1``).
        resolution: ``n* = 2**log2_resolution`` (``inf`` beyond float range).
        power_of_two: the smallest power of two ``n`` with precision bound >= discretisation
            bound (the first radix-2 grid where refining no longer pays by the bounds).
        precision_bound: the precision bound at ``power_of_two``.
        discretisation_bound: the discretisation bound at ``power_of_two``.
        method: ``"closed form"`` or ``"bisection on log2 n"``.
        assumptions: the two bounds' assumptions, in words.
    """

    theorem: str
    log2_resolution: float
    resolution: float
    power_of_two: int
    precision_bound: float
    discretisation_bound: float
    method: str
    assumptions: tuple[str, ...] = ()


def crossover_resolution(
    lipschitz: float,
    bound_m: float,
    fmt: FormatLike,
    *,
    d: int = 1,
    w: int | Sequence[int] | None = None,
    grid: str = "centred",
    fft_arithmetic: bool = True,
    twiddle_error: float | None = None,
) -> CrossoverResult:
    """The resolution beyond which the precision bound exceeds the discretisation bound.

    Symbols: ``L = lipschitz``, ``M = bound_m``, ``K = L + 2 pi ||w|| M`` (``w`` the mode as in
    :func:`discretisation_bound`; ``None`` for the zero mode), ``c = c_d(d, grid)``,
    ``delta`` = :func:`input_rounding_bound`. The discretisation bound ``c K / n`` decreases and
    the precision bound increases with ``n``, so they cross once.

    * ``fft_arithmetic=False`` (exact DFT of rounded samples): closed form ``n* = c K / delta``,
      ``= c K / (u M)`` in the normal range.
    * ``fft_arithmetic=True``: the precision bound is :func:`fft_precision_bound`,
      ``delta + rho(d log2 n) (M + delta)`` with ``rho(s) = s eta / (1 - s eta)`` read for real
      ``s`` (and ``inf`` where the FFT may overflow), increasing in ``n``; ``log2 n*`` is found
      by bisection on ``[0, log2 n*_closed]``, since the closed-form crossing comes no earlier.

    >>> crossover_resolution(1.0, 1.0, "fp16", fft_arithmetic=False).resolution  # 2**11 / 4
    512.0

    Reference: theory/fno-bounds.md, ``T-fno-prec`` (crossover section). Tu et al. (ICLR 2024)
    argue that the precision error is comparable to the discretisation error at practical
    resolutions.

    Possible issues: a crossing of two upper bounds, not of errors. For ``L = M = 1``, ``w = 0``,
    ``d = 1`` in fp16 the bounds cross at ``n* = 512`` (input rounding only) or ``n* ~ 17.6``
    (with the worst-case FFT bound, which at ``N = 128`` is ``48 u M`` against the ``0.3 u M``
    measured), while the measured errors of a 1-D Lipschitz function crossed between n = 64 and
    256 (REFERENCES, section 5).
    For the FP8 formats the FFT bound is vacuous at every ``N >= 2``, so with
    ``fft_arithmetic=True`` the crossing lies at most one doubling past the point where
    ``c K / n`` falls to ``delta``: between ``n = 1`` and ``2`` for ``L = M = 1`` in e4m3fn,
    at about ``n = 3`` for ``L = 100``.
    """
    fmt = as_format(fmt, argument="fmt")
    d = integer(d, "d", 1)
    grid = _check_grid(grid)
    lipschitz = nonnegative(lipschitz, "lipschitz")
    bound_m = nonnegative(bound_m, "bound_m")
    if not isinstance(fft_arithmetic, bool):
        raise TypeError(f"fft_arithmetic must be a bool, got {type(fft_arithmetic).__name__}")
    norm_w = 0.0 if w is None else _mode_norm(w, d)
    slope = c_d(d, grid) * (lipschitz + 2 * math.pi * norm_w * bound_m)
    delta = _input_rounding(bound_m, fmt)
    if slope == 0 or delta == 0 or not math.isfinite(delta):
        raise ValueError(
            "the bounds do not cross: need lipschitz + 2 pi ||w|| bound_m > 0 and "
            f"0 < bound_m <= fmt.max; got lipschitz={lipschitz!r}, bound_m={bound_m!r}"
        )

    def discretisation(log2_n: float) -> float:
        return slope * 2.0**-log2_n

    closed = max(0.0, math.log2(slope) - math.log2(delta))  # slope / delta may overflow
    if not fft_arithmetic:
        log2_star = closed
        method = "closed form"

        def precision(log2_n: float) -> float:
            return delta

    else:
        eta = fft_eta(fmt, twiddle_error=twiddle_error)
        log2_headroom = math.log2(fmt.max / (bound_m + delta))

        def precision(log2_n: float) -> float:
            s = d * log2_n
            if s == 0:  # N = 1: no FFT arithmetic (0 * eta is NaN where eta is inf)
                return delta
            if s * eta >= 1 or s > log2_headroom:  # FFT bound infinite, or N (M + delta) > max
                return math.inf
            return delta + s * eta / (1 - s * eta) * (bound_m + delta)

        method = "bisection on log2 n"
        if precision(0.0) >= discretisation(0.0):
            log2_star = 0.0
        else:
            lo, hi = 0.0, closed
            while hi - lo > 1e-12 * max(1.0, hi):
                mid = (lo + hi) / 2
                if precision(mid) >= discretisation(mid):
                    hi = mid
                else:
                    lo = mid
            log2_star = hi

    power = math.ceil(log2_star)
    while precision(power) < discretisation(power):  # guards the rounding of log2_star
        power += 1
    resolution = 2.0**log2_star if log2_star < 1024 else math.inf
    return CrossoverResult(
        theorem="T-fno-prec",
        log2_resolution=log2_star,
        resolution=resolution,
        power_of_two=2**power,
        precision_bound=precision(power),
        discretisation_bound=discretisation(power),
        method=method,
        assumptions=(
            *_FNO_ASSUMPTIONS,
            f"mode w with ||w|| = {norm_w!r}, {grid} grid, d = {d}",
            f"samples rounded to nearest in {fmt}"
            + (", radix-2 FFT in the same format" if fft_arithmetic else ", exact DFT"),
        ),
    )


def fourier_layer_bound(
    n: int,
    d: int,
    bound_m: float,
    fmt: FormatLike,
    *,
    c_in: int,
    c_out: int,
    kept_modes: int,
    weight_norm: float,
    weight_abs_norm: float | None = None,
    input_error: float | None = None,
    accumulate: FormatLike | None = None,
    norm: str = "rms",
    twiddle_error: float | None = None,
) -> BoundResult:
    """End-to-end rounding-error bound for one spectral convolution of a Fourier layer.

    The layer: ``A^ = fftn(a, norm="forward")`` per input channel; keep the ``m = kept_modes``
    modes ``k`` in a set ``K``; ``Y(k) = R(k) A^(k)`` with a ``c_out x c_in`` complex matrix per
    mode; ``y = ifftn(Y zero-padded, norm="forward")`` (no scaling on the inverse). Computed in
    ``fmt``: input values with error ``<= delta``, the FFTs, ``R`` rounded to ``fmt``, the
    contraction as real dot products of length ``2 c_in`` accumulated in ``accumulate`` (default
    ``fmt``) and stored in ``fmt``, the inverse FFT.

    Symbols: ``N = n**d``, ``M = bound_m >= max|a|``, ``delta = input_error`` (default
    :func:`input_rounding_bound`), ``u = fmt.unit_roundoff``, ``rho`` the FFT factor
    (:func:`mperror.bounds.fft.fft_error_bound`), ``r = weight_norm >= max_k ||R(k)||_2``,
    ``r_abs = weight_abs_norm >= max_k || |R(k)| ||_2`` (default ``sqrt(min(c_in, c_out)) r``),
    ``g = sqrt 2 gamma_(2 c_in)(u_acc)``, ``g' = (1 + g)(1 + u_out) - 1`` with ``u_out = u`` when
    accumulating in a wider format, else ``0``. Then, with the exact layer ``y`` of the exact
    input and the computed ``y~``,

        E1 = sqrt(c_in) (delta + rho (M + delta))        forward FFT, on the kept modes
        S1 = sqrt(c_in) M + E1
        E2 = r E1 + r_abs S1 (u + (1 + u) g')             weights and contraction
        S2 = r sqrt(c_in) M + E2
        ||y~ - y||_rms <= E2 + rho S2                     inverse FFT
        max_(x, o) |y~_o(x) - y_o(x)| <= sqrt(m) (E2 + rho S2)

    where ``||f||_rms**2 = (1/N) sum_x sum_o |f_o(x)|**2`` (``norm="rms"``, the default) and
    the second line is ``norm="max"``. To first order the relative error is
    ``delta/M + 2 log2(N) eta + (r_abs / r)(u + g')``.

    >>> u = 2.0**-11
    >>> r = fourier_layer_bound(1, 1, 1.0, "fp16", c_in=1, c_out=1, kept_modes=1,
    ...                         weight_norm=1.0, input_error=0.0, accumulate="fp16")
    >>> r.bound / u  # N = 1, no FFT: weight rounding + product, 1 + 2 sqrt 2 (1 + u) / (1 - 2u)
    3.8326

    Reference: theory/fno-bounds.md, ``T-fno-layer`` (our derivation, not the paper's).

    Possible issues: loose in several places, each stated in the note: the FFT factor is the
    worst-case ``log2 N``; the whole transform's error is charged to the kept modes; ``gamma`` is
    a worst case (``sqrt(c_in)`` growth is typical); ``r_abs`` defaults to a Frobenius-type
    bound; the max-norm form costs ``sqrt(m)``. ``inf`` when any stage may overflow
    (``N (M + delta) > fmt.max``, contraction sums or ``sqrt(m) S2`` above the format's max) or
    the FFT bound is infinite; vacuous once the bound reaches the size of the exact output
    (``r sqrt(c_in) M``, times ``sqrt(m)`` for the max norm).
    """
    fmt = as_format(fmt, argument="fmt")
    n = integer(n, "n", 1)
    d = integer(d, "d", 1)
    if n & (n - 1):
        raise ValueError(f"n must be a power of two (radix-2 FFT), got {n}")
    c_in = integer(c_in, "c_in", 1)
    c_out = integer(c_out, "c_out", 1)
    n_total = n**d
    kept_modes = integer(kept_modes, "kept_modes", 1)
    if kept_modes > n_total:
        raise ValueError(f"kept_modes must be <= n**d = {n_total}, got {kept_modes}")
    bound_m = nonnegative(bound_m, "bound_m")
    r = nonnegative(weight_norm, "weight_norm")
    if weight_abs_norm is None:
        r_abs = math.sqrt(min(c_in, c_out)) * r
    else:
        r_abs = nonnegative(weight_abs_norm, "weight_abs_norm")
        if r_abs < r:
            raise ValueError(
                "weight_abs_norm bounds max_k || |R(k)| ||_2, which is >= max_k ||R(k)||_2; "
                f"got weight_abs_norm={r_abs!r} < weight_norm={r!r}"
            )
    if norm not in ("rms", "max"):
        raise ValueError(f"norm must be 'rms' or 'max', got {norm!r}")
    acc = fmt if accumulate is None else as_format(accumulate, argument="accumulate")
    if acc.precision < fmt.precision or acc.max < fmt.max:
        raise ValueError(
            f"accumulate must be at least as wide as fmt ({fmt}), got {acc}: the contraction's "
            "inputs are fmt values and must be exact in the accumulation format"
        )
    delta = (
        _input_rounding(bound_m, fmt)
        if input_error is None
        else nonnegative(input_error, "input_error")
    )
    u = fmt.unit_roundoff
    rho = fft_relative_factor(n_total, fmt, twiddle_error=twiddle_error)
    g = math.sqrt(2) * _gamma_unit(2 * c_in, acc.unit_roundoff)
    u_out = 0.0 if acc == fmt else u
    g_store = g + u_out * (1 + g)  # (1 + g)(1 + u_out) - 1

    sqrt_cin = math.sqrt(c_in)
    e1 = sqrt_cin * (delta + rho * (bound_m + delta))
    s1 = sqrt_cin * bound_m + e1
    e2 = r * e1 + r_abs * s1 * (u + (1 + u) * g_store)
    s2 = r * sqrt_cin * bound_m + e2
    rms = e2 + rho * s2
    scale = math.sqrt(kept_modes) if norm == "max" else 1.0
    overflow = (
        fft_overflows(n_total, bound_m + delta, fmt)
        or r > fmt.max
        or (1 + u) * r_abs * s1 * (1 + g) > acc.max
        or math.sqrt(kept_modes) * s2 > fmt.max
    )
    bound = math.inf if overflow or math.isnan(rms) else scale * rms
    exact_size = scale * r * sqrt_cin * bound_m
    return BoundResult(
        theorem="T-fno-layer",
        bound=bound,
        vacuous=bound > 0 and bound >= exact_size,
        assumptions=(
            f"input |a| <= {bound_m!r} per entry, fed to the layer with error <= {delta!r}",
            f"radix-2 FFTs of N = {n}**{d} points in {fmt}, forward normalisation on the "
            "forward transform applied exactly, round to nearest, no underflow",
            f"weights R rounded to {fmt}: |R~ - R| <= u |R| entrywise (no underflow); "
            f"max_k ||R(k)||_2 <= {r!r}, max_k || |R(k)| ||_2 <= {r_abs!r}",
            f"contraction as real dot products of length 2 c_in = {2 * c_in} in {acc}"
            + ("" if acc == fmt else f", stored in {fmt}"),
            f"{kept_modes} kept modes; the error measured in the {norm} norm over grid points "
            "and output channels",
        ),
    )
