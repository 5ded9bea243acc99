"""mperror.ops staged FFTs: agreement with torch.fft / mpmath in fp64, overflow and error bounds
in fp16.

Oracles: torch.fft in float64 on the same (already rounded) inputs; an mpmath DFT at 40 digits
for small sizes; Higham's normwise FFT error bound (Accuracy and Stability of Numerical
Algorithms, 2nd ed., Thm 24.2), written out below; exact sums for constant inputs (overflow).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch

import mperror
from mperror import formats, ops
from mperror.ops import fourier

NORMS = [None, "forward", "ortho"]
POW2 = [1, 2, 8, 64, 256]
OTHER = [3, 6, 12, 100]


def higham_fft_bound(n: int, u: float) -> float:
    """Higham, ASNA (2nd ed.) Thm 24.2: the radix-2 FFT of length n = 2**t computed with
    twiddles of absolute error <= mu satisfies ||y^ - y||_2 / ||y||_2 <= t eta / (1 - t eta),
    eta = mu + gamma_4 (sqrt 2 + mu), gamma_4 = 4u / (1 - 4u). mu: twiddles are float64
    cos/sin (within 2**-52 of exact, angles reduced to [0, pi/4]) rounded once to the format,
    so |w^ - w| <= u + 2**-51."""
    t = int(math.log2(n))
    mu = u + 2.0**-51
    gamma4 = 4 * u / (1 - 4 * u)
    eta = mu + gamma4 * (math.sqrt(2) + mu)
    assert t * eta < 1
    return t * eta / (1 - t * eta)


def bluestein_bound(n: int, u: float) -> float:
    """A normwise bound for the Bluestein model (derivation in the comments), relative to
    ||X||_2 = sqrt(n) ||x||_2.

    M = 2**t >= 2n - 1; R = higham_fft_bound(M, u) per staged transform of length M; eps bounds
    one chirp product fl(z conj(d^)) with |d| = 1: ||fl(z o conj(d^)) - z o conj(d)|| <=
    eps ||z||, eps = mu + u (1 + mu) + 2**-50 (twiddle-type error, one rounding, float64
    evaluation). beta = max_k |B_k| for B = DFT_M(b) / M of the exact chirp (computed below by
    torch in float64, inflated by 1e-10 for its own error); the stored B^ differs from B by at
    most u beta + 2**-50 entrywise (rounding, and torch's float64 error, far below 2**-50 for
    these sizes). The exact maps have ||F y|| = ||F^-1_unnormalised y|| = sqrt(M) ||y||, so with
    e1..e4 the errors of the four steps:
      ||e1|| <= eps ||x||;  ||e2|| <= R sqrt(M) (1 + eps) ||x||;
      ||e3|| <= (dB + u (beta + dB) + 2**-50 beta) ||A^||,
      ||A^|| <= (1 + R) sqrt(M) (1 + eps) ||x||;
      ||e4|| <= R sqrt(M) (beta + dB) (1 + u) ||A^||;
      err_q <= sqrt(M) ||e3|| + sqrt(M) beta ||e2|| + M beta ||e1|| + ||e4||;
      ||X^ - X|| <= (1 + mu) err_q + eps (sqrt(n) ||x|| + err_q).
    """
    size = 1 << (2 * n - 2).bit_length()
    r = higham_fft_bound(size, u)
    mu = u + 2.0**-51
    eps = mu + u * (1 + mu) + 2.0**-50
    m = torch.arange(n, dtype=torch.float64)
    d = torch.exp(1j * math.pi * (m * m % (2 * n)) / n)
    b = torch.zeros(size, dtype=torch.complex128)
    b[:n] = d
    b[size - n + 1 :] = d[1:].flip(0)
    beta = (torch.fft.fft(b) / size).abs().max().item() * (1 + 1e-10)
    d_b = u * beta + 2.0**-50
    root = math.sqrt(size)
    a_hat = (1 + r) * root * (1 + eps)
    e1, e2 = eps, r * root * (1 + eps)
    e3 = (d_b + u * (beta + d_b) + 2.0**-50 * beta) * a_hat
    e4 = r * root * (beta + d_b) * (1 + u) * a_hat
    err_q = root * e3 + root * beta * e2 + size * beta * e1 + e4
    return ((1 + mu) * err_q + eps * (math.sqrt(n) + err_q)) / math.sqrt(n)


def bound(n: int, u: float) -> float:
    return higham_fft_bound(n, u) if n & (n - 1) == 0 else bluestein_bound(n, u)


def relative_error(got: torch.Tensor, reference: torch.Tensor, dim=-1) -> torch.Tensor:
    """||got - ref||_2 / ||ref||_2 along ``dim`` (each transform separately)."""
    diff = torch.linalg.vector_norm(got.to(reference.dtype) - reference, dim=dim)
    return diff / torch.linalg.vector_norm(reference, dim=dim)


def random_complex(shape, seed: int, dtype=torch.complex128) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=dtype)


# -- fp64 against torch and mpmath -----------------------------------------------------------


def mpmath_dft(x: list[complex], inverse: bool) -> list[complex]:
    """The DFT at 40 significant digits: exact to far below float64's resolution."""
    with mpmath.workdps(40):
        n = len(x)
        sign = 1 if inverse else -1
        out = []
        for k in range(n):
            total = mpmath.mpc(0)
            for j, v in enumerate(x):
                total += mpmath.mpc(v) * mpmath.expjpi(mpmath.mpf(sign * 2 * j * k) / n)
            out.append(complex(total))
        return out


@pytest.mark.parametrize("n", [2, 4, 8, 32, 5, 12, 24])
@pytest.mark.parametrize("inverse", [False, True])
def test_fp64_against_mpmath(n: int, inverse: bool) -> None:
    """Oracle: mpmath DFT at 40 digits; the fp64 model must satisfy Higham's bound with
    u = 2**-53 (Bluestein: its derived bound)."""
    x = random_complex((3, n), seed=n)
    transform = ops.ifft if inverse else ops.fft
    got = transform(x, "fp64", norm="backward" if not inverse else "forward")
    reference = torch.tensor([mpmath_dft(row, inverse) for row in x.tolist()])
    assert (relative_error(got, reference) <= bound(n, 2.0**-53)).all()


@pytest.mark.parametrize("n", POW2 + OTHER)
@pytest.mark.parametrize("norm", NORMS)
def test_fp64_agrees_with_torch(n: int, norm: str | None) -> None:
    """Oracle: torch.fft in float64, every function and norm, real and complex inputs, batch
    dims, transforms along a middle dimension. Both ours and torch's satisfy the same kind of
    bound against the exact DFT, so their difference is within twice ours (triangle
    inequality; torch's pocketfft is assumed at least as accurate as the radix-2 bound)."""
    tol = 2 * bound(n, 2.0**-53) + 2.0**-50  # the 2**-50: ortho's rounded 1/sqrt(n)
    z = random_complex((2, n, 3), seed=n)
    r = torch.randn(2, n, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    cases = [
        (ops.fft(z, "fp64", dim=1, norm=norm), torch.fft.fft(z, dim=1, norm=norm)),
        (ops.ifft(z, "fp64", dim=1, norm=norm), torch.fft.ifft(z, dim=1, norm=norm)),
        (ops.fft(r, "fp64", dim=1, norm=norm), torch.fft.fft(r, dim=1, norm=norm)),
        (ops.rfft(r, "fp64", dim=1, norm=norm), torch.fft.rfft(r, dim=1, norm=norm)),
    ]
    for got, expected in cases:
        assert got.dtype == torch.complex128 and got.shape == expected.shape
        assert (relative_error(got, expected, dim=1) <= tol).all()
    half = torch.fft.rfft(r, dim=1)
    got = ops.irfft(half, "fp64", n=n, dim=1, norm=norm)
    expected = torch.fft.irfft(half, n=n, dim=1, norm=norm)
    assert got.dtype == torch.float64 and got.shape == expected.shape
    assert (relative_error(got, expected, dim=1) <= tol).all()


@pytest.mark.parametrize("norm", NORMS)
def test_fftn_and_lengths_agree_with_torch(norm: str | None) -> None:
    """Oracle: torch.fft.fftn / fft with n, s and dim (padding and trimming). The N-D transform
    is a composition of 1-D ones; its error is within the sum of their bounds."""
    x = random_complex((4, 6, 8), seed=3)
    cases = [
        (ops.fftn(x, "fp64", norm=norm), torch.fft.fftn(x, norm=norm), [4, 6, 8]),
        (
            ops.fftn(x, "fp64", s=(5, 16), norm=norm),
            torch.fft.fftn(x, s=(5, 16), norm=norm),
            [5, 16],
        ),
        (
            ops.fftn(x, "fp64", dim=(2, 0), norm=norm),
            torch.fft.fftn(x, dim=(2, 0), norm=norm),
            [8, 4],
        ),
        (ops.fft(x, "fp64", n=4, norm=norm), torch.fft.fft(x, n=4, norm=norm), [4]),
        (ops.fftn(x, "fp64", dim=1, norm=norm), torch.fft.fftn(x, dim=1, norm=norm), [6]),
        (
            ops.fftn(x, "fp64", s=(-1, 16), norm=norm),
            torch.fft.fftn(x, s=(-1, 16), norm=norm),
            [6, 16],
        ),
        (
            ops.fftn(x, "fp64", s=np.int64(5), dim=torch.tensor(1), norm=norm),
            torch.fft.fftn(x, s=5, dim=1, norm=norm),
            [5],
        ),
        (
            ops.fft(x, "fp64", n=13, dim=0, norm=norm),
            torch.fft.fft(x, n=13, dim=0, norm=norm),
            [13],
        ),
    ]
    for got, expected, sizes in cases:
        assert got.shape == expected.shape
        tol = 2 * sum(bound(s, 2.0**-53) for s in sizes) + 2.0**-50
        error = torch.linalg.vector_norm(got - expected) / torch.linalg.vector_norm(expected)
        assert error <= tol


def test_irfft_ignores_imaginary_dc_and_nyquist_like_torch() -> None:
    """Oracle: torch.fft.irfft drops the imaginary parts of the zero and Nyquist bins."""
    half = random_complex((2, 5), seed=4)
    for n in (8, 9, 3):
        expected = torch.fft.irfft(half, n=n)
        error = relative_error(ops.irfft(half, "fp64", n=n), expected)
        assert (error <= 2 * bound(n, 2.0**-53) + 2.0**-50).all()


# -- fp16: overflow and accuracy -------------------------------------------------------------


@pytest.mark.parametrize("norm", NORMS)
def test_fp16_overflows_where_an_unnormalised_half_fft_does(norm: str | None) -> None:
    """Oracle: for a constant input v of length N = 1024 every partial sum on the zero
    frequency's path is exact, 2**s v after stage s, and the last is N v. N v = 65536 exceeds
    fp16's max 65504 (and rounds to inf): the transform overflows whatever norm says, as cuFFT's
    half FFT does (normalisation after). With v = 63.9375, N v = 65472 <= 65504: no overflow.
    Scaling first avoids the overflow."""
    n = 1024
    over = ops.fft(torch.full((n,), 64.0), "fp16", norm=norm)
    assert not torch.isfinite(torch.view_as_real(over)).all()
    fine = ops.fft(torch.full((n,), 63.9375), "fp16", norm=norm)
    assert torch.isfinite(torch.view_as_real(fine)).all()
    expected_dc = 65472.0 * {None: 1.0, "forward": 1 / n, "ortho": 1 / 32}[norm]
    assert fine[0].real.item() == expected_dc  # a power of two times an fp16 value: exact
    scaled_first = ops.fft(torch.full((n,), 64.0), "fp16", norm=norm, scale_first=True)
    if norm is not None:
        assert torch.isfinite(torch.view_as_real(scaled_first)).all()
        assert scaled_first[0].real.item() == 65536.0 * {"forward": 1 / n, "ortho": 1 / 32}[norm]


def test_normalisation_factor_below_the_format_range() -> None:
    """Oracle: hand derivation. The inverse DFT of ``256 δ₀`` on 1024 points is 256/1024 = 1/4
    at every point, an e4m3fn value, and every butterfly of a delta is exact; the factor
    2**-10 lies below e4m3fn's smallest subnormal 2**-9, so rounding it to the format first
    (as the model did) made the whole result 0. Likewise p = 5 without subnormals, N = 128."""
    delta = torch.zeros(1024)
    delta[0] = 256.0
    quarter = torch.full((1024,), 0.25)
    assert torch.equal(ops.ifft(delta, "e4m3fn").real, quarter)
    assert torch.equal(ops.irfft(delta[:513], "e4m3fn"), quarter)
    flush = formats.FloatFormat(precision=5, emax=7, subnormals=False)
    delta = torch.zeros(128)
    delta[0] = 128.0
    assert torch.equal(ops.ifft(delta, flush).real, torch.ones(128))


def test_fp16_random_input_within_range_never_overflows() -> None:
    """Oracle: |stage-s values| <= 2**s max|v| (1 + rounding), so with N max|v| <= 65504 / 2
    no stage can reach fp16's overflow threshold 65520."""
    n = 2048
    x = random_complex((4, n), seed=5) / 10
    x = x / x.abs().max() * (65504 / 2 / n)
    assert torch.isfinite(torch.view_as_real(ops.fft(x, "fp16"))).all()


@pytest.mark.parametrize("name", ["fp16", "bf16"])
@pytest.mark.parametrize("n", [16, 256, 1024, 12, 100])
def test_low_precision_within_error_bound(name: str, n: int) -> None:
    """Oracle: torch.fft in float64 on the same rounded inputs; Higham's Thm 24.2 bound with
    the format's u (Bluestein sizes: the derived bound), plus 2**-50 for the oracle's own
    float64 error."""
    fmt = formats.get(name)
    x = mperror.round(random_complex((4, n), seed=n), fmt)
    for transform, reference in ((ops.fft, torch.fft.fft), (ops.ifft, torch.fft.ifft)):
        got = transform(x, fmt, norm="forward" if transform is ops.ifft else None)
        expected = reference(x, norm="forward" if transform is ops.ifft else None)
        assert (relative_error(got, expected) <= bound(n, fmt.unit_roundoff) + 2.0**-50).all()


@pytest.mark.parametrize("name", ["fp16", "bf16", "e4m3fn"])
def test_results_and_twiddles_are_format_values(name: str) -> None:
    """Oracle: FloatFormat.is_representable on every output component and every cached
    twiddle; the twiddle table is computed once per (n, fmt, device, direction)."""
    fmt = formats.get(name)
    x = random_complex((3, 64), seed=6, dtype=torch.complex64)
    for y in (ops.fft(x, fmt), ops.ifft(x, fmt), ops.fftn(x, fmt), ops.fft(x, fmt, n=48)):
        assert y.dtype == torch.complex64
        assert fmt.is_representable(torch.view_as_real(y)).all()
    first = fourier._twiddles(64, fmt, x.device, False)
    assert first is fourier._twiddles(64, fmt, x.device, False)
    assert all(fmt.is_representable(torch.view_as_real(w)).all() for w in first)


@pytest.mark.parametrize("mode", ["nearest_even", "toward_zero", "odd"])
def test_float32_shortcut_matches_plain_rounding(mode: str, monkeypatch) -> None:
    """Oracle: the same transforms with every stage rounded by a plain mperror.round of the
    float64 values (the stage rounding's shortcut through float32 must not change a bit)."""
    x = random_complex((3, 512), seed=9) * 40  # wide enough for overflow in e5m2 and bf16 ties
    calls = [
        lambda f: ops.fft(x, f, mode=mode),
        lambda f: ops.ifft(x[:, :100], f, norm="ortho", mode=mode),
        lambda f: ops.irfft(x[:, :33], f, n=63, mode=mode),
        lambda f: ops.fftn(x.reshape(3, 16, 32), f, dim=(1, 2), mode=mode),
    ]
    for name in ("fp16", "bf16", "e5m2"):
        fast = [call(name) for call in calls]
        with monkeypatch.context() as patch:
            patch.setattr(
                fourier._Setting,
                "round",
                lambda self, z: mperror.round(z, self.fmt, self.mode, generator=self.generator),
            )
            plain = [call(name) for call in calls]
        for a, b in zip(fast, plain, strict=True):
            a, b = (torch.view_as_real(t) if t.is_complex() else t for t in (a, b))
            assert torch.equal(a.nan_to_num(7.0), b.to(a.dtype).nan_to_num(7.0))


def test_stochastic_rounding_is_reproducible() -> None:
    """Oracle: the same generator seed gives the same bits; stochastic results differ from
    round-to-nearest ones but stay within the bound of the deterministic analysis with u
    doubled (stochastic rounding errs by less than a spacing, 2u relative)."""
    x = mperror.round(random_complex((2, 256), seed=8), "fp16")
    first = ops.fft(x, "fp16", mode="stochastic", generator=torch.Generator().manual_seed(1))
    again = ops.fft(x, "fp16", mode="stochastic", generator=torch.Generator().manual_seed(1))
    assert torch.equal(first, again)
    assert not torch.equal(first, ops.fft(x, "fp16"))
    error = relative_error(first, torch.fft.fft(x))
    assert (error <= higham_fft_bound(256, 2 * formats.FP16.unit_roundoff)).all()


# -- arguments -------------------------------------------------------------------------------


def test_dtypes() -> None:
    """float32/complex64 inputs give complex64 (irfft: float32), float64 ones complex128."""
    r32 = torch.randn(8)
    assert ops.fft(r32, "fp16").dtype == torch.complex64
    assert ops.rfft(r32.double(), "fp16").dtype == torch.complex128
    assert ops.fft(r32.half(), "fp16").dtype == torch.complex64
    assert ops.irfft(ops.rfft(r32, "fp16"), "fp16").dtype == torch.float32
    assert ops.irfft(ops.rfft(r32.double(), "bf16"), "bf16").dtype == torch.float64


def test_bad_arguments_raise() -> None:
    x = torch.randn(8)
    with pytest.raises(ValueError, match="norm must be one of"):
        ops.fft(x, "fp16", norm="unitary")
    with pytest.raises(ValueError, match="nearest even"):
        ops.fft(x.double(), "fp64", mode="stochastic")
    with pytest.raises(ValueError, match="cannot hold"):
        ops.fft(x, "fp64")
    with pytest.raises(TypeError, match="real"):
        ops.rfft(x.to(torch.complex64), "fp16")
    with pytest.raises(ValueError, match="positive int"):
        ops.fft(x, "fp16", n=0)
    with pytest.raises(ValueError, match="out of range"):
        ops.fft(x, "fp16", dim=1)
    with pytest.raises(ValueError, match="same length"):
        ops.fftn(torch.randn(4, 4), "fp16", s=(4,), dim=(0, 1))
    with pytest.raises(ValueError, match="repeated"):
        ops.fftn(torch.randn(4, 4), "fp16", dim=(0, -2))
    with pytest.raises(ValueError, match="only 1 dimensions"):
        ops.fftn(torch.randn(4), "fp16", s=(2, 4))  # torch.fft.fftn refuses this too
    with pytest.raises(TypeError, match="Tensor"):
        ops.fft([1.0, 2.0], "fp16")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scale_first"):
        ops.fft(x, "fp16", scale_first=1)  # type: ignore[arg-type]
    for generator in (5, "cuda"):  # refused even where no rounding would draw from it
        with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
            ops.fft(x, "fp16", generator=generator)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pass n"):  # the length comes from x, not from n
        ops.fft(torch.ones(0), "fp16")
    with pytest.raises(ValueError, match="irfft of a single bin"):
        ops.irfft(torch.ones(1, dtype=torch.complex64), "fp16")
    for name in ("s", "dim"):
        with pytest.raises(TypeError, match=f"{name} must be None, an int or a sequence"):
            ops.fftn(torch.randn(4, 4), "fp16", **{name: 1.5})


@pytest.mark.gpu
@pytest.mark.parametrize("n", [1024, 100])
def test_cuda_within_bound(n: int) -> None:
    """Oracle: torch.fft in float64 on the CPU, Higham's bound as above (CUDA may contract the
    float64 complex products differently, so bits may differ from the CPU model's in rare
    near-ties; the bound must hold regardless)."""
    x = mperror.round(random_complex((4, n), seed=n), "fp16")
    got = ops.fft(x.cuda(), "fp16")
    assert got.device.type == "cuda"
    got = got.cpu()
    assert (relative_error(got, torch.fft.fft(x)) <= bound(n, 2.0**-11) + 2.0**-50).all()


@pytest.mark.parametrize("mode", ["nearest_even", "toward_zero", "toward_negative", "odd"])
@pytest.mark.parametrize("name", ["fp16", "bf16", "e5m2", "e4m3fn"])
def test_stage_rounding_shortcut_is_exact(name: str, mode: str) -> None:
    """Oracle: mperror.round of the float64 values (itself checked against the Fraction
    reference). The stage rounding through a round-to-odd float32 must give the same bits on
    exact midpoints, values a float64 ulp or 2**-40 away from them (which a nearest-even cast
    to float32 turns into midpoints: the double-rounding trap), values of the format, and
    zeros, tiny values below the smallest normal, float32's extremes, infinities and NaN."""
    fmt = formats.get(name)
    v = fmt.finite_values().double()
    v = v[(v.abs() >= fmt.smallest_normal) & (v.abs() <= 2.0**100)]
    mids = (v[1:] + v[:-1]) / 2
    mids = mids[mids.abs() >= fmt.smallest_normal]  # not the one between -min and +min
    up, down = torch.full_like(mids, math.inf), torch.full_like(mids, -math.inf)
    ordinary = torch.cat(
        [
            mids,
            mids.nextafter(up),
            mids.nextafter(down),
            mids * (1 + 2.0**-40),
            mids * (1 - 2.0**-40),
            v,
        ]
    )
    special = [0.0, -0.0, math.inf, -math.inf, math.nan, 3.4e38, -3.4e38, 3.5e38, 1e-300, 2e-45]
    setting = fourier._Setting(fmt, None, mode, None, False)
    everything = torch.cat([ordinary, torch.tensor(special, dtype=torch.float64)])
    for x in (ordinary, everything):
        got = setting.round(x)
        expected = mperror.round(x, fmt, mode, dtype=torch.float32)
        bits, want = got.view(torch.int32), expected.view(torch.int32)
        same = (bits == want) | (got.isnan() & expected.isnan())
        assert bool(same.all()), x[~same][:5].tolist()


@pytest.mark.parametrize("mode", ["toward_zero", "toward_negative", "nearest_even"])
def test_fftn_ortho_scales_by_the_factor_of_the_whole_size(mode: str) -> None:
    """Oracle: hand arithmetic. The DC bin of ones on a 2 x 8 grid is 16, times 1/sqrt(16) =
    1/4: 4 exactly, in every mode. The product of the per-dimension factors 1/sqrt(2) and
    1/sqrt(8) is 0.25 less a float64 ulp, which toward_zero had turned into 4 less an fp16
    ulp; torch and the emulated torch.fft.fftn scale by 1/sqrt(16)."""
    dc = ops.fftn(torch.ones(2, 8), "fp16", norm="ortho", mode=mode)[0, 0]
    assert dc.item() == 4.0
