"""Benchmark: the staged fp16 FFT of mperror.ops against torch.fft in float32, on the CPU.

Claim (the issue's goal): an emulated fp16 FFT of 2**16 points costs at most 20 times torch's
float32 FFT of the same size, measured on the same machine in the same run.

Method. Both transforms get warm-up calls first (the emulated one caches its twiddle table on
the first call). Then ``repeats`` rounds each time one call of each, back to back, so that both
see the same machine load; the ratio of the medians is the result (the ratio of the minima is
printed too). torch's thread count is pinned to ``threads`` for both (default 1: on a shared
machine more threads mostly measure the neighbours). The emulated output is checked against
torch.fft in float64 on the same rounded input, and the verdict needs both the time ratio and
that error within Higham's bound (``mperror.bounds.fft_error_bound``), so a fast wrong answer
cannot pass.

    PYTHONPATH=. python experiments/bench_fft.py            # 2**16 points, fp16
    PYTHONPATH=. python experiments/bench_fft.py --quick    # 2**12 points, 5 rounds
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

import mperror
from mperror import ops
from mperror.train.summary import machine_name


@dataclass(frozen=True, kw_only=True)
class Config:
    n: int = 1 << 16  # transform length
    batch: int = 1  # independent transforms per call
    fmt: str = "fp16"  # emulated format
    repeats: int = 15  # timed rounds
    warmup: int = 3  # untimed calls of each transform before timing
    threads: int = 1  # torch.set_num_threads for both transforms
    seed: int = 0


QUICK = Config(n=1 << 12, repeats=5, warmup=2)


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def run(config: Config) -> dict[str, object]:
    torch.set_num_threads(config.threads)
    gen = torch.Generator().manual_seed(config.seed)
    x = torch.randn(config.batch, config.n, generator=gen)

    def native() -> torch.Tensor:
        return torch.fft.fft(x)

    def emulated() -> torch.Tensor:
        return ops.fft(x, config.fmt)

    for _ in range(config.warmup):
        native()
        emulated()
    native_times, emulated_times = [], []
    for _ in range(config.repeats):
        native_times.append(timed(native))
        emulated_times.append(timed(emulated))

    rounded = mperror.round(x.double(), config.fmt)
    reference = torch.fft.fft(rounded)
    error = (emulated().to(torch.complex128) - reference).norm() / reference.norm()
    native_median = statistics.median(native_times)
    emulated_median = statistics.median(emulated_times)
    return {
        "config": asdict(config),
        "cpu": machine_name("cpu"),
        "torch": torch.__version__,
        "native_float32_median_s": native_median,
        "emulated_median_s": emulated_median,
        "ratio_of_medians": emulated_median / native_median,
        "ratio_of_minima": min(emulated_times) / min(native_times),
        "relative_error_vs_float64": error.item(),
        "error_bound": mperror.bounds.fft_error_bound(config.n, config.fmt).bound,
        "goal_ratio": 20.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small size, few rounds")
    parser.add_argument("--n", type=int, default=None, help="transform length")
    parser.add_argument("--fmt", default=None, help="emulated format (default fp16)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    for name in ("n", "repeats", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1, got {value}")
    if args.n is not None and args.n & (args.n - 1):
        parser.error(f"--n must be a power of two (the staged radix-2 FFT), got {args.n}")
    base = QUICK if args.quick else Config()
    overrides = {k: getattr(args, k) for k in ("n", "fmt", "repeats", "threads")}
    config = Config(**{**asdict(base), **{k: v for k, v in overrides.items() if v is not None}})

    result = run(config)
    print(f"CPU: {result['cpu']}; torch {result['torch']}; threads {config.threads}")
    print(f"FFT of {config.n} points (batch {config.batch}), {config.repeats} interleaved rounds")
    print(f"  torch.fft float32     median {result['native_float32_median_s'] * 1e3:9.3f} ms")
    print(f"  mperror.ops.fft {config.fmt:<6s} median {result['emulated_median_s'] * 1e3:9.3f} ms")
    print(
        f"  ratio of medians {result['ratio_of_medians']:.1f}x "
        f"(of minima {result['ratio_of_minima']:.1f}x; goal <= {result['goal_ratio']:.0f}x)"
    )
    error, bound = result["relative_error_vs_float64"], result["error_bound"]
    print(f"  relative 2-norm error vs float64: {error:.2e} (Higham's bound {bound:.2e})")
    met = result["ratio_of_medians"] <= result["goal_ratio"] and error <= bound
    goal = f"ratio <= {result['goal_ratio']:.0f}x and error within the bound"
    print(f"  goal {'met' if met else 'MISSED'}: {goal}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2)


if __name__ == "__main__":
    main()
