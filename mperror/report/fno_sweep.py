"""The FNO bounds against measurements: a resolution sweep, the crossover, and FFT overflow.

Tu et al. (ICLR 2024; REFERENCES section 5) argue that in a Fourier neural operator the error of
a half-precision FFT is comparable to the discretisation error at practical resolutions, and that
an unnormalised half FFT overflows unless ``N M <= 65504``. This module measures both on functions
whose Fourier coefficients are known in closed form and sets the numbers beside the bounds of
:mod:`mperror.bounds.fno` (theory/fno-bounds.md):

* :func:`resolution_sweep`: per format and resolution ``n`` (``N = n**d`` points), the measured
  discretisation error ``max_w |v^(w) - v^_n(w)|`` (float64) with ``T-fno-disc``, and the
  measured precision error ``max_k |V(k) - v^_n(k)|`` of the staged FFT in the format
  (:func:`mperror.ops.fft` / :func:`mperror.ops.fftn`) with ``T-fno-prec``
  (:func:`~mperror.bounds.fno.fft_precision_bound`); whether the unnormalised FFT overflowed
  beside :func:`~mperror.bounds.fft.fft_overflows`.
* :func:`aliased_worst_case`: the tight example of ``T-fno-disc``, ``sin(2 pi (n + w) x)``,
  whose discretisation error is ``M / 2`` at every ``n``.
* :func:`measured_crossover`: the first ``n`` where the measured precision error reaches the
  measured discretisation error, beside :func:`~mperror.bounds.fno.crossover_resolution`.
* :func:`overflow_cases`: inputs with ``N M`` just below and just above ``fmt.max``, and the
  tanh pre-activation at ``128**2`` and ``256**2`` points.
* :func:`fno_claims`: all three, judged by the criteria below (fixed before any run), plus the
  figure ``fno_bounds.png``.

Conventions: centred grids ``x_j = (j + 1/2) / n`` (``c_1 = 1/4``); the test functions are
products over the ``d`` axes of a 1-D factor. The emulated FFT is the unnormalised transform
(as cuFFT computes it; its overflow is the one :func:`fft_overflows` predicts) and the forward
normalisation ``1/N`` is then applied exactly in float64, as ``T-fno-prec`` assumes (rounding
``1/N`` to the format would flush it to zero in e4m3fn from ``N = 1024``, whose smallest
subnormal is ``2**-9``). A saturating format (e4m3fn) overflows silently; its overflow is
detected by running the same arithmetic in a twin format that overflows to ``inf`` instead
(identical results wherever nothing overflows).
"""

from __future__ import annotations

import dataclasses
import math
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.special import iv

from mperror import ops
from mperror._checks import is_integer
from mperror._records import Record
from mperror.bounds.fft import fft_overflows
from mperror.bounds.fno import (
    crossover_resolution,
    discretisation_bound,
    fft_precision_bound,
    input_rounding_bound,
)
from mperror.formats import FloatFormat, FormatLike, Overflow, as_format
from mperror.report.claims import Claim
from mperror.report.figures import save_figure
from mperror.rounding import round as round_to

__all__ = [
    "CROSSOVER_D",
    "CROSSOVER_FORMAT",
    "CROSSOVER_FUNCTION",
    "DEFAULT_FORMATS",
    "FULL_NS_1D",
    "FULL_NS_2D",
    "FUNCTIONS",
    "MODES",
    "PAPER_CROSSOVER",
    "QUICK_NS_1D",
    "QUICK_NS_2D",
    "AliasedRecord",
    "CrossoverRecord",
    "OverflowCase",
    "PeriodicFunction",
    "SweepRecord",
    "aliased_worst_case",
    "draw_sweep",
    "fno_claims",
    "measured_crossover",
    "overflow_cases",
    "resolution_sweep",
]

DEFAULT_FORMATS = ("fp16", "bf16", "e5m2", "e4m3fn")
QUICK_NS_1D = (16, 32, 64, 128, 256, 512, 1024)
QUICK_NS_2D = QUICK_NS_1D  # 1024**2 points: about a second per format on one core
FULL_NS_1D = (*QUICK_NS_1D, 2048, 4096, 8192, 16384)
FULL_NS_2D = (*QUICK_NS_2D, 2048)
#: The low modes at which the discretisation error is measured, per dimension.
MODES = {1: ((0,), (1,), (2,), (3,)), 2: ((0, 0), (1, 0), (0, 1), (1, 1))}

#: Claim "fno.precision-vs-discretisation" is judged on this function, dimension and format
#: against the paper's finding: it holds when the measured crossover is resolved inside the 1-D
#: sweep (some n after the first has measured precision error >= measured discretisation
#: error, none before) and lies in PAPER_CROSSOVER = (low, high] (the paper: "overtook between
#: n = 64 and 256", so not yet at 64; the first sampled n at or past the crossing is 128 or
#: 256 then, and 64 would put the crossing in (32, 64]). The crossing of the two worst-case bounds
#: (crossover_resolution) is reported beside it but does not judge it: both bounds are upper
#: bounds, so their crossing neither precedes nor follows the crossing of the errors.
CROSSOVER_FUNCTION = "triangle"
CROSSOVER_D = 1
CROSSOVER_FORMAT = "fp16"
PAPER_CROSSOVER = (64, 256)
_CROSSOVER_CRITERION = (
    f"{CROSSOVER_FORMAT} crossover of the {CROSSOVER_FUNCTION} wave ({CROSSOVER_D}-D) resolved "
    f"inside the sweep (not at its first n, not beyond its last) and within the paper's "
    f"{PAPER_CROSSOVER[0]} < n <= {PAPER_CROSSOVER[1]} (n: the first swept n where the "
    "precision error reaches the discretisation error)"
)
_BOUNDS_CRITERION = (
    "every measured discretisation error within T-fno-disc at its mode (the aliased worst "
    "case sin(2 pi (n + w) x) included), every measured input "
    "rounding error within u M and every measured FFT error within T-fno-prec "
    "(fft_precision_bound); an infinite bound counts as held but is reported as vacuous"
)
_OVERFLOW_CRITERION = (
    "for inputs attaining N max|v| (constants, saturated tanh) the emulated unnormalised FFT "
    "overflows exactly when fft_overflows(N, max|v|, fmt) says; for every other input (the "
    "sweep, a zero-mean tanh field) it never overflows where fft_overflows says False"
)
_SOURCE = "Tu et al., ICLR 2024 (REFERENCES section 5)"


# -- test functions --------------------------------------------------------------------------


def _triangle(x: np.ndarray) -> np.ndarray:
    return np.abs(x - 0.5)


def _triangle_coefficient(k: int) -> complex:
    """``|x - 1/2|`` on ``[0, 1)``: ``1/4`` at 0, ``1/(pi^2 k^2)`` for odd k, 0 for even k."""
    if k == 0:
        return 0.25 + 0j
    return 0j if k % 2 == 0 else complex(1 / (math.pi**2 * k**2))


def _exp_sin(x: np.ndarray) -> np.ndarray:
    return np.exp(np.sin(2 * np.pi * x))


def _exp_sin_coefficient(k: int) -> complex:
    """``exp(sin 2 pi x) = sum_k (-i)^k I_|k|(1) exp(2 pi i k x)`` (Jacobi-Anger)."""
    return complex((-1j) ** k * iv(abs(k), 1.0))


# |d/dx exp(sin 2 pi x)| = 2 pi |cos t| e^(sin t) peaks where cos^2 t = sin t = (sqrt 5 - 1)/2.
_GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True, kw_only=True)
class PeriodicFunction:
    """A 1-D factor ``f`` on ``[0, 1)`` with known Fourier coefficients; in ``d`` dimensions the
    test function is ``v(x) = f(x_1) ... f(x_d)``.

    Attributes:
        name: registry key.
        description: the function in words.
        bound_m: ``M_1 >= max |f|``.
        lipschitz: ``L_1``, a Lipschitz constant of ``f``.
        values: ``f`` evaluated on a float64 array.
        coefficient_1d: ``k -> f^(k)``, the exact coefficient.

    In ``d`` dimensions ``M = M_1**d`` and ``L = sqrt(d) L_1 M_1**(d-1)`` (each partial
    derivative is at most ``L_1 M_1**(d-1)``), and ``v^(w) = prod_i f^(w_i)``.
    """

    name: str
    description: str
    bound_m: float
    lipschitz: float
    values: Callable[[np.ndarray], np.ndarray]
    coefficient_1d: Callable[[int], complex]

    def bound_m_d(self, d: int) -> float:
        """``M`` in ``d`` dimensions."""
        return self.bound_m**d

    def lipschitz_d(self, d: int) -> float:
        """``L`` in ``d`` dimensions (Euclidean norm)."""
        return math.sqrt(d) * self.lipschitz * self.bound_m ** (d - 1)

    def samples(self, n: int, d: int) -> np.ndarray:
        """``v`` at the ``n**d`` cell centres, float64, shape ``(n,) * d``."""
        line = self.values((np.arange(n) + 0.5) / n)
        out = line
        for _ in range(d - 1):
            out = np.multiply.outer(out, line)
        return out

    def coefficient(self, w: Sequence[int]) -> complex:
        """The exact ``v^(w)``.

        >>> FUNCTIONS["triangle"].coefficient((1, 2)), FUNCTIONS["triangle"].coefficient((0,))
        (0j, (0.25+0j))
        """
        return complex(math.prod(self.coefficient_1d(k) for k in w))


def _random_field() -> PeriodicFunction:
    """One fixed draw (``torch.Generator().manual_seed(0)``) of the periodic Gaussian random
    field the Burgers data start from (:data:`mperror.problems.burgers1d.FIELD`, modes up to
    ``K = 128``, mean kept): ``f(x) = X_0 + 2 Re sum_(k=1..K) X_k exp(2 pi i k x)``, so
    ``f^(k) = X_k``, ``conj(X_-k)`` for ``k < 0`` and 0 beyond ``K``; ``M_1 = |X_0| + 2 sum
    |X_k|`` and ``L_1 = 4 pi sum k |X_k|`` bound ``|f|`` and ``|f'|`` term by term."""
    from mperror.problems.burgers1d import FIELD
    from mperror.problems.grf import periodic_1d

    draw = torch.Generator().manual_seed(0)
    coefficients = periodic_1d(FIELD, 1, generator=draw, zero_mean=False)[0].numpy()
    modes = np.arange(len(coefficients))
    magnitudes = np.abs(coefficients)

    def values(x: np.ndarray) -> np.ndarray:
        waves = np.exp(2j * np.pi * np.multiply.outer(x, modes[1:]))
        return coefficients[0].real + 2 * (waves @ coefficients[1:]).real

    def coefficient(k: int) -> complex:
        if abs(k) >= len(coefficients):
            return 0j
        c = complex(coefficients[abs(k)])
        return c if k >= 0 else c.conjugate()

    return PeriodicFunction(
        name="random-field",
        description=f"a Gaussian random field, modes up to {FIELD.n_modes} (one fixed draw)",
        bound_m=float(magnitudes[0] + 2 * magnitudes[1:].sum()),
        lipschitz=float(4 * math.pi * (modes[1:] * magnitudes[1:]).sum()),
        values=values,
        coefficient_1d=coefficient,
    )


#: The test functions: a Lipschitz-only wave (coefficients ~ k^-2), a smooth one (~ 1/k!), and
#: a band-limited random field (exact for n > 2 K: its discretisation error is float64's).
FUNCTIONS: dict[str, PeriodicFunction] = {
    "triangle": PeriodicFunction(
        name="triangle",
        description="|x - 1/2| (Lipschitz, not differentiable; M = 1/2, L = 1)",
        bound_m=0.5,
        lipschitz=1.0,
        values=_triangle,
        coefficient_1d=_triangle_coefficient,
    ),
    "exp-sin": PeriodicFunction(
        name="exp-sin",
        description="exp(sin 2 pi x) (analytic; M = e, L = 2 pi sqrt(g) e^g, g = (sqrt 5 - 1)/2)",
        bound_m=math.e,
        lipschitz=2 * math.pi * math.sqrt(_GOLDEN) * math.exp(_GOLDEN),
        values=_exp_sin,
        coefficient_1d=_exp_sin_coefficient,
    ),
    "random-field": _random_field(),
}


# -- the emulated transform ------------------------------------------------------------------


def _detecting(fmt: FloatFormat) -> FloatFormat:
    """``fmt`` itself, or for a saturating format its twin that overflows to ``inf``."""
    if fmt.overflow is not Overflow.SATURATE:
        return fmt
    return dataclasses.replace(fmt, has_inf=True, overflow=Overflow.INF, name=f"{fmt.name}+inf")


def _staged(x: torch.Tensor, fmt: FloatFormat) -> np.ndarray:
    y = ops.fft(x, fmt) if x.dim() == 1 else ops.fftn(x, fmt)
    return y.numpy()


def _emulated(samples: np.ndarray, fmt: FloatFormat) -> tuple[np.ndarray, bool]:
    """The unnormalised staged FFT of ``samples`` in ``fmt`` (complex128) and whether any
    intermediate overflowed."""
    x = torch.from_numpy(samples)
    twin = _detecting(fmt)
    y = _staged(x, twin)
    overflowed = not bool(np.isfinite(y).all())
    if overflowed and twin is not fmt:
        y = _staged(x, fmt)  # the saturated values, as the real format returns them
    return y, overflowed


def _max_abs_rounded(samples: np.ndarray, fmt: FloatFormat) -> float:
    return float(round_to(torch.from_numpy(samples), fmt).abs().max())


# -- the sweep -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SweepRecord(Record):
    """One (function, dimension, format, resolution) of :func:`resolution_sweep`.

    Attributes:
        function: the :data:`FUNCTIONS` key.
        d: the dimension; ``n`` points per dimension, ``n_total = n**d``.
        fmt: the format of the samples and of every FFT stage.
        modes: the modes ``w`` of the discretisation error.
        bound_m, lipschitz: ``M`` and ``L`` of the ``d``-D function.
        disc_error: ``max_w |v^(w) - v^_n(w)|`` (float64 FFT, centred phase removed).
        disc_bound: ``max_w`` of :func:`discretisation_bound` (its value at the largest mode).
        disc_ratio: ``max_w`` error / bound at the same ``w``; ``disc_holds``: every mode within.
        input_error: ``max_k`` |float64 DFT of the rounded samples - of the exact ones|;
            ``input_bound``: :func:`input_rounding_bound` (``u M``).
        prec_error: ``max_k |V(k) - v^_n(k)|``, ``V`` the staged FFT in ``fmt`` of the samples
            divided by ``N`` exactly (``inf`` where it is not finite; a saturating format such
            as e4m3fn keeps an overflowed FFT finite, at its largest values, so there the error
            is finite and large).
        prec_bound: :func:`fft_precision_bound` (``inf`` where the FFT may overflow or
            ``t eta >= 1``); ``prec_vacuous``: the bound is ``>= M``.
        prec_holds: ``prec_error <= prec_bound``; ``prec_ratio`` their ratio.
        max_abs: ``max |v_j|`` after rounding to ``fmt`` (what the FFT sees).
        overflow_predicted: ``fft_overflows(n_total, max_abs, fmt)``.
        overflowed: some intermediate of the unnormalised staged FFT exceeded ``fmt.max``.
        seconds: time of the emulated FFT(s).
    """

    function: str
    d: int
    fmt: FloatFormat
    n: int
    n_total: int
    modes: tuple[tuple[int, ...], ...]
    bound_m: float
    lipschitz: float
    disc_error: float
    disc_bound: float
    disc_ratio: float
    disc_holds: bool
    input_error: float
    input_bound: float
    input_holds: bool
    prec_error: float
    prec_bound: float
    prec_ratio: float
    prec_holds: bool
    prec_vacuous: bool
    max_abs: float
    overflow_predicted: bool
    overflowed: bool
    seconds: float


def _functions(function: object) -> list[PeriodicFunction]:
    items = [function] if isinstance(function, (str, PeriodicFunction)) else function
    if not isinstance(items, Iterable):
        raise TypeError(
            f"function must be a name, a PeriodicFunction or a sequence of them, got {function!r}"
        )
    out = []
    for item in items:
        if isinstance(item, PeriodicFunction):
            out.append(item)
        elif item in FUNCTIONS:
            out.append(FUNCTIONS[item])
        else:
            raise ValueError(
                f"function must be one of {tuple(FUNCTIONS)} or a PeriodicFunction, got {item!r}"
            )
    if not out:
        raise ValueError("function must name at least one function")
    return out


def _check_ns(ns: object) -> tuple[int, ...]:
    if isinstance(ns, (str, bytes)) or not isinstance(ns, Iterable):
        raise TypeError(f"ns must be a sequence of ints, got {ns!r}")
    values = tuple(ns)
    for n in values:
        if not is_integer(n) or n < 2 or operator.index(n) & (operator.index(n) - 1):
            raise ValueError(f"ns must hold powers of two >= 2 (radix-2 FFT), got {n!r}")
    values = tuple(operator.index(n) for n in values)
    if not values or len(set(values)) != len(values):
        raise ValueError(f"ns must be non-empty without repeats, got {values!r}")
    return tuple(sorted(values))


def _ratio(observed: float, bound: float) -> float:
    if observed == 0:
        return 0.0
    return observed / bound if bound > 0 else math.inf


def resolution_sweep(
    formats: Sequence[FormatLike] = DEFAULT_FORMATS,
    ns: Sequence[int] = QUICK_NS_1D,
    d: int = 1,
    function: str | PeriodicFunction | Sequence[str | PeriodicFunction] = tuple(FUNCTIONS),
    *,
    modes: Sequence[Sequence[int]] | None = None,
) -> list[SweepRecord]:
    """Measured discretisation and precision errors beside their bounds, per format and ``n``.

    Oracles: the closed-form Fourier coefficients (:data:`FUNCTIONS`) for the discretisation
    error, the float64 numpy FFT of the exact samples for the precision error, and the bounds of
    :mod:`mperror.bounds.fno`. ``modes`` defaults to :data:`MODES` ``[d]``.

    >>> r = resolution_sweep(formats=("fp16",), ns=(16,), function="triangle")[0]
    >>> r.disc_holds, r.prec_holds, r.overflowed, r.overflow_predicted
    (True, True, False, False)
    """
    if not is_integer(d) or d < 1:
        raise ValueError(f"d must be an int >= 1, got {d!r}")
    d = operator.index(d)
    fmts = [as_format(f, argument="formats") for f in formats]
    if not fmts:
        raise ValueError("formats must name at least one format")
    sizes = _check_ns(ns)
    functions = _functions(function)
    if modes is None:
        if d not in MODES:
            raise ValueError(
                f"modes must be given for d={d} (defaults exist for d in {tuple(MODES)})"
            )
        modes = MODES[d]
    ws = tuple(tuple(int(k) for k in w) for w in modes)
    if not ws or any(len(w) != d for w in ws):
        raise ValueError(f"modes must hold tuples of d={d} ints, got {modes!r}")

    records = []
    for f in functions:
        m, lip = f.bound_m_d(d), f.lipschitz_d(d)
        for n in sizes:
            samples = f.samples(n, d)
            exact_dft = np.fft.fftn(samples, norm="forward")
            disc_errors, disc_bounds = [], []
            for w in ws:
                index = tuple(k % n for k in w)
                midpoint = exact_dft[index] * np.exp(-1j * np.pi * sum(w) / n)  # centred grid
                disc_errors.append(float(abs(midpoint - f.coefficient(w))))
                bound_w = discretisation_bound(n, w[0] if d == 1 else w, lip, m, d)
                disc_bounds.append(bound_w.bound)
            disc_ratio = max(_ratio(e, b) for e, b in zip(disc_errors, disc_bounds, strict=True))
            for fmt in fmts:
                rounded = round_to(torch.from_numpy(samples), fmt).numpy()
                input_error = float(np.abs(np.fft.fftn(rounded, norm="forward") - exact_dft).max())
                input_bound = input_rounding_bound(m, fmt).bound
                start = time.perf_counter()
                y, overflowed = _emulated(samples, fmt)
                seconds = time.perf_counter() - start
                if np.isfinite(y).all():  # 1/N is a power of two: exact in float64
                    prec_error = float(np.abs(y / n**d - exact_dft).max())
                else:
                    prec_error = math.inf
                prec = fft_precision_bound(n, d, m, fmt).check(prec_error)
                max_abs = float(np.abs(rounded).max())
                records.append(
                    SweepRecord(
                        function=f.name,
                        d=d,
                        fmt=fmt,
                        n=n,
                        n_total=n**d,
                        modes=ws,
                        bound_m=m,
                        lipschitz=lip,
                        disc_error=max(disc_errors),
                        disc_bound=max(disc_bounds),
                        disc_ratio=disc_ratio,
                        disc_holds=bool(disc_ratio <= 1),
                        input_error=input_error,
                        input_bound=input_bound,
                        input_holds=bool(input_error <= input_bound),
                        prec_error=prec_error,
                        prec_bound=prec.bound,
                        prec_ratio=_ratio(prec_error, prec.bound),
                        prec_holds=bool(prec.holds),
                        prec_vacuous=prec.vacuous,
                        max_abs=max_abs,
                        overflow_predicted=fft_overflows(n**d, max_abs, fmt),
                        overflowed=overflowed,
                        seconds=seconds,
                    )
                )
    return records


# -- the crossover ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CrossoverRecord(Record):
    """Measured against predicted crossover for one (function, dimension, format).

    Attributes:
        function, d, fmt: the group of sweep records.
        ns: the resolutions swept.
        measured: the first ``n`` with ``prec_error >= disc_error`` (an overflowed FFT counts: its
            error is ``inf``, or saturated and large); ``None`` if none in ``ns`` (the crossing
            lies beyond the last ``n`` swept, if anywhere).
        at_first: ``measured == ns[0]``: the crossing may lie before the sweep.
        mode: the largest measured mode, where the predicted crossings are taken (the
            discretisation error is a max over modes, its bound the bound at the largest).
        predicted_fft, predicted_fft_power_of_two: :func:`crossover_resolution` with FFT
            arithmetic (the worst-case FFT bound): ``n*`` and the first power of two past it.
        predicted_input, predicted_input_power_of_two: the same with input rounding only.
    """

    function: str
    d: int
    fmt: FloatFormat
    ns: tuple[int, ...]
    measured: int | None
    at_first: bool
    mode: tuple[int, ...]
    predicted_fft: float
    predicted_fft_power_of_two: int
    predicted_input: float
    predicted_input_power_of_two: int


def measured_crossover(records: Iterable[SweepRecord]) -> list[CrossoverRecord]:
    """Per (function, d, format) of ``records``, the measured crossover beside the predicted.

    Oracle for the prediction: :func:`~mperror.bounds.fno.crossover_resolution` at the
    records' ``lipschitz``, ``bound_m`` and largest mode.
    """
    groups: dict[tuple[str, int, FloatFormat], list[SweepRecord]] = {}
    for r in records:
        groups.setdefault((r.function, r.d, r.fmt), []).append(r)
    out = []
    for (name, d, fmt), group in groups.items():
        group = sorted(group, key=lambda r: r.n)
        ns = tuple(r.n for r in group)
        measured = next((r.n for r in group if r.prec_error >= r.disc_error), None)
        mode = max(group[0].modes, key=lambda w: sum(k * k for k in w))
        w: int | tuple[int, ...] = mode[0] if d == 1 else mode
        lip, m = group[0].lipschitz, group[0].bound_m
        fft_arith = crossover_resolution(lip, m, fmt, d=d, w=w)
        input_only = crossover_resolution(lip, m, fmt, d=d, w=w, fft_arithmetic=False)
        out.append(
            CrossoverRecord(
                function=name,
                d=d,
                fmt=fmt,
                ns=ns,
                measured=measured,
                at_first=measured == ns[0],
                mode=mode,
                predicted_fft=fft_arith.resolution,
                predicted_fft_power_of_two=fft_arith.power_of_two,
                predicted_input=input_only.resolution,
                predicted_input_power_of_two=input_only.power_of_two,
            )
        )
    return out


# -- overflow --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OverflowCase(Record):
    """One input fed to the emulated unnormalised FFT, with the overflow prediction.

    Attributes:
        label: the input in words.
        fmt: the format; ``shape`` the grid; ``n_total`` its number of points.
        max_abs: ``max |v_j|`` after rounding to ``fmt``.
        worst_case: the input attains ``N max_abs`` (its DC term, every sample equal), so the
            prediction must be exact; otherwise only its ``False`` is a guarantee.
        predicted: ``fft_overflows(n_total, max_abs, fmt)``.
        overflowed: some intermediate exceeded ``fmt.max``.
        matches: ``overflowed == predicted`` for worst cases, else ``predicted or not
            overflowed``.
    """

    label: str
    fmt: FloatFormat
    shape: tuple[int, ...]
    n_total: int
    max_abs: float
    worst_case: bool
    predicted: bool
    overflowed: bool
    matches: bool


def _case(label: str, samples: np.ndarray, fmt: FloatFormat, worst_case: bool) -> OverflowCase:
    max_abs = _max_abs_rounded(samples, fmt)
    predicted = fft_overflows(samples.size, max_abs, fmt)
    _, overflowed = _emulated(samples, fmt)
    return OverflowCase(
        label=label,
        fmt=fmt,
        shape=samples.shape,
        n_total=samples.size,
        max_abs=max_abs,
        worst_case=worst_case,
        predicted=predicted,
        overflowed=overflowed,
        matches=overflowed == predicted if worst_case else predicted or not overflowed,
    )


def _constant_pair(fmt: FloatFormat, n: int) -> list[OverflowCase]:
    """Constants ``M = fmt.max / n`` (``N M = max``) and the next value of ``fmt`` above it."""
    below = fmt.max / n  # a power-of-two multiple of max: exact, and normal for these sizes
    _, exponent = math.frexp(below)
    above = below + math.ldexp(1.0, exponent - fmt.precision)  # one spacing up
    return [
        _case(f"constant {value!r} x {n} (N M = {n * value!r})", np.full(n, value), fmt, True)
        for value in (below, above)
    ]


def overflow_cases() -> list[OverflowCase]:
    """Constants with ``N M`` just below and above ``fmt.max`` in every default format, and
    fp16 ``tanh`` inputs at ``128**2`` and ``256**2`` points.

    In fp16 ``tanh(a)`` rounds to exactly 1.0 once ``a >= atanh(1 - 2**-12) ~ 4.505``, so a
    saturated pre-activation (``a >= 5``) has ``M = 1``: ``128**2`` points are safe,
    ``256**2 = 65536 > 65504`` overflow. A zero-mean tanh field is predicted to be at risk at
    ``256**2`` (the prediction is over all inputs with that ``M``) but its DC term is 0.
    Oracle: the emulated staged FFT (:func:`mperror.ops.fft`, :func:`mperror.ops.fftn`).
    """
    cases = []
    for name, n in (
        ("fp16", 1024),
        ("fp16", 65536),
        ("bf16", 1024),
        ("e5m2", 1024),
        ("e4m3fn", 16),
    ):
        cases += _constant_pair(as_format(name), n)
    fp16 = as_format("fp16")
    for n in (128, 256):
        x = (np.arange(n) + 0.5) / n
        field = np.outer(np.sin(2 * np.pi * x), np.cos(2 * np.pi * x))
        saturated = np.tanh(6 + field)  # a >= 5: every sample rounds to 1.0
        cases.append(_case(f"tanh(6 + sin cos), {n}^2 (saturated)", saturated, fp16, True))
    x = (np.arange(256) + 0.5) / 256
    # amplitude 6: the peaks saturate (M = 1, so at risk by the prediction), the mean is 0
    zero_mean = np.tanh(6 * np.outer(np.sin(2 * np.pi * x), np.cos(2 * np.pi * x)))
    cases.append(_case("tanh(6 sin cos), 256^2 (zero mean)", zero_mean, fp16, False))
    return cases


# -- claims and the figure -------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _positive(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    keep = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y) and y > 0]
    return [x for x, _ in keep], [y for _, y in keep]


def draw_sweep(records: Sequence[SweepRecord], path: Path) -> Path:
    """Error against ``n`` per format (columns) and dimension (rows), log-log: measured errors
    as markers, their bounds as lines (infinite bounds and zero errors left out)."""
    plt = _pyplot()
    fmts = list(dict.fromkeys(r.fmt for r in records))
    dims = sorted({r.d for r in records})
    fig, axes = plt.subplots(
        len(dims), len(fmts), figsize=(4 * len(fmts), 3.4 * len(dims)), squeeze=False
    )
    colours = dict(zip(FUNCTIONS, ("C0", "C1", "C2"), strict=True))
    for row, d in enumerate(dims):
        for col, fmt in enumerate(fmts):
            ax = axes[row][col]
            for name in dict.fromkeys(r.function for r in records):
                group = sorted(
                    (r for r in records if r.d == d and r.fmt == fmt and r.function == name),
                    key=lambda r: r.n,
                )
                if not group:
                    continue
                c = colours.get(name, "C3")
                ns = [r.n for r in group]
                ax.loglog(*_positive(ns, [r.disc_error for r in group]), "o", c=c, ms=4,
                          label=f"{name}: discretisation")  # fmt: skip
                ax.loglog(*_positive(ns, [r.disc_bound for r in group]), "-", c=c, lw=0.8)
                ax.loglog(*_positive(ns, [r.prec_error for r in group]), "s", c=c, ms=4,
                          mfc="none", label=f"{name}: precision")  # fmt: skip
                ax.loglog(*_positive(ns, [r.prec_bound for r in group]), "--", c=c, lw=0.8)
            ax.set_xscale("log", base=2)
            ax.set_title(f"{fmt.name}, d = {d} (solid: T-fno-disc, dashed: T-fno-prec)", fontsize=8)
            ax.set_xlabel("n (points per dimension)")
            ax.set_ylabel("max error per mode")
            ax.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


@dataclass(frozen=True, kw_only=True)
class AliasedRecord(Record):
    """The tight example of ``T-fno-disc`` at one ``n``: ``v(x) = sin(2 pi (n + w) x)`` (``M =
    1``, ``L = 2 pi (n + w)``), whose coefficient at ``w`` is 0 while the ``n``-point one is
    ``-1/(2i)`` times the centred phase: an error of exactly ``M / 2`` at every ``n``.

    Attributes: ``n``, the mode ``w``, the measured ``error`` (float64 FFT), ``bound``
    (:func:`~mperror.bounds.fno.discretisation_bound`) and ``holds``.
    """

    n: int
    w: int
    error: float
    bound: float
    holds: bool


def aliased_worst_case(ns: Sequence[int] = QUICK_NS_1D, w: int = 1) -> list[AliasedRecord]:
    """:class:`AliasedRecord` per ``n`` (1-D, centred grid): the aliased worst case measured
    (``w`` and ``2 w`` must not be multiples of any ``n``: there the example is not tight).

    >>> r = aliased_worst_case(ns=(16,))[0]
    >>> round(r.error, 12), r.holds  # M / 2 = 1/2, whatever n
    (0.5, True)
    """
    sizes = _check_ns(ns)
    if not is_integer(w) or w < 1:
        raise ValueError(f"w must be an int >= 1, got {w!r}")
    w = operator.index(w)
    # The example is the tight case only where w and -w alias to two distinct nonzero bins:
    # w = 0 (mod n) samples sin at its zeros (error 0); 2 w = 0 (mod n) folds both into one
    # bin (error M).
    folded = [n for n in sizes if w % n == 0 or (2 * w) % n == 0]
    if folded:
        raise ValueError(
            f"w={w} is no worst case at n in {folded}: w and 2 w must not be multiples of n"
        )
    out = []
    for n in sizes:
        x = (np.arange(n) + 0.5) / n
        dft = np.fft.fft(np.sin(2 * np.pi * (n + w) * x), norm="forward")
        error = float(abs(dft[w % n] * np.exp(-1j * np.pi * w / n)))  # exact coefficient: 0
        bound = discretisation_bound(n, w, 2 * math.pi * (n + w), 1.0).bound
        out.append(AliasedRecord(n=n, w=w, error=error, bound=bound, holds=bool(error <= bound)))
    return out


def _bounds_claim(records: Sequence[SweepRecord], aliased: Sequence[AliasedRecord]) -> Claim:
    disc = {(r.function, r.d, r.n): r.disc_holds for r in records}  # format-independent
    prec_finite = [r for r in records if math.isfinite(r.prec_bound)]
    prec_useful = [r for r in prec_finite if not r.prec_vacuous]
    worst = max((r.prec_ratio for r in prec_useful), default=math.nan)
    fp16 = [r.prec_error / (r.fmt.unit_roundoff * r.bound_m) for r in records
            if r.fmt.name == "fp16" and math.isfinite(r.prec_error)]  # fmt: skip
    holds = (
        all(disc.values())
        and all(r.holds for r in aliased)
        and all(r.input_holds for r in records)
        and all(r.prec_holds for r in records)
    )
    measured = (
        f"discretisation {sum(disc.values())}/{len(disc)} within T-fno-disc (worst ratio "
        f"{max(r.disc_ratio for r in records):.3g}); the aliased worst case sin(2 pi (n + "
        f"{aliased[0].w}) x): error {min(r.error for r in aliased):.6g} to "
        f"{max(r.error for r in aliased):.6g} (M/2) at {len(aliased)} n, "
        f"{sum(r.holds for r in aliased)}/{len(aliased)} within T-fno-disc; input rounding "
        f"{sum(r.input_holds for r in records)}/{len(records)} within u M; FFT "
        f"{sum(r.prec_holds for r in records)}/{len(records)} within T-fno-prec, of which "
        f"{len(prec_useful)} non-vacuous (worst ratio {worst:.3g}), "
        f"{len(prec_finite) - len(prec_useful)} vacuous (>= M), "
        f"{len(records) - len(prec_finite)} infinite (FP8 t eta >= 1 or overflow possible); "
        f"fp16 FFT error {min(fp16):.2g} to {max(fp16):.2g} u M"
    )
    return Claim(
        id="fno.bounds-hold",
        source=_SOURCE,
        claim="the discretisation and precision bounds (T-fno-disc, T-fno-prec) hold on "
        "functions with known Fourier coefficients",
        paper="bounds of the form c (L + 2 pi |w| M) / n and ~u M (our derivation: "
        "theory/fno-bounds.md); fp16 error measured near 0.3 u M",
        measured=measured,
        criterion=_BOUNDS_CRITERION,
        holds=holds,
        note="the FFT bound is the worst case log2 N growth, far above the measured errors; "
        "for e5m2 and e4m3fn it is infinite from N = 4 on (every N swept), so only fp16 and "
        "bf16 test it",
    )


def _n(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "inf"


def _crossover_claim(crossovers: Sequence[CrossoverRecord]) -> Claim:
    target = next(
        (c for c in crossovers if (c.function, c.d, c.fmt.name)
         == (CROSSOVER_FUNCTION, CROSSOVER_D, CROSSOVER_FORMAT)),
        None,
    )  # fmt: skip
    if target is None:
        holds = None
        note = "the sweep has no record of the judged function, dimension and format"
    else:
        low, high = PAPER_CROSSOVER
        holds = (
            target.measured is not None and not target.at_first and low < target.measured <= high
        )
        note = (
            f"judged on {CROSSOVER_FORMAT} {CROSSOVER_FUNCTION} {CROSSOVER_D}-D: measured "
            f"{target.measured}; the worst-case bounds cross at {_n(target.predicted_fft)} "
            f"(with FFT arithmetic) and {_n(target.predicted_input)} (input rounding only), "
            "upper bounds both, so their crossing is context, not a prediction of the errors'"
        )
    rows = []
    for c in crossovers:
        measured = "none" if c.measured is None else ("<=" if c.at_first else "") + str(c.measured)
        rows.append(
            f"{c.fmt.name} {c.function} {c.d}-D: {measured} (predicted {_n(c.predicted_fft)} "
            f"with FFT, {_n(c.predicted_input)} input only)"
        )
    return Claim(
        id="fno.precision-vs-discretisation",
        source=_SOURCE,
        claim="the precision error is comparable to the discretisation error at practical "
        "resolutions, so full precision is not needed",
        paper="fp16-emulated FFT, 1-D Lipschitz function: error levelled near 0.3 u M; "
        "precision error overtook discretisation error between n = 64 and 256",
        measured="; ".join(rows),
        criterion=_CROSSOVER_CRITERION,
        holds=holds,
        note=note,
    )


def _overflow_claim(records: Sequence[SweepRecord], cases: Sequence[OverflowCase]) -> Claim:
    worst = [c for c in cases if c.worst_case]
    other = [c for c in cases if not c.worst_case]
    sweep_ok = [not (r.overflowed and not r.overflow_predicted) for r in records]
    holds = all(c.matches for c in cases) and all(sweep_ok)
    tanh = {c.shape: c.overflowed for c in worst if c.label.startswith("tanh")}
    measured = (
        f"worst-case inputs {sum(c.matches for c in worst)}/{len(worst)} exact "
        f"({sum(c.overflowed for c in worst)} overflowed); other inputs "
        f"{sum(c.matches for c in other)}/{len(other)} and sweep {sum(sweep_ok)}/{len(sweep_ok)} "
        f"without unpredicted overflow ({sum(r.overflowed for r in records)} overflowed, "
        f"{sum(r.overflow_predicted and not r.overflowed for r in records)} predicted at risk "
        f"but not); saturated tanh fp16: 128^2 overflowed {tanh.get((128, 128))}, 256^2 "
        f"overflowed {tanh.get((256, 256))}"
    )
    mismatches = [c.label + f" ({c.fmt.name})" for c in cases if not c.matches]
    return Claim(
        id="fno.fft-overflow",
        source=_SOURCE,
        claim="an unnormalised half FFT overflows unless N M <= 65504; with tanh (|v| <= 1) "
        "128^2 is safe, 256^2 is not",
        paper="plain AMP overflows on FNO; a tanh pre-activation prevents it",
        measured=measured,
        criterion=_OVERFLOW_CRITERION,
        holds=holds,
        note="mismatches: " + ", ".join(mismatches) if mismatches else "",
    )


def fno_claims(out_dir: Path, *, full: bool = False) -> tuple[list[Claim], dict[str, Path]]:
    """Run the sweep, the crossover and the overflow checks; judge the three FNO claims.

    Quick: ``n = 16 ... 1024`` in 1-D and 2-D (seconds on one CPU core); ``full``: 1-D to
    ``16384`` and 2-D to ``2048``. Writes ``fno_bounds.png`` into ``out_dir`` (created).
    Returns the claims ``fno.bounds-hold``, ``fno.precision-vs-discretisation`` and
    ``fno.fft-overflow`` and ``{"fno_bounds": path}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = resolution_sweep(ns=FULL_NS_1D if full else QUICK_NS_1D, d=1)
    records += resolution_sweep(ns=FULL_NS_2D if full else QUICK_NS_2D, d=2)
    aliased = aliased_worst_case(ns=FULL_NS_1D if full else QUICK_NS_1D)
    crossovers = measured_crossover(records)
    cases = overflow_cases()
    figure = draw_sweep(records, out_dir / "fno_bounds.png")
    claims = [
        _bounds_claim(records, aliased),
        _crossover_claim(crossovers),
        _overflow_claim(records, cases),
    ]
    return claims, {"fno_bounds": figure}
