"""The verification report: a Markdown page with figures, and the same content as JSON."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from mperror import problems
from mperror._records import plain
from mperror.report.claims import Claim, evaluate
from mperror.report.figures import draw_all
from mperror.train.store import StoredRun, write_atomic

__all__ = ["write_report"]

_VERDICT = {True: "holds", False: "does not hold", None: "undecided"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _overrides(runs: Sequence[StoredRun]) -> dict[str, dict[str, object]]:
    """Per problem, the training settings its runs used in place of their size's defaults
    (``--iterations`` and the like): ``{"regression": {"iterations": 3}}``."""
    out: dict[str, dict[str, object]] = {}
    for run in runs:
        defaults = problems.get(run.config.problem).defaults(run.config.size)
        changed = {
            f.name: getattr(run.config, f.name)
            for f in dataclasses.fields(defaults)
            if getattr(run.config, f.name) != getattr(defaults, f.name)
        }
        if changed:
            out.setdefault(run.summary.problem, {}).update(changed)
    return out


def _setting_text(setting: str, overrides: Mapping[str, Mapping[str, object]]) -> str:
    """``quick``, or ``quick, overridden: regression iterations 3`` where runs did not use
    their size's defaults."""
    if not overrides:
        return setting
    changed = "; ".join(
        f"{problem} " + ", ".join(f"{k} {v}" for k, v in fields.items())
        for problem, fields in sorted(overrides.items())
    )
    return f"{setting}, overridden: {changed}"


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
    unfinished: Mapping[str, str],
) -> str:
    lines = [
        "# mperror claims report",
        "",
        f"Setting: **{_setting_text(header['setting'], header['overrides'])}**, device "
        f"**{header['device']}** "
        f"({header['device_name']}), trained with torch {header['torch']} (this report: "
        f"torch {header['report_torch']}).",
        "",
        "Each claim is judged by a criterion fixed in `mperror/report/claims.py` before the "
        "runs, with later additions made after seeing runs (error ratios compare medians "
        "over the seeds run in both precisions; the error claims count only seeds where "
        "float32 trained, a diverged mixed run as infinitely far off, and a run too short to "
        "tell leaves its claim undecided: see the README); a claim that does not hold here is a "
        "finding about this machine and setting.",
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
    if unfinished:
        lines += ["## Unfinished runs", "", "Not finished, so not judged above:", ""]
        lines += [f"- {name}: {state}" for name, state in unfinished.items()]
        lines.append("")
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
    unfinished: Mapping[str, str] | None = None,
) -> list[Claim]:
    """Judge the claims from ``runs`` and write ``report.md``, ``report.json`` and figures.

    Args:
        runs: the stored runs.
        directory: where the report goes (figures beside it).
        setting: ``"quick"`` or ``"full"``, printed in the header with the settings runs used
            in place of their size's defaults (``--iterations``; ``overrides`` in the JSON).
        extra: claims judged elsewhere (e.g. the FNO bounds), appended to the table.
        extra_figures: their figures (name -> a PNG in ``directory``), shown after the others.
        unfinished: run directories beside ``runs`` that hold no finished run, or an interrupted
            replacement of one (name -> state, :func:`mperror.train.store.unfinished_runs`),
            listed as not finished (``unfinished`` in the JSON, always present).

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
        "overrides": _overrides(runs),
        "device": ", ".join(devices),
        "device_name": ", ".join(names),
        # The runs' torch (what trained them), and the one judging them now.
        "torch": ", ".join(sorted({r.summary.torch_version for r in runs})) or "-",
        "report_torch": torch.__version__,
    }
    unfinished = dict(unfinished or {})
    markdown = _markdown(claims, runs, figures, extra, header, unfinished)
    write_atomic(directory / "report.md", markdown)
    payload = {
        **header,
        "claims": [c.to_dict() for c in (*claims, *extra)],
        "runs": [r.summary.to_dict() for r in runs],
        "unfinished": [{"run": name, "state": state} for name, state in unfinished.items()],
        "figures": {k: v.name for k, v in figures.items()},
    }
    text = json.dumps(plain(payload), indent=2)  # NaN stays NaN (JSON5-style), as in runs
    write_atomic(directory / "report.json", text + "\n")
    return [*claims, *extra]
