"""Bound-versus-observed figures drawn from stored runs (matplotlib, PNG).

Each function reads the same traces and summaries the claims are judged from
(:mod:`mperror.report.claims`), so a figure cannot disagree with the report's table.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mperror.report.claims import CRITICAL_ZONE_RUNS
from mperror.train.store import StoredRun

__all__ = ["draw_all", "mixed_panels"]

#: Runs per figure of one panel per run (critical zone, cosine).
PANELS = 3


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _xy(run: StoredRun, column: str) -> tuple[np.ndarray, np.ndarray]:
    steps = np.asarray(run.trace["step"])
    values = np.asarray(run.trace[column], dtype=np.float64)
    keep = np.isfinite(values)
    return steps[keep], values[keep]


def _label(run: StoredRun) -> str:
    return f"{run.summary.label} (seed {run.summary.seed})"


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    save_figure(fig, path)
    _pyplot().close(fig)
    return path


def save_figure(fig, path: Path) -> None:
    """``fig.savefig(path)`` through a temporary file and an atomic rename, so that an
    interrupted report leaves the old figure or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")  # the suffix picks the file type
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def critical_zone(runs: Sequence[StoredRun], path: Path) -> Path:
    """||grad L|| against Theorem 1's (4 + 3 sqrt 2) u L ||theta||, one panel per run."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.6), squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        ax.semilogy(*_xy(run, "grad_norm"), lw=0.8, label="||grad L||")
        ax.semilogy(*_xy(run, "critical_norm"), lw=0.8, label="(4+3√2) u L ||θ||")
        entry = run.summary.critical_entry_step
        if entry is not None:
            ax.axvline(entry, color="k", ls="--", lw=0.8, label=f"critical zone from {entry}")
        ax.set_title(f"{run.summary.problem}: {_label(run)}", fontsize=9)
        ax.set_xlabel("iteration")
        ax.legend(fontsize=7)
    return _save(fig, path)


def cosine(runs: Sequence[StoredRun], path: Path) -> Path:
    """Observed 1 - cos(g~, g) against its bound 2 delta / (g + delta) (2, the trivial bound,
    where delta > g), one panel per run. A check with a bound but no finite observation (the
    summary counts it as failed) is drawn as a red cross on the bound."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.6), squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        x, y = _xy(run, "cosine_distance")
        ax.semilogy(x, np.maximum(y, 1e-17), "o", ms=3, label="observed 1 - cos")
        ax.semilogy(*_xy(run, "cosine_bound"), "-", lw=0.8, label="2δ/(g+δ), 2 where δ > g")
        steps = np.asarray(run.trace["step"])
        bound = np.asarray(run.trace["cosine_bound"], dtype=np.float64)
        observed = np.asarray(run.trace["cosine_distance"], dtype=np.float64)
        failed = np.isfinite(bound) & ~np.isfinite(observed)
        if failed.any():
            label = f"no finite observation ({int(failed.sum())}, failed)"
            ax.semilogy(steps[failed], bound[failed], "x", color="red", ms=6, label=label)
        ax.set_title(f"{run.summary.problem}: {_label(run)}", fontsize=9)
        ax.set_xlabel("iteration")
        ax.legend(fontsize=7)
    return _save(fig, path)


def _running_mean(y: np.ndarray, width: int) -> np.ndarray:
    """The mean over a centred window of ``width`` steps, the window cut short at both ends
    (not padded with zeros, which would draw a constant as falling at the ends)."""
    window = np.ones(width)
    return np.convolve(y, window, mode="same") / np.convolve(np.ones_like(y), window, mode="same")


def _per_problem(runs: Sequence[StoredRun], column: str, path: Path, ylabel: str, log: bool):
    plt = _pyplot()
    problems = sorted({r.summary.problem for r in runs})
    fig, axes = plt.subplots(1, len(problems), figsize=(4.5 * len(problems), 3.4), squeeze=False)
    for ax, problem in zip(axes[0], problems, strict=True):
        for run in (r for r in runs if r.summary.problem == problem):
            x, y = _xy(run, column)
            if column == "unchanged_fraction" and len(y) > 20:  # a running mean reads better
                y = _running_mean(y, max(1, len(y) // 50))
            line = (ax.semilogy if log else ax.plot)(x, y, lw=0.8, label=_label(run))[0]
            final = run.summary.final_test_error
            if column == "test_error" and math.isfinite(final):
                # measured after the last step (the trace's rows measure each step's start):
                # the value the table and the claims use
                ax.plot([run.summary.steps], [final], "o", ms=4, color=line.get_color())
        ax.set_title(problem, fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    return _save(fig, path)


def mixed_panels(runs: Sequence[StoredRun]) -> tuple[list[StoredRun], list[StoredRun]]:
    """The runs the critical-zone and the cosine figure draw, at most :data:`PANELS` each.

    Both prefer the runs diffusion.critical-zone judges (:data:`CRITICAL_ZONE_RUNS`), by seed,
    then the other mixed-fp16 runs, then the other mixed runs, each by problem, label and seed:
    the figures show the claim's runs whatever the order of the directories (``mixed-bf16``
    sorts before ``mixed-fp16``). Without the claim's runs, the critical-zone figure draws the
    first mixed run of that order; the cosine figure draws runs that compared gradients.
    """
    mixed = sorted(
        (r for r in runs if r.summary.policy.startswith("mixed")),
        key=lambda r: (
            (r.summary.problem, r.summary.label) != CRITICAL_ZONE_RUNS,
            r.summary.label != CRITICAL_ZONE_RUNS[1],
            r.summary.problem,
            r.summary.label,
            r.summary.seed,
        ),
    )
    judged = [r for r in mixed if (r.summary.problem, r.summary.label) == CRITICAL_ZONE_RUNS]
    zone = (judged or mixed[:1])[:PANELS]
    checked = [r for r in mixed if any(not math.isnan(v) for v in r.trace["cosine_bound"])]
    return zone, checked[:PANELS]


def draw_all(runs: Sequence[StoredRun], directory: str | Path) -> dict[str, Path]:
    """Draw every figure that ``runs`` allow into ``directory``; returns name -> path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    runs = [r for r in runs if len(r.trace)]
    out: dict[str, Path] = {}
    if not runs:
        return out
    out["loss"] = _per_problem(runs, "loss", directory / "loss.png", "training loss", True)
    out["test_error"] = _per_problem(
        runs,
        "test_error",
        directory / "test_error.png",
        "relative L2 test error (dot: after the last step)",
        True,
    )
    out["frozen"] = _per_problem(
        runs, "unchanged_fraction", directory / "frozen.png", "share of weights unchanged", False
    )
    out["lipschitz"] = _per_problem(
        runs, "lipschitz", directory / "lipschitz.png", "secant L estimate", True
    )
    zone, checked = mixed_panels(runs)
    if zone:
        out["critical_zone"] = critical_zone(zone, directory / "critical_zone.png")
    if checked:
        out["cosine"] = cosine(checked, directory / "cosine.png")
    return out
