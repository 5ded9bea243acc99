"""Test oracle: a radix-2 FFT whose every real operation is rounded once to a narrow format.

Not a package module, and not a stand-in for ``mperror.ops.fft``: it exists so the FFT bounds can be
checked before that lands. Each operation is computed in float64 and rounded once by ``rnd``;
this is the correctly rounded operation whenever the format has ``p <= 26`` bits (a product of two
``p``-bit numbers is exact in float64, and rounding a float64 sum again to ``p`` bits is innocuous
double rounding when ``53 >= 2p + 1``; Figueroa 1995). For fp16, ``rnd`` can be numpy's float64
-> float16 cast, which is correctly rounded (REFERENCES section 2); for any format,
``rounder(name)`` uses ``mperror.round``.

Loaded by path from the test modules (``load_emulated_fft``) so that it works under any pytest
import mode.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Rounder = Callable[[np.ndarray], np.ndarray]


def rounder(name: str) -> Rounder:
    """float64 -> nearest value of the format ``name`` (ties to even) by ``mperror.round``, which
    rounds float64 inputs once (exhaustively tested against its Fraction reference)."""
    import torch

    import mperror

    def rnd(values: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))
        return mperror.round(tensor, name).numpy()

    return rnd


def round_fp16(values: np.ndarray) -> np.ndarray:
    """float64 -> nearest float16 value (ties to even), returned as float64."""
    return np.asarray(values, dtype=np.float64).astype(np.float16).astype(np.float64)


def round_fp32(values: np.ndarray) -> np.ndarray:
    """float64 -> nearest float32 value (numpy's cast is correctly rounded), as float64."""
    return np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)


def _bit_reversal(n: int) -> np.ndarray:
    bits = n.bit_length() - 1
    index = np.arange(n)
    reversed_index = np.zeros(n, dtype=np.int64)
    for b in range(bits):
        reversed_index |= ((index >> b) & 1) << (bits - 1 - b)
    return reversed_index


def _fft_last_axis(
    re: np.ndarray, im: np.ndarray, rnd: Rounder, sign: int
) -> tuple[np.ndarray, np.ndarray]:
    n = re.shape[-1]
    if n & (n - 1):
        raise ValueError(f"length must be a power of two, got {n}")
    order = _bit_reversal(n)
    re, im = re[..., order], im[..., order]
    size = 2
    while size <= n:
        half = size // 2
        angle = sign * 2 * np.pi * np.arange(half) / size
        # twiddles computed in float64 and rounded to the format: mu = default_twiddle_error
        wr, wi = rnd(np.cos(angle)), rnd(np.sin(angle))
        blocks = (*re.shape[:-1], n // size, size)
        r, i = re.reshape(blocks), im.reshape(blocks)
        even_r, even_i = r[..., :half], i[..., :half]
        odd_r, odd_i = r[..., half:], i[..., half:]
        # complex product by the four-multiplication formula, every operation rounded
        tr = rnd(rnd(wr * odd_r) - rnd(wi * odd_i))
        ti = rnd(rnd(wr * odd_i) + rnd(wi * odd_r))
        re = np.concatenate([rnd(even_r + tr), rnd(even_r - tr)], axis=-1).reshape(re.shape)
        im = np.concatenate([rnd(even_i + ti), rnd(even_i - ti)], axis=-1).reshape(im.shape)
        size *= 2
    return re, im


def fft(
    re: np.ndarray,
    im: np.ndarray,
    rnd: Rounder,
    *,
    axes: tuple[int, ...] = (-1,),
    inverse: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Unnormalised radix-2 DIT FFT along ``axes`` (inverse: ``exp(+2 pi i jk/n)``), emulated.

    ``re`` and ``im`` must already hold values of the format. Returns the computed real and
    imaginary parts (float64 arrays of format values).
    """
    sign = 1 if inverse else -1
    re, im = np.asarray(re, dtype=np.float64), np.asarray(im, dtype=np.float64)
    for axis in axes:
        re, im = np.moveaxis(re, axis, -1), np.moveaxis(im, axis, -1)
        re, im = _fft_last_axis(re, im, rnd, sign)
        re, im = np.moveaxis(re, -1, axis), np.moveaxis(im, -1, axis)
    return re, im


def cascade_sum(values: np.ndarray) -> np.floating:
    """Pairwise sum of a power-of-two number of float16 values, every addition in float16.

    This is the DC output of a radix-2 FFT: its only twiddle on that path is the exact 1.
    """
    values = np.asarray(values, dtype=np.float16)
    while values.size > 1:
        with np.errstate(over="ignore"):  # overflow to inf is the event under test
            values = values[0::2] + values[1::2]
    return values[0]
