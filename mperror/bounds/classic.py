"""Classic rounding-error bounds: ``gamma_n``, summation, dot and matrix products, block FMA.

Every bound here is proved in theory/T-gamma.md (deterministic) or theory/T-prob.md
(probabilistic) under the *standard model*: each operation's exact result ``z`` is rounded to
nearest in the format of the operation,

    fl(z) = z (1 + delta) + eta,   |delta| <= u = 2**-p,   |eta| <= eta_min,   delta * eta = 0,

where ``eta`` is nonzero only when ``|z|`` lies below the smallest normal ``2**emin`` (underflow)
and ``eta_min`` is half the spacing there. With subnormals, a sum of two values of the format
that falls below ``2**emin`` is exact, so only products (and conversions) can underflow; without
subnormals additions can too. The bounds include these absolute terms only where the data can
trigger them, so in the usual case they reduce to the textbook ``gamma_n |x|.|y|`` forms.

Bounds are computed in float64 and returned as :class:`~mperror.bounds.BoundResult` (scalar) or
:class:`EntrywiseBound` (one bound per entry of a matrix product). A bound is ``inf`` when
``n u >= 1`` or when the data could overflow the format, and ``vacuous`` when it allows a relative
error of 100% or more (``gamma >= 1``) or a failure probability of 1.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mperror._checks import is_integer
from mperror._records import Record
from mperror.bounds._checks import real_array
from mperror.bounds._result import BoundResult
from mperror.formats import FloatFormat, FormatLike, as_format

__all__ = [
    "EntrywiseBound",
    "block_fma_bound",
    "block_fma_depth",
    "blocked_sum_bound",
    "dot_bound",
    "dot_bound_probabilistic",
    "failure_probability",
    "gamma",
    "gamma_tilde",
    "lambda_for_probability",
    "matmul_bound",
    "pairwise_sum_bound",
    "recursive_sum_bound",
    "summation_depth",
]

#: Anything accepted where data are expected: a real floating-point tensor, a numpy array, or a
#: sequence of floats. Data are converted to float64 exactly (every format here fits in float64).
ArrayLike = torch.Tensor | np.ndarray | Sequence[float]

_ROUND_TO_NEAREST = "round to nearest in the operation's format: |delta| <= u = 2**-p"
_NO_OVERFLOW = "no overflow: checked, the bound is inf when (1 + gamma) * weight may exceed max"
_BLOCK_FMA_ORDERS = ("any", "c_last", "exact")


# -- gamma and its probabilistic sibling --------------------------------------------------------


def _count(n: object, name: str = "n") -> int:
    if not is_integer(n):
        raise TypeError(f"{name} must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {n}")
    return operator.index(n)


def _gamma_unit(n: int, u: float) -> float:
    if n >= 2**53:  # n u >= 1 for every format (u >= 2**-53); n might not convert to a float
        return math.inf
    nu = n * u  # exact: u is a power of two and n < 2**53
    if nu >= 1.0:
        return math.inf
    return nu / (1.0 - nu)


def gamma(n: int, fmt: FormatLike) -> float:
    """``gamma_n = n u / (1 - n u)``: the relative error of ``n`` roundings compounded.

    Symbols: ``n`` -> ``n`` (number of roundings), ``u`` -> ``fmt.unit_roundoff`` (``2**-p``).

    Inequality (Higham's Lemma 3.1)::

        |delta_k| <= u, rho_k = +-1, n u < 1  =>  prod_k (1 + delta_k)**rho_k = 1 + theta_n,
                                                  |theta_n| <= gamma_n

    Assumptions: ``n u < 1``; each ``delta_k`` is the relative error of one rounding to nearest
    (no underflow: the classic bounds below add the underflow terms themselves).

    >>> gamma(3, "bf16")  # 3 * 2**-8 / (1 - 3 * 2**-8) = 3/253
    0.011857707509881422
    >>> gamma(256, "bf16")
    inf

    Reference: N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed. (SIAM
    2002), Lemma 3.1; theory/T-gamma.md (``T-gamma.lemma``).

    Possible issues: infinite for ``n u >= 1`` (fp16 from ``n = 2048``, bf16 from ``256``,
    e4m3fn from ``16``), and at least 1 (a 100% relative error allowed) from ``n u >= 1/2``.
    It is a worst case: typical errors grow like ``sqrt(n) u`` (see :func:`gamma_tilde`).
    """
    return _gamma_unit(_count(n), as_format(fmt).unit_roundoff)


def _error_unit(fmt: FloatFormat, stochastic: bool) -> float:
    if not isinstance(stochastic, bool):
        raise TypeError(f"stochastic must be a bool, got {type(stochastic).__name__}")
    # Stochastic rounding can move to either neighbour: |delta| < spacing / |x| <= 2u.
    return 2.0 * fmt.unit_roundoff if stochastic else fmt.unit_roundoff


def _lam(lam: object) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.floating, np.integer)):
        raise TypeError(f"lam must be a float, got {type(lam).__name__}")
    lam = float(lam)
    if not (lam > 0 and math.isfinite(lam)):
        raise ValueError(f"lam must be positive and finite, got {lam}")
    return lam


def gamma_tilde(n: int, fmt: FormatLike, lam: float, *, stochastic: bool = False) -> float:
    """``gamma~_n(lambda) = exp(lambda sqrt(n) u + n u**2 / (1 - u)) - 1``: the probabilistic gamma.

    Symbols: ``n`` -> ``n``, ``lambda`` -> ``lam``, ``u`` -> ``fmt.unit_roundoff`` (``2u`` when
    ``stochastic``, the bound on a stochastic rounding's relative error).

    Inequality (Higham and Mary 2019, Theorem 2.4)::

        P( |theta_n| <= gamma~_n(lambda) ) >= 1 - 2 exp(-lambda**2 (1 - u)**2 / 2)

    for ``prod_k (1 + delta_k)**(+-1) = 1 + theta_n``, see :func:`failure_probability`.

    Assumptions: the ``delta_k`` are random, mean zero, ``|delta_k| <= u``, and independent
    (a model for round to nearest) or mean independent (a theorem for stochastic rounding:
    Connolly, Higham and Mary 2021).

    >>> round(gamma_tilde(4, "fp16", 1.0) / 2.0**-11, 4)  # in units of u: 2 + (2 + 4) u + ...
    2.0029

    Reference: N. J. Higham and T. Mary, "A new approach to probabilistic rounding error
    analysis", SIAM J. Sci. Comput. 41(5), 2019; M. P. Connolly, N. J. Higham and T. Mary,
    "Stochastic rounding and its probabilistic backward error analysis", SIAM J. Sci. Comput.
    43(1), 2021; theory/T-prob.md (``T-prob.lemma``).

    Possible issues: it says nothing below ``lambda ~ 1.18`` (the failure probability bound
    reaches 1); under round to nearest the independence it assumes is a model, and adversarial
    or structured data (e.g. many equal terms) can violate it.
    """
    n = _count(n)
    u = _error_unit(as_format(fmt), stochastic)
    lam = _lam(lam)
    if u >= 1.0 or n > 2**1000:  # stochastic rounding to p = 1 errs by up to 100% each time;
        return math.inf  # and sqrt(n) u >= 2**500 2**-53 puts exp far past float64's range
    exponent = lam * math.sqrt(n) * u + n * u * u / (1.0 - u)
    return math.expm1(exponent) if exponent < 709.0 else math.inf  # expm1 raises past ~709.78


def failure_probability(
    lam: float, fmt: FormatLike, *, terms: int = 1, stochastic: bool = False
) -> float:
    """Upper bound on the probability that ``gamma~(lambda)`` fails for any of ``terms`` products.

    ``min(1, terms * 2 exp(-lambda**2 (1 - u)**2 / 2))`` (a union bound over the ``terms``).

    >>> failure_probability(4.0, "fp16") == 2 * math.exp(-8 * (1 - 2.0**-11) ** 2)  # ~ 2 e**-8
    True
    >>> failure_probability(1.0, "fp16")  # below lambda ~ 1.18: no information
    1.0

    Reference: Higham and Mary 2019, Theorem 2.4 and Theorem 3.1 (union bound);
    theory/T-prob.md (``T-prob.lemma``, ``T-prob.dot``).

    Possible issues: the union bound ignores the correlation between the terms, so for a dot
    product of length ``n`` the stated probability is ``n`` times that of one product.
    """
    terms = _count(terms, "terms")
    u = _error_unit(as_format(fmt), stochastic)
    lam = _lam(lam)
    exponent = -lam * lam * (1.0 - u) ** 2 / 2.0
    if terms < 2**1000:
        return min(1.0, terms * 2.0 * math.exp(exponent))
    # in logs: terms beyond float64's range (math.log takes any int)
    log_p = math.log(terms) + math.log(2.0) + exponent
    return 1.0 if log_p >= 0.0 else math.exp(log_p)


def lambda_for_probability(
    probability: float, fmt: FormatLike, *, terms: int = 1, stochastic: bool = False
) -> float:
    """The ``lambda`` at which :func:`failure_probability` equals ``probability``.

    ``sqrt(2 log(2 terms / probability)) / (1 - u)``.

    >>> round(lambda_for_probability(1.0, "fp16"), 4)  # sqrt(2 ln 2) / (1 - 2**-11)
    1.178
    """
    terms = _count(terms, "terms")
    if terms == 0:
        raise ValueError("terms must be >= 1")
    if not (0.0 < probability <= 1.0):
        raise ValueError(f"probability must lie in (0, 1], got {probability}")
    u = _error_unit(as_format(fmt), stochastic)
    if u >= 1.0:  # no lambda gives a bound (stochastic rounding to p = 1)
        return math.inf
    # log(2 terms) - log(probability): 2 terms / probability overflows for tiny probabilities
    # (math.log takes ints of any size)
    log_ratio = math.log(2.0) + math.log(terms) - math.log(probability)
    return math.sqrt(2.0 * log_ratio) / (1.0 - u)


# -- rounding depths ----------------------------------------------------------------------------


def summation_depth(n: int, algorithm: str = "recursive", *, block: int | None = None) -> int:
    """The most roundings any of ``n`` terms suffers in a summation: the subscript of gamma.

    ``"recursive"``: ``((x1 + x2) + x3) + ...``, ``n - 1``. ``"pairwise"``: halves summed
    recursively, ``ceil(log2 n)``. ``"blocked"``: blocks of ``block`` consecutive terms summed
    recursively, then the block sums, ``(min(block, n) - 1) + (ceil(n / block) - 1)``. The counts
    are checked against explicit evaluation trees in theory/t_gamma.py.

    >>> summation_depth(1000), summation_depth(1000, "pairwise")
    (999, 10)
    >>> summation_depth(1000, "blocked", block=32)  # 31 inside a block, 31 across the 32 blocks
    62
    """
    n = _count(n)
    if algorithm == "recursive":
        return max(n - 1, 0)
    if algorithm == "pairwise":
        return (n - 1).bit_length() if n > 0 else 0  # ceil(log2 n)
    if algorithm == "blocked":
        b = _block(block)
        if n == 0:
            return 0
        return (min(b, n) - 1) + (-(-n // b) - 1)
    raise ValueError(f"algorithm must be 'recursive', 'pairwise' or 'blocked', got {algorithm!r}")


def _block(block: object) -> int:
    if block is None:
        raise ValueError("block must be given (a positive int) for blocked algorithms")
    b = _count(block, "block")
    if b == 0:
        raise ValueError("block must be >= 1")
    return b


def block_fma_depth(n: int, block: int, internal: str = "any") -> int:
    """The most accumulation roundings a product suffers in a block-FMA dot product of length ``n``.

    ``internal`` says how one block FMA adds its ``block`` exact products to the running sum
    ``C`` (which starts at 0): ``"any"`` (recursive summation of the ``block + 1`` terms in an
    unspecified order) gives ``n - 1``; ``"c_last"`` (the products summed recursively, then
    ``C`` added) gives ``min(block, n) + ceil(n / block) - 2``; ``"exact"`` (their exact sum
    rounded once) gives ``ceil(n / block)``, one less when ``min(block, n) == 1``. Checked
    against explicit trees (every order, for ``"any"``) in theory/t_gamma.py.

    >>> block_fma_depth(64, 4), block_fma_depth(64, 4, "c_last"), block_fma_depth(64, 4, "exact")
    (63, 18, 16)
    """
    n = _count(n)
    b = _block(block)
    if internal not in _BLOCK_FMA_ORDERS:
        raise ValueError(f"internal must be one of {_BLOCK_FMA_ORDERS}, got {internal!r}")
    if n == 0:
        return 0
    blocks = -(-n // b)
    if internal == "any":
        return n - 1
    if internal == "c_last":
        return min(b, n) + blocks - 2
    return blocks - (1 if min(b, n) == 1 else 0)


# -- helpers shared by the data-dependent bounds ------------------------------------------------


def _as_float64(x: object, name: str, ndim: int | None = None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a real floating-point tensor, got {x.dtype}")
        t = x.detach().to(device="cpu", dtype=torch.float64)
    else:
        t = torch.as_tensor(real_array(x, name))
    if ndim is not None and t.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite (no inf or NaN)")
    return t


def _underflow_step(fmt: FloatFormat) -> float:
    """``eta_min``: the largest absolute error of a rounding below ``2**emin`` (half a step),
    rounded up to a float64 value (fp64's half step, ``2**-1075``, is not one)."""
    return max(fmt.smallest_subnormal / 2.0, math.ulp(0.0))


def _tiny(a: torch.Tensor, b: torch.Tensor, limit: float) -> torch.Tensor:
    """``0 < |a b| <= limit`` elementwise (broadcast), decided without forming ``a b``, which
    underflows in float64 for data below ``2**-537`` (fp64's own products): with
    ``a = ma 2**ea``, ``b = mb 2**eb`` (frexp), ``|a b| <= limit`` iff
    ``|ma mb| <= limit 2**-(ea + eb)``; the rounded ``ma mb`` in [1/4, 1) errs only toward
    counting a product (both sides of the comparison are then float64 values)."""
    ma, ea = torch.frexp(a)
    mb, eb = torch.frexp(b)
    mantissas = (ma * mb).abs()
    scale = torch.ldexp(torch.full_like(mantissas, limit), -(ea + eb))
    return (mantissas > 0) & (mantissas <= scale)


def _tiny_products(x: torch.Tensor, y: torch.Tensor, fmt: FloatFormat) -> int:
    return int(_tiny(x, y, fmt.smallest_normal).sum())


def _scalar_result(
    theorem: str,
    coefficient: float,
    weight: float,
    absolute: float,
    limit: float,
    assumptions: tuple[str, ...],
    probability: float | None = None,
) -> BoundResult:
    if math.isinf(coefficient):
        bound = math.inf
    else:
        bound = coefficient * weight + absolute
        if (1.0 + coefficient) * weight + absolute > limit:
            bound = math.inf  # an intermediate result may overflow
    vacuous = math.isinf(bound) or coefficient >= 1.0
    if probability is not None and probability >= 1.0:
        vacuous = True
    return BoundResult(
        theorem=theorem,
        bound=bound,
        vacuous=vacuous,
        assumptions=assumptions,
        probability=probability,
    )


def _sum_result(
    theorem: str, x: ArrayLike, fmt: FormatLike, depth_of: str, block: int | None = None
) -> BoundResult:
    f = as_format(fmt)
    v = _as_float64(x, "x").reshape(-1)
    n = v.numel()
    depth = summation_depth(n, depth_of, block=block)
    coefficient = _gamma_unit(depth, f.unit_roundoff)
    weight = float(v.abs().sum())
    absolute = 0.0
    if not f.subnormals:
        absolute = max(n - 1, 0) * _underflow_step(f) * (1.0 + coefficient)
    assumptions = (
        _ROUND_TO_NEAREST,
        f"the x_i are values of {f} (their own rounding is not included)",
        "with subnormals, additions never underflow; without, each adds at most eta_min",
        _NO_OVERFLOW,
    )
    return _scalar_result(theorem, coefficient, weight, absolute, f.max, assumptions)


# -- summation ----------------------------------------------------------------------------------


def recursive_sum_bound(x: ArrayLike, fmt: FormatLike) -> BoundResult:
    """Bound on the error of recursive summation ``((x1 + x2) + x3) + ...`` in ``fmt``.

    Symbols: ``x_i`` -> ``x`` (flattened), ``n`` -> ``x.numel()``, ``u`` -> ``fmt.unit_roundoff``,
    ``s^`` the computed sum, ``s`` the exact one.

    Inequality::

        |s^ - s| <= gamma_(n-1) * sum_i |x_i|

    Assumptions: the ``x_i`` are values of ``fmt``; every addition rounds to nearest in ``fmt``;
    no overflow (checked). With subnormals no addition underflows; without them each of the
    ``n - 1`` additions may add ``eta_min`` (included).

    >>> r = recursive_sum_bound([1.0, 1.0, 1.0], "fp16")  # gamma_2 * 3 = 3 * 2**-10 / (1 - 2**-10)
    >>> r.bound == 3 * 2.0**-10 / (1 - 2.0**-10), r.vacuous
    (True, False)

    Reference: Higham 2002, §4.2 (eq. 4.4); theory/T-gamma.md (``T-gamma.recursive-sum``).

    Possible issues: relative to ``|s|`` the bound is ``gamma_(n-1) * cond`` with
    ``cond = sum |x_i| / |sum x_i|``, large under cancellation. Infinite from ``n - 1 >= 1/u``
    (fp16: 2049 terms) and vacuous from ``(n - 1) u >= 1/2``. The order of the terms matters to
    the error but not to this bound.
    """
    return _sum_result("T-gamma.recursive-sum", x, fmt, "recursive")


def pairwise_sum_bound(x: ArrayLike, fmt: FormatLike) -> BoundResult:
    """Bound on the error of pairwise (cascade) summation in ``fmt``.

    The terms are split in halves (the first ``n // 2`` and the rest), each half summed
    pairwise, and the two sums added.

    Symbols: as :func:`recursive_sum_bound`.

    Inequality::

        |s^ - s| <= gamma_(ceil(log2 n)) * sum_i |x_i|

    Assumptions: as :func:`recursive_sum_bound`.

    >>> pairwise_sum_bound([1.0] * 8, "bf16").bound == 8 * gamma(3, "bf16")  # log2(8) = 3 levels
    True

    Reference: Higham 2002, §4.2 (pairwise summation); theory/T-gamma.md
    (``T-gamma.pairwise-sum``).

    Possible issues: the bound is for this textbook splitting; library reductions
    (``torch.sum``, ``numpy.sum``) use blocked and vectorised variants with other depths (see
    :func:`blocked_sum_bound`).
    """
    return _sum_result("T-gamma.pairwise-sum", x, fmt, "pairwise")


def blocked_sum_bound(
    x: ArrayLike, fmt: FormatLike, block: int, *, outer_fmt: FormatLike | None = None
) -> BoundResult:
    """Bound on the error of blocked summation: blocks of ``block`` terms, then their sums.

    Each block of ``block`` consecutive terms is summed recursively in ``fmt``; the block sums
    are then summed recursively in ``outer_fmt`` (default ``fmt``), which must hold every value
    of ``fmt`` (e.g. fp16 blocks accumulated in fp32).

    Symbols: ``b`` -> ``block``, ``q = ceil(n / b)``, ``u`` -> ``fmt.unit_roundoff``,
    ``u'`` -> ``outer_fmt.unit_roundoff``; the rest as :func:`recursive_sum_bound`.

    Inequality::

        |s^ - s| <= ((1 + gamma_(min(b, n) - 1)(u)) (1 + gamma_(q - 1)(u')) - 1) * sum_i |x_i|

    which is ``gamma_(b + q - 2) * sum |x_i|`` for one format (``b <= n``).

    Assumptions: as :func:`recursive_sum_bound`, for both formats.

    >>> blocked_sum_bound([1.0] * 16, "fp16", 4).bound == 16 * gamma(6, "fp16")  # 3 + 3 roundings
    True

    Reference: Higham 2002, §4.2; P. Blanchard, N. J. Higham and T. Mary, "A class of fast and
    accurate summation algorithms", SIAM J. Sci. Comput. 42(3), 2020; theory/T-gamma.md
    (``T-gamma.blocked-sum``).

    Possible issues: ``b ~ sqrt(n)`` minimises the one-format bound (``~ 2 sqrt(n) u``). With an
    ``outer_fmt`` narrower than ``fmt`` the conversion of block sums would add errors not
    modelled here, so it is refused.
    """
    f = as_format(fmt)
    if outer_fmt is None:
        return _sum_result("T-gamma.blocked-sum", x, f, "blocked", block=block)
    o = as_format(outer_fmt, argument="outer_fmt")
    if not (o.precision >= f.precision and o.emin <= f.emin and o.max >= f.max):
        raise ValueError(
            f"outer_fmt must hold every value of fmt (precision, range): {o} cannot hold {f}"
        )
    b = _block(block)
    v = _as_float64(x, "x").reshape(-1)
    n = v.numel()
    blocks = -(-n // b) if n else 0
    inner = _gamma_unit(max(min(b, n) - 1, 0), f.unit_roundoff)
    outer = _gamma_unit(max(blocks - 1, 0), o.unit_roundoff)
    coefficient = (1.0 + inner) * (1.0 + outer) - 1.0
    weight = float(v.abs().sum())
    absolute = 0.0
    if not f.subnormals:
        absolute += (n - blocks) * _underflow_step(f) * (1.0 + coefficient)
    if not o.subnormals:
        absolute += max(blocks - 1, 0) * _underflow_step(o) * (1.0 + coefficient)
    assumptions = (
        _ROUND_TO_NEAREST,
        f"the x_i are values of {f}; block sums are accumulated in {o}",
        "with subnormals, additions never underflow; without, each adds at most eta_min",
        _NO_OVERFLOW + f" (each block's partial sums against {f}'s max, the rest against {o}'s)",
    )
    result = _scalar_result(
        "T-gamma.blocked-sum", coefficient, weight, absolute, o.max, assumptions
    )
    if n:  # a block's partial sums stay within (1 + inner) times its sum |x_i|, in fmt
        padded = torch.nn.functional.pad(v.abs(), (0, blocks * b - n))
        heaviest = float(padded.reshape(blocks, b).sum(dim=1).max())
        if (1.0 + inner) * heaviest + absolute > f.max:
            result = dataclasses.replace(result, bound=math.inf, vacuous=True)
    return result


# -- dot products -------------------------------------------------------------------------------


def _dot_inputs(
    x: ArrayLike, y: ArrayLike, fmt: FormatLike, acc_fmt: FormatLike | None
) -> tuple[torch.Tensor, torch.Tensor, FloatFormat, FloatFormat]:
    f = as_format(fmt)
    acc = f if acc_fmt is None else as_format(acc_fmt, argument="acc_fmt")
    xv = _as_float64(x, "x", ndim=1)
    yv = _as_float64(y, "y", ndim=1)
    if xv.shape != yv.shape:
        raise ValueError(f"x and y must have the same length, got {xv.numel()} and {yv.numel()}")
    return xv, yv, f, acc


def _dot_absolute(x: torch.Tensor, y: torch.Tensor, acc: FloatFormat, coefficient: float) -> float:
    n = x.numel()
    events = _tiny_products(x, y, acc) + (0 if acc.subnormals else max(n - 1, 0))
    return events * _underflow_step(acc) * (1.0 + coefficient)


def dot_bound(
    x: ArrayLike, y: ArrayLike, fmt: FormatLike, *, acc_fmt: FormatLike | None = None
) -> BoundResult:
    """Bound on the error of a recursive dot product ``sum_i x_i y_i``, products rounded.

    Each product ``x_i y_i`` is rounded to ``acc_fmt`` (default ``fmt``) and added to the
    running sum, also rounded to ``acc_fmt``.

    Symbols: ``x, y`` -> ``x, y`` (1-D, length ``n``), ``u`` -> ``acc_fmt.unit_roundoff``,
    ``eta_min`` -> ``acc_fmt.smallest_subnormal / 2``, ``k`` the number of nonzero products
    with ``|x_i y_i| <= 2**emin`` (that can underflow).

    Inequality::

        |fl(x.y) - x.y| <= gamma_n * sum_i |x_i y_i|  +  (1 + gamma_n) * k * eta_min

    (without subnormals ``k`` also counts the ``n - 1`` additions). In the usual case ``k = 0``
    and this is the textbook ``gamma_n |x|.|y|``.

    Assumptions: ``x``, ``y`` are values of ``fmt`` (their own rounding is not included); round
    to nearest; no overflow (checked).

    >>> dot_bound([1.0, 2.0], [3.0, 4.0], "fp16").bound == gamma(2, "fp16") * 11
    True

    Reference: Higham 2002, §3.1 (eq. 3.5); theory/T-gamma.md (``T-gamma.dot``).

    Possible issues: relative to ``|x.y|`` the bound is multiplied by
    ``|x|.|y| / |x.y|``, unbounded under cancellation; infinite from ``n u >= 1`` (fp16:
    ``n = 2048``; bf16: ``256``). With exact products (FMA, tensor cores) use
    :func:`block_fma_bound`, which has one rounding fewer per term.
    """
    xv, yv, _, acc = _dot_inputs(x, y, fmt, acc_fmt)
    n = xv.numel()
    coefficient = _gamma_unit(n, acc.unit_roundoff)
    weight = float((xv * yv).abs().sum())
    absolute = _dot_absolute(xv, yv, acc, coefficient)
    assumptions = (
        _ROUND_TO_NEAREST + f"; products and sums rounded to {acc}",
        "x and y are values of the input format (their own rounding is not included)",
        "products below 2**emin may underflow: each adds at most eta_min (included)",
        _NO_OVERFLOW,
    )
    return _scalar_result("T-gamma.dot", coefficient, weight, absolute, acc.max, assumptions)


def dot_bound_probabilistic(
    x: ArrayLike,
    y: ArrayLike,
    fmt: FormatLike,
    lam: float,
    *,
    acc_fmt: FormatLike | None = None,
    stochastic: bool = False,
) -> BoundResult:
    """Probabilistic bound on the error of a recursive dot product (Higham and Mary).

    Same computation as :func:`dot_bound`; ``gamma_n`` is replaced by ``gamma~_n(lambda)``.

    Symbols: ``lambda`` -> ``lam``, ``u`` -> ``acc_fmt.unit_roundoff`` (``2u`` when
    ``stochastic``); the rest as :func:`dot_bound`.

    Inequality (holds except with probability at most ``.probability``)::

        |fl(x.y) - x.y| <= gamma~_n(lambda) * sum_i |x_i y_i|  +  (1 + u)**(n - 1) k eta_min,
        P(failure) <= min(1, n * 2 exp(-lambda**2 (1 - u)**2 / 2))

    The factor ``n`` is the union bound over the ``n`` terms ``x_i y_i (1 + theta_i)``. The
    underflow term's factor bounds the ``n - 1`` later additions an underflow error is carried
    through, ``|1 + delta| <= 1 + u`` each: :func:`dot_bound`'s ``1 + gamma_n`` bounds it too,
    but is infinite from ``n u >= 1``, where the probabilistic bound is most wanted.

    Assumptions: rounding errors are random with mean zero, ``|delta| <= u``, and independent
    (round to nearest: a model, not a theorem) or mean independent (``stochastic=True``:
    stochastic rounding, a theorem). The underflow term is deterministic: ``k`` tiny products
    as in :func:`dot_bound`, each with ``eta_min`` half a subnormal step under round to nearest
    and a whole step under stochastic rounding (which below ``2**emin`` errs by less than one
    step, not half of one).

    >>> r = dot_bound_probabilistic([1.0] * 100, [1.0] * 100, "fp16", 5.0)
    >>> round(r.bound, 3)  # 100 * gamma~ ~ 100 * lambda sqrt(n) u = 100 * 50 * 2**-11 = 2.44
    2.474
    >>> round(r.probability, 6)  # 100 * 2 exp(-25 (1 - u)**2 / 2) ~ 200 e**-12.5 = 7.45e-4
    0.000754

    Reference: Higham and Mary 2019, Theorem 3.1; Connolly, Higham and Mary 2021, §4;
    theory/T-prob.md (``T-prob.dot``).

    Possible issues: vacuous (``.probability == 1``) for ``lambda <= sqrt(2 log(2n)) / (1 - u)``;
    for round to nearest, data with structure (equal terms, sorted data, exactly representable
    partial sums) break the independence model and can exceed the bound.
    """
    xv, yv, _, acc = _dot_inputs(x, y, fmt, acc_fmt)
    n = xv.numel()
    coefficient = gamma_tilde(n, acc, lam, stochastic=stochastic)
    unit = acc.unit_roundoff * (2.0 if stochastic else 1.0)
    weight = float((xv * yv).abs().sum())
    events = _tiny_products(xv, yv, acc) + (0 if acc.subnormals else max(n - 1, 0))
    step = _underflow_step(acc) * (2.0 if stochastic else 1.0)
    absolute = 0.0
    if events:  # times (1 + unit)**(n - 1), the growth over the later additions
        exponent = max(n - 1, 0) * math.log1p(unit)
        absolute = events * step * (math.exp(exponent) if exponent < 709.0 else math.inf)
    probability = failure_probability(lam, acc, terms=max(n, 1), stochastic=stochastic)
    model = (
        "stochastic rounding: errors mean independent, mean zero, |delta| < 2u (theorem)"
        if stochastic
        else "rounding errors modelled as independent, mean zero, |delta| <= u (a model for RN)"
    )
    assumptions = (
        model,
        "x and y are values of the input format (their own rounding is not included)",
        (
            "products below 2**emin may underflow: each adds at most "
            + ("a subnormal step" if stochastic else "eta_min")
            + " (included)"
        ),
        _NO_OVERFLOW,
    )
    return _scalar_result(
        "T-prob.dot", coefficient, weight, absolute, acc.max, assumptions, probability
    )


# -- matrix products ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class EntrywiseBound(Record):
    """A bound for each entry of a matrix product, optionally checked against observed errors.

    Attributes:
        theorem: stable id of the theory/ note that proves it, e.g. ``"T-gamma.matmul"``.
        bound: float64 tensor, one bound per entry (``inf`` where overflow is possible).
        coefficient: the ``c`` of ``bound = c |A||B|`` when no underflow term applies (the
            number to quote: ``gamma_n`` for :func:`matmul_bound`).
        vacuous: True when some entry's bound is infinite or ``coefficient >= 1``.
        assumptions: the conditions under which the bound is proved, in words.
        observed: the measured entrywise errors, when checked.
        holds: every ``observed <= bound``, when checked.
        ratio: the largest ``observed / bound`` over the entries (``0/0`` counts as 0), when
            checked.
    """

    theorem: str
    bound: torch.Tensor
    coefficient: float
    vacuous: bool = False
    assumptions: tuple[str, ...] = ()
    observed: torch.Tensor | None = None
    holds: bool | None = None
    ratio: float | None = None

    @property
    def max(self) -> float:
        """The largest entry of :attr:`bound` (0 for an empty product)."""
        return float(self.bound.max()) if self.bound.numel() else 0.0

    def check(self, observed: torch.Tensor) -> EntrywiseBound:
        """This bound with ``observed`` (same shape, absolute errors) filled in and compared."""
        obs = _as_float64_any(observed, "observed")
        if obs.shape != self.bound.shape:
            raise ValueError(
                f"observed must have the bound's shape {tuple(self.bound.shape)}, "
                f"got {tuple(obs.shape)}"
            )
        holds = bool((obs <= self.bound).all())  # NaN compares False: a NaN error fails
        ratios = torch.where(
            obs == 0, torch.zeros_like(obs), obs / torch.where(self.bound == 0, 0.0, self.bound)
        )
        ratio = float(ratios.max()) if ratios.numel() else 0.0
        return EntrywiseBound(
            theorem=self.theorem,
            bound=self.bound,
            coefficient=self.coefficient,
            vacuous=self.vacuous,
            assumptions=self.assumptions,
            observed=obs,
            holds=holds,
            ratio=ratio,
        )


def _as_float64_any(x: object, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a real floating-point tensor, got {x.dtype}")
        return x.detach().to(device="cpu", dtype=torch.float64)
    return torch.as_tensor(real_array(x, name))


def _matrices(a: ArrayLike, b: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    am = _as_float64(a, "A", ndim=2)
    bm = _as_float64(b, "B", ndim=2)
    if am.shape[1] != bm.shape[0]:
        raise ValueError(f"A and B do not chain: shapes {tuple(am.shape)} and {tuple(bm.shape)}")
    return am, bm


def _tiny_product_counts(a: torch.Tensor, b: torch.Tensor, limit: float) -> torch.Tensor:
    """``K_ij = #{k : 0 < |a_ik b_kj| <= limit}``, by chunks of the inner dimension."""
    m, n = a.shape
    p = b.shape[1]
    counts = torch.zeros(m, p, dtype=torch.float64)
    if n == 0 or m == 0 or p == 0:
        return counts
    step = max(1, (1 << 22) // max(1, m * p))
    for start in range(0, n, step):
        tiny = _tiny(a[:, start : start + step, None], b[None, start : start + step, :], limit)
        counts += tiny.sum(dim=1).to(torch.float64)
    return counts


def _entrywise(
    theorem: str,
    coefficient: float,
    bound: torch.Tensor,
    reach: torch.Tensor,
    limit: float,
    assumptions: tuple[str, ...],
) -> EntrywiseBound:
    """``reach``: an upper bound on every intermediate's magnitude, compared with ``limit``."""
    if math.isinf(coefficient):
        bound = torch.full_like(bound, math.inf)
    else:
        bound = torch.where(reach > limit, math.inf, bound)
    vacuous = bool(torch.isinf(bound).any()) or coefficient >= 1.0
    return EntrywiseBound(
        theorem=theorem,
        bound=bound,
        coefficient=coefficient,
        vacuous=vacuous,
        assumptions=assumptions,
    )


def matmul_bound(
    a: ArrayLike, b: ArrayLike, fmt: FormatLike, *, acc_fmt: FormatLike | None = None
) -> EntrywiseBound:
    """Entrywise bound on the error of ``C = A B`` computed by recursive dot products.

    Every entry is a dot product of length ``n`` (the inner dimension) with products and sums
    rounded to ``acc_fmt`` (default ``fmt``), as in :func:`dot_bound`.

    Symbols: ``A`` -> ``a`` (``m x n``), ``B`` -> ``b`` (``n x p``), ``u`` ->
    ``acc_fmt.unit_roundoff``, ``K`` the matrix of counts of nonzero products
    ``|a_ik b_kj| <= 2**emin`` (that can underflow).

    Inequality (entrywise)::

        |C^ - C| <= gamma_n |A| |B|  +  (1 + gamma_n) K eta_min

    Assumptions: ``A``, ``B`` hold values of ``fmt``; round to nearest; no overflow (checked per
    entry: ``inf`` where ``(1 + gamma_n)(|A||B|)_ij`` may exceed the format's max).

    Returns an :class:`EntrywiseBound` whose ``.bound`` is the ``m x p`` tensor of bounds and
    whose ``.coefficient`` is ``gamma_n``; ``.max`` gives the largest entry.

    >>> r = matmul_bound([[1.0, 2.0]], [[3.0], [4.0]], "fp16")
    >>> r.bound.item() == 11 * gamma(2, "fp16"), r.coefficient == gamma(2, "fp16")
    (True, True)

    Reference: Higham 2002, §3.5 (eq. 3.13); theory/T-gamma.md (``T-gamma.matmul``).

    Possible issues: as :func:`dot_bound`, entry by entry. Blocked or Strassen-like algorithms
    (most BLAS, cuBLAS) and tensor cores have other constants: use :func:`block_fma_bound` for
    the latter.
    """
    am, bm = _matrices(a, b)
    f = as_format(fmt)
    acc = f if acc_fmt is None else as_format(acc_fmt, argument="acc_fmt")
    n = am.shape[1]
    coefficient = _gamma_unit(n, acc.unit_roundoff)
    weight = am.abs() @ bm.abs()
    events = _tiny_product_counts(am, bm, acc.smallest_normal)
    if not acc.subnormals:
        events = events + max(n - 1, 0)
    absolute = events * (_underflow_step(acc) * (1.0 + coefficient))
    bound = coefficient * weight + absolute if math.isfinite(coefficient) else weight
    reach = (1.0 + coefficient) * weight + absolute if math.isfinite(coefficient) else weight
    assumptions = (
        _ROUND_TO_NEAREST + f"; products and sums rounded to {acc}",
        "A and B hold values of the input format (their own rounding is not included)",
        "products below 2**emin may underflow: each adds at most eta_min (included)",
        _NO_OVERFLOW + " (per entry)",
    )
    return _entrywise("T-gamma.matmul", coefficient, bound, reach, acc.max, assumptions)


def block_fma_bound(
    a: ArrayLike,
    b: ArrayLike,
    block: int,
    *,
    fmt: FormatLike = "fp16",
    acc_fmt: FormatLike = "fp32",
    convert_inputs: bool = True,
    internal: str = "any",
) -> EntrywiseBound:
    """Entrywise bound on ``C = A B`` computed with a mixed-precision block FMA (tensor cores).

    The model of Blanchard, Higham, Lopez, Mary and Pranesh (2020): ``A`` and ``B`` are rounded
    to ``fmt`` (unless ``convert_inputs=False``: then they must already hold values of
    ``fmt``), the products of ``fmt`` values are formed exactly, and each block FMA adds
    ``block`` of them to the running ``C`` (starting at 0) in ``acc_fmt``; ``internal`` gives
    how (see :func:`block_fma_depth`: ``"any"`` unspecified order, ``"c_last"``, ``"exact"``).

    Symbols: ``u_in`` -> ``fmt.unit_roundoff``, ``u_acc`` -> ``acc_fmt.unit_roundoff``,
    ``m`` -> ``block_fma_depth(n, block, internal)`` (accumulation roundings per product), plus
    one where a product of two ``fmt`` values need not be an ``acc_fmt`` value
    (``2 p_in > p_acc``, e.g. bf16 products accumulated in bf16: adding one to ``C = 0``, or
    a lone product, is then a rounding too),
    ``E_A = u_in |A|`` (plus ``eta_in`` where ``0 < |A| <= 2**emin_in``; 0 without
    conversion), likewise ``E_B``.

    Inequality (entrywise; in the normal range the general form reduces to the first line)::

        |C^ - A B| <= (2 u_in + u_in**2 + (1 + u_in)**2 gamma_m(u_acc)) |A| |B|
        in general:   E_A (|B| + E_B) + |A| E_B + gamma_m(u_acc) (|A| + E_A)(|B| + E_B)
                      + (1 + gamma_m(u_acc)) n eta_acc   [only off the accumulator's grid]

    Assumptions: exact products (true of tensor cores for fp16/bf16 inputs); each accumulation
    rounds to nearest in ``acc_fmt``; results below ``2**emin_acc`` are exact when every product
    of ``fmt`` values lies on ``acc_fmt``'s subnormal grid (fp16 -> fp32 yes; bf16 -> fp32
    no: then the ``n eta_acc`` term is added); no overflow (checked per entry).

    The published theorem's exact statement could not be retrieved while writing this; the
    bound above is derived in theory/T-gamma.md (``T-gamma.block-fma``) from that model and
    agrees to first order with the ``(2 u_in + gamma_n(u_acc)) |A||B|`` that REFERENCES §7
    quotes from the paper.

    >>> r = block_fma_bound([[1.0] * 4], [[1.0]] * 4, 4)  # 4 exact products, 3 fp32 roundings
    >>> round(r.coefficient / 2.0**-11, 6)  # in units of u_in: 2 + u_in + 3 u_acc / u_in + ...
    2.000855

    Reference: P. Blanchard, N. J. Higham, F. Lopez, T. Mary and S. Pranesh, "Mixed precision
    block fused multiply-add: error analysis and application to GPU tensor cores", SIAM J. Sci.
    Comput. 42(3), C124-C141, 2020; theory/T-gamma.md (``T-gamma.block-fma``).

    Possible issues: the ``2 u_in`` term dominates for fp32 accumulation (fp16: ``~ 1e-3``
    whatever ``n``); real tensor cores truncate or keep extra bits inside the FMA (Fasi et al.
    2021), which this round-to-nearest model does not cover, so compare with hardware only with
    the slack that entails.
    """
    am, bm = _matrices(a, b)
    fi = as_format(fmt)
    fa = as_format(acc_fmt, argument="acc_fmt")
    if not isinstance(convert_inputs, bool):
        raise TypeError(f"convert_inputs must be a bool, got {type(convert_inputs).__name__}")
    n = am.shape[1]
    depth = block_fma_depth(n, block, internal)
    # The depth counts no rounding where a product meets C = 0 or stands alone: exact only if
    # the product of two fmt values is an acc_fmt value (2 p_in <= p_acc); else one more each.
    products_fit = 2 * fi.precision <= fa.precision
    if not products_fit and n > 0:
        depth += 1
    acc_gamma = _gamma_unit(depth, fa.unit_roundoff)
    u_in = fi.unit_roundoff
    coefficient = (1.0 + u_in) ** 2 * (1.0 + acc_gamma) - 1.0 if convert_inputs else acc_gamma
    too_large = False
    if convert_inputs:
        eta_in = _underflow_step(fi)

        def conversion_error(m: torch.Tensor) -> torch.Tensor:
            tiny = (m != 0) & (m.abs() <= fi.smallest_normal)
            return u_in * m.abs() + torch.where(tiny, eta_in, 0.0)

        err_a, err_b = conversion_error(am), conversion_error(bm)
        # Rounding to nearest overflows only from max + spacing(max) / 2 on; stay conservative.
        too_large = bool((am.abs() > fi.max).any() or (bm.abs() > fi.max).any())
    else:
        for name, m in (("A", am), ("B", bm)):
            if not bool(fi.is_representable(m).all()):
                raise ValueError(f"{name} must hold values of {fi} when convert_inputs=False")
        err_a, err_b = torch.zeros_like(am), torch.zeros_like(bm)
    abs_a, abs_b = am.abs(), bm.abs()
    wide_a, wide_b = abs_a + err_a, abs_b + err_b
    inputs_part = err_a @ wide_b + abs_a @ err_b
    rounded_weight = wide_a @ wide_b
    q_in = fi.emin - fi.precision + 1  # every value's last bit, subnormals or not
    q_acc = fa.emin - fa.precision + 1
    on_grid = fa.subnormals and 2 * q_in >= q_acc
    absolute = 0.0 if on_grid else n * _underflow_step(fa) * (1.0 + acc_gamma)
    if math.isfinite(acc_gamma):
        bound = inputs_part + acc_gamma * rounded_weight + absolute
        reach = (1.0 + acc_gamma) * rounded_weight + absolute
    else:
        bound = reach = rounded_weight
    if too_large:
        reach = torch.full_like(reach, math.inf)
    assumptions = (
        f"inputs {'rounded to nearest in' if convert_inputs else 'already values of'} {fi}; "
        "products formed exactly"
        + ("" if products_fit else f", rounded to {fa} where each enters the sum (included)"),
        f"block FMA of size {block} ({internal!r} internal order), accumulation rounded to "
        f"nearest in {fa}",
        "results below 2**emin_acc are exact"
        if on_grid
        else "accumulation may underflow: each rounding adds at most eta_acc (included)",
        _NO_OVERFLOW + " (per entry)",
    )
    return _entrywise("T-gamma.block-fma", coefficient, bound, reach, fa.max, assumptions)
