"""The ``mperror`` command line.

``mperror verify [--full]``        train the studies, judge the papers' claims, write a report
``mperror run PROBLEM -p P ...``   one study: a problem under several policies and seeds
``mperror report RUN_DIR``         judge and redraw from runs already stored
``mperror formats``                the preset formats and their derived values
``mperror round X [X ...]``        round numbers to a format with a mode, showing the error

Training commands store every run under their output directory as it finishes; interrupted
(Ctrl-C, SIGTERM, a closed stdout), they keep the finished runs, and the same command run again
resumes. A finished run that a new request with other settings would replace (same run id) is
refused, naming the fields that differ, unless ``--replace`` is given. Every argument is checked
before ``--out`` is made.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import torch

import mperror
from mperror import formats
from mperror.rounding import RoundMode


def _format_table() -> str:
    header = (
        f"{'name':7s} {'bits':>4s} {'p':>3s} {'emin':>5s} {'emax':>5s} {'max':>11s} "
        f"{'smallest normal':>16s} {'smallest subnorm':>16s} {'u = 2^-p':>10s} "
        f"{'inf':>3s} {'NaN':>3s} overflow"
    )
    rows = [header]
    for name, f in formats.PRESETS.items():
        rows.append(
            f"{name:7s} {f.bits:4d} {f.precision:3d} {f.emin:5d} {f.emax:5d} {f.max:11.4g} "
            f"{f.smallest_normal:16.4g} {f.smallest_subnormal:16.4g} {f.unit_roundoff:10.3g} "
            f"{'yes' if f.has_inf else 'no':>3s} {'yes' if f.has_nan else 'no':>3s} "
            f"{f.overflow.value}"
        )
    return "\n".join(rows)


def _cmd_formats(args: argparse.Namespace) -> int:
    print(_format_table())
    return 0


def _cmd_round(args: argparse.Namespace) -> int:
    from mperror.problems._base import check_seed

    try:
        check_seed(args.seed)
    except ValueError as error:
        raise ValueError(f"--seed: {error}") from None
    fmt = formats.get(args.format)
    x = torch.tensor(args.values, dtype=torch.float64)
    generator = torch.Generator().manual_seed(args.seed)
    r = mperror.round(x, fmt, args.mode, generator=generator)
    print(f"{'x':>24s}  {'round(x)':>24s}  {'relative error':>14s}")
    for value, rounded in zip(x.tolist(), r.tolist(), strict=True):
        if value != 0 and math.isfinite(value) and math.isfinite(rounded):
            rel = f"{abs(rounded - value) / abs(value):14.3e}"
        else:
            rel = f"{'-':>14s}"
        print(f"{value!r:>24s}  {rounded!r:>24s}  {rel}")
    print(f"({fmt.name}, {RoundMode.parse(args.mode).value}; u = 2^-{fmt.precision})")
    return 0


def _print_claims(claims, out: Path) -> None:
    verdicts = {True: "holds", False: "does not hold", None: "undecided"}
    for c in claims:
        print(f"  [{verdicts[c.holds]:>13s}] {c.id}: {c.measured}")
    print(f"report: {out / 'report.md'} (and report.json)")


#: The most seeds one --seeds range may name (a study of that many runs is already days long).
_MOST_SEEDS = 10_000
#: The most steps --iterations may ask for (the papers' longest runs are 10**4 to 10**5 steps).
_MOST_ITERATIONS = 10**7
_DIGITS = re.compile(r"[0-9]+")  # plain decimal digits: no sign, space, "_" or other numerals


def _seeds(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    from mperror.problems._base import check_seed

    if text.startswith("-"):
        raise ValueError(f"--seeds: seeds are non-negative integers (0 or more), got {text!r}")
    pieces = text.split("-") if "-" in text else text.split(",")
    if ("-" in text and len(pieces) != 2) or not all(_DIGITS.fullmatch(p) for p in pieces):
        raise ValueError(
            f"--seeds must be like 0,1,2 or 0-9 (plain decimal digits, no spaces), got {text!r}"
        )
    ends = tuple(int(p) for p in pieces)
    for seed in ends:  # checked before a range is spelt out
        try:
            check_seed(seed)
        except ValueError as error:
            raise ValueError(f"--seeds {text!r}: {error}") from None
    if "-" in text and ends[1] - ends[0] >= _MOST_SEEDS:
        raise ValueError(
            f"--seeds range {text!r} holds {ends[1] - ends[0] + 1} seeds; at most {_MOST_SEEDS}"
        )
    seeds = tuple(range(ends[0], ends[1] + 1)) if "-" in text else ends
    if not seeds:
        raise ValueError(f"--seeds range {text!r} is empty: its first seed exceeds its last")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds repeats a seed: {text!r}")
    return seeds


def _iterations(text: str | None) -> int | None:
    """``--iterations`` as an int in [1, _MOST_ITERATIONS] (``None``: the problem's default)."""
    if text is None:
        return None
    value = int(text) if _DIGITS.fullmatch(text) else None
    if value is None or not 1 <= value <= _MOST_ITERATIONS:
        raise ValueError(
            f"--iterations must be a whole number from 1 to {_MOST_ITERATIONS} in plain decimal "
            f"digits, got {text!r}"
        )
    return value


def _check_device(device: str) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "--device cuda: CUDA is not available here (torch.cuda.is_available() is False); "
            "use --device cpu or auto"
        )


def _check_replacements(configs, root: str | Path, replace: bool) -> None:
    """Refuse, unless ``replace``, to train over finished runs of another request in ``root``
    (an existing --out, read only)."""
    from mperror.train.store import refuse_replacements

    if not replace:
        refuse_replacements(configs, root, keep="choose another --out", again="pass --replace")


def _out(text: str) -> Path:
    """``--out`` as a writable directory (made if new), refused before anything trains."""
    from mperror.train.store import check_directory

    return check_directory(text, "--out")


def _cmd_verify(args: argparse.Namespace) -> int:
    from mperror.train.store import check_study
    from mperror.verify import plan, verify

    setting = "full" if args.full else "quick"
    seeds = _seeds(args.seeds)
    iterations = _iterations(args.iterations)
    _check_device(args.device)
    # every argument checked before --out is made (a refused one leaves no directory behind)
    configs = check_study(
        plan(
            setting, seeds=seeds, problems=args.problems, device=args.device, iterations=iterations
        )
    )
    if args.out.strip():
        _check_replacements(configs, Path(args.out) / "runs", args.replace)
    out = _out(args.out)
    print(f"mperror verify ({setting}) -> {out}")
    claims = verify(
        out,
        setting,
        seeds=seeds,
        problems=args.problems,
        device=args.device,
        iterations=iterations,
        progress=not args.no_progress,
        log=True,
        replace=args.replace,
    )
    _print_claims(claims, out)
    return 0


def _run_configs(args: argparse.Namespace) -> list:
    """``run``'s configs, each policy checked and named by its ``--policy/-p`` spelling."""
    from mperror import problems
    from mperror.train import configs_for
    from mperror.train.precision import parse
    from mperror.train.store import check_study
    from mperror.train.trainer import check_config

    seeds = _seeds(args.seeds) or (0,)
    iterations = _iterations(args.iterations)
    with_modes = [n for n in problems.names() if hasattr(problems.get(n), "check_model_precision")]
    for label in args.policy:
        policy, slash, model = label.partition("/")
        try:
            parse(policy, backend=args.backend)
        except ValueError as error:
            raise ValueError(f"--policy/-p: {error}") from None
        if slash and args.problem not in with_modes:
            raise ValueError(
                f"--policy/-p {label!r}: the '/{model}' part sets the model's own precision, "
                f"which only {', '.join(with_modes)} have; {args.problem!r} has none, so give "
                f"the policy alone ({policy!r})"
            )
    _check_device(args.device)
    configs = configs_for(
        args.problem,
        args.policy,
        seeds,
        size=args.size,
        device=args.device,
        backend=args.backend,
        iterations=iterations,
        optimizer=args.optimizer,
    )
    named: dict[str, str] = {}
    for k, label in enumerate(args.policy):
        config = configs[k * len(seeds)]  # configs_for: policy by policy, every seed
        try:
            check_config(config)
        except ValueError as error:
            raise ValueError(f"--policy/-p {label!r}: {error}") from None
        twin = named.setdefault(config.run_id.removesuffix(f"-seed{config.seed}"), label)
        if len(named) != k + 1:
            raise ValueError(
                f"--policy/-p names one run twice: {twin!r} and {label!r} are both "
                f"{config.run_id!r}; give each policy once"
            )
    return check_study(configs)


def _cmd_run(args: argparse.Namespace) -> int:
    from mperror.report import write_report
    from mperror.train import run_study

    configs = _run_configs(args)
    _check_replacements(configs, args.out, args.replace)  # before --out is made or written
    out = _out(args.out)
    runs = run_study(configs, out, replace=args.replace, progress=not args.no_progress, log=True)
    write_report(runs, out, setting=args.size)
    print(f"{len(runs)} runs in {out}; report: {out / 'report.md'}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from mperror.report import write_report
    from mperror.train import load_runs
    from mperror.train.store import unfinished_runs

    root = Path(args.run_dir)
    runs_dir = root / "runs" if (root / "runs").is_dir() else root
    runs = load_runs(runs_dir)
    unfinished = unfinished_runs(runs_dir)
    if not runs:
        also = f" ({len(unfinished)} unfinished: {', '.join(unfinished)})" if unfinished else ""
        raise ValueError(f"no finished run under {str(runs_dir)!r}{also}")
    sizes = sorted({r.summary.size for r in runs})
    if args.size is not None:
        runs = [r for r in runs if r.summary.size == args.size]
        if not runs:
            raise ValueError(f"no finished run of size {args.size!r} under {str(runs_dir)!r}")
        sizes = [args.size]
    elif len(sizes) > 1:  # medians over two sizes would mix two experiments
        raise ValueError(
            f"{str(runs_dir)!r} holds runs of sizes {', '.join(sizes)}: pass --size to judge one"
        )
    from mperror.report.claims import check_comparable, check_current
    from mperror.train.store import check_directory

    check_comparable(runs)  # refused before the FNO sweep below spends any time
    check_current(runs)
    check_directory(root, "RUN_DIR")  # the report is written there
    extra, figures = [], {}
    if runs_dir != root:  # a verify directory: its report also judges the FNO bounds
        from mperror.report.fno_sweep import fno_claims

        extra, figures = fno_claims(root, full=sizes == ["full"])
    claims = write_report(
        runs,
        root,
        setting=", ".join(sizes),
        extra=extra,
        extra_figures=figures,
        unfinished=unfinished,
    )
    for name, state in unfinished.items():
        print(f"  not finished, not judged: {name}: {state}")
    _print_claims(claims, root)
    return 0


def _training_options(p: argparse.ArgumentParser, default_seeds: str) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seeds", help=f"seeds, e.g. 0,1,2 or 0-9 (default: {default_seeds})")
    p.add_argument(
        "--iterations",
        help=f"override every problem's iteration count (1 to {_MOST_ITERATIONS})",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="train again a finished run of the same run id that was asked for with other "
        "settings or on an older problem revision (refused without it); it stays until its "
        "replacement finishes",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mperror",
        description="What lower precision does to scientific ML, with proof and with measurement.",
    )
    parser.add_argument("--version", action="version", version=f"mperror {mperror.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from mperror.verify import STUDIES

    p_verify = sub.add_parser("verify", help="train the studies and write the claims report")
    p_verify.add_argument("--full", action="store_true", help="the papers' sizes, ten seeds")
    p_verify.add_argument("--out", default="mperror-verify", help="output directory")
    p_verify.add_argument(
        "--problems",
        nargs="+",
        choices=list(STUDIES),
        help="train and judge only these studies (default: all); `mperror report OUT --size "
        "full` judges every study trained into OUT so far",
    )
    _training_options(p_verify, "0 quick, 0-9 with --full")
    p_verify.set_defaults(func=_cmd_verify)

    from mperror.problems import names as problem_names
    from mperror.train.optim import OPTIMIZERS
    from mperror.train.precision import BACKENDS, examples

    p_run = sub.add_parser("run", help="train one problem under several policies and seeds")
    p_run.add_argument("problem", choices=problem_names())
    p_run.add_argument(
        "--policy",
        "-p",
        nargs="+",
        default=["fp32", "mixed-fp16"],
        help=f"policies, e.g. {' '.join(examples())} pure-e4m3fn mixed-e5m2",
    )
    p_run.add_argument("--size", default="quick", choices=["quick", "full"])
    p_run.add_argument("--backend", default="auto", choices=BACKENDS)
    p_run.add_argument("--out", default="runs", help="output directory")
    p_run.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        help="adam (torch's) or adam-keras (epsilon where Keras puts it); default: the problem's",
    )
    _training_options(p_run, "0")
    p_run.set_defaults(func=_cmd_run)

    p_report = sub.add_parser("report", help="judge and redraw from stored runs")
    p_report.add_argument(
        "run_dir",
        help="a directory written by verify or run (the runs of a problem must differ in policy, "
        "seed, backend and model precision alone)",
    )
    p_report.add_argument(
        "--size", choices=["quick", "full"], help="judge the runs of this size (needed when both)"
    )
    p_report.set_defaults(func=_cmd_report)

    p_formats = sub.add_parser("formats", help="list the preset formats")
    p_formats.set_defaults(func=_cmd_formats)

    p_round = sub.add_parser("round", help="round numbers to a format")
    p_round.add_argument("values", nargs="+", type=float, metavar="X")
    # argparse takes "-1e-9" and "-inf" for options (only "-1.5"-like strings for numbers): widen
    # this parser's test for a negative number (it has no option that looks like one).
    p_round._negative_number_matcher = re.compile(
        r"^-(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^-(?:inf|infinity|nan)$", re.IGNORECASE
    )
    p_round.add_argument("--format", "-f", default="fp16", help="a preset name (default fp16)")
    p_round.add_argument(
        "--mode", "-m", default="nearest_even", choices=[m.value for m in RoundMode]
    )
    p_round.add_argument("--seed", type=int, default=0, help="seed of the stochastic modes")
    p_round.set_defaults(func=_cmd_round)
    return parser


class _Terminated(Exception):
    """SIGTERM, raised in the main thread so that atomic writes unwind as for Ctrl-C."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises no second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a stdout without a file descriptor
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    kept = "finished runs are kept, and running the same command again resumes"
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed stdout (`| head`) raises here, not at interpreter exit
        return code
    except BrokenPipeError:  # the reader of stdout went away: stop quietly, as `cat` does
        _quiet_stdout()
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by a closed pipe
    except ValueError as error:  # bad user input reaches the user as one clear line
        print(f"mperror {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mperror {args.command}: interrupted; {kept}", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"mperror {args.command}: terminated (SIGTERM); {kept}", file=sys.stderr)
        return 143
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
