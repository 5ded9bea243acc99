"""Tests for mperror.bounds.classic.

The deterministic bounds are checked against computations carried out in the format's own
arithmetic: every operation's exact result is formed in float64 (asserted exact against
``fractions.Fraction``) and rounded once with ``mperror.round``, which is what IEEE arithmetic in
that format does. The observed error is measured against the exact result in
``fractions.Fraction`` arithmetic. The probabilistic bounds are checked by counting failures over
many random trials, with tolerances derived in the comments.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mperror
from mperror.bounds import (
    BoundResult,
    EntrywiseBound,
    block_fma_bound,
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
)
from mperror.formats import BF16, E4M3FN, E5M2, FP16, FP32, FloatFormat
from mperror.reference import round_scalar

# (format, lowest exponent, highest exponent, largest length): exponent ranges keep every sum
# of two format values exact in float64 and keep away from overflow; lengths keep n u < 1.
ARITHMETIC = {
    "fp16": (FP16, -14, 8, 40),
    "bf16": (BF16, -10, 10, 40),
    "e4m3fn": (E4M3FN, -6, 4, 12),
    "e5m2": (E5M2, -14, 6, 6),
}


# These properties run the format's arithmetic op by op in exact rationals: a quarter of the
# profile's examples keeps the file fast in CI while HYPOTHESIS_PROFILE=thorough still scales it.
FEW = settings(max_examples=max(20, settings.default.max_examples // 4))

# Largest exponent for dot and matrix products: products and their sums stay below max.
DOT_HI = {"fp16": 4, "bf16": 10, "e4m3fn": 1, "e5m2": 5}


def values(fmt: FloatFormat, lo: int, hi: int) -> st.SearchStrategy[float]:
    """Values of ``fmt`` with exponents in ``[lo, hi]``, both signs, zeros and subnormals."""
    p = fmt.precision
    normal = st.builds(
        lambda m, e: math.ldexp(m, e - p + 1),
        st.integers(2 ** (p - 1), 2**p - 1),
        st.integers(max(lo, fmt.emin), hi),
    )
    parts = [normal, st.just(0.0)]
    if lo <= fmt.emin and fmt.subnormals and p > 1:
        parts.append(
            st.integers(1, 2 ** (p - 1) - 1).map(lambda m: math.ldexp(m, fmt.emin - p + 1))
        )
    return st.builds(lambda v, neg: -v if neg else v, st.one_of(*parts), st.booleans())


def fl(exact: Fraction, fmt: FloatFormat) -> float:
    """The exact result of one operation rounded once to ``fmt`` (nearest even), by the rational
    oracle ``mperror.reference.round_scalar``: what IEEE arithmetic in ``fmt`` returns."""
    return round_scalar(exact, fmt)


def add(a: float, b: float, fmt: FloatFormat) -> float:
    return fl(Fraction(a) + Fraction(b), fmt)


def mul(a: float, b: float, fmt: FloatFormat) -> float:
    return fl(Fraction(a) * Fraction(b), fmt)


def recursive(xs: list[float], fmt: FloatFormat) -> float:
    s = xs[0]
    for x in xs[1:]:
        s = add(s, x, fmt)
    return s


def pairwise(xs: list[float], fmt: FloatFormat) -> float:
    if len(xs) == 1:
        return xs[0]
    half = len(xs) // 2
    return add(pairwise(xs[:half], fmt), pairwise(xs[half:], fmt), fmt)


def blocked(xs: list[float], fmt: FloatFormat, block: int, outer: FloatFormat) -> float:
    sums = [recursive(xs[i : i + block], fmt) for i in range(0, len(xs), block)]
    return recursive(sums, outer)


def dot(xs: list[float], ys: list[float], fmt: FloatFormat) -> float:
    s = mul(xs[0], ys[0], fmt)
    for x, y in zip(xs[1:], ys[1:], strict=True):
        s = add(s, mul(x, y, fmt), fmt)
    return s


def exact_dot(xs: list[float], ys: list[float]) -> Fraction:
    return sum((Fraction(x) * Fraction(y) for x, y in zip(xs, ys, strict=True)), Fraction(0))


def error(computed: float, exact: Fraction) -> float:
    """``|computed - exact|`` rounded up to a float64, so it never understates the error."""
    diff = abs(Fraction(computed) - exact)
    as_float = float(diff)
    return as_float if Fraction(as_float) >= diff else math.nextafter(as_float, math.inf)


def vectors(name: str, hi: int | None = None) -> st.SearchStrategy[list[float]]:
    fmt, lo, top, longest = ARITHMETIC[name]
    return st.lists(values(fmt, lo, top if hi is None else hi), min_size=1, max_size=longest)


# -- gamma and friends --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fp16", "bf16", "e4m3fn", "fp32"])
def test_gamma_matches_exact_rational(name: str) -> None:
    """Oracle: ``n u / (1 - n u)`` in exact rationals, rounded once to float64."""
    fmt = mperror.formats.get(name)
    u = Fraction(1, 2**fmt.precision)
    for n in {0, 1, 2, 3, 7, 100, 2**fmt.precision - 1}:
        expected = float(n * u / (1 - n * u)) if n * u < 1 else math.inf
        assert gamma(n, fmt) == expected
    assert gamma(2**fmt.precision, fmt) == math.inf


def test_gamma_vacuity_thresholds() -> None:
    """Oracle: REFERENCES section 7 (infinite for bf16 from n = 256, fp16 from n = 2048)."""
    assert math.isfinite(gamma(255, "bf16")) and gamma(256, "bf16") == math.inf
    assert math.isfinite(gamma(2047, "fp16")) and gamma(2048, "fp16") == math.inf
    assert gamma(1023, "fp16") < 1 <= gamma(1024, "fp16")


def test_bad_arguments_are_named() -> None:
    with pytest.raises(TypeError, match="n must be an int"):
        gamma(2.0, "fp16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must be >= 0"):
        gamma(-1, "fp16")
    with pytest.raises(ValueError, match="unknown format"):
        gamma(1, "fp17")
    with pytest.raises(ValueError, match="lam must be positive"):
        gamma_tilde(4, "fp16", 0.0)
    with pytest.raises(ValueError, match="x must be finite"):
        recursive_sum_bound([1.0, math.inf], "fp16")
    with pytest.raises(ValueError, match="same length"):
        dot_bound([1.0, 2.0], [1.0], "fp16")
    with pytest.raises(ValueError, match="do not chain"):
        matmul_bound(torch.ones(2, 3), torch.ones(2, 3), "fp16")
    with pytest.raises(ValueError, match="internal must be one of"):
        block_fma_bound(torch.ones(2, 3), torch.ones(3, 2), 2, internal="random")
    with pytest.raises(ValueError, match="outer_fmt must hold"):
        blocked_sum_bound([1.0, 2.0], "fp32", 2, outer_fmt="fp16")
    with pytest.raises(ValueError, match="must hold values of"):
        block_fma_bound([[0.1]], [[1.0]], 1, convert_inputs=False)


def test_records() -> None:
    """Oracle: the record contracts (BoundResult, EntrywiseBound): a deterministic bound has no
    probability, to_dict keeps the values, and a zero observed error holds with ratio 0 by
    definition, also where the bound is 0 (the off-diagonal entries of I @ I)."""
    r = recursive_sum_bound([1.0, 2.0, 3.0], "fp16")
    assert isinstance(r, BoundResult) and r.theorem == "T-gamma.recursive-sum"
    assert r.to_dict()["bound"] == r.bound and r.probability is None
    e = matmul_bound(torch.eye(2), torch.eye(2), "fp16")
    assert isinstance(e, EntrywiseBound) and e.bound.dtype == torch.float64
    checked = e.check(torch.zeros(2, 2))
    assert checked.holds and checked.ratio == 0.0
    assert e.to_dict()["bound"] == e.bound.tolist()


def test_overflow_makes_the_bound_infinite() -> None:
    """Oracle: fp16 computes 60000 + 60000 = inf; the bound must not claim a finite error."""
    r = recursive_sum_bound([60000.0, 60000.0], "fp16")
    assert r.bound == math.inf and r.vacuous
    assert r.check(math.inf).holds


# -- deterministic bounds, never violated --------------------------------------------------------


@pytest.mark.parametrize("name", list(ARITHMETIC))
@FEW
@given(data=st.data())
def test_recursive_sum_bound_holds(name: str, data: st.DataObject) -> None:
    """Oracle: recursive summation in the format's arithmetic vs the exact Fraction sum."""
    fmt = ARITHMETIC[name][0]
    xs = data.draw(vectors(name))
    exact = sum(map(Fraction, xs), Fraction(0))
    assert recursive_sum_bound(xs, fmt).check(error(recursive(xs, fmt), exact)).holds


@pytest.mark.parametrize(
    "xs",
    [
        [1.0, 2.0**-11, 2.0**-11, 2.0**-11],  # ties at 1 + u: each addition loses u
        [1.0] + [2.0**-11 + 2.0**-21] * 30,  # just above the tie: every addition rounds up
        [2.0**-24] * 7,  # subnormals: exact
        [512.0, -512.0, 1.0, 2.0**-10],  # cancellation
    ],
)
def test_recursive_sum_bound_pinned_fp16(xs: list[float]) -> None:
    """Oracle: as above, on hand-picked worst cases of fp16 (ties, near-ties, subnormals)."""
    exact = sum(map(Fraction, xs), Fraction(0))
    observed = error(recursive(xs, FP16), exact)
    result = recursive_sum_bound(xs, FP16).check(observed)
    assert result.holds and result.ratio is not None


def test_recursive_sum_bound_is_nearly_attained() -> None:
    """Oracle: 1 + 30 terms just above u: each rounds up by ~u, error ~ 30 u vs gamma_30 * 1.06.

    The ratio observed/bound must be close to 1: a bound off by a constant factor would fail.
    """
    xs = [1.0] + [2.0**-11 + 2.0**-21] * 30
    exact = sum(map(Fraction, xs), Fraction(0))
    result = recursive_sum_bound(xs, FP16).check(error(recursive(xs, FP16), exact))
    assert result.holds and result.ratio > 0.9


@pytest.mark.parametrize("name", list(ARITHMETIC))
@FEW
@given(data=st.data())
def test_pairwise_sum_bound_holds(name: str, data: st.DataObject) -> None:
    """Oracle: pairwise summation (split at n // 2) in the format vs the exact Fraction sum."""
    fmt = ARITHMETIC[name][0]
    xs = data.draw(vectors(name))
    exact = sum(map(Fraction, xs), Fraction(0))
    assert pairwise_sum_bound(xs, fmt).check(error(pairwise(xs, fmt), exact)).holds


@pytest.mark.parametrize("name", list(ARITHMETIC))
@FEW
@given(data=st.data(), block=st.integers(1, 8), widen=st.booleans())
def test_blocked_sum_bound_holds(name: str, data: st.DataObject, block: int, widen: bool) -> None:
    """Oracle: blocked summation (inner in the format, outer in it or fp32) vs Fraction."""
    fmt = ARITHMETIC[name][0]
    outer = FP32 if widen else fmt
    xs = data.draw(vectors(name))
    exact = sum(map(Fraction, xs), Fraction(0))
    bound = blocked_sum_bound(xs, fmt, block, outer_fmt=outer if widen else None)
    assert bound.check(error(blocked(xs, fmt, block, outer), exact)).holds


def test_blocked_sum_bound_checks_each_format_against_its_own_max() -> None:
    """Oracle: the blocked simulation in Fraction arithmetic. fp16 blocks of 32 x 100.0 sum
    to 3200 each, exactly; their fp32 total 409600 is exact too, far beyond fp16's 65504 but
    inside fp32: the bound is the formula's, not inf. Blocks of 32 x 3000.0 overflow fp16
    (a partial sum passes 65520 and rounds to inf), and the bound is inf."""
    xs = [100.0] * 4096
    computed = blocked(xs, FP16, 32, FP32)
    assert computed == 409600.0
    bound = blocked_sum_bound(xs, FP16, 32, outer_fmt=FP32)
    inner, outer = gamma(31, FP16), gamma(127, FP32)
    assert bound.bound == ((1 + inner) * (1 + outer) - 1) * 409600.0 and not bound.vacuous
    big = [3000.0] * 64
    partial = 0.0
    for term in big[:32]:  # the first block, in fp16, until it overflows
        partial = round_scalar(Fraction(partial) + Fraction(term), FP16)
        if math.isinf(partial):
            break
    assert math.isinf(partial)
    assert math.isinf(blocked_sum_bound(big, FP16, 32, outer_fmt=FP32).bound)


@pytest.mark.parametrize("name", list(ARITHMETIC))
@FEW
@given(data=st.data())
def test_dot_bound_holds(name: str, data: st.DataObject) -> None:
    """Oracle: recursive dot product, products and sums rounded in the format, vs Fraction."""
    fmt, lo, _, _ = ARITHMETIC[name]
    xs = data.draw(vectors(name, DOT_HI[name]))
    ys = data.draw(st.lists(values(fmt, lo, DOT_HI[name]), min_size=len(xs), max_size=len(xs)))
    exact = exact_dot(xs, ys)
    assert dot_bound(xs, ys, fmt).check(error(dot(xs, ys, fmt), exact)).holds


def test_dot_bound_needs_its_underflow_term() -> None:
    """Oracle: fp16 product 1.5 * 2**-12 squared = 2.25 * 2**-24 rounds to 2**-23.

    The absolute error 0.25 * 2**-24 exceeds the textbook gamma_1 |x y| ~ 2**-35 but not the
    underflow term eta_min = 2**-25.
    """
    x = [1.5 * 2.0**-12]
    exact = Fraction(x[0]) ** 2
    observed = error(dot(x, x, FP16), exact)
    assert observed > gamma(1, FP16) * float(exact)
    assert dot_bound(x, x, FP16).check(observed).holds


def matmul_in(a: torch.Tensor, b: torch.Tensor, fmt: FloatFormat) -> torch.Tensor:
    """``A B`` by recursive dot products in ``fmt``, all entries at once: products of format
    values are exact in float64 (at most 2 x 11 bits), and so are sums of two format values in the
    exponent ranges of DOT_HI (they lie on a grid of at most 53 bits), so each ``mperror.round``
    rounds an exact result once."""
    products = mperror.round(a[:, :, None] * b[None, :, :], fmt)
    s = products[:, 0, :]
    for k in range(1, a.shape[1]):
        s = mperror.round(s + products[:, k, :], fmt)
    return s


@pytest.mark.parametrize("name", ["fp16", "bf16", "e4m3fn"])
@FEW
@given(data=st.data(), m=st.integers(1, 3), n=st.integers(1, 8), p=st.integers(1, 3))
def test_matmul_bound_holds_entrywise(
    name: str, data: st.DataObject, m: int, n: int, p: int
) -> None:
    """Oracle: each entry a recursive dot product in the format, vs the exact Fraction product."""
    fmt, lo, _, _ = ARITHMETIC[name]
    entries = st.lists(values(fmt, lo, DOT_HI[name]), min_size=n * (m + p), max_size=n * (m + p))
    flat = torch.tensor(data.draw(entries), dtype=torch.float64)
    a, b = flat[: m * n].reshape(m, n), flat[m * n :].reshape(n, p)
    computed = matmul_in(a, b, fmt)
    observed = torch.tensor(
        [
            [
                error(computed[i, j].item(), exact_dot(a[i].tolist(), b[:, j].tolist()))
                for j in range(p)
            ]
            for i in range(m)
        ],
        dtype=torch.float64,
    )
    assert matmul_bound(a, b, fmt).check(observed).holds


# -- block FMA ----------------------------------------------------------------------------------


def _block_fma(
    a: np.ndarray, b: np.ndarray, block: int, internal: str, fmt_in: FloatFormat, rng: random.Random
) -> np.ndarray:
    """C = A B with a block FMA: inputs rounded to ``fmt_in``, exact products, fp32 sums.

    numpy float32 addition is IEEE (correctly rounded to nearest even). Products of fp16 or bf16
    values (at most 22 significant bits, exponents kept in range here) are exact in float32;
    ``"exact"`` sums the block in Fraction and rounds once with the rational oracle.
    """
    a_in = mperror.round(torch.from_numpy(a), fmt_in).numpy().astype(np.float32)
    b_in = mperror.round(torch.from_numpy(b), fmt_in).numpy().astype(np.float32)
    m, n = a.shape
    p = b.shape[1]
    c = np.zeros((m, p), dtype=np.float32)
    for i in range(m):
        for j in range(p):
            acc = np.float32(0.0)
            for start in range(0, n, block):
                products = [a_in[i, k] * b_in[k, j] for k in range(start, min(start + block, n))]
                assert all(
                    Fraction(float(pr)) == Fraction(float(a_in[i, k])) * Fraction(float(b_in[k, j]))
                    for pr, k in zip(products, range(start, n), strict=False)
                )
                if internal == "any":
                    terms = [acc, *products]
                    rng.shuffle(terms)
                    acc = terms[0]
                    for t in terms[1:]:
                        acc = np.float32(acc + t)
                elif internal == "c_last":
                    partial = products[0]
                    for t in products[1:]:
                        partial = np.float32(partial + t)
                    acc = np.float32(partial + acc)
                else:
                    exact = Fraction(float(acc)) + sum(
                        (Fraction(float(t)) for t in products), Fraction(0)
                    )
                    acc = np.float32(round_scalar(exact, FP32))
            c[i, j] = acc
    return c


@pytest.mark.parametrize("internal", ["any", "c_last", "exact"])
@pytest.mark.parametrize("fmt_in", [FP16, BF16], ids=["fp16", "bf16"])
@FEW
@given(
    seed=st.integers(0, 2**32 - 1),
    m=st.integers(1, 3),
    n=st.integers(1, 24),
    block=st.sampled_from([1, 2, 4, 8]),
    scale=st.integers(-8, 8),
)
def test_block_fma_bound_holds(
    internal: str, fmt_in: FloatFormat, seed: int, m: int, n: int, block: int, scale: int
) -> None:
    """Oracle: simulated block FMA (fp16/bf16 inputs, fp32 accumulation) vs Fraction A B."""
    rng = random.Random(seed)
    a = np.array([[rng.uniform(-1, 1) * 2.0**scale for _ in range(n)] for _ in range(m)])
    b = np.array([[rng.uniform(-1, 1) for _ in range(2)] for _ in range(n)])
    c = _block_fma(a, b, block, internal, fmt_in, rng)
    observed = torch.tensor(
        [
            [
                error(
                    float(c[i, j]),
                    sum((Fraction(a[i, k]) * Fraction(b[k, j]) for k in range(n)), Fraction(0)),
                )
                for j in range(2)
            ]
            for i in range(m)
        ],
        dtype=torch.float64,
    )
    bound = block_fma_bound(a, b, block, fmt=fmt_in, acc_fmt=FP32, internal=internal)
    assert bound.check(observed).holds


def _rational_block_fma(
    a: list[list[Fraction]], b: list[list[Fraction]], block: int, internal: str, acc: FloatFormat
) -> list[list[Fraction]]:
    """C = A B with a block FMA in rational arithmetic: exact products, and every addition (or,
    for ``"exact"``, every block's exact sum) rounded to ``acc`` by the rational oracle, also
    where a term meets C = 0. The ``"any"`` order is one fixed shuffle."""
    rng = random.Random(0)
    c = []
    for row in a:
        c_row = []
        for j in range(len(b[0])):
            total = Fraction(0)
            for start in range(0, len(row), block):
                products = [row[k] * b[k][j] for k in range(start, min(start + block, len(row)))]
                if internal == "exact":
                    total = round_scalar(total + sum(products, Fraction(0)), acc)
                    continue
                terms = [total, *products] if internal == "any" else [*products, total]
                if internal == "any":
                    rng.shuffle(terms)
                total = terms[0]
                for t in terms[1:]:
                    total = round_scalar(total + t, acc)
            c_row.append(total)
        c.append(c_row)
    return c


@pytest.mark.parametrize("internal", ["any", "c_last", "exact"])
@FEW
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12), block=st.sampled_from([1, 2, 4]))
def test_block_fma_bound_products_off_the_accumulator(
    internal: str, seed: int, n: int, block: int
) -> None:
    """Oracle: rational block FMA (``_rational_block_fma``) of bf16 values accumulated in bf16,
    whose products (up to 16 bits) are not bf16 values, against the exact Fraction A B. The
    depth's exact first addition (C = 0 plus a product) is a rounding here: for n = 1 the
    error of one rounded product, which a bound without the extra rounding puts at 0."""
    rng = random.Random(seed)
    values = BF16.finite_values()
    ones = values[(values.abs() >= 0.5) & (values.abs() <= 2)].tolist()
    a = [[rng.choice(ones) for _ in range(n)]]
    b = [[rng.choice(ones)] for _ in range(n)]
    exact = sum((Fraction(a[0][k]) * Fraction(b[k][0]) for k in range(n)), Fraction(0))
    fa = [[Fraction(v) for v in row] for row in a]
    fb = [[Fraction(v) for v in row] for row in b]
    c = _rational_block_fma(fa, fb, block, internal, BF16)[0][0]
    bound = block_fma_bound(
        a, b, block, fmt=BF16, acc_fmt=BF16, convert_inputs=False, internal=internal
    )
    assert bound.check(torch.tensor([[float(abs(c - exact))]], dtype=torch.float64)).holds
    lone = [[1 + 2.0**-7]]  # (1 + 2**-7)**2 = 1 + 2**-6 + 2**-14 rounds to 1 + 2**-6
    assert block_fma_bound(lone, lone, 1, fmt=BF16, acc_fmt=BF16, convert_inputs=False).max >= (
        2.0**-14
    )


def test_block_fma_underflow_of_inputs_without_subnormals() -> None:
    """Oracle: round_scalar of the exact product. Inputs without subnormals still have bits down
    to 2**(emin - p + 1) (p = 11, emin = -14: 2**-24), so their products reach 2**-48, below
    the grid 2**-43 of an accumulator whose subnormals stop there (p = 24, emin = -20): the
    product of x = 2**-14 (1 + 2**-10) with itself rounds. The grid test had used 2**emin and
    called every product exact below 2**emin_acc, leaving the bound at 0."""
    fi = FloatFormat(precision=11, emax=15, subnormals=False)
    fa = FloatFormat(precision=24, emax=127, emin=-20)
    x = 2.0**-14 * (1 + 2.0**-10)
    exact = Fraction(x) * Fraction(x)
    error = abs(round_scalar(exact, fa) - exact)
    assert error > 0
    bound = block_fma_bound([[x]], [[x]], 1, fmt=fi, acc_fmt=fa, convert_inputs=False)
    assert Fraction(bound.max) >= error


def test_block_fma_inputs_term_dominates() -> None:
    """Oracle: 0.1 rounds to fp16 with relative error ~2.3e-4, so 0.1 * 1 computed from rounded
    inputs is off by ~2.3e-5; the bound's 2 u_in term (~1e-3 |A||B|) must cover it while the
    accumulation term alone (gamma_0 = 0, one product) would not.
    """
    a, b = np.array([[0.1]]), np.array([[1.0]])
    c = _block_fma(a, b, 1, "any", FP16, random.Random(0))
    observed = error(float(c[0, 0]), Fraction(0.1))
    assert observed > 0
    result = block_fma_bound(a, b, 1).check(torch.tensor([[observed]]))
    assert result.holds
    without = block_fma_bound(
        mperror.round(torch.tensor([[0.1]], dtype=torch.float64), FP16), b, 1, convert_inputs=False
    )
    assert without.max == 0.0  # exact inputs, one exact product: no error allowed


# -- probabilistic bounds -----------------------------------------------------------------------


def _hoeffding_slack(trials: int, alpha: float = 1e-6) -> float:
    """Count slack ``t``: if each trial fails with probability ``p <= P``, Hoeffding's inequality
    gives ``P(failures >= trials P + t) <= exp(-2 t**2 / trials) = alpha``; with alpha = 1e-6 a
    correct bound makes this test fail less than once in a million runs.
    """
    return math.sqrt(trials * math.log(1 / alpha) / 2)


@pytest.mark.parametrize(("fmt", "n", "lam"), [(E4M3FN, 64, 3.0), (E4M3FN, 64, 4.0)])
def test_gamma_tilde_lemma_frequency(fmt: FloatFormat, n: int, lam: float) -> None:
    """Oracle: products of n factors 1 + delta_k with independent delta_k = +-u (mean zero, the
    extreme case of Hoeffding's inequality), computed in float64; count |theta| > gamma~.

    float64 rounding (~1e-14 relative here) could flip a trial only if theta landed within that
    distance of gamma~, which has probability ~0 for these discrete values.
    """
    trials = 20000
    u = fmt.unit_roundoff
    generator = torch.Generator().manual_seed(1)
    signs = torch.randint(0, 2, (trials, n), generator=generator, dtype=torch.float64) * 2 - 1
    theta = torch.prod(1 + u * signs, dim=1) - 1
    failures = int((theta.abs() > gamma_tilde(n, fmt, lam)).sum())
    stated = failure_probability(lam, fmt)
    assert failures <= trials * stated + _hoeffding_slack(trials)
    # A gamma~ missing its sqrt(n) (lambda u instead of lambda sqrt(n) u) fails far more often.
    wrong = math.expm1(lam * u + n * u * u / (1 - u))
    assert int((theta.abs() > wrong).sum()) > trials * stated + _hoeffding_slack(trials)


def _exact_dot_scaled(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exact ``2**48 x.y`` per row as int64: fp16 values in [-1, 1] are multiples of 2**-24, so
    ``2**24 x`` are integers up to 2**24, products up to 2**48, and sums of 256 up to 2**56."""
    xi = (x * 2.0**24).to(torch.int64)
    yi = (y * 2.0**24).to(torch.int64)
    return (xi * yi).sum(dim=1)


@pytest.mark.parametrize("mode", ["nearest_even", "stochastic"])
def test_dot_bound_probabilistic_frequency(mode: str) -> None:
    """Oracle: 2000 fp16 dot products of length 256 computed with ``mperror.round`` after each
    exact float64 operation (products of fp16 values and sums of two fp16 values are exact in
    float64), errors measured exactly in integers (see ``_exact_dot_scaled``).

    Under stochastic rounding the bound is a theorem (mean independence); under round to nearest
    the random data make the independence model plausible. lambda is chosen so that the stated
    failure probability is 1/2, which leaves room to detect a wrong bound.
    """
    trials, n = 2000, 256
    stochastic = mode == "stochastic"
    generator = torch.Generator().manual_seed(2)
    magnitudes = torch.rand(2, trials, n, generator=generator, dtype=torch.float64) * 0.875
    signs = torch.randint(0, 2, (2, trials, n), generator=generator) * 2 - 1
    x, y = mperror.round(signs * (magnitudes + 0.125), FP16)  # |x|, |y| in [1/8, 1]: no underflow
    s = mperror.round(x[:, 0] * y[:, 0], FP16, mode, generator=generator)
    for k in range(1, n):
        product = mperror.round(x[:, k] * y[:, k], FP16, mode, generator=generator)
        s = mperror.round(s + product, FP16, mode, generator=generator)
    exact = _exact_dot_scaled(x, y)
    observed_scaled = ((s * 2.0**48).to(torch.int64) - exact).abs().to(torch.float64)
    lam = lambda_for_probability(0.5, FP16, terms=n, stochastic=stochastic)
    failures = 0
    for t in range(trials):
        r = dot_bound_probabilistic(x[t], y[t], FP16, lam, stochastic=stochastic)
        assert r.probability == pytest.approx(0.5, rel=1e-12) and not r.vacuous
        failures += int(observed_scaled[t] > r.bound * 2.0**48)
    assert failures <= trials * 0.5 + _hoeffding_slack(trials)
    # The deterministic bound is a worst case these errors never approach.
    worst = dot_bound(x[0], y[0], FP16).bound
    assert float(observed_scaled[0]) / 2.0**48 < worst


def test_dot_bound_probabilistic_stochastic_underflow() -> None:
    """Oracle: hand derivation. In fp16 the product 2**-13 * 2**-13 = 2**-26 lies below the
    smallest subnormal 2**-24; stochastic rounding sends it to 2**-24 with probability 1/4, an
    error of 3 * 2**-26 (round to nearest's bound, half a step, is 2 * 2**-26). The bound must
    cover it with certainty: the underflow term is deterministic. Measured too, exactly: every
    result is 0 or 2**-24, so the error is 2**-26 or 3 * 2**-26."""
    x = torch.full((400, 1), 2.0**-13, dtype=torch.float64)
    r = dot_bound_probabilistic(x[0], x[0], FP16, 8.0, stochastic=True)
    assert r.bound >= 3 * 2.0**-26
    generator = torch.Generator().manual_seed(0)
    results = mperror.ops.dot(x, x, FP16, mode="stochastic", generator=generator)
    errors = (results - 2.0**-26).abs()
    assert set(results.tolist()) == {0.0, 2.0**-24}  # both outcomes occur in 400 draws
    assert float(errors.max()) <= r.bound
    rn = dot_bound_probabilistic(x[0], x[0], FP16, 8.0)
    assert (
        rn.bound >= 2.0**-26 == float((mperror.ops.dot(x[:1], x[:1], FP16) - 2.0**-26).abs().max())
    )


@pytest.mark.parametrize("stochastic", [False, True])
def test_dot_bound_probabilistic_where_gamma_n_is_infinite(stochastic: bool) -> None:
    """Oracle: the formula gamma~_n(lambda) sum|x_i y_i| (T-prob.dot) and the error of the
    recursive bf16 dot product (mperror.ops.dot, against the exact float64 sum of products of
    bf16 values). At n = 256 bf16's n u = 1: gamma_n is infinite, gamma~_n is not, and the
    bound was NaN (0 underflows times an infinite factor) or inf (one underflow)."""
    gen = torch.Generator().manual_seed(0)
    x, y = mperror.round(torch.rand(2, 256, generator=gen, dtype=torch.float64) + 0.5, BF16)
    r = dot_bound_probabilistic(x, y, BF16, 6.0, stochastic=stochastic)
    weight = float((x * y).abs().sum())
    assert r.bound == gamma_tilde(256, BF16, 6.0, stochastic=stochastic) * weight
    assert math.isfinite(r.bound)  # vacuous for stochastic, whose 2u makes gamma~ >= 1
    assert abs(float(mperror.ops.dot(x, y, BF16)) - float((x * y).sum())) <= r.bound
    y[0] = 2.0**-140  # x_0 y_0 below bf16's 2**-126: may underflow
    tiny = dot_bound_probabilistic(x, y, BF16, 6.0, stochastic=stochastic)
    formula = gamma_tilde(256, BF16, 6.0, stochastic=stochastic) * float((x * y).abs().sum())
    assert math.isfinite(tiny.bound) and tiny.bound >= formula  # plus about 2**-140


def test_fp64_products_below_the_float64_range() -> None:
    """Oracle: exact Fraction arithmetic against native float64. The product 2**-600 * 2**-600
    = 2**-1200 underflows to 0 in float64, so the computed dot product is 0 with error 2**-1200;
    counting tiny products from float64 products had missed it (and fp64's half step 2**-1075
    rounds to 0.0 as a float64), so the bound was 0."""
    x, y = [2.0**-600, 1.0], [2.0**-600, 0.0]
    computed = Fraction(x[0] * y[0] + x[1] * y[1])  # native float64 arithmetic
    error = abs(computed - Fraction(x[0]) * Fraction(y[0]))
    assert error == Fraction(2) ** -1200
    assert Fraction(dot_bound(x, y, "fp64").bound) >= error > 0
    assert Fraction(dot_bound_probabilistic(x, y, "fp64", 10.0).bound) >= error
    entry = matmul_bound([x], [[v] for v in y], "fp64").max
    assert Fraction(entry) >= error


def test_probabilistic_vacuity() -> None:
    """Oracle: T-prob: failure bound 2 exp(-lambda**2 (1 - u)**2 / 2) >= 1 below ~1.178 (fp16)."""
    threshold = math.sqrt(2 * math.log(2)) / (1 - 2.0**-11)
    assert failure_probability(threshold * 0.999, "fp16") == 1.0
    assert failure_probability(threshold * 1.001, "fp16") < 1.0
    r = dot_bound_probabilistic([1.0] * 10, [1.0] * 10, "fp16", 2.0)
    assert r.vacuous and r.probability == 1.0  # 10 * 2 exp(-2 (1 - u)**2) > 1


def test_overflowing_arguments_give_inf_not_exceptions() -> None:
    """Oracle: the definitions. n u >= 1 makes gamma_n infinite whatever n (10**400 does not
    convert to a float); gamma~'s exp(lambda sqrt(n) u + n u**2 / (1 - u)) - 1 passes
    float64's range at bf16, n = 2**26 (n u**2 = 2**10, e**1024 > 2**1024); stochastic
    rounding to a 1-bit format errs by up to 100% per rounding (2u = 1), so gamma~ and the
    lambda of any probability are infinite (they had raised OverflowError or
    ZeroDivisionError)."""
    assert gamma(10**400, "fp16") == math.inf
    assert gamma_tilde(2**26, "bf16", 1.0) == math.inf
    assert gamma_tilde(10**400, "fp16", 1.0) == math.inf  # sqrt(10**400) had raised
    assert failure_probability(4.0, "fp16", terms=10**400) == 1.0  # 10**400 e**-8 > 1
    with mpmath.workdps(30):  # sqrt(2 ln(2 10**400 / 0.5)) / (1 - u)
        want = mpmath.sqrt(2 * mpmath.log(4 * mpmath.mpf(10) ** 400)) / (1 - mpmath.mpf(2) ** -11)
    assert lambda_for_probability(0.5, "fp16", terms=10**400) == pytest.approx(float(want))
    # long dot products: the underflow term's growth (1 + u)**(n - 1) passes exp's range
    # (bf16, n = 200,000); with no tiny product it is not needed, and it had raised
    n = 200_000
    r = dot_bound_probabilistic([1.0] * n, [1.0] * n, BF16, 6.0)
    assert r.bound == gamma_tilde(n, BF16, 6.0) * n
    no_subnormals = FloatFormat(precision=4, emax=7, subnormals=False)
    assert dot_bound_probabilistic([1.0] * 12_000, [1.0] * 12_000, no_subnormals, 6.0).bound == (
        math.inf
    )
    one_bit = FloatFormat(precision=1, emax=3)
    assert gamma_tilde(4, one_bit, 1.0, stochastic=True) == math.inf
    assert lambda_for_probability(0.5, one_bit, stochastic=True) == math.inf


def test_lambda_for_a_tiny_probability() -> None:
    """Oracle: mpmath at 30 digits, sqrt(2 ln(2 / p)) / (1 - u); 2 / 1e-320 overflows float64,
    which had made lambda infinite."""
    p = 1e-320
    with mpmath.workdps(30):
        want = mpmath.sqrt(2 * mpmath.log(2 / mpmath.mpf(p))) / (1 - mpmath.mpf(2) ** -11)
    assert lambda_for_probability(p, "fp16") == pytest.approx(float(want), rel=1e-14)


def test_complex_and_bool_arrays_are_refused() -> None:
    """numpy's cast to float64 drops imaginary parts with only a warning: [1 + 1000j,
    1 - 1000j, 1] had been bounded as [1, 1, 1]."""
    bools_among_objects = np.array([True, Fraction(1)], dtype=object)
    for values in (
        np.array([1 + 1000j, 1 - 1000j, 1]),
        np.array([True, False]),
        bools_among_objects,
    ):
        with pytest.raises(TypeError, match="x must be a real"):
            recursive_sum_bound(values, "fp16")


# From a mutation review: inputs near the limits that no test had used.
_NOSUB = FloatFormat(precision=4, emax=7, subnormals=False)  # emin = -6


def test_sum_and_matmul_bounds_cover_underflow_without_subnormals() -> None:
    """Oracle: Fraction arithmetic and round_scalar. In a format without subnormals
    1.625 * 2**-6 - 1.125 * 2**-6 = 2**-7 is a tie between 0 and 2**-6: an error of 2**-7
    that only the bounds' underflow term covers (every other test format has subnormals)."""
    x = [1.625 * 2.0**-6, -1.125 * 2.0**-6]
    exact = Fraction(x[0]) + Fraction(x[1])
    error = abs(Fraction(round_scalar(exact, _NOSUB)) - exact)
    assert error == Fraction(2) ** -7
    assert Fraction(recursive_sum_bound(x, _NOSUB).bound) >= error
    assert Fraction(matmul_bound([x], [[1.0], [1.0]], _NOSUB).max) >= error


def test_matmul_bound_covers_products_just_below_the_smallest_normal() -> None:
    """Oracle: Fraction arithmetic and round_scalar. For fp16 values y in [2**-8, 2**-7] the
    product y * y lies in [2**-16, 2**-14], on the subnormal grid of spacing 2**-24, where
    the relative error reaches 2u: every one of the 1025 cases must lie within the bound."""
    for k in range(1025):
        y = 2.0**-8 * (1 + k / 1024)
        exact = Fraction(y) ** 2
        error = abs(Fraction(round_scalar(exact, FP16)) - exact)
        assert Fraction(matmul_bound([[y]], [[y]], FP16).max) >= error, y


def test_block_fma_bound_covers_the_rounding_of_subnormal_inputs() -> None:
    """Oracle: round_scalar. 2**-20 + 0.49 * 2**-24 rounds to fp16's subnormal grid with an
    error near 2**-25, far above u |a|: the bound's absolute term must cover it."""
    a = 2.0**-20 + 0.49 * 2.0**-24
    error = abs(Fraction(round_scalar(Fraction(a), FP16)) - Fraction(a))
    assert Fraction(block_fma_bound([[a]], [[1.0]], 1).max) >= error > 0


def test_sum_bounds_are_infinite_where_rounding_can_overflow_near_max() -> None:
    """Oracle: the fp16 recursive sum by round_scalar. 32800 + 16 + 32688 is exactly 65504
    (fp16's max), but 32800 + 16 ties up to 32832 and the sum overflows: the bounds must not
    be finite (the overflow tests had used sums far past the limit)."""
    xs = [32800.0, 16.0, 32688.0]
    s = xs[0]
    for x in xs[1:]:
        s = round_scalar(Fraction(s) + Fraction(x), FP16)
    assert sum(xs) == 65504.0 and math.isinf(s)
    assert recursive_sum_bound(xs, FP16).bound == math.inf
    assert blocked_sum_bound(xs, FP16, 3, outer_fmt="fp32").bound == math.inf


def test_probabilistic_dot_bound_has_the_underflow_growth_factor() -> None:
    """Oracle: the bound's formula (theory/T-prob.md), gamma_tilde sum |x y| plus the
    underflow term 2**-25 (1 + u)**(n - 1), to 1e-12: dropping the factor changes it by a
    relative (n - 1) u."""
    n = 1000
    x = [2.0**-13] + [1.0] * (n - 1)
    y = [2.0**-13] + [2.0**-4] * (n - 1)
    weight = float(sum(abs(Fraction(a) * Fraction(b)) for a, b in zip(x, y, strict=True)))
    expected = gamma_tilde(n, FP16, 6.0) * weight + 2.0**-25 * (1 + 2.0**-11) ** (n - 1)
    assert dot_bound_probabilistic(x, y, FP16, 6.0).bound == pytest.approx(expected, rel=1e-12)


def test_block_fma_products_that_fit_the_accumulator_are_exact() -> None:
    """Oracle: hand arithmetic. Products of two 12-bit values have at most 24 bits, fp32
    values: with exact inputs nothing is rounded, so the bound is 0."""
    fi = FloatFormat(precision=12, emax=15)
    x = [[1 + 2.0**-11]]
    assert block_fma_bound(x, x, 1, fmt=fi, acc_fmt="fp32", convert_inputs=False).max == 0.0
