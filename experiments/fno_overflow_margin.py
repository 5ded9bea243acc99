"""Where does a trained FNO's unstabilised fp16 FFT overflow, and is tanh still safe there?

Tu et al. (ICLR 2024) report that plain mixed precision overflows in an FNO's half-precision
FFT and that a tanh before each spectral convolution prevents it. An unnormalised FFT of ``N``
points can overflow fp16 only if ``N M > 65504`` (``M = max |v|``, the condition the report
judges); the zero mode, ``N`` times a channel's mean, is the coefficient a biased channel
pushes over first, so ``N |mean| > 65504`` is where an overflow is all but certain. This script
measures both on trained quick-size models: for each FNO problem it trains the ``half`` (no
stabiliser) and ``half+tanh`` spectral precisions (fp32 policy, the problem's quick defaults:
full-batch Adam with its learning rate, epsilon and step count, as ``mperror run`` does; one
seed; spectral convolutions emulated on a CPU), then evaluates each model on one test input at
growing resolutions (zero-shot) and prints, over the four spectral convolutions' FFT inputs
(after tanh where there is one): ``N``, ``M``, ``N M``, the largest ``N |mean|`` of a channel,
whether the model counted an overflow, and how many layers saw a finite input (after an
overflow the later layers see NaN; the maxima are over the finite ones).

Inputs: fno-burgers, the first test function (band-limited) resampled by trigonometric
interpolation to ``2**13 .. 2**17`` points; fno-darcy, the first test permeability, thresholded
from its random field on ``n + 1`` nodes per side and taken on the periodic ``n x n`` grid,
``n = 64 .. 512`` (no solve is needed: only the input enters the FFTs).

``--input-scale S`` multiplies the input channel by ``S``, in training and in the evaluations
(targets unchanged): the same operator learnt from fields of a larger magnitude, as data in
physical units rather than normalised ones would give (fno-darcy's channel is the permeability
mapped to ``{-1, +1}``; Li et al.'s raw values are 3 and 12). ``S = 1`` is the problems' own
data. At ``S = 1`` the unstabilised models' channel means stay near 1, so their zero modes pass
65504 only on grids of more than 65504 points, where tanh guarantees nothing either
(RESULTS.md); a larger ``S`` moves ``M`` and the channel means up, so ``N M > 65504`` can hold
on a grid of ``N <= 65504`` points, where tanh's ``|v| <= 1`` keeps the forward FFT finite.

Run:  PYTHONPATH=. python experiments/fno_overflow_margin.py [--problems fno-burgers fno-darcy]
      [--input-scale S] [--seed K]
Takes about five minutes on two CPU cores. Nothing is asserted; RESULTS.md records runs.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from mperror.models import FNO
from mperror.problems import get
from mperror.problems._base import generator
from mperror.problems.darcy import FIELD, periodic_subsample
from mperror.problems.fno_darcy import A_HIGH, A_LOW, TEST_SEED, TEST_STREAM, encode_permeability
from mperror.problems.grf import cosine_values_2d, neumann_2d
from mperror.train.summary import machine_name

FP16_MAX = 65504.0


def burgers_inputs(instance) -> dict[int, torch.Tensor]:
    """The stress-test function (a trigonometric interpolant) at 2**13 .. 2**17 points."""
    stress = instance.stress.double()
    spectrum = torch.fft.rfft(stress[:, 0], dim=-1)
    base = stress.shape[-1]
    return {
        n: (torch.fft.irfft(spectrum, n=n, dim=-1) * (n / base)).float().unsqueeze(1)
        for n in (2**13, 2**14, 2**15, 2**16, 2**17)
    }


def darcy_inputs(instance) -> dict[int, torch.Tensor]:
    """The first test permeability on the periodic n x n grid, n = 64 .. 512."""
    coefficients = neumann_2d(FIELD, 1, generator=generator(TEST_SEED, TEST_STREAM), zero_mean=True)
    inputs = {}
    for n in (64, 128, 256, 512):
        x = torch.linspace(0.0, 1.0, n + 1, dtype=torch.float64)
        a = torch.where(cosine_values_2d(coefficients, x) > 0, A_HIGH, A_LOW)
        inputs[n * n] = periodic_subsample(encode_permeability(a), n).float().unsqueeze(1)
    return inputs


def train(problem: str, mode: str, seed: int, input_scale: float):
    instance = get(problem).build("quick", seed=seed)
    instance.inputs *= input_scale
    for inputs, _ in instance.test.values():
        inputs *= input_scale
    instance.set_model_precision(mode)
    defaults = instance.defaults
    model = instance.model
    optimizer = torch.optim.Adam(model.parameters(), lr=defaults.lr, eps=defaults.adam_eps)
    for _ in range(defaults.iterations):
        optimizer.zero_grad()
        instance.loss(model).backward()
        optimizer.step()
    return instance


def fft_input_stats(model: FNO, x: torch.Tensor) -> tuple[float, float, bool, int, int]:
    """(max |v|, largest |channel mean|, overflowed, finite layers, layers) over the spectral
    convolutions' FFT inputs of one forward pass. The maxima are over the layers whose input
    was finite: after an overflow the later layers see NaN, and a NaN must not hide (or, by
    ``max``'s argument order, replace) the finite layers' values."""
    seen: list[tuple[float, float]] = []

    def hook(layer, args) -> None:
        v, precision = args
        v = torch.tanh(v) if precision.tanh else v
        dims = tuple(range(2, v.dim()))
        seen.append((float(v.abs().amax()), float(v.mean(dims).abs().amax())))

    handles = [layer.register_forward_pre_hook(hook) for layer in model.spectral]
    before = model.overflow_events
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    finite = [(m, c) for m, c in seen if math.isfinite(m) and math.isfinite(c)]
    m = max((m for m, _ in finite), default=math.nan)
    c = max((c for _, c in finite), default=math.nan)
    return m, c, model.overflow_events > before, len(finite), len(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", nargs="+", default=["fno-burgers", "fno-darcy"])
    parser.add_argument("--modes", nargs="+", default=["half", "half+tanh"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input-scale", type=float, default=1.0)
    args = parser.parse_args()
    if not args.input_scale > 0 or args.input_scale == float("inf"):
        raise SystemExit(f"--input-scale: a finite number > 0, got {args.input_scale}")
    print(
        f"CPU: {machine_name('cpu')}; torch {torch.__version__}; threads {torch.get_num_threads()}"
        f"; input scale {args.input_scale:g}"
    )
    makers = {"fno-burgers": burgers_inputs, "fno-darcy": darcy_inputs}
    for problem in args.problems:
        if problem not in makers:
            raise SystemExit(f"--problems: one of {', '.join(makers)}, got {problem!r}")
    for problem in args.problems:
        for mode in args.modes:
            start = time.perf_counter()
            instance = train(problem, mode, args.seed, args.input_scale)
            model = instance.model
            events = model.overflow_events  # before test_error's forward pass can add to it
            print(
                f"\n{problem} {mode}: trained in {time.perf_counter() - start:.0f} s, "
                f"{events} overflow events in training, test error "
                f"{instance.test_error(model):.3e} (its own mode, training resolution)",
                flush=True,
            )
            print(f"  {'N':>7s} {'M':>6s} {'N M':>9s} {'N |mean|':>9s}  overflow  finite layers")
            for n, x in makers[problem](instance).items():
                m, mean, overflowed, finite, layers = fft_input_stats(model, x * args.input_scale)
                print(
                    f"  {n:7d} {m:6.3f} {n * m:9.0f} {n * mean:9.0f}  "
                    f"{'yes' if overflowed else 'no ':3s}       {finite}/{layers}"
                    + ("   (N M > 65504)" if n * m > FP16_MAX else ""),
                    flush=True,
                )


if __name__ == "__main__":
    main()
