"""Run directories: atomic writes, exact trace round trips, resume after an interruption."""

from __future__ import annotations

import json
import math
import os
import re

import pytest

from mperror import problems
from mperror.train import RunConfig, Trace, load_runs, run_study, store
from mperror.train.store import write_atomic
from mperror.train.trainer import train


def _configs(iterations: int = 4) -> list[RunConfig]:
    return [
        RunConfig(problem="regression", policy=p, iterations=iterations, eval_every=2)
        for p in ("fp32", "fp16")
    ]


def test_trace_csv_round_trip_is_exact() -> None:
    """Oracle: repr of a float reads back to the same float (NaN and inf included)."""
    trace = Trace(["step", "loss"])
    values = [0.1, 1 / 3, math.inf, -math.inf, 5e-324, 2.0**-24]
    for k, v in enumerate(values):
        trace.append({"step": k, "loss": v})
    trace.append({"step": 6})  # a missing column is NaN
    back = Trace.from_csv(trace.to_csv())
    assert back["loss"][:6] == values
    assert math.isnan(back["loss"][6])
    with pytest.raises(ValueError, match="unknown trace columns"):
        trace.append({"stepp": 1})


def test_a_damaged_run_file_is_named(tmp_path) -> None:
    """A summary.json that is not JSON, or lacks a field, is one clear error naming the file
    (a missing field gave a TypeError traceback from the dataclass)."""
    (config,) = _configs()[:1]
    (run,) = run_study([config], tmp_path)
    summary = run.path / "summary.json"
    data = json.loads(summary.read_text())
    del data["lost_final"]
    summary.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"summary.json cannot be read as a run's summary.json"):
        load_runs(tmp_path)
    summary.write_text("{")
    with pytest.raises(ValueError, match=r"summary\.json"):
        load_runs(tmp_path)
    summary.write_text(json.dumps({**data, "lost_final": 0.0, "unchanged_at": None}))
    with pytest.raises(ValueError, match=r"summary\.json"):  # AttributeError escaped
        load_runs(tmp_path)
    (run.path / "trace.csv").write_text("")  # StopIteration escaped
    with pytest.raises(ValueError, match=r"trace\.csv"):
        load_runs(tmp_path)


def test_write_atomic_gives_the_permissions_of_open(tmp_path) -> None:
    """Oracle: a file made by plain ``open`` in the same directory (mkstemp alone gives 0600)."""
    write_atomic(tmp_path / "a.json", "x")
    (tmp_path / "b.json").write_text("x")
    modes = [os.stat(tmp_path / n).st_mode & 0o777 for n in ("a.json", "b.json")]
    assert modes[0] == modes[1]


def test_write_atomic_leaves_old_file_on_failure(tmp_path, monkeypatch) -> None:
    path = tmp_path / "summary.json"
    write_atomic(path, "old")

    def broken(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary left


def test_study_writes_runs_and_resumes(tmp_path, monkeypatch) -> None:
    configs = _configs()
    runs = run_study(configs, tmp_path)
    assert [r.config.policy for r in runs] == ["fp32", "fp16"]
    for r in runs:
        assert sorted(p.name for p in r.path.iterdir()) == [
            "config.json",
            "request.json",
            "summary.json",
            "trace.csv",
        ]
        assert len(r.trace) == 4
        assert json.loads((r.path / "config.json").read_text())["iterations"] == 4
    assert [r.summary.run_id for r in load_runs(tmp_path)] == sorted(c.run_id for c in configs)

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(store, "train", must_not_train)
    again = run_study(configs, tmp_path)
    assert [r.trace["loss"] for r in again] == [r.trace["loss"] for r in runs]


def test_interrupted_study_keeps_finished_runs(tmp_path, monkeypatch) -> None:
    """The second run is interrupted (Ctrl-C) after its first checkpoint: the first run stays
    finished, the second keeps its partial trace and no summary, and rerunning trains the
    second only."""
    configs = _configs(iterations=6)
    real_train = store.train
    calls = []

    def interrupted(config, **kwargs):
        calls.append(config.policy)
        if config.policy == "fp16" and len(calls) == 2:
            checkpoint = kwargs["checkpoint"]

            def stop(cfg, trace):
                checkpoint(cfg, trace)
                raise KeyboardInterrupt

            kwargs["checkpoint"] = stop
        return real_train(config, **kwargs)

    monkeypatch.setattr(store, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study(configs, tmp_path)
    first, second = (tmp_path / c.run_id for c in configs)
    assert (first / "summary.json").is_file()
    assert not (second / "summary.json").exists()
    assert len(Trace.from_csv((second / "trace.partial.csv").read_text())) == 1
    runs = run_study(configs, tmp_path)
    assert calls == ["fp32", "fp16", "fp16"]
    assert [len(r.trace) for r in runs] == [6, 6]


def _never_train(*args, **kwargs):
    raise AssertionError("trained")


def test_changed_config_is_refused_unless_replace(tmp_path, monkeypatch) -> None:
    """A finished run asked for again with another setting (same run id) was silently trained
    again over it: now refused, naming the run and the field, before anything trains; with
    replace=True it is trained again."""
    (config,) = _configs()[:1]
    (old,) = run_study([config], tmp_path)
    changed = RunConfig(problem="regression", policy="fp32", iterations=4, eval_every=2, lr=2e-3)
    assert changed.run_id == config.run_id
    monkeypatch.setattr(store, "train", _never_train)
    with pytest.raises(
        ValueError, match=r"'regression-quick-fp32-seed0' differs in lr None .* vs 0\.002"
    ):
        run_study([changed], tmp_path)
    (kept,) = load_runs(tmp_path)
    assert kept.config == old.config and kept.trace["loss"] == old.trace["loss"]
    monkeypatch.setattr(store, "train", train)
    (run,) = run_study([changed], tmp_path, replace=True)
    assert run.config.lr == 2e-3


@pytest.mark.parametrize("staged", ["request.json", "config.json", "trace.csv", "summary.json"])
def test_an_interrupt_while_a_replacement_is_written_keeps_the_finished_run(
    tmp_path, monkeypatch, staged
) -> None:
    """Ctrl-C while the replacement's files were written (after its training) had left
    neither run: the old summary.json was already gone and the new one not yet written. The
    new files are staged first; the finished run is still the one loaded."""
    (config,) = _configs()[:1]
    (old,) = run_study([config], tmp_path)
    changed = RunConfig(problem="regression", policy="fp32", iterations=6, eval_every=2)
    plain = store.write_atomic

    def interrupted(path, text):
        if path.name in (staged, f".{staged}.staged"):  # the file, however it is written
            raise KeyboardInterrupt
        plain(path, text)

    monkeypatch.setattr(store, "write_atomic", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study([changed], tmp_path, replace=True)
    (kept,) = load_runs(tmp_path)
    assert kept.summary.steps == old.summary.steps == 4 and kept.config == old.config
    assert not [f for f in os.listdir(old.path) if f.endswith(".staged")]
    monkeypatch.setattr(store, "write_atomic", plain)
    (new,) = run_study([changed], tmp_path, replace=True)
    assert new.summary.steps == 6 == len(load_runs(tmp_path)[0].trace)


@pytest.mark.parametrize("spelling", ["FP32", "mixed-fp32", " fp32 "])
def test_equivalent_policy_spellings_resume(tmp_path, monkeypatch, spelling) -> None:
    """Oracle: parse(spelling).name == "fp32", the same run id. request.json was compared as
    typed, so "FP32" after "fp32" trained the finished run again."""
    (config,) = _configs()[:1]
    (old,) = run_study([config], tmp_path)
    same = RunConfig(problem="regression", policy=spelling, iterations=4, eval_every=2)
    assert same.run_id == config.run_id
    monkeypatch.setattr(store, "train", _never_train)
    (kept,) = run_study([same], tmp_path, log=True)
    assert kept.trace["loss"] == old.trace["loss"]


def test_replaced_run_survives_until_its_replacement_finishes(tmp_path, monkeypatch) -> None:
    """A finished run asked for again with another setting (same run id) and interrupted while
    the new one trains: the old run is still there, whole, and loads; the finished new run
    replaces it and leaves no partial trace."""
    (config,) = _configs()[:1]
    (old,) = run_study([config], tmp_path)
    changed = RunConfig(problem="regression", policy="fp32", iterations=4, eval_every=2, lr=2e-3)
    assert changed.run_id == config.run_id

    def interrupted(config, **kwargs):
        checkpoint = kwargs["checkpoint"]

        def stop(cfg, trace):
            checkpoint(cfg, trace)
            raise KeyboardInterrupt

        return train(config, **{**kwargs, "checkpoint": stop})

    monkeypatch.setattr(store, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study([changed], tmp_path, replace=True)
    (kept,) = load_runs(tmp_path)
    assert kept.config == old.config and kept.trace["loss"] == old.trace["loss"]
    assert (tmp_path / config.run_id / "trace.partial.csv").is_file()
    assert "replace is the one judged" in store.unfinished_runs(tmp_path)[config.run_id]
    monkeypatch.setattr(store, "train", train)
    (new,) = run_study([changed], tmp_path, replace=True)
    assert new.config.lr == 2e-3
    assert not (tmp_path / config.run_id / "trace.partial.csv").exists()


def test_request_records_the_problem_revision(tmp_path) -> None:
    (config,) = _configs()[:1]
    (run,) = run_study([config], tmp_path)
    stored = json.loads((run.path / "request.json").read_text())
    assert stored.pop("problem_revision") == problems.get("regression").revision
    assert stored == config.to_dict()


@pytest.mark.parametrize("stale", ["raised revision", "no revision recorded"])
def test_run_of_another_problem_revision_is_refused_unless_replace(
    tmp_path, monkeypatch, stale
) -> None:
    """A finished run of an older revision is another request: refused by name with both
    revisions, then trained again with replace=True, then kept."""
    (config,) = _configs()[:1]
    (run,) = run_study([config], tmp_path)
    if stale == "raised revision":
        monkeypatch.setattr(type(problems.get("regression")), "revision", 2)
        differ = "problem_revision 1 (finished) vs 2 (asked)"
    else:  # a directory written before revisions were recorded
        request = run.path / "request.json"
        stored = json.loads(request.read_text())
        del stored["problem_revision"]
        request.write_text(json.dumps(stored))
        differ = "problem_revision None (finished) vs 1 (asked)"
    trained = []

    def counting(config, **kwargs):
        trained.append(config.run_id)
        return train(config, **kwargs)

    monkeypatch.setattr(store, "train", counting)
    with pytest.raises(ValueError) as error:
        run_study([config], tmp_path)
    assert config.run_id in str(error.value) and differ in str(error.value)
    assert trained == []
    (again,) = run_study([config], tmp_path, replace=True)
    assert trained == [config.run_id]
    stored = json.loads((again.path / "request.json").read_text())
    assert stored["problem_revision"] == problems.get("regression").revision
    run_study([config], tmp_path)  # now current: kept
    assert trained == [config.run_id]


@pytest.mark.parametrize(
    ("damage", "named"),
    [("", "request.json (missing)"), ("[]", "request.json (not a JSON object)")],
)
def test_a_finished_run_of_unknown_request_is_refused(tmp_path, monkeypatch, damage, named):
    """A finished run whose request.json is gone or damaged may be of any request: refused
    (it was trained over), and replace=True trains it again."""
    (config,) = _configs()[:1]
    (run,) = run_study([config], tmp_path)
    request = run.path / "request.json"
    if damage:
        request.write_text(damage)
    else:
        request.unlink()
    monkeypatch.setattr(store, "train", _never_train)
    with pytest.raises(ValueError, match=rf"{config.run_id}' differs in {re.escape(named)}"):
        run_study([config], tmp_path)
    monkeypatch.setattr(store, "train", train)
    run_study([config], tmp_path, replace=True)
    assert json.loads(request.read_text())["policy"] == "fp32"


def test_a_summary_that_is_not_a_file_is_refused_before_training(tmp_path, monkeypatch) -> None:
    """A summary.json directory in the way failed only after the run had trained (unlink)."""
    (config,) = _configs()[:1]
    (tmp_path / config.run_id / "summary.json").mkdir(parents=True)
    monkeypatch.setattr(store, "train", _never_train)
    with pytest.raises(ValueError, match=r"summary\.json' is not a file"):
        run_study([config], tmp_path)


def test_unfinished_runs_name_their_state(tmp_path) -> None:
    """Oracle: the directories made here, one per state (a finished run is not listed)."""
    (config,) = _configs()[:1]
    (run,) = run_study([config], tmp_path)
    partial = tmp_path / "interrupted"
    partial.mkdir()
    (partial / "trace.partial.csv").write_text((run.path / "trace.csv").read_text())
    (tmp_path / "never-finished").mkdir()
    (run.path / "trace.partial.csv").write_text("step\n0\n")  # a replacement interrupted
    assert store.unfinished_runs(tmp_path) == {
        "interrupted": "interrupted while training (trace.partial.csv: 4 steps)",
        "never-finished": "not finished (no summary.json)",
        config.run_id: "interrupted while training (trace.partial.csv: 1 steps); the finished "
        "run it was to replace is the one judged",
    }
    assert store.unfinished_runs(tmp_path / "none") == {}


def test_load_run_refuses_a_trace_shorter_than_its_summary(tmp_path) -> None:
    """trace.csv cut at a row boundary (a header and one row of a 4-step run) parses; the
    summary's steps (4) is the oracle for its length."""
    (config,) = _configs()[:1]
    (run,) = run_study([config], tmp_path)
    lines = (run.path / "trace.csv").read_text().splitlines(keepends=True)
    (run.path / "trace.csv").write_text("".join(lines[:2]))
    with pytest.raises(ValueError, match=r"trace\.csv .* 1 step rows .*'steps' says 4"):
        store.load_run(run.path)


def test_load_run_refuses_a_trace_without_a_column(tmp_path) -> None:
    """A trace.csv missing a column the report reads (theta_norm) loaded, and `mperror report`
    then failed with a bare KeyError; the error names the file and the column."""
    (config,) = _configs()[:1]
    (run,) = run_study([config], tmp_path)
    rows = [line.split(",") for line in (run.path / "trace.csv").read_text().splitlines()]
    drop = rows[0].index("theta_norm")
    kept = [",".join(v for i, v in enumerate(row) if i != drop) for row in rows]
    (run.path / "trace.csv").write_text("\n".join(kept) + "\n")
    with pytest.raises(ValueError, match=r"trace\.csv .* no column 'theta_norm'"):
        store.load_run(run.path)


@pytest.mark.parametrize(
    ("field", "value", "must"),
    [
        ("steps", "4", "be an int >= 0"),
        ("steps", 4.0, "be an int >= 0"),
        ("steps", -1, "be an int >= 0"),
        ("diverged", 0, "be true or false"),
        ("best_test_error", "abc", "be a number"),
        ("best_test_error", None, "be a number"),
        ("critical_entry_step", True, "be an int >= 0 or null"),
        ("model_precision", 3, "be a string or null"),
        ("unchanged_at", {"x": 0.5}, "have step numbers as keys"),
        ("unchanged_at", {"100": "0.5"}, "map to numbers"),
        ("extra", [], "be a JSON object"),
    ],
)
def test_summary_fields_of_another_type_are_named(tmp_path, field, value, must) -> None:
    """A summary.json field of the wrong JSON type was accepted (then "Unknown format code 'e'"
    in the report, naming neither file nor field); the error names both."""
    (config,) = _configs()[:1]
    (run,) = run_study([config], tmp_path)
    summary = run.path / "summary.json"
    data = json.loads(summary.read_text())
    summary.write_text(json.dumps({**data, field: value}))
    with pytest.raises(ValueError, match=rf"summary\.json.*field '{field}' must {must}"):
        store.load_run(run.path)
    summary.write_text(json.dumps({**data, "best_test_error": math.inf, "model_precision": None}))
    assert store.load_run(run.path).summary.best_test_error == math.inf  # still a number


def test_duplicate_run_ids_refused(tmp_path) -> None:
    config = _configs()[0]
    with pytest.raises(ValueError, match="share the run id"):
        run_study([config, config], tmp_path / "new")
    assert not (tmp_path / "new").exists()  # refused before the root was made
    with pytest.raises(TypeError, match="RunConfig"):
        run_study(["fp32"], tmp_path)  # type: ignore[list-item]


def test_loaded_runs_carry_their_problem_revision(tmp_path) -> None:
    """The report refuses to mix revisions, so a loaded run carries request.json's (None for a
    directory written before revisions were recorded)."""
    (config,) = _configs()[:1]
    (run,) = run_study([config], tmp_path)
    assert run.problem_revision == problems.get("regression").revision
    request = run.path / "request.json"
    stored = json.loads(request.read_text())
    del stored["problem_revision"]
    request.write_text(json.dumps(stored))
    assert store.load_run(run.path).problem_revision is None


@pytest.mark.parametrize("where", ["below a file", "a file", "empty", "unwritable"])
def test_study_root_that_cannot_be_a_directory_is_refused_before_training(
    tmp_path, monkeypatch, where
) -> None:
    """A root below a regular file gave NotADirectoryError, an unwritable one an OSError after
    the problem was built (os.access says yes to root for /proc: the check writes)."""
    afile = tmp_path / "afile"
    afile.write_text("keep")
    root = {
        "below a file": afile / "sub",
        "a file": afile,
        "empty": "",
        "unwritable": "/proc/mperror-test",  # no directory can be made in /proc, even by root
    }[where]
    if where == "unwritable" and not os.path.isdir("/proc/self"):
        pytest.skip("needs Linux's /proc")
    monkeypatch.setattr(store, "train", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match=r"^root ") as error:
        run_study(_configs(), root)
    message = str(error.value)
    assert {
        "below a file": "which is a file",
        "a file": "is a file",
        "empty": "empty path",
        "unwritable": "cannot be written",
    }[where] in message
    assert afile.read_text() == "keep"


def test_load_runs_says_a_file_is_a_file(tmp_path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        load_runs(tmp_path / "afile")
    with pytest.raises(ValueError, match="does not exist"):
        load_runs(tmp_path / "none")


def test_configs_for_gives_init_scale_to_scaler_policies_only() -> None:
    """A policy without '+scaler' has no loss scale: RunConfig refuses init_scale there, so a
    study of fp32 beside mixed-fp16+scaler gives the scale to the scaler run alone."""
    configs = store.configs_for("regression", ["fp32", "mixed-fp16+scaler"], [0], init_scale=8.0)
    assert [c.init_scale for c in configs] == [None, 8.0]


def test_configs_written_before_init_scale_was_checked_read_as_their_runs_used_them() -> None:
    """Oracle: what the run did. Older versions accepted init_scale on a policy without a
    scaler and ignored it (None), and GradScaler stored a scaler's value in float32
    (1000.1 -> 1000.0999755859375); such config.json files had become unreadable, and their
    requests differed from the same request made now."""
    base = {"problem": "regression", "seed": 0}
    plain = RunConfig.from_dict({**base, "policy": "fp32", "init_scale": 1024.0})
    assert plain.init_scale is None
    scaled = RunConfig.from_dict({**base, "policy": "mixed-fp16+scaler", "init_scale": 1000.1})
    assert scaled.init_scale == 1000.0999755859375
    old_request = {**RunConfig(policy="fp32", **base).to_dict(), "init_scale": 1024.0}
    now = RunConfig(policy="fp32", **base).to_dict()
    assert store._normalised(old_request) == store._normalised(now)
