"""The verification report: a Markdown page with figures, and the same content as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from mperror._records import plain
from mperror.report.claims import Claim, evaluate
from mperror.report.figures import draw_all
from mperror.train.store import StoredRun, write_atomic

__all__ = ["write_report"]

_VERDICT = {True: "holds", False: "does not hold", None: "undecided"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _runs_table(runs: Sequence[StoredRun]) -> list[str]:
    lines = [
        "| run | backend | steps | best test error | final test error | unchanged (last 10%) "
        "| nonfinite / skipped | ms/step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        s = r.summary
        lines.append(
            f"| {s.run_id} | {s.backend} | {s.steps}{' (diverged)' if s.diverged else ''} "
            f"| {s.best_test_error:.3e} | {s.final_test_error:.3e} | {s.unchanged_final:.1%} "
            f"| {s.nonfinite_steps} / {s.skipped_steps} | {s.seconds_per_step * 1e3:.2f} |"
        )
    return lines


def _markdown(
    claims: Sequence[Claim],
    runs: Sequence[StoredRun],
    figures: dict[str, Path],
    extra: Sequence[Claim],
    header: dict,
) -> str:
    lines = [
        "# mperror claims report",
        "",
        f"Setting: **{header['setting']}**, device **{header['device']}** "
        f"({header['device_name']}), trained with torch {header['torch']} (this report: "
        f"torch {header['report_torch']}).",
        "",
        "Each claim is judged by a criterion fixed in `mperror/report/claims.py` before the "
        "runs, with two later additions made after seeing runs (error ratios compare medians "
        "over the seeds run in both precisions; fp16-fails counts only seeds where float32 "
        "trained: see the README); a claim that does not hold here is a finding about this "
        "machine and setting.",
        "",
        "| claim | paper | measured | criterion | verdict |",
        "|---|---|---|---|---|",
    ]
    for c in (*claims, *extra):
        lines.append(
            f"| **{c.id}**: {_cell(c.claim)} ({c.source}) | {_cell(c.paper)} "
            f"| {_cell(c.measured)} | {_cell(c.criterion)} | {_VERDICT[c.holds]} |"
        )
    notes = [c for c in (*claims, *extra) if c.note]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- **{c.id}**: {c.note}" for c in notes]
    lines += ["", "## Runs", "", *_runs_table(runs), ""]
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{name}]({path.name})" for name, path in figures.items()]
        lines.append("")
    return "\n".join(lines)


def write_report(
    runs: Sequence[StoredRun],
    directory: str | Path,
    *,
    setting: str,
    extra: Sequence[Claim] = (),
    extra_figures: Mapping[str, Path] | None = None,
) -> list[Claim]:
    """Judge the claims from ``runs`` and write ``report.md``, ``report.json`` and figures.

    Args:
        runs: the stored runs.
        directory: where the report goes (figures beside it).
        setting: ``"quick"`` or ``"full"``, printed in the header.
        extra: claims judged elsewhere (e.g. the FNO bounds), appended to the table.
        extra_figures: their figures (name -> a PNG in ``directory``), shown after the others.

    Returns every claim, ``extra`` included.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    claims = evaluate(runs)
    figures = {**draw_all(runs, directory), **(extra_figures or {})}
    devices = sorted({r.summary.device for r in runs}) or ["cpu"]
    names = sorted({r.summary.device_name for r in runs}) or ["-"]
    header = {
        "setting": setting,
        "device": ", ".join(devices),
        "device_name": ", ".join(names),
        # The runs' torch (what trained them), and the one judging them now.
        "torch": ", ".join(sorted({r.summary.torch_version for r in runs})) or "-",
        "report_torch": torch.__version__,
    }
    write_atomic(directory / "report.md", _markdown(claims, runs, figures, extra, header))
    payload = {
        **header,
        "claims": [c.to_dict() for c in (*claims, *extra)],
        "runs": [r.summary.to_dict() for r in runs],
        "figures": {k: v.name for k, v in figures.items()},
    }
    text = json.dumps(plain(payload), indent=2)  # NaN stays NaN (JSON5-style), as in runs
    write_atomic(directory / "report.json", text + "\n")
    return [*claims, *extra]
