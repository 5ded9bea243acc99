"""The one training loop: any problem, any precision policy, a full trace of every step.

The loop is full-batch Adam (torch's, or with Keras's epsilon: :mod:`mperror.train.optim`)
with the problem's loss. The policy (:mod:`mperror.train.precision`) decides where the weights
live and how the forward and backward passes round; everything else is shared, so two runs of a
study differ in the policy alone.

At every step ``k`` the trainer records (:mod:`mperror.train.trace`) the loss, the gradient and
weight norms, the secant estimate of ``L`` over the weight matrices (how Hayford et al. 2024
estimated it), Theorem 1's critical gradient norm, the share of weights whose update was lost,
non-finite and skipped steps, time and memory; every ``cosine_every`` steps it also compares the
run's gradient ``g~`` with the float32 gradient ``g`` at the same weights (cosine distance,
``||g~ - g||`` and Theorem 1's ``delta``), and every ``eval_every`` steps the test error. Test
errors and reference gradients are computed by a float32 copy of the model holding the run's
current weights, so they measure what the weights learnt, not how the evaluation rounds.

A run whose weights become non-finite has diverged: it stops there, and the summary says so
(its final test error is NaN: the weights it ended with are not finite).
"""

from __future__ import annotations

import contextlib
import copy
import math
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch

import mperror.emulate
from mperror import bounds, problems
from mperror.lipschitz import SecantTracker
from mperror.train.config import RunConfig
from mperror.train.optim import make_optimizer
from mperror.train.precision import Precision, parse
from mperror.train.summary import RunSummary, summarise
from mperror.train.trace import Trace

__all__ = ["RunResult", "check_config", "initial_scale", "train"]


@dataclass(frozen=True)
class RunResult:
    """A finished run: the resolved config, its trace and its summary."""

    config: RunConfig
    trace: Trace
    summary: RunSummary


def initial_scale(loss0: float, fmt_max: float) -> float:
    """GradScaler's initial scale: ``2**floor(log2(fmt_max / (64 max(1, |loss0|))))``, at most
    ``2**16`` and at least 1 (see :class:`~mperror.train.config.RunConfig`).

    >>> initial_scale(0.5, 65504.0)  # 65504 / 64 = 1023.5 -> 2**9
    512.0
    """
    if not math.isfinite(loss0):
        return 1.0
    exponent = math.floor(math.log2(fmt_max / (64.0 * max(1.0, abs(loss0)))))
    return float(2.0 ** min(16, max(0, exponent)))


@contextlib.contextmanager
def _fp32_pinned(device: torch.device) -> Iterator[None]:
    """TF32 off on CUDA for the run (else the float32 baseline is not float32), then restored."""
    if device.type != "cuda":
        yield
        return
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _norm(tensors: list[torch.Tensor]) -> float:
    total = sum(float(torch.sum(t.detach().double() ** 2)) for t in tensors)
    return math.sqrt(total)


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().double().reshape(-1) for t in tensors])


def _peak_memory(device: torch.device) -> float:
    """CUDA: the allocator's peak since its last reset (the trainer resets it per step). CPU:
    the process's peak RSS since it started, process-wide (see ``RunSummary.peak_memory``)."""
    if device.type == "cuda":
        return float(torch.cuda.max_memory_allocated(device))
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is KiB on Linux, bytes on macOS
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale)


class _Float32Shadow:
    """A float32 copy of the model that evaluates the run's current weights."""

    def __init__(self, instance: problems.ProblemInstance, params: list[torch.Tensor]) -> None:
        self.instance = instance
        self.model = copy.deepcopy(instance.model).float()
        full = getattr(self.model, "full_precision_", None)
        if full is not None:  # a model with precision modes of its own: evaluate in full
            full()
        self.params = list(self.model.parameters())
        self.source = params

    @torch.no_grad()
    def sync(self) -> None:
        for mine, theirs in zip(self.params, self.source, strict=True):
            mine.copy_(theirs)

    def gradient(self) -> tuple[float, list[torch.Tensor]]:
        self.sync()
        loss = self.instance.loss(self.model)
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        return float(loss.detach()), [
            torch.zeros_like(p) if g is None else g for g, p in zip(grads, self.params, strict=True)
        ]

    def test_error(self) -> float:
        self.sync()
        return self.instance.test_error(self.model)


def _device(config: RunConfig) -> torch.device:
    """The device ``config`` trains on ("auto": CUDA when available)."""
    if config.device != "auto":
        return torch.device(config.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_config(config: RunConfig) -> None:
    """Raise ValueError unless ``config`` can train here: its device exists (CUDA is checked
    now, not when a config is made, so runs trained on a GPU can be read back and reported on a
    machine without one) and its problem accepts its policy on that device and its
    ``model_precision`` (through the problem's ``check_policy`` and ``check_model_precision``,
    where it has them), without building anything."""
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch.cuda.is_available() is False")
    problem = problems.get(config.problem)
    check_policy = getattr(problem, "check_policy", None)
    if check_policy is not None:
        device = _device(config)
        check_policy(parse(config.policy, backend=config.backend).resolve(device), device)
    if config.model_precision is None:
        return
    check = getattr(problem, "check_model_precision", None)
    if check is None:
        raise ValueError(
            f"model_precision is for problems whose model has precision modes (the FNO "
            f"problems); {config.problem!r} has none, so leave it None"
        )
    check(config.model_precision)


def train(
    config: RunConfig,
    *,
    progress: bool = False,
    checkpoint: Callable[[RunConfig, Trace], None] | None = None,
) -> RunResult:
    """Train ``config``'s problem under its policy and return the trace and summary.

    Args:
        config: the run (``None`` fields take the problem's defaults).
        progress: show a progress bar (tqdm, on stderr).
        checkpoint: called as ``checkpoint(resolved_config, trace)`` after every evaluation, so a
            caller can save the partial trace of a long run.
    """
    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig, got {type(config).__name__}")
    device = _device(config)
    check_config(config)  # a bad model precision fails before the data are built
    instance = problems.get(config.problem).build(config.size, seed=config.seed, device=device)
    cfg = config.resolved(instance.defaults)
    precision = parse(cfg.policy, backend=cfg.backend)
    with _fp32_pinned(device):
        trace, diverged, final, scale = _loop(
            cfg, precision, instance, device, progress, checkpoint
        )
        cfg = replace(cfg, init_scale=scale)  # the scale chosen, where one was
        metrics = getattr(instance, "final_metrics", None)
        extra = metrics(instance.model) if metrics is not None else {}
    summary = summarise(
        cfg, precision, trace, run_id=config.run_id, diverged=diverged, final=final, extra=extra
    )
    return RunResult(config=cfg, trace=trace, summary=summary)


class _NoBar:
    """What the training loops use of a tqdm bar, doing nothing."""

    def __init__(self, iterable: Any = None) -> None:
        self.iterable = () if iterable is None else iterable

    def __iter__(self) -> Any:
        return iter(self.iterable)

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm progress bar (on stderr), or a stand-in that shows nothing where tqdm is not
    installed (a machine without network may lack it; training needs no bar): then an
    enabled bar says once, on stderr, that it is not shown."""
    try:
        from tqdm.auto import tqdm  # imported here: only training shows progress bars
    except ImportError:
        global _SAID_NO_TQDM
        if not kwargs.get("disable", False) and not _SAID_NO_TQDM:
            print("tqdm is not installed: no progress bars", file=sys.stderr)
            _SAID_NO_TQDM = True
        return _NoBar(iterable)
    return tqdm(iterable, **kwargs)


_SAID_NO_TQDM = False


def _loop(
    cfg: RunConfig,
    precision: Precision,
    instance: problems.ProblemInstance,
    device: torch.device,
    progress: bool,
    checkpoint: Callable[[RunConfig, Trace], None] | None,
) -> tuple[Trace, bool, tuple[float, float], float | None]:
    """The trace, whether the weights became non-finite (training stops there), the test
    error and weight norm of the weights training ended with (after the last step; a trace row
    measures the weights its step starts from; both NaN for a diverged run), and GradScaler's
    initial scale (``None`` without a scaler)."""
    model = instance.model.to(precision.param_dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    matrices = [p for p in params if p.ndim >= 2]
    if cfg.model_precision is not None:
        instance.set_model_precision(cfg.model_precision)
    shadow = _Float32Shadow(instance, params)
    optimizer = make_optimizer(cfg.optimizer, params, lr=cfg.lr, eps=cfg.adam_eps)
    meter = mperror.emulate.LostUpdateMeter(params, precision.stores_weights)
    meter.store()
    tracker = SecantTracker(matrices)
    generator = torch.Generator(device).manual_seed(cfg.seed)
    scaler = scale = None
    if precision.grad_scaler:
        scale = cfg.init_scale or initial_scale(shadow.gradient()[0], precision.fmt.max)
        cfg = replace(cfg, init_scale=scale)  # what checkpoints see too
        scaler = torch.amp.GradScaler(device.type, init_scale=scale)
        # Create the scale tensor now, outside any emulation, which would round it to fmt.
        scaler.scale(torch.ones((), device=device))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    trace = Trace()
    diverged = False
    peak = 0.0
    seconds = 0.0
    bar = progress_bar(
        total=cfg.iterations, desc=f"{cfg.problem} {cfg.policy}", disable=not progress, leave=False
    )
    try:
        on_step = getattr(instance, "on_step", None)  # precision schedules follow training
        for k in range(cfg.iterations):
            if on_step is not None:
                on_step(k / cfg.iterations)
            cuda = device.type == "cuda"
            if cuda:  # the peak of the training work alone, not of the float32 shadow's
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with precision.compute(device, generator):
                loss = instance.loss(model)
                if precision.backend == "emulated":  # backward is emulated too
                    (scaler.scale(loss) if scaler else loss).backward()
            if precision.backend != "emulated":  # torch: backward outside autocast
                (scaler.scale(loss) if scaler else loss).backward()
            if scaler:
                scaler.unscale_(optimizer)
            if cuda:
                torch.cuda.synchronize(device)
                peak = max(peak, _peak_memory(device))
            seconds += time.perf_counter() - start  # the measurements below are not training
            grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
            loss_value = float(loss.detach())
            grad_norm = _norm(grads)
            theta_norm = _norm(params)
            secant = tracker.update([p.grad for p in matrices])
            lipschitz = secant.value if secant.value is not None else math.nan
            row = {
                "step": k,
                "loss": loss_value,
                "grad_norm": grad_norm,
                "theta_norm": theta_norm,
                "lipschitz": lipschitz,
                "nonfinite": float(not (math.isfinite(loss_value) and math.isfinite(grad_norm))),
                "loss_scale": scaler.get_scale() if scaler else 1.0,
            }
            if math.isfinite(lipschitz):
                row["critical_norm"] = bounds.critical_gradient_norm(
                    lipschitz, theta_norm, precision.fmt
                )
            last = k == cfg.iterations - 1
            if k % cfg.cosine_every == 0 or last:
                row.update(_compare_gradients(shadow, grads, lipschitz, theta_norm, precision))
            if k % cfg.eval_every == 0 or last:
                row["test_error"] = shadow.test_error()

            held = torch.cuda.memory_allocated(device) if cuda else 0
            with meter.step():
                # Timed and measured inside the meter: its snapshot of the weights (and, after
                # the step, its comparisons) are measurements, not training.
                if cuda:  # nor is the shadow's float32 forward and backward the run's memory
                    torch.cuda.synchronize(device)
                    torch.cuda.reset_peak_memory_stats(device)
                    snapshot = torch.cuda.memory_allocated(device) - held
                start = time.perf_counter()
                if scaler:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                if cuda:
                    torch.cuda.synchronize(device)
                    peak = max(peak, _peak_memory(device) - snapshot)
                seconds += time.perf_counter() - start
            seconds += meter.store_seconds  # a pure emulated run's weights, into their format
            skipped = bool(scaler) and scaler.get_scale() < row["loss_scale"]
            if scaler:
                row["skipped"] = float(skipped)
            # A skipped step requested no update, so none was lost (NaN: not measured).
            row["lost_fraction"] = math.nan if skipped else meter.last.fraction
            row["unchanged_fraction"] = meter.last.unchanged_fraction
            row["seconds"] = seconds
            if not cuda:  # process-wide peak RSS: nothing to separate
                peak = max(peak, _peak_memory(device))
            row["peak_memory"] = peak
            trace.append(row)
            bar.update(1)
            if progress and k % cfg.eval_every == 0:
                bar.set_postfix(loss=f"{loss_value:.3g}")
            if checkpoint is not None and (k % cfg.eval_every == 0 or last):
                checkpoint(cfg, trace)
            if not all(bool(torch.isfinite(p).all()) for p in params):
                diverged = True  # the weights are no longer finite: no step can follow
                break
    finally:
        bar.close()
    final = (math.nan, math.nan) if diverged else (shadow.test_error(), _norm(params))
    return trace, diverged, final, scale


def _compare_gradients(
    shadow: _Float32Shadow,
    grads: list[torch.Tensor],
    lipschitz: float,
    theta_norm: float,
    precision: Precision,
) -> dict[str, float]:
    """The run's gradient ``g~`` against the float32 gradient ``g`` at the same weights."""
    _, reference = shadow.gradient()
    g_run, g_ref = _flat(grads), _flat(reference)
    ref_norm = float(torch.linalg.vector_norm(g_ref))
    run_norm = float(torch.linalg.vector_norm(g_run))
    row = {"fp32_grad_norm": ref_norm, "grad_error": float(torch.linalg.vector_norm(g_run - g_ref))}
    if ref_norm > 0 and run_norm > 0 and math.isfinite(run_norm):
        row["cosine_distance"] = 1.0 - float(g_run @ g_ref) / (run_norm * ref_norm)
    if math.isfinite(lipschitz):
        delta = bounds.gradient_perturbation(lipschitz, theta_norm, precision.fmt)
        row["delta"] = delta
        if math.isfinite(ref_norm) and math.isfinite(delta):  # else no bound: NaN in the trace
            row["cosine_bound"] = bounds.cosine_distance_bound(ref_norm, delta).bound
    return row
