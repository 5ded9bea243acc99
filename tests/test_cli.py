"""The command line: verify, run and report end to end on tiny runs; clear errors."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mperror import problems
from mperror import verify as verify_module
from mperror.cli import main
from mperror.train import store


def test_verify_end_to_end_and_resume(tmp_path, capsys, monkeypatch) -> None:
    """A tiny verify (3 iterations a run) writes every claim; run again it trains nothing."""
    out = tmp_path / "v"
    assert main(["verify", "--out", str(out), "--iterations", "3", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / "report.json").read_text())
    n_runs = sum(len(p) for p in verify_module.STUDIES.values())
    assert len(data["runs"]) == n_runs
    for claim in data["claims"]:
        assert claim["id"] in printed
    assert (out / "report.md").is_file()
    ids = {c["id"] for c in data["claims"]}
    assert {"fno.bounds-hold", "fno.precision-vs-discretisation", "fno.fft-overflow"} <= ids
    assert "fno_bounds" in data["figures"] and (out / "fno_bounds.png").is_file()

    from mperror.train import store

    monkeypatch.setattr(store, "train", lambda *a, **k: pytest.fail("trained a finished run"))
    assert main(["verify", "--out", str(out), "--iterations", "3", "--no-progress"]) == 0
    assert capsys.readouterr().out.count("finished earlier, kept") == n_runs

    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0
    assert "fno.fft-overflow" in (out / "report.md").read_text()


def test_verify_problems_and_report_sizes(tmp_path, capsys) -> None:
    """--problems trains and judges those studies only (no FNO sweep without fno-burgers);
    report refuses to pool two sizes and judges the one --size names."""
    out = tmp_path / "v"
    args = ["verify", "--out", str(out), "--iterations", "2", "--no-progress"]
    assert main([*args, "--problems", "regression"]) == 0
    data = json.loads((out / "report.json").read_text())
    assert {r["problem"] for r in data["runs"]} == {"regression"}
    assert "fno.bounds-hold" not in {c["id"] for c in data["claims"]}
    assert main([*args, "--full", "--seeds", "0", "--problems", "regression"]) == 0
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    assert "sizes full, quick: pass --size" in capsys.readouterr().err
    assert main(["report", str(out), "--size", "full"]) == 0
    data = json.loads((out / "report.json").read_text())
    assert {r["size"] for r in data["runs"]} == {"full"}


def test_run_command(tmp_path, capsys) -> None:
    out = tmp_path / "r"
    args = ["run", "regression", "-p", "fp32", "pure-e5m2", "--seeds", "0,1", "--iterations", "2"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    dirs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert dirs == [
        "regression-quick-fp32-seed0",
        "regression-quick-fp32-seed1",
        "regression-quick-pure-e5m2-seed0",
        "regression-quick-pure-e5m2-seed1",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "regression", "-p", "fp17"], "--policy/-p: unknown policy 'fp17'"),
        (["run", "regression", "--seeds", "a,b"], "--seeds must be like"),
        # int() rules let these through: digit separators, spaces
        (["run", "regression", "--seeds", "1_0"], "--seeds must be like"),
        (["run", "regression", "--seeds", "0, 1"], "--seeds must be like"),
        (["run", "regression", "--seeds", "-1"], "seeds are non-negative"),
        (["run", "regression", "--seeds", "3-1"], "--seeds range '3-1' is empty"),
        (["run", "regression", "--seeds", "1,1"], "--seeds repeats a seed"),
        (["report", "/nonexistent/mperror"], "does not exist"),
        # torch's generator overflowed ("Overflow when unpacking long long") after building
        (["run", "regression", "--seeds", "99999999999999999999"], "--seeds '9999"),
        (["run", "regression", "--seeds", "0-18446744073709551616"], "below 2**64"),
        (["run", "regression", "--seeds", "0-1000000000000000000"], "at most 10000"),
        # fp32 has nothing to emulate: it ran natively under the run id "...-fp32-emulated-..."
        (["run", "regression", "-p", "fp32", "mixed-fp16", "--backend", "emulated"], "(--backend)"),
        (["run", "regression", "-p", "fp16+scaler"], "policy 'fp16+scaler': GradScaler"),
        (["run", "regression", "-p", "fp32/half"], "-p 'fp32/half': the '/half' part"),
        # checked before the first run trains: the good run leaves no directory behind
        (["run", "fno-burgers", "-p", "fp32/full", "fp32/quarter"], "MODE[-FMT][+tanh]"),
    ],
)
def test_bad_arguments_give_one_clear_line(argv, message, tmp_path, capsys) -> None:
    # --iterations 2: were a bad argument let through, the test would not train for minutes
    run = [*argv, "--out", str(tmp_path), "--iterations", "2", "--no-progress"]
    assert main(run if argv[0] == "run" else argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    if argv[0] == "run":  # refused before any run trained
        assert not list(tmp_path.glob("*-seed*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "fp32", "fp32"], "--policy/-p names one run twice: 'fp32' and 'fp32'"),
        (["-p", "fp32", "mixed-fp32"], "'fp32' and 'mixed-fp32' are both 'regression-quick-fp32"),
        (["-p", "fp32/half"], "--policy/-p 'fp32/half': the '/half' part"),
        (["--device", "cuda"], "--device cuda: CUDA is not available"),
        (["--iterations", "0"], "--iterations must be a whole number from 1 to 10000000"),
        (["--iterations", "1_0"], "--iterations must be a whole number"),
        (["--iterations", "99999999999999999999999"], "from 1 to 10000000"),
        (["--seeds", "-1"], "--seeds: seeds are non-negative"),
    ],
)
def test_run_refuses_arguments_before_making_out(args, message, tmp_path, capsys, monkeypatch):
    """Each was refused with a clear line only after --out had been made (a duplicate run id, a
    model precision, CUDA), or accepted (--iterations 1_0, 10**23)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(store, "train", lambda *a, **k: pytest.fail("trained"))
    out = tmp_path / "new" / "out"
    argv = ["run", "regression", "--out", str(out), "--no-progress", "--iterations", "2", *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("change", ["iterations", "problem revision"])
def test_run_refuses_to_replace_a_finished_run_of_another_request(
    change, tmp_path, capsys, monkeypatch
) -> None:
    """A finished 2-step fp32 run was silently trained again over by a 3-step request (and by
    any request after its problem's revision was raised): refused before anything trains,
    naming the run and the field; --replace trains it again."""
    out = tmp_path / "r"
    base = ["run", "regression", "--out", str(out), "--no-progress", "-p", "fp32"]
    assert main([*base, "mixed-fp16", "--iterations", "2"]) == 0
    report = (out / "report.md").read_text()
    if change == "iterations":
        again, differ = ["--iterations", "3"], "iterations 2 (finished) vs 3 (asked)"
    else:
        current = problems.get("regression").revision
        monkeypatch.setattr(type(problems.get("regression")), "revision", current + 1)
        again = ["--iterations", "2"]
        differ = f"problem_revision {current} (finished) vs {current + 1} (asked)"
    real_train = store.train
    monkeypatch.setattr(store, "train", lambda *a, **k: pytest.fail("trained"))
    capsys.readouterr()
    assert main([*base, *again]) == 2
    err = capsys.readouterr().err
    assert f"'regression-quick-fp32-seed0' differs in {differ}" in err
    assert "choose another --out" in err and "pass --replace" in err and "Traceback" not in err
    config = out / "regression-quick-fp32-seed0" / "config.json"
    assert json.loads(config.read_text())["iterations"] == 2
    assert (out / "report.md").read_text() == report
    monkeypatch.setattr(store, "train", real_train)
    assert main([*base, *again, "--replace"]) == 0
    assert json.loads(config.read_text())["iterations"] == int(again[1])
    stored = json.loads((config.parent / "request.json").read_text())
    assert stored["problem_revision"] == problems.get("regression").revision


def test_verify_refuses_to_replace_unless_told(tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "v"
    base = ["verify", "--out", str(out), "--problems", "regression", "--no-progress"]
    assert main([*base, "--iterations", "2"]) == 0
    real_train = store.train
    monkeypatch.setattr(store, "train", lambda *a, **k: pytest.fail("trained"))
    capsys.readouterr()
    assert main([*base, "--iterations", "3"]) == 2
    err = capsys.readouterr().err
    assert "'regression-quick-fp32-seed0' differs in iterations 2 (finished) vs 3" in err
    assert "pass --replace" in err
    monkeypatch.setattr(store, "train", real_train)
    assert main([*base, "--iterations", "3", "--replace"]) == 0
    data = json.loads((out / "report.json").read_text())
    assert {r["steps"] for r in data["runs"]} == {3}


@pytest.mark.parametrize("spelling", ["FP32", "mixed-fp32"])
def test_run_resumes_an_equivalent_policy_spelling(spelling, tmp_path, capsys, monkeypatch):
    """Oracle: the parsed policy name, "fp32" for each spelling (one run id). request.json was
    compared as typed, so these trained the finished fp32 run again."""
    out = str(tmp_path / "r")
    base = ["run", "regression", "--out", out, "--no-progress", "--iterations", "2"]
    assert main([*base, "-p", "fp32"]) == 0
    monkeypatch.setattr(store, "train", lambda *a, **k: pytest.fail("trained"))
    capsys.readouterr()
    assert main([*base, "-p", spelling]) == 0
    assert "regression-quick-fp32-seed0: finished earlier, kept" in capsys.readouterr().out


def test_report_lists_unfinished_runs(tmp_path, capsys) -> None:
    """An interrupted run (trace.partial.csv, no summary.json) was never mentioned: it is
    printed and listed in report.md and report.json as not finished."""
    out = tmp_path / "r"
    args = ["run", "regression", "-p", "fp32", "mixed-fp16", "--iterations", "2"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    mixed = out / "regression-quick-mixed-fp16-seed0"
    (mixed / "summary.json").unlink()
    (mixed / "trace.partial.csv").write_text((mixed / "trace.csv").read_text())
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    state = "interrupted while training (trace.partial.csv: 2 steps)"
    assert f"not finished, not judged: {mixed.name}: {state}" in capsys.readouterr().out
    assert f"- {mixed.name}: {state}" in (out / "report.md").read_text()
    data = json.loads((out / "report.json").read_text())
    assert data["unfinished"] == [{"run": mixed.name, "state": state}]
    assert [r["run_id"] for r in data["runs"]] == ["regression-quick-fp32-seed0"]
    (out / "regression-quick-fp32-seed0" / "summary.json").unlink()
    assert main(["report", str(out)]) == 2
    assert f"no finished run under {str(out)!r} (2 unfinished: " in capsys.readouterr().err


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("steps", "2", "field 'steps' must be an int"),
        ("best_test_error", "abc", "field 'best_test_error' must be a number"),
        ("steps", 3, "holds 2 step rows where summary.json's field 'steps' says 3"),
    ],
)
def test_report_names_the_damaged_file_and_field(field, value, named, tmp_path, capsys):
    """report accepted these (or crashed with "Unknown format code 'e'")."""
    out = tmp_path / "r"
    args = ["run", "regression", "-p", "fp32", "--iterations", "2", "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    summary = out / "regression-quick-fp32-seed0" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), field: value}))
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert named in err and "regression-quick-fp32-seed0/" in err and "Traceback" not in err


@pytest.mark.parametrize("recorded", [0, None])
def test_report_refuses_runs_of_an_older_problem_revision(recorded, tmp_path, capsys) -> None:
    """Oracle: problems.get("regression").revision. Every run of an older revision (or none
    recorded) was judged without a word."""
    out = tmp_path / "r"
    args = ["run", "regression", "-p", "fp32", "--iterations", "2", "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    request = out / "regression-quick-fp32-seed0" / "request.json"
    stored = json.loads(request.read_text())
    stored["problem_revision"] = recorded
    request.write_text(json.dumps(stored))
    report = (out / "report.md").read_text()
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    current = problems.get("regression").revision
    was = "no recorded revision" if recorded is None else f"revision {recorded}"
    assert f"run 'regression-quick-fp32-seed0' was trained on regression {was}" in err
    assert f"current definition of regression is revision {current}" in err
    assert (out / "report.md").read_text() == report


@pytest.mark.parametrize("command", [["formats"], ["run", "regression", "-p", "fp32"]])
def test_closed_stdout_ends_quietly(command, tmp_path) -> None:
    """`mperror ... | head -1` printed a BrokenPipeError traceback. The reader here closes the
    pipe before the command (still importing torch) writes anything; 141 = 128 + SIGPIPE."""
    out = tmp_path / "r"
    extra = ["--iterations", "1", "--out", str(out), "--no-progress"] if command[0] == "run" else []
    with open(tmp_path / "stderr", "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "mperror", *command, *extra],
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        process.stdout.close()
        assert process.wait(timeout=120) == 141
    err = (tmp_path / "stderr").read_text()
    assert "Traceback" not in err and "BrokenPipeError" not in err
    if command[0] == "run":  # the finished run is kept
        assert (out / "regression-quick-fp32-seed0" / "summary.json").is_file()


def test_sigterm_keeps_finished_runs_and_says_so(tmp_path, capsys, monkeypatch) -> None:
    """SIGTERM arrives while the second run trains: one line (as for Ctrl-C), exit 143, the
    first run finished and kept; the caller's SIGTERM handler is back afterwards."""
    real_train = store.train

    def terminated(config, **kwargs):
        if config.policy == "mixed-fp16":
            os.kill(os.getpid(), signal.SIGTERM)
            pytest.fail("SIGTERM did not stop the run")
        return real_train(config, **kwargs)

    def outer(signum, frame):
        raise AssertionError("mperror did not handle SIGTERM")

    monkeypatch.setattr(store, "train", terminated)
    out = tmp_path / "r"
    argv = ["run", "regression", "-p", "fp32", "mixed-fp16", "--iterations", "2"]
    previous = signal.signal(signal.SIGTERM, outer)
    try:
        assert main([*argv, "--out", str(out), "--no-progress"]) == 143
        assert signal.getsignal(signal.SIGTERM) is outer
    finally:
        signal.signal(signal.SIGTERM, previous)
    err = capsys.readouterr().err
    assert "terminated (SIGTERM); finished runs are kept" in err
    assert (out / "regression-quick-fp32-seed0" / "summary.json").is_file()
    assert not (out / "regression-quick-mixed-fp16-seed0" / "summary.json").exists()


@pytest.mark.parametrize("command", [["run", "regression"], ["verify"]])
def test_out_that_is_a_file_is_refused(command, tmp_path, capsys) -> None:
    target = tmp_path / "afile"
    target.write_text("keep me")
    assert main([*command, "--out", str(target), "--iterations", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is a file" in err
    assert "Traceback" not in err
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("command", [["run", "regression"], ["verify"]])
@pytest.mark.parametrize("where", ["below a file", "empty", "unwritable"])
def test_out_that_cannot_be_a_directory_is_refused_before_training(
    command, where, tmp_path, capsys, monkeypatch
) -> None:
    """Below a file: NotADirectoryError traceback; unwritable: FileNotFoundError traceback after
    the problem was built; empty: the runs went into the current directory."""
    from mperror.train import store

    if where == "unwritable" and not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's /proc (no directory can be made in it, even by root)")
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    out = {"below a file": str(afile / "sub"), "empty": "", "unwritable": "/proc/mperror-t"}
    monkeypatch.setattr(store, "train", lambda *a, **k: pytest.fail("trained"))
    monkeypatch.chdir(tmp_path)
    argv = [*command, "--out", out[where], "--iterations", "2", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: --out {out[where]!r}" in err or "--out must name a directory" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    assert afile.read_text() == "keep me"


def test_report_of_a_file_says_it_is_a_file(tmp_path, capsys) -> None:
    (tmp_path / "afile").write_text("x")
    assert main(["report", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a directory" in err and "does not exist" not in err


def test_report_refuses_runs_trained_with_other_settings(tmp_path, capsys) -> None:
    """fp32 trained 2 steps and fp16 3 into one directory: report paired and judged them."""
    out = str(tmp_path / "r")
    base = ["run", "regression", "--out", out, "--no-progress"]
    assert main([*base, "-p", "fp32", "--iterations", "2"]) == 0
    assert main([*base, "-p", "fp16", "--iterations", "3"]) == 0
    capsys.readouterr()
    assert main(["report", out]) == 2
    err = capsys.readouterr().err
    assert "'regression-quick-fp16-seed0'" in err and "'regression-quick-fp32-seed0'" in err
    assert "differ in iterations 3 vs 2" in err and "Traceback" not in err


def test_report_header_shows_the_iterations_override(tmp_path) -> None:
    """--iterations 2 trained regression for 2 steps, and the header said "Setting: quick"."""
    out = tmp_path / "r"
    assert main(["run", "regression", "-p", "fp32", "--iterations", "2", "--out", str(out)]) == 0
    assert "Setting: **quick, overridden: regression iterations 2**" in (
        (out / "report.md").read_text()
    )


def test_unknown_problem_is_an_argparse_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "navier-stokes"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_round_command_takes_negative_numbers_in_any_notation(capsys) -> None:
    """Oracle: mperror.reference.round_scalar. argparse read "-1e-9" and "-inf" as options."""
    from mperror.reference import round_scalar

    assert main(["round", "-1e-9", "-inf", "-2.5", "--format", "bf16", "-m", "toward_zero"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:4]
    got = [float(row.split()[1]) for row in rows]
    expected = [round_scalar(v, "bf16", "toward_zero") for v in (-1e-9, -math.inf, -2.5)]
    assert got == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--problems", "regression", "regression"], "problems must name each problem once"),
        (["--seeds", "3-1"], "--seeds range '3-1' is empty"),
        (["--iterations", "0"], "iterations"),
        (["--iterations", "1_0"], "--iterations must be a whole number"),
        (["--device", "cuda"], "--device cuda: CUDA is not available"),
    ],
)
def test_verify_refuses_arguments_before_making_out(
    args, message, tmp_path, capsys, monkeypatch
) -> None:
    """A refused argument leaves no --out directory behind (it had been made first)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "new" / "out"
    assert main(["verify", "--out", str(out), "--no-progress", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
