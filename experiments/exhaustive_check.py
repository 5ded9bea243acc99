"""Every float32 bit pattern (all 2**32) rounded to fp16, bf16, e5m2 and e4m3fn, against torch.

Oracle: torch's native float32 -> format casts (round to nearest even; e4m3fn saturating), at
zero tolerance: equal bits, or both NaN. mperror's native-cast shortcut is switched off, so the
integer kernel is what is checked (and, with --compiled, the torch.compile'd kernel; with
--addition, the float32-addition nearest-even path, which fp16, e5m2 and e4m3fn take without
native casts, bf16 never; with --float64, the same patterns widened to float64, which run the
float64 paths).

Too slow for CI (about 4.3e9 values per format), but not for one run: 40 to 125 s per format
and path on 2 CPU cores (RESULTS.md); --device cuda checks the CUDA kernels. Results go in
experiments/RESULTS.md.

Run:  python experiments/exhaustive_check.py [--formats fp16 bf16 e5m2 e4m3fn] [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import mperror
import mperror.rounding as rounding

DTYPES = {
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
    "e5m2": torch.float8_e5m2,
    "e4m3fn": torch.float8_e4m3fn,
}


def torch_format(name: str, device: str) -> mperror.FloatFormat:
    """The format torch's cast rounds to: the preset, except e4m3fn where the cast gives NaN
    past 464 (torch before pytorch#178817, 2.11 and older) instead of saturating to 448."""
    fmt = mperror.formats.get(name)
    overflow = torch.tensor([1000.0], device=device).to(DTYPES[name]).float()
    if name == "e4m3fn" and overflow.isnan().item():
        print("e4m3fn: this torch's cast gives NaN past 464; checked against overflow='nan'")
        return fmt.replace(overflow="nan")
    return fmt


def check(name: str, args: argparse.Namespace) -> int:
    """Number of float32 patterns where mperror and torch disagree (the first few printed)."""
    dtype = DTYPES[name]
    fmt = torch_format(name, args.device)
    chunk = 1 << args.log2_chunk
    total = 1 << 32
    mismatches = 0
    start = time.perf_counter()
    for first in range(0, total, chunk):
        codes = torch.arange(first, first + chunk, dtype=torch.int64, device=args.device)
        x = codes.to(torch.int32).view(torch.float32)  # wraps above 2**31: the negative patterns
        expected = x.to(dtype).float()
        source = x.double() if args.float64 else x
        got = mperror.round(source, fmt, compiled=args.compiled).float()
        same = got.view(torch.int32) == expected.view(torch.int32)
        same |= got.isnan() & expected.isnan()
        bad = (~same).nonzero().squeeze(1)
        if bad.numel():
            for i in bad[:3].tolist():
                print(
                    f"  {name}: x={x[i].item()!r} (0x{int(codes[i]):08x}) mperror "
                    f"{got[i].item()!r} torch {expected[i].item()!r}",
                    file=sys.stderr,
                )
            mismatches += bad.numel()
        done = (first + chunk) / total
        elapsed = time.perf_counter() - start
        print(f"\r{name}: {100 * done:5.1f}%  {elapsed:6.0f} s elapsed, "
              f"~{elapsed / done - elapsed:5.0f} s left, {mismatches} mismatches",
              end="", file=sys.stderr, flush=True)  # fmt: skip
    print(file=sys.stderr)
    return mismatches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--formats", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--log2-chunk", type=int, default=24)
    parser.add_argument("--compiled", action="store_true")
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--addition", action="store_true", help="check the addition path")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda needs CUDA (torch.cuda.is_available() is False)")
    if not 0 <= args.log2_chunk <= 30:
        parser.error(f"--log2-chunk must lie in [0, 30], got {args.log2_chunk}")
    rounding._NATIVE_CASTS.clear()  # check the kernel, not torch against itself
    if not args.addition:
        rounding._addition_applies = lambda fmt, mode: False
    for name in args.formats:
        start = time.perf_counter()
        bad = check(name, args)
        verdict = "all 2**32 patterns agree" if bad == 0 else f"{bad} MISMATCHES"
        print(
            f"{name}: {verdict} ({time.perf_counter() - start:.0f} s, {args.device}, "
            f"torch {torch.__version__}, compiled={args.compiled}, float64={args.float64}, "
            f"addition={args.addition})",
            flush=True,  # a finished format's verdict survives an interruption
        )
    print(f"mperror {mperror.__version__}")


if __name__ == "__main__":
    main()
