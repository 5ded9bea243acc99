"""What the figures draw, checked on the drawn data rather than on pixels."""

from __future__ import annotations

import numpy as np
import pytest

from mperror.report.figures import _running_mean


@pytest.mark.parametrize("width", [1, 4, 7])
def test_running_mean_keeps_a_constant_to_the_ends(width: int) -> None:
    """Oracle: the mean of a constant is that constant, at the ends too (a zero-padded window
    drew a run frozen at 97% as falling to about 49% at its first and last steps)."""
    y = np.full(40, 0.97)
    np.testing.assert_allclose(_running_mean(y, width), y, rtol=1e-15)


def test_running_mean_is_the_window_mean() -> None:
    """Oracle: means of the centred windows by hand (numpy's 'same' centring: width 3 at the
    first step covers steps 0 and 1 only)."""
    y = np.array([0.0, 3.0, 6.0, 9.0])
    np.testing.assert_allclose(_running_mean(y, 3), [1.5, 3.0, 6.0, 7.5])


def test_figures_are_written_whole(tmp_path) -> None:
    """A failing save leaves the old figure in place and no temporary file behind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mperror.report.figures import save_figure

    path = tmp_path / "f.png"
    fig = plt.figure()
    save_figure(fig, path)
    before = path.read_bytes()
    assert before.startswith(b"\x89PNG")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    fig.savefig = broken
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, path)
    plt.close(fig)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]


def test_panels_draw_the_runs_the_critical_zone_claim_judges_by_seed(monkeypatch, tmp_path) -> None:
    """Oracle: CRITICAL_ZONE_RUNS (diffusion mixed-fp16), seeds 0-2 in order. In directory
    order mixed-bf16 sorts first, and the figures drew diffusion mixed-bf16 while the claim
    judged mixed-fp16."""
    from dataclasses import replace

    from mperror.report import figures
    from mperror.report.claims import CRITICAL_ZONE_RUNS
    from mperror.train import RunConfig, StoredRun, train

    result = train(RunConfig(problem="diffusion", policy="mixed-fp16", iterations=2))
    template = StoredRun(
        path=None, config=result.config, trace=result.trace, summary=result.summary
    )
    assert any(not np.isnan(v) for v in template.trace["cosine_bound"])

    def run(policy: str, seed: int) -> StoredRun:
        summary = replace(template.summary, policy=policy, seed=seed, run_id=f"{policy}-{seed}")
        return replace(template, summary=summary)

    drawn: dict[str, list[str]] = {}

    def record(name):
        def draw(runs, path):
            drawn[name] = [r.summary.run_id for r in runs]
            return path

        return draw

    monkeypatch.setattr(figures, "critical_zone", record("critical_zone"))
    monkeypatch.setattr(figures, "cosine", record("cosine"))
    monkeypatch.setattr(figures, "_per_problem", lambda runs, column, path, *a: path)
    runs = [run(p, s) for p in ("mixed-bf16", "mixed-e5m2") for s in range(3)]
    runs += [run("mixed-fp16", s) for s in (2, 0, 1)]  # out of seed order
    figures.draw_all(runs, tmp_path)
    expected = [f"{CRITICAL_ZONE_RUNS[1]}-{s}" for s in (0, 1, 2)]
    assert drawn == {"critical_zone": expected, "cosine": expected}
    # without the claim's runs: the other mixed runs by label, then seed
    figures.draw_all(runs[:6][::-1], tmp_path)
    assert drawn["critical_zone"] == ["mixed-bf16-0"]
    assert drawn["cosine"] == ["mixed-bf16-0", "mixed-bf16-1", "mixed-bf16-2"]


def _drawn(monkeypatch, draw, runs):
    """The figure ``draw`` makes of ``runs``, kept instead of saved (its axes are checked)."""
    from mperror.report import figures

    kept = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: kept.append(fig) or path)
    draw(runs)
    return kept[0]


def test_cosine_figure_marks_checks_without_a_finite_observation(monkeypatch, tmp_path) -> None:
    """Oracle: the summary's own count (a NaN observation under a finite bound is a failed
    check). The figure had dropped such rows and showed every plotted point under its bound."""
    import copy
    import math

    from mperror.report import figures
    from mperror.train import RunConfig, StoredRun, train

    result = train(RunConfig(problem="diffusion", policy="mixed-fp16", iterations=4, eval_every=2))
    trace = copy.deepcopy(result.trace)
    rows = [i for i, b in enumerate(trace["cosine_bound"]) if math.isfinite(b)]
    assert rows
    trace["cosine_distance"][rows[0]] = math.nan
    run = StoredRun(path=None, config=result.config, trace=trace, summary=result.summary)
    fig = _drawn(monkeypatch, lambda r: figures.cosine(r, tmp_path / "c.png"), [run])
    marks = [line for line in fig.axes[0].lines if line.get_label().startswith("no finite")]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [trace["step"][rows[0]]]
    assert list(marks[0].get_ydata()) == [trace["cosine_bound"][rows[0]]]


def test_test_error_figure_shows_the_final_error(monkeypatch, tmp_path) -> None:
    """Oracle: summary.final_test_error at summary.steps, the value the table and the claims
    use (measured after the last step; the trace's rows measure each step's start, so the
    curve alone had ended one evaluation early)."""
    from mperror.report import figures
    from mperror.train import RunConfig, StoredRun, train

    result = train(RunConfig(problem="regression", policy="fp32", iterations=3, eval_every=2))
    run = StoredRun(path=None, config=result.config, trace=result.trace, summary=result.summary)
    fig = _drawn(
        monkeypatch,
        lambda r: figures._per_problem(r, "test_error", tmp_path / "t.png", "error", True),
        [run],
    )
    points = [(list(line.get_xdata()), list(line.get_ydata())) for line in fig.axes[0].lines]
    assert ([result.summary.steps], [result.summary.final_test_error]) in points
