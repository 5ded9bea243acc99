"""The per-step record of a training run, and its CSV form.

One row per optimizer step ``k``; every quantity is measured at the weights ``theta_k`` the step
starts from. Columns that are measured only every few steps hold NaN elsewhere.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable

__all__ = ["COLUMNS", "Trace"]

#: The trace's columns, in CSV order, with what each holds.
COLUMNS: dict[str, str] = {
    "step": "optimizer step k, from 0",
    "loss": "training loss at theta_k, as the policy computed it",
    "test_error": "relative L2 test error of theta_k evaluated in float32 (every eval_every)",
    "grad_norm": "||g~_k||: the run's own gradient (unscaled), float64 norm over all parameters",
    "theta_norm": "||theta_k|| over all parameters",
    "lipschitz": "secant L_k = ||g_k - g_(k-1)|| / ||theta_k - theta_(k-1)|| (weight matrices)",
    "critical_norm": "Theorem 1's (4 + 3 sqrt 2) u L_k ||theta_k||, u of the policy's format",
    "fp32_grad_norm": "||g_k||: the float32 gradient at the same weights (every cosine_every)",
    "cosine_distance": "1 - cos(g~_k, g_k) (every cosine_every)",
    "cosine_bound": "2 delta / (g + delta), delta = u L_k ||theta_k|| (every cosine_every)",
    "grad_error": "||g~_k - g_k|| (every cosine_every)",
    "delta": "u L_k ||theta_k||, Theorem 1's perturbation bound (every cosine_every)",
    "lost_fraction": "share of all weights whose nonzero update was lost (NaN if skipped)",
    "unchanged_fraction": "share of all weights that did not change in step k",
    "nonfinite": "1 if the loss or a gradient was inf or NaN",
    "skipped": "1 if GradScaler skipped the step",
    "loss_scale": "GradScaler's scale used for step k (1 without a scaler)",
    "seconds": "cumulative seconds of the training steps (evaluation and measurement excluded)",
    # CUDA: the largest torch.cuda.max_memory_allocated of the training work so far (forward,
    # backward, optimizer step), without the float32 shadow's evaluations. CPU: ru_maxrss, the
    # process's peak resident set size since it started, which holds every earlier run of the
    # process and the shadow: no per-run number (resetting the kernel's counter would change
    # the state of the caller's process).
    "peak_memory": "bytes: CUDA peak of this run's training work (no shadow); CPU: the "
    "process-wide peak RSS since the process started (earlier runs of a study included)",
}


class Trace:
    """Columns of equal length, one value per step (floats; NaN where not measured)."""

    def __init__(self, columns: Iterable[str] = COLUMNS) -> None:
        self.columns: dict[str, list[float]] = {name: [] for name in columns}

    def append(self, row: dict[str, float]) -> None:
        """Add one step; a missing column is NaN, an unknown one is refused."""
        unknown = set(row) - set(self.columns)
        if unknown:
            raise ValueError(f"unknown trace columns {sorted(unknown)}")
        for name, values in self.columns.items():
            values.append(float(row.get(name, math.nan)))

    def __len__(self) -> int:
        return len(self.columns["step"])

    def __getitem__(self, name: str) -> list[float]:
        return self.columns[name]

    def to_csv(self) -> str:
        """The trace as CSV text (``repr`` floats, so reading it back is exact)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        for row in zip(*self.columns.values(), strict=True):
            writer.writerow(repr(v) for v in row)
        return out.getvalue()

    @classmethod
    def from_csv(cls, text: str) -> Trace:
        """The trace :meth:`to_csv` wrote."""
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if header is None:
            raise ValueError("the trace is empty (no header row)")
        trace = cls(header)
        for row in reader:
            trace.append({name: float(v) for name, v in zip(header, row, strict=True)})
        return trace
