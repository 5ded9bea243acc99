"""The command line: verify, run and report end to end on tiny runs; clear errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mperror import verify as verify_module
from mperror.cli import main


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
        (["run", "regression", "-p", "fp17"], "unknown policy 'fp17'"),
        (["run", "regression", "--seeds", "a,b"], "--seeds must be like"),
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
        (["run", "regression", "-p", "fp32/half"], "model_precision is for problems"),
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
    ],
)
def test_verify_refuses_arguments_before_making_out(args, message, tmp_path, capsys) -> None:
    """A refused argument leaves no --out directory behind (it had been made first)."""
    out = tmp_path / "new" / "out"
    assert main(["verify", "--out", str(out), "--no-progress", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
