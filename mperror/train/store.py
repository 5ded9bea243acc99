"""Run directories: every run's config, trace and summary on disk, written atomically.

Layout under a study's root::

    ROOT/RUN_ID/trace.partial.csv  the trace so far, while the run trains (rewritten at every
                                   evaluation; removed when the run finishes)
    ROOT/RUN_ID/request.json       the RunConfig as asked for, and the problem's revision
    ROOT/RUN_ID/config.json        the resolved RunConfig: every default filled in
    ROOT/RUN_ID/trace.csv          one row per step
    ROOT/RUN_ID/summary.json       written last: its presence marks the run finished

Every file is written to a temporary name in the same directory and moved into place with
:func:`os.replace`, so an interrupted run leaves either the old file or the new one, never half
of one. :func:`run_study` skips runs whose ``summary.json`` exists for the same request (the
config with its policy spelt as :func:`~mperror.train.precision.parse` names it, so ``FP32``
and ``mixed-fp32`` resume a run asked for as ``fp32``) and the same problem revision
(:class:`mperror.problems.Problem`), so an interrupted sweep resumes where it stopped. A finished
run of the same run id but another request (another setting, or an older definition of its
problem) is refused by name, with the fields that differ, before anything trains: finished
results are never replaced by accident. With ``replace=True`` it is trained again, and the
finished run stays in place, whole, until the new run has finished training and its files are
written: interrupting the new one loses nothing that was finished (the files are swapped in by
renames with interrupts held back; see :func:`_swap_in`). :func:`unfinished_runs` names the run
directories that hold no finished run, or an interrupted replacement of one.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mperror import problems
from mperror.train.config import RunConfig
from mperror.train.precision import parse
from mperror.train.summary import RunSummary
from mperror.train.trace import COLUMNS, Trace
from mperror.train.trainer import check_config, progress_bar, train

__all__ = [
    "StoredRun",
    "check_directory",
    "check_study",
    "configs_for",
    "load_run",
    "load_runs",
    "refuse_replacements",
    "replaced_runs",
    "run_study",
    "unfinished_runs",
    "write_atomic",
]

PARTIAL_TRACE = "trace.partial.csv"


def _swap_in(path: Path, files: dict[str, str]) -> None:
    """Write ``files`` (name -> text) into run directory ``path``, replacing a finished run
    there only at the end: each is written and synced under a staging name, then the old
    ``summary.json`` is removed and the staged files renamed into place, ``summary.json``
    last. The renames run with SIGINT and SIGTERM held back (POSIX), so an interrupt leaves
    the old run whole or the new one; only a crash of the machine within those few renames can
    leave neither."""
    staged = {name: path / f".{name}.staged" for name in files}
    try:
        for name, text in files.items():
            write_atomic(staged[name], text)
        held = {signal.SIGINT, signal.SIGTERM}
        blocking = hasattr(signal, "pthread_sigmask")
        if blocking:
            previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            (path / "summary.json").unlink(missing_ok=True)
            for name in files:
                os.replace(staged[name], path / name)
        finally:
            if blocking:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    finally:
        for file in staged.values():
            file.unlink(missing_ok=True)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename (permissions
    as a plain ``open`` would give: ``0o666`` less the umask, not mkstemp's ``0o600``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class StoredRun:
    """A finished run read back from its directory.

    Attributes:
        path: the run's directory.
        config: the resolved config (``config.json``).
        trace, summary: ``trace.csv`` and ``summary.json``.
        problem_revision: the revision of its problem it was trained on (``request.json``);
            ``None`` where the directory records none (written before revisions were).
    """

    path: Path
    config: RunConfig
    trace: Trace
    summary: RunSummary
    problem_revision: int | None = None


def load_run(path: str | os.PathLike) -> StoredRun:
    """The finished run in directory ``path``; ValueError if it did not finish."""
    path = Path(path)
    if not (path / "summary.json").is_file():
        raise ValueError(f"{path} holds no finished run (no summary.json)")
    name = "config.json"
    try:
        config = RunConfig.from_dict(json.loads((path / name).read_text()))
        name = "trace.csv"
        trace = Trace.from_csv((path / name).read_text())
        missing = [column for column in COLUMNS if column not in trace.columns]
        if missing:  # the report reads every one of them
            raise ValueError(f"it has no column {', '.join(map(repr, missing))}")
        name = "summary.json"
        summary = RunSummary.from_dict(json.loads((path / name).read_text()))
        if len(trace) != summary.steps:  # e.g. a trace.csv cut at a row boundary
            name = "trace.csv"
            raise ValueError(
                f"it holds {len(trace)} step rows where summary.json's field 'steps' says "
                f"{summary.steps} (a file cut short, or the two files of different runs)"
            )
        name = "request.json"
        request = path / name
        revision = None
        if request.is_file():
            revision = json.loads(request.read_text()).get("problem_revision")
    # JSONDecodeError is a ValueError; a field of the wrong JSON type (null for a mapping) gives
    # TypeError or AttributeError
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise ValueError(f"{path / name} cannot be read as a run's {name}: {error}") from error
    return StoredRun(
        path=path, config=config, trace=trace, summary=summary, problem_revision=revision
    )


def load_runs(root: str | os.PathLike) -> list[StoredRun]:
    """Every finished run under ``root`` (sorted by directory name)."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"run directory {str(root)!r} is a file, not a directory")
    if not root.is_dir():
        raise ValueError(f"run directory {str(root)!r} does not exist")
    return [load_run(p) for p in sorted(root.iterdir()) if (p / "summary.json").is_file()]


def unfinished_runs(root: str | os.PathLike) -> dict[str, str]:
    """The run directories under ``root`` that :func:`load_runs` does not judge as finished, or
    that hold an interrupted replacement of a finished run: directory name -> what state it is
    in (sorted by name). A directory with a ``trace.partial.csv`` was interrupted while
    training; one with neither it nor a ``summary.json`` never finished."""
    root = Path(root)
    if not root.is_dir():
        return {}
    out = {}
    for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        finished = (path / "summary.json").is_file()
        partial = path / PARTIAL_TRACE
        if partial.is_file():
            try:
                steps = f"{len(Trace.from_csv(partial.read_text()))} steps"
            except (OSError, ValueError, UnicodeDecodeError):
                steps = "unreadable"
            state = f"interrupted while training ({PARTIAL_TRACE}: {steps})"
            if finished:
                state += "; the finished run it was to replace is the one judged"
            out[path.name] = state
        elif not finished:
            out[path.name] = "not finished (no summary.json)"
    return out


def check_directory(path: str | os.PathLike, name: str) -> Path:
    """``path`` as a directory that exists (made, with its parents, if it did not) and takes a
    new file, else a ValueError naming the argument ``name`` (``"root"``, ``"--out"``) and why.

    Checked by writing (a temporary file, removed at once) rather than with :func:`os.access`,
    which says yes to root for a read-only file system or ``/proc``.
    """
    text = os.fspath(path)
    if not str(text).strip():
        raise ValueError(f"{name} must name a directory, got an empty path {text!r}")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name} {text!r} is a file; it must be a directory (new or existing)")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ValueError(
            f"{name} {text!r} lies below {str(blocker)!r}, which is a file: it must be a "
            "directory (new or existing)"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ValueError(
            f"{name} {text!r} cannot be written: {error.strerror or error} (choose a directory "
            "this user can create and write)"
        ) from None
    return path


def _request(config: RunConfig) -> dict[str, object]:
    """What ``request.json`` holds: the config as asked for and its problem's revision."""
    return {**config.to_dict(), "problem_revision": problems.get(config.problem).revision}


def _normalised(request: dict[str, object]) -> dict[str, object]:
    """``request`` with its policy as :func:`parse` names it (``"FP32"`` and ``"mixed-fp32"``
    are ``"fp32"``): two requests that differ in spelling alone are the same request. An
    ``init_scale`` on a policy without a scaler (older versions accepted and ignored it) is
    ``None``."""
    try:
        policy, backend = request["policy"], request.get("backend", "auto")
        parsed = parse(policy, backend=backend)  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):  # a damaged request.json: compared as it stands
        return dict(request)
    out = {**request, "policy": parsed.name}
    if not parsed.grad_scaler and "init_scale" in out:  # no scaler: ignored (older versions)
        out["init_scale"] = None
    return out


def _difference(path: Path, config: RunConfig) -> str | None:
    """How the finished run in ``path`` differs from the request ``config``, as the fields
    that differ (``None``: it is that request, or ``path`` holds no finished run)."""
    if not (path / "summary.json").is_file():
        return None
    try:
        stored = json.loads((path / "request.json").read_text())
    except FileNotFoundError:
        return "request.json (missing)"
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError included
        return f"request.json (unreadable: {error})"
    if not isinstance(stored, dict):
        return "request.json (not a JSON object)"
    stored, asked = _normalised(stored), _normalised(_request(config))
    differ = [k for k in sorted(stored.keys() | asked.keys()) if stored.get(k) != asked.get(k)]
    if not differ:
        return None
    return ", ".join(
        f"{k} {stored.get(k)!r} (finished) vs {asked.get(k)!r} (asked)" for k in differ
    )


def replaced_runs(configs: Iterable[RunConfig], root: str | os.PathLike) -> dict[str, str]:
    """The finished runs under ``root`` that ``configs`` would replace: run id -> how the
    finished run's request differs from the new one (the fields, ``problem_revision`` among
    them). Empty when ``root`` is not a directory yet."""
    if not os.fspath(root).strip():  # no directory at all (check_directory refuses it)
        return {}
    root = Path(root)
    if not root.is_dir():
        return {}
    out = {}
    for config in configs:
        difference = _difference(root / config.run_id, config)
        if difference is not None:
            out[config.run_id] = difference
    return out


def refuse_replacements(
    configs: Iterable[RunConfig],
    root: str | os.PathLike,
    *,
    keep: str = "choose another root",
    again: str = "pass replace=True",
) -> None:
    """A ValueError naming the finished runs under ``root`` that ``configs`` would replace
    (:func:`replaced_runs`) and how each differs, if there are any; ``keep`` and ``again`` say
    how to keep them or to train them again."""
    found = replaced_runs(configs, root)
    if found:
        detail = "; ".join(f"{run_id!r} differs in {how}" for run_id, how in found.items())
        raise ValueError(
            f"{os.fspath(root)!r} holds {len(found)} finished run(s) that this request would "
            f"replace: {detail}. To keep them, {keep}; to train them again with this request, "
            f"{again} (each finished run stays until its replacement finishes)"
        )


def check_study(configs: Iterable[RunConfig]) -> list[RunConfig]:
    """``configs`` as a list, each checked (:func:`check_config`: its device exists, its problem
    takes its model precision) and their run ids distinct; TypeError or ValueError before
    anything is made or trained."""
    configs = list(configs)
    for c in configs:
        if not isinstance(c, RunConfig):
            raise TypeError(f"configs must hold RunConfig objects, got {type(c).__name__}")
    for c in configs:
        check_config(c)
    ids = [c.run_id for c in configs]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate is not None:
        raise ValueError(f"two configs share the run id {duplicate!r}")
    return configs


def run_study(
    configs: Iterable[RunConfig],
    root: str | os.PathLike,
    *,
    replace: bool = False,
    progress: bool = False,
    log: bool = False,
) -> list[StoredRun]:
    """Run every config into ``root/RUN_ID`` and return the stored runs, in the given order.

    A run whose directory already holds a ``summary.json`` for the same request (the policy
    compared as :func:`parse` names it) and the same revision of its problem is not run again
    (resume); an unfinished run in the way is trained again. A finished run of another request
    under the same run id (another setting, or an older revision of its problem) is refused
    (:func:`replaced_runs` says how they differ) unless ``replace``; so are two configs with
    the same run id (:func:`check_study`) and a ``root`` that cannot be a writable directory
    (:func:`check_directory`): all before any run starts, and the first two before ``root`` is
    made.

    Args:
        configs: the runs (typically one per policy and seed).
        root: the study directory.
        replace: train again a finished run of another request with the same run id (it stays
            in place until its replacement finishes).
        progress: progress bars (one per run, and one over the runs).
        log: print one line per run (skipped, or finished with its test error).
    """
    configs = check_study(configs)
    if not replace:
        refuse_replacements(configs, root)
    in_the_way = [Path(root, c.run_id, "summary.json") for c in configs]
    blocker = next((p for p in in_the_way if p.exists() and not p.is_file()), None)
    if blocker is not None:  # found only after training, when the new summary is written
        raise ValueError(f"{str(blocker)!r} is not a file: remove it, then run the study again")
    root = check_directory(root, "root")
    done: list[StoredRun] = []
    for config in progress_bar(configs, desc="runs", disable=not progress or len(configs) < 2):
        path = root / config.run_id
        if (path / "summary.json").is_file() and _difference(path, config) is None:
            done.append(load_run(path))
            if log:
                print(f"  {config.run_id}: finished earlier, kept")
            continue

        def checkpoint(resolved: RunConfig, trace: Trace, path: Path = path) -> None:
            write_atomic(path / PARTIAL_TRACE, trace.to_csv())

        result = train(config, progress=progress, checkpoint=checkpoint)
        # Only now is a finished run of another request in this directory replaced: the new
        # files are written (and synced) under staging names first, then swapped in.
        _swap_in(
            path,
            {
                "request.json": _json(_request(config)),
                "config.json": _json(result.config.to_dict()),
                "trace.csv": result.trace.to_csv(),
                "summary.json": _json(result.summary.to_dict()),  # last: marks it finished
            },
        )
        (path / PARTIAL_TRACE).unlink(missing_ok=True)
        done.append(load_run(path))
        if log:
            s = result.summary
            print(
                f"  {config.run_id}: {s.steps} steps, best test error {s.best_test_error:.3e}, "
                f"{s.seconds_per_step * 1e3:.1f} ms/step"
            )
    return done


def configs_for(
    problem: str, policies: Sequence[str], seeds: Sequence[int], **settings: object
) -> list[RunConfig]:
    """One :class:`RunConfig` per (policy, seed), every other setting shared (``init_scale``
    by the ``+scaler`` policies only, the others having no loss scale).

    A policy may carry the model's own precision after a slash, ``"fp32/half+tanh"`` being
    ``policy="fp32", model_precision="half+tanh"`` (the run's label, see
    :attr:`RunSummary.label`).

    >>> [c.run_id for c in configs_for("fno-burgers", ["fp32/half+tanh"], [0])]
    ['fno-burgers-quick-fp32-half_tanh-seed0']
    """
    out = []
    for label in policies:
        policy, slash, model = label.partition("/")
        extra = {"model_precision": model} if slash else {}
        mine = dict(settings)
        if "init_scale" in mine and not parse(policy).grad_scaler:
            del mine["init_scale"]
        out += [
            RunConfig(problem=problem, policy=policy, seed=seed, **extra, **mine)  # type: ignore[arg-type]
            for seed in seeds
        ]
    return out
