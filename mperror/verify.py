"""``mperror verify``: train the studies, judge the papers' claims, write the report.

The quick setting trains every problem but ``fno-darcy`` (a study of its own) at its
``"quick"`` size with one seed (a few minutes on two CPU cores); ``full`` trains the papers'
sizes with ten seeds (a GPU job). Runs go to
``OUT/runs`` (resumable: finished runs are kept and skipped when the command runs again), the
report to ``OUT/report.md`` and ``OUT/report.json``. Beside the training claims the report
judges the FNO bounds (:func:`mperror.report.fno_sweep.fno_claims`: a resolution sweep with
emulated FFTs, no training).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mperror.report import Claim, write_report
from mperror.report.fno_sweep import fno_claims
from mperror.train import RunConfig, configs_for, run_study

__all__ = ["SETTINGS", "STUDIES", "plan", "verify"]

#: The policies each problem is trained under: what the claims compare. ``POLICY/MODE`` also
#: sets the model's own precision (the FNO's spectral convolutions; the rest stays float32).
STUDIES: dict[str, tuple[str, ...]] = {
    "regression": ("fp32", "fp16", "mixed-fp16"),
    "diffusion": ("fp32", "mixed-fp16", "mixed-bf16"),
    "burgers": ("fp32", "fp16", "mixed-fp16"),
    "deeponet": ("fp32", "mixed-fp16"),
    "fno-burgers": (
        "fp32/full",
        "fp32/half",
        "fp32/full+tanh",
        "fp32/half+tanh",
        "fp32/mixed+tanh",
        "fp32/schedule+tanh",
    ),
}
#: Setting -> (problem size, seeds).
SETTINGS: dict[str, tuple[str, tuple[int, ...]]] = {
    "quick": ("quick", (0,)),
    "full": ("full", tuple(range(10))),
}


def plan(
    setting: str = "quick",
    *,
    seeds: Sequence[int] | None = None,
    problems: Sequence[str] | None = None,
    device: str = "auto",
    iterations: int | None = None,
) -> list[RunConfig]:
    """The runs of ``setting`` (optionally fewer seeds, problems, or iterations)."""
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {', '.join(SETTINGS)}, got {setting!r}")
    size, default_seeds = SETTINGS[setting]
    chosen = tuple(STUDIES) if problems is None else tuple(problems)
    unknown = [p for p in chosen if p not in STUDIES]
    if unknown:
        raise ValueError(f"problems must be among {', '.join(STUDIES)}; got {unknown}")
    repeated = sorted({p for p in chosen if chosen.count(p) > 1})
    if repeated:
        raise ValueError(f"problems must name each problem once; repeated: {repeated}")
    return [
        config
        for problem in chosen
        for config in configs_for(
            problem,
            STUDIES[problem],
            default_seeds if seeds is None else seeds,
            size=size,
            device=device,
            iterations=iterations,
        )
    ]


def verify(
    out: str | Path,
    setting: str = "quick",
    *,
    seeds: Sequence[int] | None = None,
    problems: Sequence[str] | None = None,
    device: str = "auto",
    iterations: int | None = None,
    progress: bool = False,
    log: bool = False,
    replace: bool = False,
) -> list[Claim]:
    """Run the plan into ``out/runs`` and write the report into ``out``; return the claims.

    Finished runs of the same request are kept; one of another request (other settings, an
    older problem revision) is refused unless ``replace`` (see
    :func:`mperror.train.store.run_study`)."""
    out = Path(out)
    configs = plan(setting, seeds=seeds, problems=problems, device=device, iterations=iterations)
    runs = run_study(configs, out / "runs", replace=replace, progress=progress, log=log)
    fno, fno_figures = [], {}
    if problems is None or "fno-burgers" in problems:  # the FNO study's bounds, no training
        if log:
            print("FNO bounds: resolution sweep and FFT overflow checks", flush=True)
        fno, fno_figures = fno_claims(out, full=setting == "full")
    return write_report(runs, out, setting=setting, extra=fno, extra_figures=fno_figures)
