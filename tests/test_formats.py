"""FloatFormat: derived values, enumeration, spacing, registry and validation.

Oracles: torch.finfo and torch's own bit patterns (every code of float16, bfloat16 and the
float8 types decoded by torch); an independent decoder of the OCP FP4/FP6/FP8 encodings written
here from the spec's formula; hand-computed values for a custom format.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from mperror import formats
from mperror.formats import FloatFormat, Overflow

TORCH_DTYPES = {
    "fp64": torch.float64,
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
    "e5m2": torch.float8_e5m2,
    "e4m3fn": torch.float8_e4m3fn,
}


@pytest.mark.parametrize("name", sorted(TORCH_DTYPES))
def test_derived_values_match_torch_finfo(name: str) -> None:
    """Oracle: torch.finfo of the dtype with the same format."""
    fmt, info = formats.get(name), torch.finfo(TORCH_DTYPES[name])
    assert (fmt.bits, fmt.eps, fmt.max, fmt.min) == (info.bits, info.eps, info.max, info.min)
    assert (fmt.tiny, fmt.smallest_normal) == (info.tiny, info.smallest_normal)
    assert fmt.resolution == info.resolution
    assert fmt.unit_roundoff == info.eps / 2


def _torch_codes(dtype: torch.dtype) -> torch.Tensor:
    """Every bit pattern of a 8- or 16-bit torch dtype, decoded by torch, as float64."""
    width = torch.finfo(dtype).bits
    codes = torch.arange(2**width, dtype=torch.int32)
    if width == 8:
        return codes.to(torch.uint8).view(dtype).to(torch.float64)
    return codes.to(torch.int16).view(dtype).to(torch.float64)


@pytest.mark.parametrize("name", ["fp16", "bf16", "e5m2", "e4m3fn"])
def test_finite_values_are_exactly_torchs_codes(name: str) -> None:
    """Oracle: decode all 2**bits codes with torch; the finite ones, deduplicated, sorted."""
    values = _torch_codes(TORCH_DTYPES[name])
    expected = torch.unique(values[torch.isfinite(values)])  # -0 and +0 collapse to one zero
    got = formats.get(name).finite_values()
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def _ocp_decode(code: int, exp_bits: int, man_bits: int) -> float:
    """Decode an OCP MX FP4/FP6 code (no inf, no NaN) by the spec's formula."""
    bias = 2 ** (exp_bits - 1) - 1
    sign = -1.0 if code >> (exp_bits + man_bits) else 1.0
    e = (code >> man_bits) & (2**exp_bits - 1)
    m = code & (2**man_bits - 1)
    if e == 0:
        return sign * 2.0 ** (1 - bias) * (m / 2**man_bits)
    return sign * 2.0 ** (e - bias) * (1 + m / 2**man_bits)


@pytest.mark.parametrize(
    ("name", "exp_bits", "man_bits"), [("e2m1", 2, 1), ("e2m3", 2, 3), ("e3m2", 3, 2)]
)
def test_ocp_small_formats_match_the_spec_encoding(name: str, exp_bits: int, man_bits: int) -> None:
    """Oracle: every code of the OCP encoding, decoded by the spec's formula."""
    n_codes = 2 ** (1 + exp_bits + man_bits)
    expected = sorted({_ocp_decode(c, exp_bits, man_bits) for c in range(n_codes)})
    fmt = formats.get(name)
    assert fmt.finite_values().tolist() == expected
    assert fmt.bits == 1 + exp_bits + man_bits


def test_reference_table_values() -> None:
    """Oracle: the format table in REFERENCES.md section 1 (max and smallest subnormal)."""
    table = {
        "tf32": (11, -126, 127, 2.0**-136),
        "e5m2": (3, -14, 15, 2.0**-16),
        "e4m3fn": (4, -6, 8, 2.0**-9),
        "e3m2": (3, -2, 4, 2.0**-4),
        "e2m3": (4, 0, 2, 2.0**-3),
        "e2m1": (2, 0, 2, 0.5),
    }
    maxima = {"e5m2": 57344.0, "e4m3fn": 448.0, "e3m2": 28.0, "e2m3": 7.5, "e2m1": 6.0}
    for name, (p, emin, emax, sub) in table.items():
        fmt = formats.get(name)
        assert (fmt.precision, fmt.emin, fmt.emax, fmt.smallest_subnormal) == (p, emin, emax, sub)
        assert fmt.unit_roundoff == 2.0**-p
        if name in maxima:
            assert fmt.max == maxima[name]


def test_custom_ieee_like_format_by_hand() -> None:
    """Oracle: hand computation for p = 5, emax = 7 (IEEE-like: emin = -6, 4 exponent bits)."""
    fmt = FloatFormat(precision=5, emax=7)
    assert fmt.emin == -6
    assert fmt.max == (2 - 2**-4) * 2**7 == 248.0
    assert fmt.eps == 2**-4 and fmt.unit_roundoff == 2**-5
    assert fmt.smallest_normal == 2**-6 and fmt.smallest_subnormal == 2**-10
    assert fmt.exponent_bits == 4 and fmt.bits == 9
    assert fmt.overflow is Overflow.INF
    no_sub = fmt.replace(subnormals=False)
    assert no_sub.smallest_subnormal == no_sub.smallest_normal == 2**-6


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_spacing_is_the_gap_to_the_next_value(dtype: torch.dtype) -> None:
    """Oracle: torch.nextafter in the dtype itself, over every positive finite value below max."""
    fmt = formats.format_of_dtype(dtype)
    values = _torch_codes(dtype)
    values = values[torch.isfinite(values) & (values >= 0) & (values < fmt.max)]
    as_dtype = values.to(dtype)
    gap = torch.nextafter(as_dtype, torch.full_like(as_dtype, math.inf)).double() - values
    torch.testing.assert_close(fmt.spacing(values), gap, rtol=0, atol=0)


def test_spacing_specials_and_no_subnormals() -> None:
    """Oracle: the definition (NaN for non-finite; 2**emin below it without subnormals)."""
    x = torch.tensor([math.inf, math.nan, 0.0, 2.0**-20], dtype=torch.float64)
    s = formats.FP16.spacing(x)
    assert s[:2].isnan().all() and s[2] == s[3] == 2.0**-24
    assert formats.FP16.replace(subnormals=False).spacing(x)[3] == 2.0**-14


def test_spacing_refuses_a_dtype_that_cannot_hold_it() -> None:
    """fp32's subnormal spacing 2**-149 is 0 in float16, bf16's top spacing 2**120 is inf."""
    with pytest.raises(ValueError, match="cannot hold the spacings of fp32"):
        formats.FP32.spacing(torch.ones(2, dtype=torch.float16))
    with pytest.raises(ValueError, match="cannot hold the spacings of bf16"):
        formats.BF16.spacing(torch.ones(2, dtype=torch.float16))
    assert formats.FP16.spacing(torch.ones(1, dtype=torch.float16)).item() == 2.0**-10


def test_is_representable_against_enumeration() -> None:
    """Oracle: finite_values (itself checked against torch's codes) and the midpoints between."""
    fmt = formats.E4M3FN
    values = fmt.finite_values()
    assert fmt.is_representable(values).all()
    midpoints = (values[1:] + values[:-1]) / 2
    assert not fmt.is_representable(midpoints).any()
    specials = torch.tensor([math.inf, math.nan, 464.0])
    assert fmt.is_representable(specials).tolist() == [False, True, False]


def test_presets_aliases_and_dtypes_resolve() -> None:
    for name in formats.names():
        assert isinstance(formats.get(name), FloatFormat)
    assert formats.get("HALF") is formats.FP16
    assert formats.as_format(torch.bfloat16) is formats.BF16
    assert formats.as_format(formats.E2M1) is formats.E2M1


def test_formats_are_frozen_and_compare_by_value() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        formats.FP16.precision = 12  # type: ignore[misc]
    assert FloatFormat(precision=11, emax=15) == formats.FP16  # the name takes no part


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"precision": 0, "emax": 7}, "precision"),
        ({"precision": 54, "emax": 7}, "precision"),
        ({"precision": 2.5, "emax": 7}, "precision"),
        ({"precision": 4, "emax": 1024}, "emax"),
        ({"precision": 4, "emax": 5, "emin": 6}, "emax must be >= emin"),
        ({"precision": 4, "emax": 5, "emin": -1023}, "emin"),
        ({"precision": 4, "emax": 8, "max_finite": 500.0}, "max_finite"),
        ({"precision": 4, "emax": 8, "max_finite": 449.0}, "max_finite"),
        ({"precision": 4, "emax": 8, "has_inf": False, "overflow": "inf"}, "overflow='inf'"),
        ({"precision": 4, "emax": 8, "overflow": "wrap"}, "overflow must be one of"),
        (
            {"precision": 4, "emax": 8, "has_inf": False, "has_nan": False, "overflow": "nan"},
            "overflow='nan'",
        ),
        ({"precision": 4, "emax": 8, "subnormals": 1}, "subnormals"),
    ],
)
def test_invalid_parameters_name_the_argument(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        FloatFormat(**kwargs)


def test_unknown_names_suggest_the_closest_and_refuse_ambiguity() -> None:
    with pytest.raises(ValueError, match="did you mean 'bf16'"):
        formats.get("bf61")
    with pytest.raises(ValueError, match="e4m3fn"):
        formats.get("e4m3")
    with pytest.raises(TypeError, match="fmt must be"):
        formats.as_format(16)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="16 bits"):
        formats.FP32.finite_values()


@pytest.mark.parametrize(
    ("base", "changes"),
    [
        ("fp16", {"precision": 12}),
        ("bf16", {"precision": 11}),
        ("fp16", {"emax": 7}),
        ("e5m2", {"has_inf": False}),
        ("fp32", {"precision": 20, "emax": 100}),
    ],
)
def test_replace_derives_defaulted_fields_again(base, changes) -> None:
    """Oracle: a format built fresh from the same primary fields. Fields at their defaults
    (emin = 1 - emax, the natural max, the policy has_inf implies) follow the change; they
    kept fp16's max 65504 at precision 12 (whose max is 65520)."""
    fmt = formats.get(base)
    primary = {"precision": fmt.precision, "emax": fmt.emax, "subnormals": fmt.subnormals}
    primary |= {"has_inf": fmt.has_inf, "has_nan": fmt.has_nan}
    assert fmt.replace(**changes) == formats.FloatFormat(**(primary | changes))


def test_replace_keeps_fields_set_away_from_their_defaults() -> None:
    """e4m3fn's emin (-6, not 1 - 8) and max (448, not 480) are its own: kept."""
    fmt = formats.E4M3FN.replace(overflow="nan")
    assert (fmt.emin, fmt.max, fmt.overflow) == (-6, 448.0, formats.Overflow.NAN)
    assert formats.E4M3FN.replace(precision=3).max == 448.0


def test_one_bit_formats_with_inf_and_nan_need_their_own_codes() -> None:
    """Oracle: counting codes. p = 1, emin = -1, emax = 0: +-0, +-0.5, +-1, +-inf and NaN are 9
    codes; with no fraction bits inf and NaN cannot share an exponent code (the IEEE way), so
    the exponent field holds 4 codes (zero, two binades, inf, NaN: 5 -> 3 bits) and the format
    is 4 bits wide, not 3 (8 codes)."""
    fmt = FloatFormat(precision=1, emin=-1, emax=0)
    assert fmt.finite_values().tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert fmt.exponent_bits == 3 and fmt.bits == 4
    assert FloatFormat(precision=1, emin=-1, emax=0, has_inf=False).bits == 3  # NaN alone


def test_helpers_refuse_what_they_cannot_do() -> None:
    """finite_values in a dtype that cannot hold every value (bf16 in float16 had given 28,672
    infinities and 26,113 zeros), spacing of a float8 tensor (torch's frexp has no float8),
    and a max_finite beyond float64's range (an OverflowError, not the argument's error)."""
    with pytest.raises(ValueError, match="cannot hold every value of bf16"):
        formats.BF16.finite_values(dtype=torch.float16)
    # 1,023 subnormals and 30 binades of 1,024 values, both signs, one zero
    assert formats.FP16.finite_values(dtype=torch.float16).numel() == 2 * (1023 + 30 * 1024) + 1
    with pytest.raises(TypeError, match="x must be float16, bfloat16, float32 or float64"):
        formats.E4M3FN.spacing(torch.ones(2, dtype=torch.float8_e4m3fn))
    with pytest.raises(ValueError, match="max_finite must be a finite float"):
        FloatFormat(precision=4, emax=8, max_finite=10**400)


# From a mutation review: behaviours no test pinned.
_NOSUB = FloatFormat(precision=4, emax=7, subnormals=False)  # emin = -6


def test_spacing_at_the_smallest_normal_without_subnormals() -> None:
    """Oracle: hand count. Without subnormals the next value above 2**-6 is 2**-6 (1 + 2**-3)."""
    assert _NOSUB.spacing(torch.tensor([2.0**-6], dtype=torch.float64)).item() == 2.0**-9


def test_spacing_beyond_max_keeps_the_top_binade() -> None:
    """Oracle: the docstring (beyond emax the top binade's spacing is kept): fp16's top
    binade [2**15, 2**16) has spacing 2**(15 - 10) = 32."""
    assert formats.FP16.spacing(torch.tensor([2.0**17], dtype=torch.float64)).item() == 32.0


def test_exponent_bits_of_a_one_bit_format_with_inf_and_no_nan() -> None:
    """Oracle: hand count of the codes: zero, two binades (0.5, 1) and inf are four exponent
    codes, two bits."""
    assert FloatFormat(precision=1, emin=-1, emax=0, has_nan=False).exponent_bits == 2
