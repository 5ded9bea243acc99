"""What a finished run amounts to: one frozen record read by the report and written as JSON."""

from __future__ import annotations

import math
import platform
import re
from dataclasses import MISSING, dataclass, field, fields

import numpy as np
import torch

from mperror import bounds
from mperror._checks import is_real
from mperror._records import Record
from mperror.train.config import RunConfig
from mperror.train.precision import Precision
from mperror.train.trace import Trace

__all__ = ["CRITICAL_WINDOW", "RunSummary", "machine_name", "summarise"]

#: Consecutive critical-zone steps that count as the gradient *entering* Theorem 1's critical
#: zone: secant estimates of L are noisy, and a single step below the line is not an entry.
CRITICAL_WINDOW = 10
_MARKS = (100, 1000, 10_000)


def _finite(values: list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]


def _nanmin(values: list[float]) -> float:
    finite = _finite(values)
    return float(finite.min()) if finite.size else math.nan


def _nanmean(values: np.ndarray) -> float:
    measured = values[~np.isnan(values)]
    return float(measured.mean()) if measured.size else math.nan


def delta_comparisons(trace: Trace) -> tuple[int, int]:
    """``(made, held)``: the steps whose gradient was compared with float32's where Theorem 1's
    ``delta`` was defined (a finite secant ``L``), and those where ``||g~ - g|| <= delta``; a
    non-finite ``||g~ - g||`` (an overflowed or NaN gradient) is a comparison that failed."""
    made = held = 0
    for error, delta in zip(trace["grad_error"], trace["delta"], strict=True):
        if not math.isnan(delta):
            made += 1
            held += error <= delta  # False for NaN
    return made, held


def _last(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return finite[-1] if finite else math.nan


@dataclass(frozen=True, kw_only=True)
class RunSummary(Record):
    """The numbers a run is judged by.

    Attributes:
        run_id, problem, policy, seed, size, device, backend: what ran, where.
        steps: steps completed (fewer than ``iterations`` when the run diverged early).
        diverged: the weights became non-finite (at any step, the last one included).
        nonfinite_steps: steps whose loss or gradient was inf/NaN.
        skipped_steps: steps GradScaler skipped.
        final_loss, min_loss: the last and the smallest finite training loss.
        final_test_error, best_test_error: the test error of the weights training ended with,
            after the last step (NaN for a diverged run: they are not finite), and the smallest
            one evaluated (the trace's evaluations, step 0 included, and that final one; for a
            diverged run, the best before it diverged, which the report's claims count as an
            infinite error).
        unchanged_final: mean share of weights unchanged per step over the last tenth of the run
            (the statistic Hayford et al. report as 97% for pure float16 at 10,000 steps).
        unchanged_at: that share at steps 100, 1,000, 10,000 (those the run reached), each the
            mean over the ten steps ending there.
        lost_final: mean share of all weights whose nonzero update was lost, last tenth (steps
            GradScaler skipped requested no update and are left out).
        theta_norm_initial, theta_norm_final: the weight norm before the first step and after
            the last (NaN for a diverged run).
        critical_entry_step: first step of :data:`CRITICAL_WINDOW` consecutive steps in Theorem
            1's critical zone (``None`` if never); ``critical_steps``: steps in it.
        test_error_at_entry: the test error at the last evaluation at or before that step.
        cosine_checks, cosine_bound_holds: gradient comparisons with a bound (a finite secant
            ``L``), and those where the observed ``1 - cos`` was within ``2 delta / (g +
            delta)`` (non-vacuous ones only counted in ``cosine_nonvacuous``); a comparison
            without a cosine (the run's gradient zero or not finite) did not hold.
        delta_holds: comparisons where ``||g~ - g|| <= delta = u L ||theta||`` (of those
            :func:`delta_comparisons` counts).
        seconds_per_step: mean training seconds per step.
        peak_memory: bytes. CUDA: the peak of this run's training work. CPU: the process-wide
            peak resident set size since the process started (``ru_maxrss``), so a run later
            in a study records the largest peak of the runs before it too: not a per-run
            number, and not comparable between runs (the report reads memory on CUDA only).
        torch_version, device_name: the software and hardware.
        model_precision: the model's own precision mode (``RunConfig.model_precision``).
        extra: the problem's own final metrics (``final_metrics`` of the problem instance, e.g.
            an FNO's test error at 2x and 4x resolution and its overflow count); empty for most.
    """

    run_id: str
    problem: str
    policy: str
    seed: int
    size: str
    device: str
    backend: str
    iterations: int
    steps: int
    diverged: bool
    nonfinite_steps: int
    skipped_steps: int
    final_loss: float
    min_loss: float
    final_test_error: float
    best_test_error: float
    unchanged_final: float
    unchanged_at: dict[int, float]
    lost_final: float
    theta_norm_initial: float
    theta_norm_final: float
    critical_entry_step: int | None
    critical_steps: int
    test_error_at_entry: float | None
    cosine_checks: int
    cosine_nonvacuous: int
    cosine_bound_holds: int
    delta_holds: int
    seconds_per_step: float
    peak_memory: float
    torch_version: str
    device_name: str
    model_precision: str | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The policy, and the model's own precision where it has one: ``"fp32/half+tanh"``."""
        if self.model_precision is None:
            return self.policy
        return f"{self.policy}/{self.model_precision}"

    @classmethod
    def from_dict(cls, data: dict) -> RunSummary:
        """The summary ``to_dict`` wrote (JSON keys of ``unchanged_at`` back to ints).

        Every field is checked against its type (a number where a float is due, NaN and inf
        included; an int, not a bool or a string, where an int is); a ValueError names the
        first field that is missing, unknown or of another type, and what it must be.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a summary must be a JSON object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown summary fields {unknown}")
        required = (n for n, f in known.items() if f.default is MISSING)
        missing = [n for n in required if n not in data and known[n].default_factory is MISSING]
        if missing:
            raise ValueError(f"summary fields {missing} are missing")
        data = {name: _checked(name, value, known[name].type) for name, value in data.items()}
        return cls(**data)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: What a summary field of each annotated type holds in JSON: (test, what it must be).
_KINDS = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "int": (lambda v: _integer(v) and v >= 0, "an int >= 0"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "float": (is_real, "a number"),
    "str | None": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "int | None": (lambda v: v is None or (_integer(v) and v >= 0), "an int >= 0 or null"),
    "float | None": (lambda v: v is None or is_real(v), "a number or null"),
}


def _checked(name: str, value: object, annotation: str) -> object:
    """``value`` of summary field ``name`` if it is of type ``annotation`` (``unchanged_at``'s
    JSON keys made ints again), else a ValueError naming the field and what it must be."""
    if annotation in _KINDS:
        test, kind = _KINDS[annotation]
        if not test(value):
            raise ValueError(f"field {name!r} must be {kind}, got {value!r}")
        return value
    key_type = {"dict[int, float]": "int", "dict[str, float]": "str"}[annotation]
    if not isinstance(value, dict):
        raise ValueError(f"field {name!r} must be a JSON object, got {value!r}")
    bad = next(((k, v) for k, v in value.items() if not is_real(v)), None)
    if bad is not None:
        raise ValueError(f"field {name!r} must map to numbers, got {bad[0]!r}: {bad[1]!r}")
    if key_type == "str":
        return dict(value)
    bad_key = next((k for k in value if not re.fullmatch(r"[0-9]+", k)), None)
    if bad_key is not None:
        raise ValueError(f"field {name!r} must have step numbers as keys, got {bad_key!r}")
    return {int(k): v for k, v in value.items()}


def machine_name(device: str) -> str:
    """The GPU's name, or the CPU model (``/proc/cpuinfo`` on Linux, where
    ``platform.processor()`` is usually empty)."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def summarise(
    cfg: RunConfig,
    precision: Precision,
    trace: Trace,
    *,
    run_id: str,
    diverged: bool,
    final: tuple[float, float] | None = None,
    extra: dict[str, float] | None = None,
) -> RunSummary:
    """The :class:`RunSummary` of a run's trace (``run_id``: the requested config's;
    ``diverged``: the weights became non-finite; ``final``: the test error and weight norm of
    the weights training ended with, after the last step, which no trace row measures (``None``:
    the last row's, a step earlier); ``extra``: the problem's final metrics)."""
    steps = len(trace)
    unchanged = np.asarray(trace["unchanged_fraction"], dtype=np.float64)
    lost = np.asarray(trace["lost_fraction"], dtype=np.float64)
    tail = max(1, steps // 10)
    check = (
        bounds.check_descent(
            trace["grad_norm"],
            trace["lipschitz"],
            trace["theta_norm"],
            trace["loss"],
            precision.fmt,
            window=CRITICAL_WINDOW,
        )
        if steps
        else None
    )
    entry = check.entry_step if check else None
    test = trace["test_error"]
    at_entry = None
    if entry is not None:
        at_entry = _last(test[: entry + 1])
    cos, cos_bound = trace["cosine_distance"], trace["cosine_bound"]
    # A comparison with a bound but no cosine (the run's gradient was zero or not finite) is a
    # check that failed, as delta_comparisons counts it: NaN <= b is False.
    pairs = [(c, b) for c, b in zip(cos, cos_bound, strict=True) if not math.isnan(b)]
    nonvacuous = [(c, b) for c, b in pairs if b < 2.0]
    return RunSummary(
        run_id=run_id,
        problem=cfg.problem,
        policy=cfg.policy,
        seed=cfg.seed,
        size=cfg.size,
        device=cfg.device,
        backend=cfg.backend,
        iterations=int(cfg.iterations or 0),
        steps=steps,
        diverged=diverged,
        nonfinite_steps=int(np.nansum(trace["nonfinite"])),
        skipped_steps=int(np.nansum(trace["skipped"])),
        final_loss=_last([v if math.isfinite(v) else math.nan for v in trace["loss"]]),
        min_loss=_nanmin(trace["loss"]),
        final_test_error=math.nan if diverged else (_last(test) if final is None else final[0]),
        best_test_error=_nanmin([*test, math.nan if final is None else final[0]]),
        unchanged_final=float(unchanged[-tail:].mean()) if steps else math.nan,
        unchanged_at={m: float(unchanged[m - 10 : m].mean()) for m in _MARKS if steps >= m},
        lost_final=_nanmean(lost[-tail:]),
        theta_norm_initial=trace["theta_norm"][0] if steps else math.nan,
        theta_norm_final=(
            math.nan
            if diverged or not steps
            else (trace["theta_norm"][-1] if final is None else final[1])
        ),
        critical_entry_step=entry,
        critical_steps=sum(r is bounds.Regime.CRITICAL_ZONE for r in check.regime) if check else 0,
        test_error_at_entry=at_entry,
        cosine_checks=len(pairs),
        cosine_nonvacuous=len(nonvacuous),
        cosine_bound_holds=sum(c <= b for c, b in nonvacuous),
        delta_holds=delta_comparisons(trace)[1],
        seconds_per_step=trace["seconds"][-1] / steps if steps else math.nan,
        peak_memory=max(trace["peak_memory"]) if steps else math.nan,
        torch_version=torch.__version__,
        device_name=machine_name(cfg.device),
        model_precision=cfg.model_precision,
        extra={str(k): float(v) for k, v in (extra or {}).items()},
    )
