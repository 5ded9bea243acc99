"""mperror.round: exhaustive and property tests, each with its oracle named.

Oracles, in order of strength:
1. exhaustive candidates per format (every finite value, both midpoints, midpoints +-1 and +-2
   float32 ulps, both signs, all specials) against torch's native casts (float32 inputs, zero
   tolerance) and against the rational-arithmetic reference ``round_scalar`` for every mode;
2. Hypothesis properties on random formats, modes and inputs;
3. statistics of stochastic rounding with tolerances derived below.

The kernel has several code paths (native casts; the integer kernel in chunks with the
small-magnitude fix-up on gathered elements or, when they are many, by the anchored method; the
compiled kernel). The ``path`` fixture runs the exhaustive checks through each.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import mperror
import mperror.rounding as rounding
from mperror import formats, testing
from mperror.reference import neighbours, round_scalar
from mperror.rounding import RoundMode

SMALL_FORMATS = ["e2m1", "e2m3", "e3m2", "e4m3fn", "e5m2"]
NATIVE = {"fp16": torch.float16, "bf16": torch.bfloat16, "e5m2": torch.float8_e5m2,
          "e4m3fn": torch.float8_e4m3fn}  # fmt: skip
DETERMINISTIC = [m for m in RoundMode if not m.is_stochastic]


def candidates(fmt: formats.FloatFormat, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The exhaustive candidate set of the issue, as ``dtype`` values (duplicates removed)."""
    values = fmt.finite_values(dtype=torch.float64)
    values = values[values >= 0]
    upper = torch.cat([values[1:], values[-1:] + fmt.spacing(values[-1:])])  # overflow tie too
    mids = ((values + upper) / 2).to(dtype)
    near = [mids]
    for direction in (math.inf, -math.inf):
        step = mids
        for _ in range(2):
            step = torch.nextafter(step, torch.full_like(step, direction))
            near.append(step)
    specials = torch.tensor([math.inf, math.nan, 0.0], dtype=dtype)
    positive = torch.cat([values.to(dtype), *near, specials])
    return torch.unique(torch.cat([positive, -positive, torch.tensor([-0.0], dtype=dtype)]))


def same_bits(got: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """Elementwise: equal values with equal signs (so -0 != +0), or both NaN."""
    got, expected = got.double(), expected.double()
    equal = (got == expected) & (torch.signbit(got) == torch.signbit(expected))
    return equal | (got.isnan() & expected.isnan())


def reference(x: torch.Tensor, fmt: formats.FloatFormat, mode: RoundMode) -> torch.Tensor:
    return torch.tensor([round_scalar(v, fmt, mode) for v in x.double().tolist()], dtype=x.dtype)


def assert_same(got: torch.Tensor, expected: torch.Tensor, x: torch.Tensor) -> None:
    ok = same_bits(got, expected)
    if not ok.all():
        i = int((~ok).nonzero()[0])
        raise AssertionError(
            f"{int((~ok).sum())} mismatches; first: x={x[i].item()!r} got {got[i].item()!r} "
            f"expected {expected[i].item()!r}"
        )


@pytest.fixture(params=["detour", "addition", "eager", "sparse", "chunked"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Run mperror.round through one of its code paths, without the native-cast shortcut.

    detour: float64 inputs go through a round-to-odd float32 (the default for deterministic
    modes); addition: rounding by float32 additions where it applies (the default for nearest
    even without a native cast, and for every mode on FP6/FP4), in chunks of 64; the other three
    run the integer kernel of the input's width directly. eager: one chunk, the candidates as
    they are (dense small magnitudes: anchored fix-up where it applies); sparse: the candidates
    diluted 9-fold by 1.0, below the 1/8 share at which the anchored method takes over
    (gathered fix-up); chunked: chunks of 64 elements, so that every chunk boundary case occurs.
    """
    monkeypatch.setattr(rounding, "_NATIVE_CASTS", {})
    if request.param not in ("detour", "addition"):
        monkeypatch.setattr(rounding, "_float32_detour_is_exact", lambda fmt, mode: False)
        monkeypatch.setattr(rounding, "_addition_applies", lambda fmt, mode: False)
    if request.param in ("chunked", "addition"):
        monkeypatch.setattr(rounding, "_CHUNK", 64)
    # Routes are decided once per format, mode and dtypes: decide them again under the patches,
    # and forget those at teardown, so that later tests decide them without.
    rounding._route.cache_clear()
    request.addfinalizer(rounding._route.cache_clear)

    def run(x: torch.Tensor, fmt, mode) -> torch.Tensor:
        if request.param != "sparse":
            return mperror.round(x, fmt, mode)
        padded = torch.ones(9 * x.numel(), dtype=x.dtype)
        padded[::9] = x
        return mperror.round(padded, fmt, mode)[::9]

    return run


@pytest.mark.parametrize("name", SMALL_FORMATS)
@pytest.mark.parametrize("subnormals", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_small_formats_exhaustive_all_modes(name, subnormals, dtype, path) -> None:
    """Oracle: the Fraction reference on the exhaustive candidate set, every deterministic mode,
    both overflow policies where the format has a choice."""
    base = formats.get(name).replace(subnormals=subnormals)
    variants = [base]
    if base.has_nan and not base.has_inf:
        variants.append(base.replace(overflow="nan"))
    for fmt in variants:
        x = candidates(fmt, dtype)
        for mode in DETERMINISTIC:
            assert_same(path(x, fmt, mode), reference(x, fmt, mode), x)


def torch_cast_format(name: str, device: str = "cpu") -> formats.FloatFormat:
    """The format whose nearest-even rounding torch's cast to ``NATIVE[name]`` is: the preset,
    except e4m3fn where torch gives NaN past 464 (its behaviour before pytorch#178817)."""
    fmt = formats.get(name)
    overflow = torch.tensor([1000.0], device=device).to(NATIVE[name]).float()
    if name == "e4m3fn" and overflow.isnan().item():
        return fmt.replace(overflow="nan")
    return fmt


@pytest.mark.parametrize("name", sorted(NATIVE))
def test_nearest_even_matches_torch_casts_exhaustively(name: str, path) -> None:
    """Oracle: torch's native float32 -> format cast, zero tolerance, on the exhaustive set."""
    fmt = torch_cast_format(name)
    x = candidates(fmt, torch.float32)
    expected = x.to(NATIVE[name]).float()
    assert_same(path(x, fmt, "nearest_even"), expected, x)
    assert_same(mperror.round(x, fmt), expected, x)  # the native fast path itself


def test_native_casts_are_used_only_where_they_agree(monkeypatch) -> None:
    """Oracle: the reference; and torch's own cast of 1000.0 for which e4m3fn variant torch's
    float8_e4m3fn cast rounds to (it saturated from torch 2.12 on, gave NaN before). A cast that
    disagrees with its format (here bfloat16 standing in for fp16) is noticed and not used."""
    saturates = not torch.tensor([1000.0]).to(torch.float8_e4m3fn).float().isnan().item()
    e4m3fn_nan = formats.E4M3FN.replace(overflow="nan")
    assert rounding._cast_agrees(formats.E4M3FN, torch.float8_e4m3fn, "cpu") is saturates
    assert rounding._cast_agrees(e4m3fn_nan, torch.float8_e4m3fn, "cpu") is not saturates
    assert rounding._cast_agrees(formats.FP16, torch.float16, "cpu")
    monkeypatch.setattr(rounding, "_NATIVE_CASTS", {formats.FP16: torch.bfloat16})
    rounding._route.cache_clear()  # routes are decided once: again under the patch
    try:
        x = candidates(formats.FP16, torch.float32)
        expected = reference(x, formats.FP16, RoundMode.NEAREST_EVEN)
        assert_same(mperror.round(x, "fp16"), expected, x)
        assert_same(mperror.round(x.double(), "fp16").float(), expected, x)
    finally:
        rounding._route.cache_clear()


@pytest.mark.parametrize("name", ["fp16", "bf16"])
@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_16_bit_formats_against_reference_on_a_stride(name: str, mode: RoundMode) -> None:
    """Oracle: the reference on every 97th candidate of fp16/bf16 (the full set is in
    experiments/exhaustive_check.py); float64 inputs, so the generic kernel runs."""
    fmt = formats.get(name)
    x = candidates(fmt, torch.float32)[::97].double()
    assert_same(mperror.round(x, fmt, mode), reference(x, fmt, mode), x)


@pytest.mark.parametrize(
    "fmt",
    [
        formats.get("bf16"),  # the storage's emin and subnormals: its subnormal grid, coarsened
        formats.get("tf32"),
        formats.FloatFormat(precision=3, emax=127, emin=-126),
        formats.FloatFormat(precision=8, emax=127, emin=-126, subnormals=False),  # not linear
        formats.FloatFormat(precision=8, emax=127, emin=-125),  # not linear: emin differs
    ],
    ids=["bf16", "tf32", "p3", "p8-no-subnormals", "p8-emin-125"],
)
def test_float32_subnormal_inputs_against_reference(fmt: formats.FloatFormat) -> None:
    """Oracle: the reference, on float32 inputs below 2**-124 (float32 subnormals among them:
    patterns the integer kernel rounds directly where the format's grid there is float32's
    own subnormal grid coarsened, with no fix-up below 2**emin), every deterministic mode."""
    # Multiples of the finest spacing any such format has below 2**-124, and the midpoints
    # between them (every value and midpoint of fmt there is one of these), their float32
    # neighbours, and random float32 values below 2**-124.
    step = 2.0 ** (-126 - fmt.precision + 1)
    grid = torch.arange(0, 2 ** (fmt.precision + 1) + 1, dtype=torch.float32) * step
    mids = grid + step / 2
    up = torch.nextafter(mids, torch.tensor(math.inf))
    down = torch.nextafter(mids, torch.tensor(0.0))
    random = torch.rand(500, generator=torch.Generator().manual_seed(1)) * 2.0**-124
    x = torch.cat([grid, mids, up, down, random, torch.tensor([2.0**-149, 2.0**-126])])
    x = torch.cat([x, -x])
    assert (x[x != 0].abs() < 2.0**-126).any()  # float32 subnormals are among them
    for mode in DETERMINISTIC:
        assert_same(mperror.round(x, fmt, mode), reference(x, fmt, mode), x)


@given(st.lists(st.floats(width=64), min_size=1, max_size=40))
@example([2.0**-149 * 1.5, 2.0**-150, 2.0**-160, 3.5e38, 1e300, 2.0**128, 1 + 2**-30])
def test_round_to_odd_float32_conversion(values: list[float]) -> None:
    """Oracle: the int64 kernel rounding to an fp32-shaped format in mode 'odd' (p = 24 never
    takes the float32 detour), float32 subnormals included; finite values past float32's range
    saturate at its max (round-to-odd truncates there), unlike the INF policy's overflow."""
    x = torch.tensor(values, dtype=torch.float64)
    expected = mperror.round(x, formats.FP32, "odd")
    beyond = torch.isfinite(x) & (x.abs() > formats.FP32.max)
    expected = torch.where(beyond, torch.copysign(torch.tensor(formats.FP32.max), x), expected)
    assert_same(rounding._to_float32_odd(x).double(), expected, x)


def test_float64_inputs_do_not_double_round() -> None:
    """Oracle: the exact value lies above the midpoint 1 + 2**-8; torch's own float64 cast goes
    through float32, which drops the 2**-40 and then ties to even (the peer bug)."""
    x = torch.tensor([1 + 2**-8 + 2**-40], dtype=torch.float64)
    assert mperror.round(x, "bf16").item() == 1 + 2**-7
    assert x.to(torch.bfloat16).item() == 1.0


def test_precision_one_and_unusual_ranges() -> None:
    """Oracle: the reference, on random bit patterns and log-uniform magnitudes, for a
    precision-1 format (every significand odd), a grid that skips (0, 1) (emin > p), and a
    p = 24 format with a narrow range (no bits dropped in the normal range)."""
    gen = torch.Generator().manual_seed(7)
    custom = [
        formats.FloatFormat(precision=1, emax=3),
        formats.FloatFormat(precision=1, emax=3, subnormals=False),
        formats.FloatFormat(precision=2, emin=3, emax=6, has_inf=False),
        formats.FloatFormat(precision=24, emax=10),
        formats.FloatFormat(precision=3, emin=70, emax=80),
    ]
    for fmt in custom:
        for dtype in (torch.float32, torch.float64):
            lo, hi = math.log2(fmt.smallest_subnormal) - 3, math.log2(fmt.max) + 2
            exponents = torch.rand(400, generator=gen, dtype=torch.float64) * (hi - lo) + lo
            x = torch.exp2(exponents) * torch.randn(400, generator=gen, dtype=torch.float64)
            x = x.to(dtype)
            if dtype == torch.float32 and fmt.emin >= 70:
                continue  # float32 cannot hold that format
            for mode in DETERMINISTIC:
                assert_same(mperror.round(x, fmt, mode), reference(x, fmt, mode), x)


@pytest.mark.parametrize(
    "fmt",
    [
        formats.FloatFormat(precision=2, emax=10, emin=-140),
        formats.FloatFormat(precision=2, emax=10, emin=-130, subnormals=False),
        formats.FloatFormat(precision=5, emax=0, emin=-135),
    ],
    ids=str,
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_formats_reaching_below_float32_normals(fmt, dtype, mode) -> None:
    """Formats whose 2**emin is a float32 subnormal (emin < -126) but which float32 holds.
    Oracle: values of the format are fixed points of every mode (they came back as 0 when the
    float32 kernel treated 2**emin as a float32 normal), and the reference elsewhere."""
    values = [math.ldexp(m, fmt.emin + e) for m, e in [(1.0, 0), (1.5, 0), (1.0, 2)]]
    values += [-v for v in values] + [math.ldexp(1.3, fmt.emin), math.ldexp(0.7, fmt.emin)]
    x = torch.tensor(values, dtype=dtype)
    expected = [round_scalar(v, fmt, mode) for v in x.tolist()]
    assert mperror.round(x, fmt, mode).tolist() == expected
    assert expected[:6] == values[:6]


# -- properties ------------------------------------------------------------------------------


@given(fmt=testing.formats(), mode=st.sampled_from(DETERMINISTIC), data=st.data())
def test_agrees_with_reference_on_random_formats(fmt, mode, data) -> None:
    """Oracle: the reference, on custom formats and the inputs that matter for each."""
    values = data.draw(st.lists(testing.inputs(fmt, dtype=torch.float32), min_size=1, max_size=20))
    x = torch.tensor(values, dtype=torch.float32)
    assert_same(mperror.round(x, fmt, mode), reference(x, fmt, mode), x)


@given(
    st.lists(st.floats(width=64), min_size=1, max_size=30),
    st.sampled_from(["fp16", "e4m3fn", "e2m1", "tf32"]),
)
@example([2.0**-25 * (1 + 2**-11), 65519.99, -0.0], "fp16")
def test_float64_inputs_agree_with_reference(values, name) -> None:
    """Oracle: the reference; float64 inputs take the int64 kernel."""
    x = torch.tensor(values, dtype=torch.float64)
    for mode in DETERMINISTIC:
        assert_same(mperror.round(x, name, mode), reference(x, formats.get(name), mode), x)


@given(fmt=testing.formats(), mode=st.sampled_from(DETERMINISTIC), data=st.data())
def test_algebraic_properties(fmt, mode, data) -> None:
    """Properties that hold for every format and deterministic mode (oracle: the definitions):
    idempotence; monotonicity; the result is one of the two neighbours; sign symmetry of the
    symmetric modes and RU(-x) = -RD(x); nearest modes err by at most u|x| in the normal range;
    directed modes never land on the wrong side."""
    finite = testing.inputs(fmt, dtype=torch.float32).filter(math.isfinite)
    x = torch.tensor(data.draw(st.lists(finite, min_size=2, max_size=20)), dtype=torch.float32)
    r = mperror.round(x, fmt, mode)
    assert_same(mperror.round(r, fmt, mode), r, x)
    order = torch.argsort(x)
    rs = r[order]
    ok = torch.isfinite(rs)
    assert (rs[ok][1:] >= rs[ok][:-1]).all()
    down = mperror.round(x, fmt, "toward_negative")
    up = mperror.round(x, fmt, "toward_positive")
    assert ((r == down) | (r == up) | r.isinf() | r.isnan()).all()
    assert ((down <= x) | down.isnan() | (x.abs() > fmt.max)).all()
    assert ((up >= x) | up.isnan() | (x.abs() > fmt.max)).all()
    if mode in (
        RoundMode.NEAREST_EVEN,
        RoundMode.NEAREST_AWAY,
        RoundMode.TOWARD_ZERO,
        RoundMode.ODD,
    ):
        assert_same(mperror.round(-x, fmt, mode), -r, x)
    assert_same(mperror.round(-x, fmt, "toward_positive"), -down, x)
    if mode in (RoundMode.NEAREST_EVEN, RoundMode.NEAREST_AWAY):
        normal = (x.abs() >= fmt.smallest_normal) & (x.abs() <= fmt.max)
        error = (r.double() - x.double()).abs()
        assert (error[normal] <= fmt.unit_roundoff * x.double().abs()[normal]).all()


# -- stochastic rounding ---------------------------------------------------------------------

# Each P(up) estimate below averages n = 40,000 Bernoulli(f) draws: standard deviation
# sqrt(f (1 - f) / n) <= 0.0025. A tolerance of 5 standard deviations makes a false failure
# less likely than 6e-7 per check.
N_DRAWS = 40_000


def _tolerance(f: float) -> float:
    return 5 * math.sqrt(max(f * (1 - f), 1e-12) / N_DRAWS) + 1e-12


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("fp16", 1 + 0.3 * 2**-10),  # normal range
        ("bf16", -(3.0 + 0.77 * 2**-6)),
        ("bf16", 3 * 2.0**-140),  # a float32 subnormal, f = 3 * 2**-7 below bf16's spacing
        ("e2m1", 0.1),  # subnormal range
        ("fp16", 2.0**-30),  # far below the smallest subnormal: f = 2**-6
        ("e4m3fn", 450.0),  # near overflow: saturates
        ("e5m2", 57344.0 + 2048.0),  # past max: goes to inf with probability 1/4
        # FP6 / FP4 from float32 take the addition path, from float64 the int64 kernel
        ("e3m2", 5.3),  # normal range, spacing 1
        ("e2m3", -0.3),  # subnormal range, spacing 1/8: f = 0.4
        ("e2m1", 5.0),  # a midpoint, spacing 2: f = 1/2
        ("e2m1", 6.5),  # past max: saturates
        ("e3m2", 2.0**-40),  # far below the smallest subnormal 2**-4: f = 2**-36
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("draws", ["generator", "splitmix"])
def test_stochastic_probability_matches_fraction(
    name: str, value: float, dtype: torch.dtype, draws: str, monkeypatch
) -> None:
    """Oracle: P(up) = f, with the neighbours k q, (k + 1) q and f from the reference's exact
    grid decomposition; the upper neighbour passes through the overflow policy (e4m3fn
    saturates, so both neighbours are 448 there). ``splitmix``: the eager kernels fed the
    compiled path's counter-based bits."""
    if draws == "splitmix":
        monkeypatch.setattr(rounding, "_draw", splitmix_draw)
    fmt = formats.get(name)
    x = torch.full((N_DRAWS,), value, dtype=dtype)
    r = mperror.round(x, fmt, "stochastic", generator=torch.Generator().manual_seed(3))
    k, f, q = neighbours(abs(Fraction(value)), fmt)
    down = torch.full_like(r, math.copysign(float(k * q), value))
    up = torch.full_like(r, round_scalar(math.copysign(float((k + 1) * q), value), fmt))
    went_up = same_bits(r, up)
    assert (went_up | same_bits(r, down)).all()  # only neighbours appear
    if not same_bits(up, down).all():
        measured = went_up.double().mean().item()
        assert abs(measured - float(f)) <= _tolerance(float(f))


def splitmix_draw(
    bits: torch.Tensor, mode: RoundMode, generator: torch.Generator | None
) -> torch.Tensor | None:
    """A stand-in for ``rounding._draw`` that gives the eager kernels the compiled path's random
    bits: one key from the generator, then SplitMix64's outputs 1, 2, ... With one chunk the
    eager and compiled paths then read the same bits."""
    key, gamma = rounding._stream(mode, generator, bits.device)
    if key is None:
        return None
    return rounding._counter_bits(key, gamma, bits.numel(), bits.dtype)


def test_counter_bits_are_splitmix64() -> None:
    """Oracle: the published SplitMix64 outputs (Rosetta Code, "Pseudo-random numbers/
    Splitmix64": seed 1234567; seed 0's first output 0xE220A8397B1DCDAF, from Vigna's
    splitmix64.c); the int32 form keeps the top 31 bits, the int64 form the low 63."""
    published = [
        6457827717110365317,
        3203168211198807973,
        9817491932198370423,
        4593380528125082431,
        16408922859458223821,
    ]
    gamma = rounding._gamma(torch.device("cpu"))
    key = torch.tensor(1234567)
    wide = rounding._counter_bits(key, gamma, 5, torch.int64).tolist()
    narrow = rounding._counter_bits(key, gamma, 5, torch.int32).tolist()
    assert wide == [z % 2**63 for z in published]
    assert [r % 2**31 for r in narrow] == [z >> 33 for z in published]
    first = rounding._counter_bits(torch.tensor(0), gamma, 1, torch.int64).item()
    assert first == 0xE220A8397B1DCDAF % 2**63


def test_stochastic_is_unbiased() -> None:
    """Oracle: E[round(x)] = x for SR. The mean of n = 40,000 errors, each within one spacing
    2**-10 of zero, has standard deviation <= 2**-10 / (2 sqrt(n)); 5 of them is the tolerance."""
    x = torch.full((N_DRAWS,), 1 + 0.37 * 2**-10, dtype=torch.float64)
    r = mperror.round(x, "fp16", "stochastic", generator=torch.Generator().manual_seed(11))
    mean_error = (r - x).mean().item()
    assert abs(mean_error) <= 5 * 2**-10 / (2 * math.sqrt(N_DRAWS))


@pytest.mark.parametrize("k", [1, 2, 4])
def test_few_bit_stochastic_has_the_documented_bias(k: int) -> None:
    """Oracle: with k random bits, P(up) = floor(2**k f) / 2**k (biased toward zero)."""
    f = 0.7
    x = torch.full((N_DRAWS,), 1 + f * 2**-10, dtype=torch.float32)
    r = mperror.round(
        x, "fp16", "stochastic", random_bits=k, generator=torch.Generator().manual_seed(k)
    )
    expected = math.floor(2**k * f) / 2**k
    measured = (r > 1).double().mean().item()
    assert abs(measured - expected) <= _tolerance(expected)


def test_few_bit_stochastic_below_emin_truncates_what_it_does_not_see(monkeypatch) -> None:
    """Oracle: the documented probability floor(2**j f) / 2**j, j = min(k, G), below 2**emin.
    With the largest possible draw (all ones) a value goes up exactly when that probability is
    positive: 2**-149 to fp16 has f = 2**-125 (0 at j = 31 bits), 1.5 * 2**-25 has f = 3/4;
    for float64 input to a 53-bit format with emin = -1000 (G = 62 - 53 = 9), 2**-1074 has
    f = 2**-22 (0 at j = 9 bits whatever k). The kernel's sticky bit made both small ones go
    up (by up to 2**-G)."""
    monkeypatch.setattr(
        mperror.rounding, "_draw", lambda bits, mode, generator: torch.full_like(bits, -1)
    )
    x = torch.tensor([2.0**-149, 1.5 * 2.0**-25])
    r = mperror.round(x, "fp16", "stochastic", random_bits=31)
    assert r.tolist() == [0.0, 2.0**-24]
    wide = mperror.FloatFormat(precision=53, emax=1023, emin=-1000)
    for k in (9, 20, 31):
        y = mperror.round(torch.tensor([2.0**-1074], dtype=torch.float64), wide, "stochastic",
                          random_bits=k)  # fmt: skip
        assert y.item() == 0.0, k


def test_stochastic_equal_and_exact_values() -> None:
    """Oracle: the definition: inexact values go either way with probability 1/2; exact values
    never move in any stochastic mode."""
    gen = torch.Generator().manual_seed(5)
    x = torch.full((N_DRAWS,), 1 + 0.01 * 2**-10)
    r = mperror.round(x, "fp16", "stochastic_equal", generator=gen)
    assert abs((r > 1).double().mean().item() - 0.5) <= _tolerance(0.5)
    exact = formats.E4M3FN.finite_values(dtype=torch.float32)
    for mode in ("stochastic", "stochastic_equal"):
        assert_same(mperror.round(exact, "e4m3fn", mode, generator=gen), exact, exact)
    # FP4 from float32: the addition path (0.3 lies between 0 and 0.5)
    r = mperror.round(torch.full((N_DRAWS,), 0.3), "e2m1", "stochastic_equal", generator=gen)
    assert (same_bits(r, torch.zeros_like(r)) | same_bits(r, torch.full_like(r, 0.5))).all()
    assert abs((r > 0).double().mean().item() - 0.5) <= _tolerance(0.5)
    exact = formats.E2M1.finite_values(dtype=torch.float32)
    for mode in ("stochastic", "stochastic_equal"):
        assert_same(mperror.round(exact, "e2m1", mode, generator=gen), exact, exact)


@pytest.mark.parametrize(("name", "value"), [("fp16", 1 + 0.01 * 2**-10), ("e2m1", 0.3)])
def test_stochastic_equal_decisions_are_independent(name: str, value: float) -> None:
    """Oracle: independent fair coins: for every lag 1..40 (the draw packs 32 decisions into one
    random word, so shared or shifted bits show up at some lag), elements ``i`` and ``i + lag``
    go the same way with probability 1/2, within ``_tolerance(0.5)``."""
    x = torch.full((N_DRAWS + 40,), value)
    r = mperror.round(x, name, "stochastic_equal", generator=torch.Generator().manual_seed(21))
    up = r > value
    for lag in range(1, 41):
        agree = (up[lag:][:N_DRAWS] == up[:N_DRAWS]).double().mean().item()
        assert abs(agree - 0.5) <= _tolerance(0.5), lag


def test_stochastic_is_reproducible_and_chunk_independent(monkeypatch) -> None:
    """Oracle: the same seed gives the same bits, whatever the chunking; another seed differs."""
    x = torch.randn(3000)

    def run(seed: int) -> torch.Tensor:
        return mperror.round(
            x, "e4m3fn", "stochastic", generator=torch.Generator().manual_seed(seed)
        )

    first = run(1)
    assert torch.equal(first, run(1))
    assert not torch.equal(first, run(2))
    monkeypatch.setattr(rounding, "_CHUNK", 100)
    assert torch.equal(first, run(1))


# -- inputs, dtypes, shapes, gradients, errors -----------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_keep_their_dtype(dtype: torch.dtype) -> None:
    """Oracle: rounding the exactly widened float32 values."""
    x = torch.randn(500).to(dtype)
    for name in ("e4m3fn", "e5m2", "e2m1"):
        got = mperror.round(x, name, "toward_zero")
        assert got.dtype == dtype
        assert_same(got, mperror.round(x.float(), name, "toward_zero").to(dtype), x)


def test_shapes_complex_and_layouts() -> None:
    """Oracle: rounding the flattened real values."""
    x = torch.randn(4, 5, dtype=torch.float64)
    for y in (x, x.t(), x[:, ::2], torch.randn(0), torch.tensor(3.3)):
        got = mperror.round(y, "bf16")
        assert got.shape == y.shape and got.dtype == y.dtype
        torch.testing.assert_close(
            got.reshape(-1), mperror.round(y.reshape(-1).clone(), "bf16"), rtol=0, atol=0
        )
    z = torch.randn(6, dtype=torch.complex64)
    rz = mperror.round(z, "fp16")
    assert rz.dtype == torch.complex64
    assert torch.equal(rz.real, mperror.round(z.real.contiguous(), "fp16"))
    assert torch.equal(rz.imag, mperror.round(z.imag.contiguous(), "fp16"))


@pytest.mark.parametrize(
    ("source", "target", "name", "mode"),
    [
        (torch.float64, torch.float32, "fp16", "nearest_even"),  # float32 detour, native cast
        (torch.float64, torch.float16, "e4m3fn", "odd"),  # detour, float32 kernel
        (torch.float64, torch.float32, "bf16", "stochastic"),  # int64 kernel
        (torch.float16, torch.float32, "bf16", "toward_zero"),  # result wider than the input
        (torch.float32, torch.float64, "tf32", "nearest_away"),
    ],
)
def test_result_dtype(source, target, name, mode) -> None:
    """Oracle: rounding in the input's dtype (or float64), then converting, which is exact."""
    x = (torch.randn(3000, dtype=torch.float64) * 100).to(source)
    gen = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    got = mperror.round(x, name, mode, dtype=target, generator=gen())
    assert got.dtype == target
    expected = mperror.round(x.double(), name, mode, generator=gen()).to(target)
    if source == torch.float64 or mode != "stochastic":
        assert_same(got, expected, x.double())
    z = torch.complex(x.double(), -x.double()).conj()  # a lazily conjugated view
    rz = mperror.round(z, name, "toward_zero", dtype=torch.complex64)
    assert rz.dtype == torch.complex64
    assert_same(rz.imag, mperror.round(x.double(), name, "toward_zero").to(torch.float32), x)


@pytest.mark.parametrize("fmt", ["fp16", "e2m1", "e4m3fn"])
@pytest.mark.parametrize("mode", ["nearest_even", "toward_zero", "stochastic"])
def test_lazily_negated_views(fmt, mode) -> None:
    """``z.conj().imag`` carries torch's negative bit (a view that cannot be reinterpreted as
    integers; rounding it raised). Oracle: the same values, resolved first."""
    z = torch.complex(torch.zeros(64), torch.randn(64) * 10).conj()
    y = z.imag
    assert y.is_neg()
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    expected = mperror.round(y.resolve_neg(), fmt, mode, generator=gen())
    assert torch.equal(mperror.round(y, fmt, mode, generator=gen()), expected)


def test_result_never_aliases_input() -> None:
    x = torch.randn(10)
    for fmt in ("fp32", "fp16", "e2m1"):
        y = mperror.round(x, fmt)
        assert y.data_ptr() != x.data_ptr()


def test_gradient_is_straight_through() -> None:
    """Oracle: the documented identity backward."""
    x = torch.randn(7, requires_grad=True)
    mperror.round(x, "e2m1").sum().backward()
    assert torch.equal(x.grad, torch.ones(7))


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(TypeError, match="floating-point or complex"):
        mperror.round(torch.arange(3), "fp16")
    with pytest.raises(TypeError, match="floating-point or complex"):
        mperror.round(torch.tensor([True]), "fp16")
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        mperror.round([1.0], "fp16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"wider dtype: dtype=torch\.float32"):
        mperror.round(torch.ones(2, dtype=torch.float16), "fp32")
    with pytest.raises(ValueError, match=r"wider dtype: dtype=torch\.bfloat16"):
        mperror.round(torch.ones(2, dtype=torch.float16), "bf16")
    # the narrowest dtype of x's kind that holds the format (it had suggested float32 always)
    with pytest.raises(ValueError, match=r"wider dtype: dtype=torch\.float64"):
        mperror.round(torch.ones(2), "fp64")
    with pytest.raises(ValueError, match=r"wider dtype: dtype=torch\.complex128"):
        mperror.round(torch.ones(2, dtype=torch.complex64), "fp64")
    with pytest.raises(ValueError, match="wider dtype"):
        mperror.round(torch.ones(2), "fp16", dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="dtype must be one of"):
        mperror.round(torch.ones(2), "fp16", dtype=torch.complex64)
    with pytest.raises(ValueError, match="mode must be one of"):
        mperror.round(torch.ones(2), "fp16", "nearest")
    with pytest.raises(ValueError, match="random_bits"):
        mperror.round(torch.ones(2), "fp16", "nearest_even", random_bits=3)
    with pytest.raises(ValueError, match="random_bits"):
        mperror.round(torch.ones(2), "fp16", "stochastic", random_bits=0)
    with pytest.raises(TypeError, match="generator"):
        mperror.round(torch.ones(2), "fp16", "stochastic", generator=3)  # type: ignore[arg-type]


def test_formats_without_subnormals_need_their_lowest_spacing() -> None:
    """Oracle: round_scalar, and the format's lowest-binade spacing 2**(emin - p + 1), which a
    format keeps without subnormals (2**emin (1 + 2**(1 - p)) is a normal value). A dtype
    whose smallest spacing is coarser cannot hold the format: the check had compared 2**emin
    instead, and the cast then rounded a second time (2**-24 (1 + 2**-10) in a p = 11, emin =
    -24 format stored as float16 became 2**-24)."""
    fmt = formats.FloatFormat(precision=11, emax=15, emin=-24, subnormals=False)
    x = torch.tensor([2.0**-24 * (1 + 2.0**-10)])
    with pytest.raises(ValueError, match="wider dtype"):
        mperror.round(x, fmt, dtype=torch.float16)
    assert mperror.round(x, fmt).item() == float(round_scalar(Fraction(x.item()), fmt))
    saturating = formats.FloatFormat(
        precision=6, emax=-20, emin=-20, subnormals=False, has_inf=False, has_nan=False
    )
    with pytest.raises(ValueError, match="wider dtype"):  # float16 lacks 2**-25's multiples
        mperror.round(torch.tensor([2.0**-19], dtype=torch.float16), saturating)
    assert mperror.round(torch.tensor([2.0**-19]), saturating).item() == saturating.max
    wide = formats.FloatFormat(precision=24, emax=0, emin=-149, subnormals=False)
    with pytest.raises(ValueError, match="wider dtype"):
        mperror.round(torch.tensor([2.0**-149], dtype=torch.float64), wide, dtype=torch.float32)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "mode", "dtype"),
    [
        ("e2m1", "nearest_even", torch.float32),  # the addition path, compiled
        ("e2m3", "stochastic", torch.float32),  # the addition path, compiled
        ("e2m1", "stochastic_equal", torch.float32),
        ("fp16", "toward_positive", torch.float32),
        ("e4m3fn", "stochastic", torch.float32),
        ("e4m3fn", "nearest_even", torch.float32),  # compiled: the kernel, not torch's cast
        ("e3m2", "odd", torch.float64),  # the round-to-odd float32 detour, compiled
        ("bf16", "stochastic", torch.float64),  # the int64 kernel, compiled
        ("bf16", "stochastic", torch.float32),  # subnormal inputs without a fix-up
        # the detour with torch's half cast (CPU; Triton would drop the cast, so not on CUDA)
        ("fp16", "nearest_even", torch.float64),
    ],
)
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_compiled_kernel_matches_eager(
    name: str, mode: str, dtype: torch.dtype, device: str, monkeypatch
) -> None:
    """Oracle: the eager kernel (itself checked against the reference above); for the stochastic
    modes fed, in one chunk, the counter-based bits that the compiled kernel computes inside
    its loop from the same seed."""
    x = candidates(formats.get(name), torch.float32)
    x = torch.cat([x, torch.randn(5000)]).to(dtype=dtype, device=device)
    monkeypatch.setattr(rounding, "_draw", splitmix_draw)
    monkeypatch.setattr(rounding, "_CHUNK", x.numel())
    seed = lambda: torch.Generator(device=device).manual_seed(9)  # noqa: E731
    eager = mperror.round(x, name, mode, generator=seed())
    compiled = mperror.round(x, name, mode, generator=seed(), compiled=True)
    assert compiled.device.type == eager.device.type == device
    assert_same(compiled.cpu(), eager.cpu(), x.cpu())


@pytest.mark.gpu
def test_cuda_counter_bits_match_cpu() -> None:
    """Oracle: the CPU counter bits (checked against the published SplitMix64 outputs): the
    stream depends only on the key and the position."""
    for dtype in (torch.int32, torch.int64):
        cpu = rounding._counter_bits(
            torch.tensor(987654321), rounding._gamma(torch.device("cpu")), 100_003, dtype
        )
        cuda = rounding._counter_bits(
            torch.tensor(987654321, device="cuda"),
            rounding._gamma(torch.device("cuda")),
            100_003,
            dtype,
        )
        assert cuda.device.type == "cuda" and torch.equal(cuda.cpu(), cpu)


@pytest.mark.gpu
@pytest.mark.parametrize("name", [*SMALL_FORMATS, "fp16", "bf16"])
def test_cuda_matches_cpu(name: str) -> None:
    """Oracle: the CPU result (itself checked against the reference) for every mode."""
    fmt = formats.get(name)
    x = candidates(fmt, torch.float32)
    for mode in DETERMINISTIC:
        on_gpu = mperror.round(x.cuda(), fmt, mode)
        assert on_gpu.device.type == "cuda"
        assert_same(on_gpu.cpu(), mperror.round(x, fmt, mode), x)
    gen = torch.Generator(device="cuda").manual_seed(0)
    r = mperror.round(x.cuda(), fmt, "stochastic", generator=gen)
    assert r.device.type == "cuda"
    r = r.cpu()
    assert (
        same_bits(r, mperror.round(x, fmt, "toward_zero"))
        | same_bits(r, mperror.round(x, fmt, "toward_positive"))
        | same_bits(r, mperror.round(x, fmt, "toward_negative"))
    ).all()


@pytest.mark.parametrize("mode", ["nearest_even", "toward_zero", "stochastic"])
def test_the_result_keeps_the_input_layout(mode: str) -> None:
    """Oracle: torch's own cast, which keeps a permuted or channels_last layout (the kernels
    work on flattened copies, whose results came back contiguous); values as for the
    contiguous input."""
    gen = torch.Generator().manual_seed(0)
    for x in (
        torch.randn(3, 4, 5, 2, generator=gen).permute(0, 3, 1, 2),
        torch.randn(2, 3, 4, 4, generator=gen).to(memory_format=torch.channels_last),
    ):
        for fmt in ("fp16", "e4m3fn", "e2m1"):
            r = mperror.round(x, fmt, mode, generator=torch.Generator().manual_seed(1))
            flat = mperror.round(
                x.contiguous(), fmt, mode, generator=torch.Generator().manual_seed(1)
            )
            assert r.stride() == x.half().stride(), (fmt, mode)
            if mode != "stochastic":  # the draw follows the memory order
                assert torch.equal(r, flat)
