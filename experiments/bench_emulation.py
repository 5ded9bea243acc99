"""Cost of emulated arithmetic: one PINN training step under mperror.emulate vs plain float32.

The step (issue "Emulated arithmetic"; goal: at most 4x the plain float32 step on CPU): the
diffusion PINN of Hayford et al. (REFERENCES section 4), u_t = u_xx - e^-t (sin(pi x) -
pi^2 sin(pi x)) on [-1, 1] x [0, 1], output hard-constrained as u = t (1 - x^2) N(x, t) +
sin(pi x); MLP [2, 32, 32, 32, 1] tanh; 500 collocation points; forward, u_t and u_xx through
autograd.grad(create_graph=True), mean squared residual, backward (double backward), Adam step,
all inside the emulation block. Adam's eps is 1e-4 for every run (the PINN study's fp16
setting; PyTorch's 1e-8 rounds to 0 in fp16, and the emulated step would divide by zero).

Every figure is a ratio to the plain float32 step measured in the same run, interleaved with
it, each the best of --repeats timed steps (each from the same state, after one untimed step).
Nothing is asserted. --breakdown splits the cost: the dispatch mode alone, the emulator with
rounding replaced by the identity, and single mperror.round calls.

Run:  PYTHONPATH=. python experiments/bench_emulation.py [--repeats 7] [--threads 1]
      [--formats fp16 bf16 e4m3fn] [--compiled] [--autocast] [--breakdown]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import math
import time
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import mperror
import mperror.rounding
from mperror.emulate import autocast, emulate, pure
from mperror.train.summary import machine_name


def make_problem(points: int, seed: int = 0):
    """The model, optimizer factory and training step of the diffusion PINN."""
    torch.manual_seed(seed)
    layers = [2, 32, 32, 32, 1]
    modules: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(layers)):
        linear = torch.nn.Linear(a, b)
        torch.nn.init.xavier_uniform_(linear.weight)
        torch.nn.init.zeros_(linear.bias)
        modules.append(linear)
        if i < len(layers) - 2:
            modules.append(torch.nn.Tanh())
    model = torch.nn.Sequential(*modules)
    xt = torch.rand(points, 2)
    xt[:, 0] = 2 * xt[:, 0] - 1

    def step(net: torch.nn.Module, optimizer: torch.optim.Optimizer) -> torch.Tensor:
        inputs = xt.clone().requires_grad_(True)
        x, t = inputs[:, 0:1], inputs[:, 1:2]
        u = t * (1 - x**2) * net(inputs) + torch.sin(math.pi * x)
        (du,) = torch.autograd.grad(u.sum(), inputs, create_graph=True)
        (d2u,) = torch.autograd.grad(du[:, 0].sum(), inputs, create_graph=True)
        u_t, u_xx = du[:, 1:2], d2u[:, 0:1]
        sx = torch.sin(math.pi * x)
        source = torch.exp(-t) * (sx - math.pi**2 * sx)
        loss = ((u_t - u_xx + source) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.detach()

    def fresh() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        net = copy.deepcopy(model)
        return net, torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-4)

    return fresh, step


def timed_step(fresh, step, context: Callable[[], contextlib.AbstractContextManager]) -> float:
    net, optimizer = fresh()
    with context():
        step(net, optimizer)  # Adam's state exists from here on
        start = time.perf_counter()
        step(net, optimizer)
        return time.perf_counter() - start


class _NullMode(TorchDispatchMode):
    """Forwards every operator unchanged: the cost of Python dispatch alone."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    fresh, step = make_problem(args.points)
    variants: dict[str, Callable[[], contextlib.AbstractContextManager]] = {}
    for name in args.formats:
        variants[f"{name} fp64 count"] = lambda n=name: emulate(pure(n))
        variants[f"{name} fp64"] = lambda n=name: emulate(pure(n), count=False)
        variants[f"{name} fp32 compute"] = lambda n=name: emulate(
            pure(n, compute="fp32"), count=False
        )
        if args.autocast:
            variants[f"{name} autocast"] = lambda n=name: emulate(autocast(n), count=False)
        if args.compiled:
            variants[f"{name} fp64 compiled"] = lambda n=name: emulate(
                pure(n), count=False, compiled=True
            )
    first_call = {}
    for label, context in variants.items():  # warm the caches; compiles on the first call
        start = time.perf_counter()
        timed_step(fresh, step, context)
        first_call[label] = time.perf_counter() - start
    best = dict.fromkeys(["float32", *variants], math.inf)
    for _ in range(args.repeats):
        best["float32"] = min(best["float32"], timed_step(fresh, step, contextlib.nullcontext))
        for label, context in variants.items():
            best[label] = min(best[label], timed_step(fresh, step, context))

    print(
        f"CPU: {machine_name('cpu')}; torch {torch.__version__}; threads {torch.get_num_threads()}"
    )
    print(f"PINN step, MLP [2,32,32,32,1] tanh, {args.points} points, best of {args.repeats}")
    print(f"plain float32 step: {best['float32'] * 1e3:.2f} ms")
    print(f"{'variant':24s} {'ms':>8s} {'ratio':>7s} {'first call s':>13s}")
    for label in variants:
        ms = best[label] * 1e3
        ratio = best[label] / best["float32"]
        goal = f"   <- the goal's setup, emulate(pure('fp16')): {'met' if ratio <= 4 else 'MISSED'}"
        print(
            f"{label:24s} {ms:8.2f} {ratio:7.1f} {first_call[label]:13.1f}"
            + (goal if label == "fp16 fp64 count" else "")
        )
    with emulate("fp16") as em:
        net, optimizer = fresh()
        step(net, optimizer)
    report = em.report()
    wide = sum(n for op, n in report.ops.items() if report.op_classes[op] not in ("view", "pass"))
    print(f"operators per step: {report.calls} ({wide} emulated, the rest views and metadata)")
    if args.breakdown:
        breakdown(args, fresh, step, best["float32"])


def breakdown(args: argparse.Namespace, fresh, step, plain: float) -> None:
    """Where the time goes: dispatch, the emulator's own work, and rounding."""

    def best_of(context) -> float:
        return min(timed_step(fresh, step, context) for _ in range(args.repeats))

    null = best_of(_NullMode)
    # The emulator rounds through mperror.rounding._route's cached rounders; an identity
    # rounder (a conversion to the dtype asked for) leaves the rest of its work. Diagnostic only.
    real_route = mperror.rounding._route
    mperror.rounding._route = lambda *key: lambda x, generator: x.to(key[-1])
    try:
        identity = best_of(lambda: emulate("fp16", count=False))
        identity32 = best_of(lambda: emulate(pure("fp16", compute="fp32"), count=False))
    finally:
        mperror.rounding._route = real_route
    print("\nbreakdown (ratios to the plain step):")
    print(f"  dispatch mode that forwards everything        {null / plain:6.1f}")
    print(f"  emulator, rounding = identity, fp64 compute    {identity / plain:6.1f}")
    print(f"  emulator, rounding = identity, fp32 compute    {identity32 / plain:6.1f}")

    def per_call(fn: Callable[[], object], n: int = 200) -> float:
        fn()
        return min(_timeit(fn, n) for _ in range(5)) * 1e6

    print("  mperror.round per call, microseconds (500 x 32, and 1 element):")
    for name in args.formats:
        for dtype in (torch.float64, torch.float32):
            big = torch.randn(500, 32, dtype=dtype)
            one = torch.randn(1, dtype=dtype)
            t_big = per_call(lambda b=big, n=name: mperror.round(b, n))
            t_one = per_call(lambda o=one, n=name: mperror.round(o, n))
            print(f"    {name:8s} {dtype!s:14s} {t_big:8.1f} {t_one:8.1f}")
    x = torch.randn(500, 32)
    print(f"  x.to(float64) {per_call(lambda: x.to(torch.float64)):.1f} us, "
          f"x * x {per_call(lambda: x * x):.1f} us (500 x 32 float32)")  # fmt: skip


def _timeit(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--formats", nargs="+", default=["fp16", "bf16", "e4m3fn"])
    parser.add_argument("--compiled", action="store_true")
    parser.add_argument("--autocast", action="store_true", help="also autocast(fmt) policies")
    parser.add_argument("--breakdown", action="store_true")
    args = parser.parse_args()
    for name in ("points", "repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    run(args)


if __name__ == "__main__":
    main()
