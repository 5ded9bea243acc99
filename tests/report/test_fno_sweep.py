"""Tests for mperror.report.fno_sweep: the FNO bounds against measured errors, the crossover,
the FFT overflow prediction, and the three claims with their figure."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.special import iv

from mperror.bounds.fno import crossover_resolution, discretisation_bound, fft_precision_bound
from mperror.formats import as_format
from mperror.report import fno_sweep
from mperror.report.claims import Claim

FORMATS = list(fno_sweep.DEFAULT_FORMATS)
SMALL_1D = (16, 32, 64)
SMALL_2D = (16, 32)


@pytest.fixture(scope="module")
def sweep_1d() -> list[fno_sweep.SweepRecord]:
    return fno_sweep.resolution_sweep(ns=SMALL_1D, d=1)


@pytest.fixture(scope="module")
def sweep_2d() -> list[fno_sweep.SweepRecord]:
    return fno_sweep.resolution_sweep(ns=SMALL_2D, d=2)


# The test functions.


@pytest.mark.parametrize("name", list(fno_sweep.FUNCTIONS))
def test_function_coefficients_against_a_fine_float64_fft(name: str) -> None:
    """Oracle: the float64 FFT at n = 4096, whose aliasing error is below 1e-7 for the triangle
    (~ 1/(6 n^2)) and 1e-15 for exp(sin) (~ I_4096(1)) and none for the random field (modes up
    to 128 < 4096 / 2), against the closed forms (the field's: its drawn coefficients)."""
    f = fno_sweep.FUNCTIONS[name]
    n = 4096
    dft = np.fft.fft(f.samples(n, 1), norm="forward")
    for k in (0, 1, 2, 3, 7):
        midpoint = dft[k] * np.exp(-1j * np.pi * k / n)
        assert abs(midpoint - f.coefficient((k,))) < 1e-7


def test_function_constants() -> None:
    """Oracle: M and L by hand (|x - 1/2| <= 1/2, slope 1; exp(sin) <= e, max slope from
    cos^2 t = sin t); d-D products as M^d and sqrt(d) L M^(d-1); exp(sin)'s Bessel form."""
    tri, es = fno_sweep.FUNCTIONS["triangle"], fno_sweep.FUNCTIONS["exp-sin"]
    assert (tri.bound_m_d(2), tri.lipschitz_d(2)) == (0.25, math.sqrt(2) * 0.5)
    x = np.linspace(0, 1, 200_001)
    slope = np.abs(np.diff(es.values(x))).max() / (x[1] - x[0])
    assert slope <= es.lipschitz <= slope * (1 + 1e-6)
    assert es.coefficient((1, 2)) == pytest.approx(-1j * iv(1, 1.0) * -iv(2, 1.0), rel=1e-15)
    field = fno_sweep.FUNCTIONS["random-field"]
    x = np.linspace(0, 1, 100_001)
    values = field.values(x)
    slope = np.abs(np.diff(values)).max() / (x[1] - x[0])
    assert np.abs(values).max() <= field.bound_m and slope <= field.lipschitz
    assert field.coefficient((129,)) == 0 and field.coefficient((-3,)) == np.conj(
        field.coefficient((3,))
    )


def test_random_field_is_band_limited() -> None:
    """Oracle: aliasing. Modes up to 128: on n = 512 points no alias reaches modes 0..3, so the
    measured discretisation error is float64 roundoff, while on n = 16 the aliases of the
    field's many modes make it large."""
    fine, coarse = (
        fno_sweep.resolution_sweep(function="random-field", ns=(n,), d=1, formats=["fp16"])[0]
        for n in (512, 16)
    )
    assert fine.disc_error < 1e-13 < coarse.disc_error


# The sweep: bounds hold at small sizes.


@pytest.mark.parametrize("d", [1, 2])
def test_sweep_bounds_hold(d: int, sweep_1d, sweep_2d) -> None:
    """Oracle: closed-form coefficients (discretisation), the float64 numpy FFT of the exact
    samples (precision), the bounds of mperror.bounds.fno."""
    records = sweep_1d if d == 1 else sweep_2d
    ns = SMALL_1D if d == 1 else SMALL_2D
    assert len(records) == len(fno_sweep.FUNCTIONS) * len(ns) * len(FORMATS)
    for r in records:
        assert r.disc_holds and r.disc_ratio <= 1, r
        assert r.input_holds and r.input_error <= r.input_bound, r
        assert r.prec_holds and r.prec_error <= r.prec_bound, r
        # the FFT error includes the input rounding, and the emulation does round
        assert r.prec_error > 0
        if r.fmt.name in ("fp16", "bf16"):  # FP8 FFT bounds are infinite (t eta >= 1)
            assert math.isfinite(r.prec_bound) and not r.prec_vacuous
        assert r.to_dict()["fmt"]["name"] == r.fmt.name


def test_sweep_record_bounds_are_the_public_ones(sweep_1d) -> None:
    """Oracle: discretisation_bound at the largest mode and fft_precision_bound, called here."""
    for r in sweep_1d:
        largest = max(w[0] for w in r.modes)
        assert r.disc_bound == discretisation_bound(r.n, largest, r.lipschitz, r.bound_m).bound
        assert r.prec_bound == fft_precision_bound(r.n, 1, r.bound_m, r.fmt).bound


def test_sweep_discretisation_error_by_aliasing() -> None:
    """Oracle: the triangle wave's aliasing tail. At n = 64 the midpoint rule's error at mode w is
    |sum_(m != 0) (-1)^m c(w + 64 m)| (alternating, so truncating at |m| = 2000 costs < 1e-11);
    even modes alias onto even coefficients, which vanish, so the max over w in 0..3 is at an
    odd w."""
    (r,) = fno_sweep.resolution_sweep(formats=("fp16",), ns=(64,), function="triangle")
    coefficient = fno_sweep.FUNCTIONS["triangle"].coefficient_1d
    tails = [
        abs(sum((-1) ** m * coefficient(w + 64 * m) for m in range(-2000, 2001) if m != 0))
        for w in (0, 1, 2, 3)
    ]
    assert tails[0] == tails[2] == 0
    assert r.disc_error == pytest.approx(max(tails), rel=1e-6)


def test_sweep_fp16_error_levels_below_u_m(sweep_1d) -> None:
    """Oracle: the paper's level (fp16 error near 0.3 u M) and the bound: every fp16 error
    within 1 u M here, far below the worst-case (1 + 6.66 log2 N) u M."""
    for r in sweep_1d:
        if r.fmt.name == "fp16":
            assert r.prec_error <= r.fmt.unit_roundoff * r.bound_m


def test_sweep_overflow_never_unpredicted(sweep_1d, sweep_2d) -> None:
    """Oracle: fft_overflows; a False prediction is a guarantee (no exact intermediate above
    max), and e4m3fn exp(sin) in 2-D (N M = 32^2 * 7.5 > 448) overflows, silently saturated."""
    for r in sweep_1d + sweep_2d:
        assert r.overflow_predicted or not r.overflowed, r
    [hit] = [r for r in sweep_2d if (r.fmt.name, r.function, r.n) == ("e4m3fn", "exp-sin", 32)]
    assert hit.overflow_predicted and hit.overflowed
    assert math.isfinite(hit.prec_error)  # saturated, not inf: the twin format saw it
    assert hit.prec_bound == math.inf and hit.prec_holds


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: fno_sweep.resolution_sweep(ns=(12,)), ValueError),
        (lambda: fno_sweep.resolution_sweep(ns=()), ValueError),
        (lambda: fno_sweep.resolution_sweep(ns=16), TypeError),
        (lambda: fno_sweep.resolution_sweep(d=0), ValueError),
        (lambda: fno_sweep.resolution_sweep(d=3), ValueError),
        (lambda: fno_sweep.resolution_sweep(function="sawtooth"), ValueError),
        (lambda: fno_sweep.resolution_sweep(formats=("e4m3",)), ValueError),
        (lambda: fno_sweep.resolution_sweep(ns=(16,), modes=((1, 2),)), ValueError),
    ],
)
def test_sweep_bad_arguments(call, error) -> None:
    with pytest.raises(error):
        call()


# The crossover, on manufactured records.


def _manufactured(template, fmt: str, errors: list[tuple[int, float, float]]):
    """Records with the given (n, disc_error, prec_error), all else from ``template``."""
    return [
        dataclasses.replace(template, fmt=as_format(fmt), n=n, disc_error=de, prec_error=pe)
        for n, de, pe in errors
    ]


def test_measured_crossover_on_manufactured_records(sweep_1d) -> None:
    """Oracle: crossings typed by hand (first n with prec >= disc, ties count, none, at the
    first n); predictions from crossover_resolution at the largest mode, w = 3."""
    template = sweep_1d[0]
    records = (
        _manufactured(template, "fp16", [(16, 1.0, 0.1), (32, 0.5, 0.5), (64, 0.1, 1.0)])
        + _manufactured(template, "bf16", [(16, 1.0, 0.1), (32, 0.5, 0.4)])
        + _manufactured(template, "e5m2", [(32, 0.1, math.inf), (16, 0.5, 1.0)])
    )
    got = {c.fmt.name: c for c in fno_sweep.measured_crossover(records)}
    assert (got["fp16"].measured, got["fp16"].at_first) == (32, False)
    assert got["bf16"].measured is None and not got["bf16"].at_first
    assert (got["e5m2"].measured, got["e5m2"].at_first, got["e5m2"].ns) == (16, True, (16, 32))
    for name, c in got.items():
        assert c.mode == (3,)
        fft_arith = crossover_resolution(template.lipschitz, template.bound_m, name, w=3)
        input_only = crossover_resolution(
            template.lipschitz, template.bound_m, name, w=3, fft_arithmetic=False
        )
        assert c.predicted_fft == fft_arith.resolution
        assert c.predicted_fft_power_of_two == fft_arith.power_of_two
        assert c.predicted_input == input_only.resolution
        assert c.predicted_input <= 2 * c.predicted_input_power_of_two


def test_measured_crossover_groups_by_function_and_dimension(sweep_1d, sweep_2d) -> None:
    """Oracle: one group per (function, d, format) in the sweep."""
    crossovers = fno_sweep.measured_crossover(sweep_1d + sweep_2d)
    assert len(crossovers) == 2 * len(fno_sweep.FUNCTIONS) * len(FORMATS)
    for c in crossovers:
        assert c.ns == (SMALL_1D if c.d == 1 else SMALL_2D)


# Overflow.


@pytest.fixture(scope="module")
def cases() -> list[fno_sweep.OverflowCase]:
    return fno_sweep.overflow_cases()


def test_overflow_prediction_matches(cases) -> None:
    """Oracle: fft_overflows (N max|v| > fmt.max) against the emulated unnormalised FFT."""
    for c in cases:
        assert c.matches, c
        if c.worst_case:
            assert c.overflowed == c.predicted == (c.n_total * c.max_abs > c.fmt.max)


def test_overflow_pairs_straddle_max(cases) -> None:
    """Oracle: by hand, N M = max exactly below, one spacing of the format above."""
    constants = [c for c in cases if c.label.startswith("constant")]
    assert len(constants) == 10
    for below, above in zip(constants[::2], constants[1::2], strict=True):
        assert below.fmt == above.fmt and below.n_total == above.n_total
        assert below.n_total * below.max_abs == below.fmt.max
        assert not below.overflowed and above.overflowed
    by_label = {(c.fmt.name, c.n_total, c.max_abs) for c in constants}
    assert ("fp16", 1024, 64.0) in by_label and ("fp16", 65536, 1 - 2.0**-11) in by_label
    assert ("e4m3fn", 16, 30.0) in by_label  # 480 > 448: saturates silently, the twin sees it


def test_tanh_safe_at_128_squared_not_at_256_squared(cases) -> None:
    """Oracle: REFERENCES section 5; in fp16 tanh(a >= 4.51) rounds to 1.0, so M = 1:
    128^2 = 16384 <= 65504 is safe, 256^2 = 65536 is not; a zero-mean field is at risk by the
    prediction but its DC term is 0."""
    tanh = {(c.shape, c.worst_case): c for c in cases if c.label.startswith("tanh")}
    safe, unsafe = tanh[(128, 128), True], tanh[(256, 256), True]
    assert safe.max_abs == unsafe.max_abs == 1.0
    assert not safe.predicted and not safe.overflowed
    assert unsafe.predicted and unsafe.overflowed
    zero_mean = tanh[(256, 256), False]
    assert zero_mean.predicted and not zero_mean.overflowed and zero_mean.matches


# The claims and the figure.


def test_fno_claims_writes_the_figure_and_three_claims(tmp_path) -> None:
    """Oracle: the file on disk (PNG signature) and the claim rows' contract."""
    claims, figures = fno_sweep.fno_claims(tmp_path / "report")
    path = figures["fno_bounds"]
    assert path == tmp_path / "report" / "fno_bounds.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [c.id for c in claims] == [
        "fno.bounds-hold",
        "fno.precision-vs-discretisation",
        "fno.fft-overflow",
    ]
    for c in claims:
        assert isinstance(c, Claim) and c.holds is not None and c.measured and c.criterion
    by_id = {c.id: c for c in claims}
    assert by_id["fno.bounds-hold"].holds
    assert by_id["fno.fft-overflow"].holds


def test_crossover_claim_follows_its_criterion(sweep_1d) -> None:
    """Oracle: the criterion applied by hand to manufactured fp16 triangle crossings: resolved
    inside the sweep and within the paper's 64 < n <= 256 (it "overtook between 64 and 256":
    not yet at 64, so a first n of 64 puts the crossing in (32, 64], before the range)."""
    template = next(r for r in sweep_1d if r.function == fno_sweep.CROSSOVER_FUNCTION)
    assert fno_sweep.PAPER_CROSSOVER == (64, 256)  # REFERENCES section 5

    def claim(crossing: int):
        ns = (16, 32, 64, 128, 256, 512, 1024)
        rows = [(n, 1.0, 0.0 if n < crossing else 2.0) for n in ns]
        return fno_sweep._crossover_claim(
            fno_sweep.measured_crossover(_manufactured(template, "fp16", rows))
        )

    assert claim(64).holds is False  # the crossing lies in (32, 64]
    assert claim(128).holds is True
    assert claim(256).holds is True
    assert claim(32).holds is False  # before the paper's range
    assert claim(512).holds is False  # after it
    assert claim(16).holds is False  # at the first n: not resolved
    assert claim(10**9).holds is False  # none
    assert fno_sweep._crossover_claim([]).holds is None


def test_records_are_plain_json(sweep_1d, cases) -> None:
    """Oracle: json.dumps round trip; bools stay Python bools (no numpy scalars leak out)."""
    import json

    for record in (sweep_1d[0], cases[0], fno_sweep.measured_crossover(sweep_1d)[0]):
        data = json.loads(json.dumps(record.to_dict()))
        assert data == json.loads(json.dumps(record.to_dict()))
    assert type(sweep_1d[0].disc_holds) is bool and type(sweep_1d[0].disc_error) is float


def test_sweep_overflow_to_inf_with_a_custom_function() -> None:
    """Oracle: fft_overflows by hand: 1000 exp(sin 2 pi x) has max ~ 2718 after fp16 rounding,
    so N M > 65504 from n = 32 (16 * 2718 = 43488 is safe); its DC term 1000 I_0(1) n reaches
    65504 at n = 64 (1266 * 64 = 81023), where the emulated FFT gives inf and the bound is inf."""
    base = fno_sweep.FUNCTIONS["exp-sin"]
    scaled = dataclasses.replace(
        base,
        name="1000 exp-sin",
        bound_m=1000 * base.bound_m,
        lipschitz=1000 * base.lipschitz,
        values=lambda x: 1000 * base.values(x),
        coefficient_1d=lambda k: 1000 * base.coefficient_1d(k),
    )
    records = fno_sweep.resolution_sweep(formats=("fp16",), ns=(16, 32, 64), function=scaled)
    assert [r.overflow_predicted for r in records] == [False, True, True]
    assert [r.overflowed for r in records] == [False, False, True]
    assert records[2].prec_error == records[2].prec_bound == math.inf
    assert all(r.prec_holds and r.disc_holds for r in records)


def test_aliased_worst_case_errs_by_half_its_amplitude() -> None:
    """Oracle: hand derivation. On the centred n-point grid sin(2 pi (n + 1) x_j) = -sin(2 pi
    x_j), so the n-point coefficient at mode 1 has modulus 1/2 while the function's is 0: an
    error of M/2 = 1/2 at every n, within T-fno-disc (c_1 (L + 2 pi M) / n with L = 2 pi
    (n + 1), about pi/2)."""
    records = fno_sweep.aliased_worst_case(ns=(16, 64, 1024))
    assert [r.n for r in records] == [16, 64, 1024]
    for r in records:
        assert r.error == pytest.approx(0.5, abs=1e-12) and r.holds and r.bound >= r.error
        assert r.bound == pytest.approx(0.25 * (2 * math.pi * (r.n + 1) + 2 * math.pi) / r.n)


@pytest.mark.parametrize(("w", "n"), [(16, 16), (8, 16), (32, 64)])
def test_aliased_worst_case_refuses_w_where_it_is_no_worst_case(w, n) -> None:
    """Oracle: hand derivation. w = 0 (mod n) samples the sine at its zeros (error 0, not
    M/2); 2 w = 0 (mod n) folds w and -w into one bin (error M). Both had been recorded as
    the tight case."""
    with pytest.raises(ValueError, match=rf"w={w} is no worst case at n in \[{n}\]"):
        fno_sweep.aliased_worst_case(ns=(n,), w=w)
