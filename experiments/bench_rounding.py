"""Throughput and memory of mperror.round against baselines measured in the same run.

Goals (issue "Rounding core"), for 10**7 float32 values on CPU:
  fp16 / bf16 nearest_even  >= 0.9x  x.half().float() / x.bfloat16().float()
  every other format/mode   >= 0.3x  x.half().float()
  stochastic modes          >= 0.2x  x.half().float()
  peak extra memory         <= 4x    the input
  compiled path (--compiled) aimed at >= 0.8x x.clone(); its first-call cost is reported.
On CUDA (--device cuda): >= 0.7x of device-to-device copy bandwidth for nearest_even and
stochastic on 10**8 values, synchronised timing.

Run:  python experiments/bench_rounding.py [--n 10000000] [--compiled] [--memory] [--device cuda]
Each figure is the best of --repeats timed calls after one warm-up call.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import time

import torch

import mperror
from mperror.rounding import RoundMode
from mperror.train.summary import machine_name

FORMATS = ["fp16", "bf16", "tf32", "e5m2", "e4m3fn", "e3m2", "e2m3", "e2m1"]


def best_time(fn, repeats: int, device: str) -> float:
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def throughput_table(args: argparse.Namespace) -> None:
    device = args.device
    x = torch.randn(args.n, device=device, generator=None)
    gen = torch.Generator(device=device).manual_seed(0)
    baselines = {
        "half": lambda: x.half().float(),
        "bf16": lambda: x.bfloat16().float(),
        "clone": lambda: x.clone(),
    }
    rounds: dict[str, list[float]] = {key: [] for key in baselines}

    def measure_baselines() -> None:
        for key, fn in baselines.items():
            rounds[key].append(best_time(fn, args.repeats, device))

    def rate(seconds: float) -> float:  # millions of values per second
        return args.n / seconds / 1e6

    machine = torch.cuda.get_device_name() if device == "cuda" else machine_name("cpu")
    threads = f", threads {torch.get_num_threads()}" if device == "cpu" else ""
    print(f"device: {device} ({machine})")
    print(f"torch {torch.__version__}{threads}, n = {args.n:,}")
    # Each time is printed as it is measured (flushed), so a run stopped at a time limit keeps
    # what it measured; the table with the ratios follows once the baselines are all in.
    times = {}
    for name in FORMATS:
        measure_baselines()  # again before every format, interleaved with the measured calls
        for mode in RoundMode:
            call = functools.partial(mperror.round, x, name, mode, generator=gen)
            times[name, mode] = t = best_time(call, args.repeats, device)
            print(f"  measured {name} {mode.value}: {rate(t):.0f} M/s", flush=True)
    measure_baselines()
    # The median of the rounds' best times: robust to a slow round (another process) and to
    # the rare impossibly fast one (a clock glitch on a shared VM gave 4e9 values/s once).
    t_half, t_bf16, t_clone = (statistics.median(rounds[key]) for key in baselines)

    print(
        f"baselines (median of {len(FORMATS) + 1} interleaved rounds): half cast "
        f"{rate(t_half):.0f} M/s, bf16 cast {rate(t_bf16):.0f} M/s, clone {rate(t_clone):.0f} M/s"
    )
    print(f"{'format':8s} {'mode':16s} {'M/s':>7s} {'ratio':>8s} {'goal':>6s}  ok")
    failures = 0
    for (name, mode), t in times.items():
        if mode is RoundMode.NEAREST_EVEN and name in ("fp16", "bf16"):
            baseline, goal = (t_half if name == "fp16" else t_bf16), 0.9
        else:
            baseline, goal = t_half, 0.2 if mode.is_stochastic else 0.3
        if device == "cuda" and mode in (RoundMode.NEAREST_EVEN, RoundMode.STOCHASTIC):
            baseline, goal = t_clone, 0.7  # the CUDA goal is against copy bandwidth
        ratio = baseline / t
        ok = ratio >= goal
        failures += not ok
        print(
            f"{name:8s} {mode.value:16s} {rate(t):7.0f} {ratio:8.2f} {goal:6.1f}  "
            f"{'yes' if ok else 'NO'}"
        )
    print(f"{failures} format/mode pairs below their goal")
    if args.compiled:
        print("\ncompiled path (torch.compile), against x.clone():")
        cases = [("fp16", "toward_zero"), ("bf16", "stochastic"), ("e4m3fn", "nearest_even"),
                 ("e2m1", "nearest_even"), ("e2m1", "stochastic")]  # fmt: skip
        for name, mode in cases:
            call = functools.partial(mperror.round, x, name, mode, generator=gen, compiled=True)
            start = time.perf_counter()
            call()
            if device == "cuda":
                torch.cuda.synchronize()
            first = time.perf_counter() - start
            t = best_time(call, args.repeats, device)
            print(
                f"  {name:8s} {mode:14s} {rate(t):7.0f} M/s  {t_clone / t:.2f}x clone  "
                f"(first call {first:.1f} s)"
            )


MEMORY_CHILD = """
import sys, torch, mperror
n, name, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key)) * 1024

x = torch.randn(n)
mperror.round(torch.randn(n // 100), name, mode)  # first-call allocations out of the way
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak resident set size (VmHWM) to the current one
before = status("VmRSS:")
y = mperror.round(x, name, mode)
print((status("VmHWM:") - before) / (4 * n))
"""


def memory_table(args: argparse.Namespace) -> None:
    """Peak resident memory added by one call, in units of the input's size, read from Linux's
    VmHWM after resetting it (a fresh process per case). The output itself counts as 1x."""
    print("\npeak extra memory of one call (units of the input size; the output is 1.0 of it)")
    cases = [("fp16", "nearest_even"), ("fp16", "toward_zero"), ("e2m1", "nearest_even"),
             ("bf16", "stochastic"), ("e4m3fn", "odd"), ("e2m1", "stochastic")]  # fmt: skip
    for name, mode in cases:
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, str(args.n), name, mode],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        ratio = float(out.stdout.strip())
        print(f"  {name:8s} {mode:14s} {ratio:5.2f}x  {'ok' if ratio <= 4 else 'ABOVE 4x'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10**7)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--compiled", action="store_true")
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda needs CUDA (torch.cuda.is_available() is False)")
    if args.n < 1 or args.repeats < 1:
        parser.error(f"--n and --repeats must be >= 1, got {args.n} and {args.repeats}")
    if args.memory and args.device == "cuda":
        parser.error("--memory measures a CPU process's resident memory; run it without --device")
    if args.memory and args.n < 10**6:
        parser.error("--memory needs --n >= 10**6 (page-level peaks of smaller inputs are noise)")
    throughput_table(args)
    if args.memory:
        memory_table(args)


if __name__ == "__main__":
    main()
