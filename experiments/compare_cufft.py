"""Error statistics: mperror's staged fp16 FFT against cuFFT's half-precision FFT.

Question (issue 3): does the emulated fp16 FFT (:func:`mperror.ops.fft`, every radix-2 stage
rounded to fp16) err like the hardware half FFT it stands in for? Both transform the same
fp16-representable complex inputs; each result's relative 2-norm error per row is measured
against torch.fft in complex128 of those inputs, and set beside Higham's radix-2 bound
(:func:`mperror.bounds.fft_error_bound` for fp16, twiddles stored in fp16). cuFFT's half FFT
exists on CUDA only, for power-of-two lengths; its internal algorithm (radix, accumulation
width) is not documented, so its errors need not match the staged model's: the script reports
both distributions and the ratio of their medians, and judges nothing.

Without CUDA it reports the staged FFT alone and says what is missing.

    PYTHONPATH=. python experiments/compare_cufft.py             # n = 2**8 ... 2**16
    PYTHONPATH=. python experiments/compare_cufft.py --quick     # n = 2**8, 2**10
    PYTHONPATH=. python experiments/compare_cufft.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

import mperror
from mperror import bounds, ops

FULL_SIZES = (1 << 8, 1 << 10, 1 << 12, 1 << 14, 1 << 16)
QUICK_SIZES = (1 << 8, 1 << 10)


def inputs(n: int, batch: int, seed: int) -> torch.Tensor:
    """``batch`` rows of ``n`` complex values, real and imaginary parts standard normal
    rounded to fp16 (nearest even), as complex128."""
    gen = torch.Generator().manual_seed(seed + n)
    parts = mperror.round(torch.randn(batch, n, 2, generator=gen, dtype=torch.float64), "fp16")
    return torch.view_as_complex(parts.contiguous())


def row_errors(result: torch.Tensor, reference: torch.Tensor) -> list[float]:
    """Relative 2-norm error of each row, in float64 (inf where the result overflowed)."""
    diff = torch.linalg.vector_norm(result.to(torch.complex128).cpu() - reference, dim=-1)
    return (diff / torch.linalg.vector_norm(reference, dim=-1)).tolist()


def summary(errors: list[float]) -> dict[str, float]:
    return {"median": statistics.median(errors), "max": max(errors), "min": min(errors)}


def compare(n: int, batch: int, seed: int) -> dict[str, object]:
    x = inputs(n, batch, seed)
    reference = torch.fft.fft(x)
    bound = bounds.fft_error_bound(n, "fp16").bound
    row: dict[str, object] = {"n": n, "batch": batch, "higham_bound": bound}
    row["staged_fp16_cpu"] = summary(row_errors(ops.fft(x, "fp16"), reference))
    if torch.cuda.is_available():
        device = torch.device("cuda")
        row["staged_fp16_cuda"] = summary(row_errors(ops.fft(x.to(device), "fp16"), reference))
        half = x.to(device).to(torch.complex32)  # exact: both parts are fp16 values
        cufft = torch.fft.fft(half)  # complex32: cuFFT's half transform
        row["cufft_half"] = summary(row_errors(cufft, reference))
        staged = row["staged_fp16_cpu"]["median"]  # type: ignore[index]
        row["median_ratio_staged_to_cufft"] = staged / row["cufft_half"]["median"]  # type: ignore[index]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two small sizes")
    parser.add_argument("--batch", type=int, default=64, help="rows per size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    if args.batch < 1:
        parser.error(f"--batch must be a positive int, got {args.batch}")
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(f"torch {torch.__version__}; GPU: {device}; {args.batch} rows per size")
    print("relative 2-norm error per row against complex128 (median / max), Higham's bound")
    results = []
    for n in sizes:
        row = compare(n, args.batch, args.seed)
        results.append(row)
        parts = [f"n = {n:6d}: bound {row['higham_bound']:.2e}"]
        for key in ("staged_fp16_cpu", "staged_fp16_cuda", "cufft_half"):
            if key in row:
                stats = row[key]
                parts.append(f"{key} {stats['median']:.2e} / {stats['max']:.2e}")  # type: ignore[index]
        if "median_ratio_staged_to_cufft" in row:
            parts.append(f"staged / cuFFT medians {row['median_ratio_staged_to_cufft']:.2f}")
        print("  " + "; ".join(parts))
    if not torch.cuda.is_available():
        print("cuFFT half needs CUDA: only the staged model was measured")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"gpu": device, "torch": torch.__version__, "rows": results}, out, indent=2)


if __name__ == "__main__":
    main()
