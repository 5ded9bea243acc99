"""The claims ``mperror verify`` checks, each judged from stored runs by a criterion fixed here.

Every criterion (a factor, a share) is a module constant, stated before any run: a claim that
does not reproduce on the machine at hand is reported as a finding, never tuned away. With
several seeds, a policy's number is the median over its seeds. Additions made after seeing
runs, which the report states: the error ratios compare medians over the seeds run in both
precisions; fp16-fails and mixed-matches count only seeds where float32 trained
(``TRAINED_MAX``), the FNO accuracy and super-resolution claims only modes whose full-precision
twin trained, and a mixed run that diverged counts as infinitely far from float32; and a
critical-zone seed that never entered is undecided when its run was too short to tell (asked
for fewer steps than the paper's run, ``CRITICAL_ZONE_STEPS``, or float32 did not train on that
seed or has no run there); one that diverged counts against the claim.

Runs are judged together only when they differ in :data:`SWEPT_FIELDS` alone
(:func:`check_comparable`): runs of one problem trained with other settings or on another
revision of the problem are refused, never pooled. ``mperror report`` also refuses runs of a
revision other than the current code's (:func:`check_current`), as training refuses to resume
them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from mperror import problems
from mperror._records import Record
from mperror.train.store import StoredRun
from mperror.train.summary import CRITICAL_WINDOW, delta_comparisons

__all__ = [
    "CLAIMS",
    "CRITICAL_ZONE_RUNS",
    "CRITICAL_ZONE_STEPS",
    "FAIL_FACTOR",
    "FNO_PREFIXES",
    "FNO_TWINS",
    "FROZEN_FP32_MAX",
    "FROZEN_MIN",
    "FROZEN_MIN_STEPS",
    "MATCH_FACTOR",
    "OPTIONAL_CLAIMS",
    "SWEPT_FIELDS",
    "TRAINED_MAX",
    "Claim",
    "check_comparable",
    "check_current",
    "evaluate",
]

#: "Mixed precision matches float32": the mixed run's best test error is at most this many times
#: float32's.
MATCH_FACTOR = 2.0
#: "Pure float16 fails": its final test error is at least this many times float32's, on the
#: seeds where float32 trained.
FAIL_FACTOR = 2.0
#: float32 "trained" on a seed when its final relative test error is at most this. Where it did
#: not (a quick run too short to fit), both precisions fail and their ratio says nothing about
#: the other precision. For the FNO claims: the full-precision model's test error at 1x.
TRAINED_MAX = 0.1
#: "Frozen weights far above float32's": float16's unchanged share (last tenth of the run) is at
#: least FROZEN_MIN while float32's is at most FROZEN_FP32_MAX.
FROZEN_MIN = 0.5
FROZEN_FP32_MAX = 0.05
#: ... judged only on runs of at least this many steps (the paper's first figure, 48% frozen,
#: is at iteration 100; a run of a few steps has a "last tenth" of one step or none).
FROZEN_MIN_STEPS = 100
#: The (problem, label) whose runs diffusion.critical-zone judges (and its figure draws).
CRITICAL_ZONE_RUNS = ("diffusion", "mixed-fp16")
#: The paper's run length: its gradient norm stays above the threshold "for about the first 500
#: of 2,000 iterations". A seed that never entered the zone counts against the claim only in a
#: run at least this long; the quick size's 500 steps end about where the paper's run entered.
CRITICAL_ZONE_STEPS = 2000
#: The :class:`~mperror.train.RunConfig` fields a study sweeps: runs of one problem judged
#: together may differ in these alone. Every other resolved setting (``config.json``:
#: iterations, lr, adam_eps, optimizer, eval_every, size, device, ...) and the problem's
#: revision (``request.json``) must be the same, or a ratio would compare settings, not
#: precisions. ``init_scale`` goes with the policy: a ``+scaler`` run records the loss scale it
#: started from, every other run ``None``.
SWEPT_FIELDS = ("policy", "seed", "backend", "model_precision", "init_scale")


@dataclass(frozen=True, kw_only=True)
class Claim(Record):
    """One row of the report.

    Attributes:
        id: stable identifier, e.g. ``"diffusion.mixed-matches-fp32"``.
        source: the paper the claim comes from.
        claim: the claim in words.
        paper: the paper's number(s), as published.
        measured: mperror's number(s) on this machine.
        criterion: how ``holds`` is decided.
        holds: the verdict; ``None`` when the runs it needs are missing or it cannot be decided
            here (``note`` says why).
        note: what to read into it.
        runs: the run ids it was judged from.
    """

    id: str
    source: str
    claim: str
    paper: str
    measured: str
    criterion: str
    holds: bool | None
    note: str = ""
    runs: tuple[str, ...] = ()


def _settings(run: StoredRun) -> dict[str, object]:
    """What must be shared by the runs of one problem: every field outside SWEPT_FIELDS."""
    shared = {k: v for k, v in run.config.to_dict().items() if k not in SWEPT_FIELDS}
    return {**shared, "problem_revision": run.problem_revision}


def check_comparable(runs: Sequence[StoredRun]) -> None:
    """Raise ValueError unless the claims may judge ``runs`` together.

    Within a problem, two runs must not share a label and a seed (claims would pool them), and
    every run must have the settings of the problem's first run in every field outside
    :data:`SWEPT_FIELDS`, the problem's revision included (a run of an older revision is not
    mixed in). The message names the two runs and the fields in which they differ.
    """
    seen: dict[tuple[str, str, int], str] = {}
    first: dict[str, tuple[str, dict[str, object]]] = {}
    for run in runs:
        s = run.summary
        twin = seen.setdefault((s.problem, s.label, s.seed), s.run_id)
        if twin != s.run_id:  # e.g. another backend or optimizer, same seed
            raise ValueError(
                f"runs {twin!r} and {s.run_id!r} are both {s.problem} {s.label} seed {s.seed}: "
                "claims would pool them; report them from separate directories"
            )
        mine = _settings(run)
        other, theirs = first.setdefault(s.problem, (s.run_id, mine))
        differ = [k for k in sorted(theirs.keys() | mine.keys()) if theirs.get(k) != mine.get(k)]
        if differ:
            detail = ", ".join(f"{k} {theirs.get(k)!r} vs {mine.get(k)!r}" for k in differ)
            raise ValueError(
                f"runs {other!r} and {s.run_id!r} of {s.problem} differ in {detail}: claims "
                f"compare runs that differ in {', '.join(SWEPT_FIELDS)} only, so a ratio "
                "would measure the settings, not the precision; report them from separate "
                "directories, or train them again with one setting"
            )


def check_current(runs: Sequence[StoredRun]) -> None:
    """Raise ValueError if a run of ``runs`` was trained on a revision of its problem other
    than the current code's (:attr:`mperror.problems.Problem.revision`; ``None``: written
    before revisions were recorded), naming the run, its revision and the current one: its
    numbers are not what the problem gives now. :func:`evaluate` does not call it, so runs made
    in memory (without a revision) can still be judged."""
    stale = [r for r in runs if r.problem_revision != problems.get(r.summary.problem).revision]
    if not stale:
        return
    run = stale[0]
    recorded = (
        "no recorded revision (written before revisions were)"
        if run.problem_revision is None
        else f"revision {run.problem_revision!r}"
    )
    others = f" (and {len(stale) - 1} more run(s) of another revision)" if len(stale) > 1 else ""
    raise ValueError(
        f"run {run.summary.run_id!r} was trained on {run.summary.problem} {recorded}, but the "
        f"current definition of {run.summary.problem} is revision "
        f"{problems.get(run.summary.problem).revision}{others}: its numbers are not what the "
        "problem gives now. Train it again into the same directory (the same `mperror run` or "
        "`mperror verify` command with --replace), or report it with the code of its revision"
    )


class _Runs:
    """Stored runs grouped by (problem, label): the label is the policy, followed by the
    model's own precision for models that have one (``"fp32/half+tanh"``). Runs that
    :func:`check_comparable` refuses are refused."""

    def __init__(self, runs: Sequence[StoredRun]) -> None:
        check_comparable(runs)
        self.groups: dict[tuple[str, str], list[StoredRun]] = {}
        for run in runs:
            self.groups.setdefault((run.summary.problem, run.summary.label), []).append(run)

    def get(self, problem: str, policy: str) -> list[StoredRun]:
        return self.groups.get((problem, policy), [])

    def median(self, problem: str, policy: str, field: str) -> float:
        values = [getattr(r.summary, field) for r in self.get(problem, policy)]
        values = [v for v in values if v is not None and not math.isnan(v)]
        return statistics.median(values) if values else math.nan

    def paired(self, problem: str, a: str, b: str) -> list[tuple[int, StoredRun, StoredRun]]:
        """``(seed, run of a, run of b)`` for every seed run under both labels, by seed."""
        first = {r.summary.seed: r for r in self.get(problem, a)}
        second = {r.summary.seed: r for r in self.get(problem, b)}
        return [(s, first[s], second[s]) for s in sorted(first.keys() & second.keys())]

    def ids(self, *keys: tuple[str, str]) -> tuple[str, ...]:
        return tuple(r.summary.run_id for k in keys for r in self.get(*k))


_HAYFORD = "Hayford et al. 2024"
_MICIKEVICIUS = "Micikevicius et al. 2018"


def _missing(claim: Claim, runs: _Runs, *keys: tuple[str, str]) -> Claim | None:
    absent = [f"{p}/{q}" for p, q in keys if not runs.get(p, q)]
    if not absent:
        return None
    return replace(claim, measured="not run", holds=None, note=f"needs runs of {', '.join(absent)}")


def _unpaired(claim: Claim, a: str, b: str) -> Claim:
    return replace(claim, measured="no seed run in both", note=f"run {a} and {b} on the same seeds")


def _median(errors) -> float:
    """The median of test errors, a non-finite one (a diverged run) counted as infinite."""
    return statistics.median(e if math.isfinite(e) else math.inf for e in errors)


def _seeds(pairs: list) -> str:
    return f"{len(pairs)} paired seed{'' if len(pairs) == 1 else 's'}"


def _pair_ids(pairs: list[tuple[int, StoredRun, StoredRun]]) -> tuple[str, ...]:
    return tuple(r.summary.run_id for _, *both in pairs for r in both)


def _beside(value: float, threshold: float, digits: int, *, percent: bool = False) -> str:
    """``value`` with ``digits`` decimals (a percentage with ``percent``), or with as many more
    as it takes to print it on the side of ``threshold`` it lies on: the printed number then
    agrees with a verdict that compares ``value`` with ``threshold``.

    >>> _beside(2.004, 2.0, 2), _beside(1.5, 2.0, 2), _beside(0.49996, 0.5, 1, percent=True)
    ('2.004', '1.50', '49.996%')
    """

    def side(x: float) -> int:
        return (x > threshold) - (x < threshold)

    text = ""
    for d in range(digits, 18):
        text = f"{value:.{d}%}" if percent else f"{value:.{d}f}"
        if not math.isfinite(value):
            return text
        printed = float(text.rstrip("%")) / (100 if percent else 1)
        if side(printed) == side(value):
            return text
    return text


def _sci(value: float, other: float, digits: int = 3) -> str:
    """``value`` in e-notation with ``digits`` decimals, or as many more as it takes for the
    printed number to compare with ``other`` as ``value`` does (two errors that differ in the
    sixth digit print differently; one equal to a threshold prints equal to it).

    >>> _sci(0.0100001, 0.01), _sci(0.10000001, 0.1), _sci(0.5, 0.1)
    ('1.00001e-02', '1.0000001e-01', '5.000e-01')
    """

    def side(x: float) -> int:
        return (x > other) - (x < other)

    text = ""
    for d in range(digits, 18):
        text = f"{value:.{d}e}"
        if not math.isfinite(value) or side(float(text)) == side(value):
            return text
    return text


def _sci_pair(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` in e-notation with the same digits, 3 or as many more as it takes for
    the printed pair to compare as the values do.

    >>> _sci_pair(0.0100001, 0.01)
    ('1.00001e-02', '1.00000e-02')
    """

    def side(x: float, y: float) -> int:
        return (x > y) - (x < y)

    texts = ("", "")
    for d in range(3, 18):
        texts = f"{a:.{d}e}", f"{b:.{d}e}"
        finite = math.isfinite(a) and math.isfinite(b)
        if not finite or side(float(texts[0]), float(texts[1])) == side(a, b):
            return texts
    return texts


def _all(verdicts: Sequence[bool | None]) -> bool | None:
    """One failing verdict decides ("each of"), else one undecided leaves the claim undecided."""
    return False if False in verdicts else (None if None in verdicts else True)


def _float32_trained(
    pairs: list[tuple[int, StoredRun, StoredRun]],
) -> list[tuple[int, StoredRun, StoredRun]]:
    """The ``(seed, float32 run, other run)`` pairs where float32 trained: its final test error
    is at most TRAINED_MAX (a NaN one, a diverged run's, is not)."""
    return [p for p in pairs if p[1].summary.final_test_error <= TRAINED_MAX]


def _float32_untrained(
    claim: Claim, pairs: list[tuple[int, StoredRun, StoredRun]], other: str
) -> Claim:
    """``claim`` left undecided: float32 trained on none of ``pairs``."""
    return replace(
        claim,
        measured="float32 did not train: final test error "
        + ", ".join(
            f"{_sci(a.summary.final_test_error, TRAINED_MAX)} (seed {s})" for s, a, _ in pairs
        ),
        note=f"no seed where float32 ended at or below {TRAINED_MAX:g}: float32 itself did not "
        f"fit, so the ratio says nothing about {other} (train longer)",
        runs=_pair_ids(pairs),
    )


def _some_of(used: list[int], pairs: list) -> str:
    """``"3 paired seeds"``, or ``"2 of 3 paired seeds: [0, 2]"`` when some were left out."""
    if len(used) == len(pairs):
        return _seeds(pairs)
    return f"{len(used)} of {_seeds(pairs)}: {used}"


def _best_error(run: StoredRun) -> float:
    """The run's best test error; infinite for a run that diverged (its best came before)."""
    return math.inf if run.summary.diverged else run.summary.best_test_error


def _mixed_matches(problem: str, paper: str, mixed: str = "mixed-fp16") -> Callable[[_Runs], Claim]:
    def judge(runs: _Runs) -> Claim:
        base = Claim(
            id=f"{problem}.mixed-matches-fp32",
            source=_HAYFORD,
            claim=f"{problem}: {mixed} (fp32 master weights) matches float32 accuracy",
            paper=paper,
            measured="",
            criterion=(
                f"on the seeds run in both where float32's final test error is <= "
                f"{TRAINED_MAX:g}: median best test error of {mixed} <= {MATCH_FACTOR:g} x "
                f"float32's (a {mixed} run that diverged counts as infinite)"
            ),
            holds=None,
        )
        missing = _missing(base, runs, (problem, "fp32"), (problem, mixed))
        if missing:
            return missing
        pairs = runs.paired(problem, "fp32", mixed)
        if not pairs:
            return _unpaired(base, "fp32", mixed)
        trained = _float32_trained(pairs)
        if not trained:
            return _float32_untrained(base, pairs, mixed)
        e32 = _median(_best_error(a) for _, a, _ in trained)
        emix = _median(_best_error(b) for _, _, b in trained)
        ratio = emix / e32
        diverged = [s for s, _, b in trained if b.summary.diverged]
        note = (
            f"{mixed} diverged on seeds {diverged}: counted as infinite error" if diverged else ""
        )
        return replace(
            base,
            measured=(
                f"fp32 {e32:.3e}, {mixed} {emix:.3e} (ratio {_beside(ratio, MATCH_FACTOR, 2)}; "
                f"{_some_of([s for s, _, _ in trained], pairs)})"
            ),
            holds=bool(ratio <= MATCH_FACTOR),
            note=note,
            runs=_pair_ids(trained),
        )

    return judge


def _fp16_fails(problem: str, paper: str) -> Callable[[_Runs], Claim]:
    def judge(runs: _Runs) -> Claim:
        base = Claim(
            id=f"{problem}.fp16-fails",
            source=_HAYFORD,
            claim=f"{problem}: pure float16 training fails (optimisation error)",
            paper=paper,
            measured="",
            criterion=(
                f"on the seeds run in both where float32's final test error is <= "
                f"{TRAINED_MAX:g}: median final test error of fp16 >= {FAIL_FACTOR:g} x float32's "
                f"(a non-finite fp16 error counts as a failure)"
            ),
            holds=None,
        )
        missing = _missing(base, runs, (problem, "fp32"), (problem, "fp16"))
        if missing:
            return missing
        pairs = runs.paired(problem, "fp32", "fp16")
        if not pairs:
            return _unpaired(base, "fp32", "fp16")
        trained = _float32_trained(pairs)
        if not trained:
            return _float32_untrained(base, pairs, "float16")
        e32 = _median(a.summary.final_test_error for _, a, _ in trained)
        e16 = _median(b.summary.final_test_error for _, _, b in trained)
        ratio = e16 / e32
        seeds = [s for s, _, _ in trained]
        return replace(
            base,
            measured=(
                f"fp32 {e32:.3e}, fp16 {e16:.3e} (ratio {_beside(ratio, FAIL_FACTOR, 2)}; "
                f"{len(seeds)} of {_seeds(pairs)}: {seeds})"
            ),
            holds=bool(ratio >= FAIL_FACTOR),
            runs=_pair_ids(trained),
        )

    return judge


def _frozen(problem: str, paper: str) -> Callable[[_Runs], Claim]:
    def judge(runs: _Runs) -> Claim:
        base = Claim(
            id=f"{problem}.fp16-frozen-weights",
            source=_HAYFORD,
            claim=f"{problem}: in pure float16 most weights stop changing (lost updates)",
            paper=paper,
            measured="",
            criterion=(
                f"share of weights unchanged per step, last tenth of the run: fp16 >= "
                f"{FROZEN_MIN:g}, fp32 <= {FROZEN_FP32_MAX:g}; undecided for runs of fewer "
                f"than {FROZEN_MIN_STEPS} steps"
            ),
            holds=None,
        )
        missing = _missing(base, runs, (problem, "fp32"), (problem, "fp16"))
        if missing:
            return missing
        stopped = [
            r.summary
            for policy in ("fp32", "fp16")
            for r in runs.get(problem, policy)
            if r.summary.steps < FROZEN_MIN_STEPS
        ]
        if stopped:
            short = [f"{s.run_id} ({s.steps} steps)" for s in stopped if not s.diverged]
            diverged = [f"{s.run_id} (at step {s.steps})" for s in stopped if s.diverged]
            reasons = []
            if short:
                reasons.append(
                    f"runs shorter than {FROZEN_MIN_STEPS} steps: {', '.join(short)} (train longer)"
                )
            if diverged:
                reasons.append(f"runs that diverged before step {FROZEN_MIN_STEPS}: "
                               + ", ".join(diverged))  # fmt: skip
            return replace(base, measured="not measured", note="; ".join(reasons))
        f32 = runs.median(problem, "fp32", "unchanged_final")
        f16 = runs.median(problem, "fp16", "unchanged_final")
        mixed = runs.median(problem, "mixed-fp16", "unchanged_final")
        extra = "" if math.isnan(mixed) else f", mixed-fp16 {mixed:.1%}"
        text16 = _beside(f16, FROZEN_MIN, 1, percent=True)
        text32 = _beside(f32, FROZEN_FP32_MAX, 1, percent=True)
        return replace(
            base,
            measured=f"fp16 {text16}, fp32 {text32}{extra}",
            holds=bool(f16 >= FROZEN_MIN and f32 <= FROZEN_FP32_MAX),
            runs=runs.ids((problem, "fp32"), (problem, "fp16")),
        )

    return judge


def _weight_norm_jump(runs: _Runs) -> Claim:
    base = Claim(
        id="regression.fp16-weight-norm",
        source=_HAYFORD,
        claim="regression: in pure float16 the weight norm jumps early in training",
        paper="||theta|| from about 6 to about 65 within 100 iterations (fp16)",
        measured="",
        criterion="fp16 ||theta|| at step 100 >= 5 x its initial value, fp32's < 2 x",
        holds=None,
    )
    missing = _missing(base, runs, ("regression", "fp16"), ("regression", "fp32"))
    if missing:
        return missing
    short = [
        r.summary.run_id
        for policy in ("fp16", "fp32")
        for r in runs.get("regression", policy)
        if len(r.trace) <= 100
    ]
    if short:
        return replace(
            base,
            measured="not measured",
            note=f"runs that never reached step 100: {', '.join(short)}",
        )

    def at100(policy: str) -> tuple[float, float]:
        values = [
            (r.trace["theta_norm"][0], r.trace["theta_norm"][100])
            for r in runs.get("regression", policy)
        ]
        return statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)

    (a16, b16), (a32, b32) = at100("fp16"), at100("fp32")
    return replace(
        base,
        # the ratios judged, with the digits their thresholds need (5x and 2x)
        measured=(
            f"fp16 {a16:.2f} -> {b16:.2f} ({_beside(b16 / a16, 5.0, 2)}x), "
            f"fp32 {a32:.2f} -> {b32:.2f} ({_beside(b32 / a32, 2.0, 2)}x)"
        ),
        holds=bool(b16 >= 5 * a16 and b32 < 2 * a32),
        runs=runs.ids(("regression", "fp16"), ("regression", "fp32")),
    )


def _critical_zone(runs: _Runs) -> Claim:
    base = Claim(
        id="diffusion.critical-zone",
        source=_HAYFORD,
        claim=(
            "diffusion: the gradient norm enters Theorem 1's critical zone "
            "(4 + 3 sqrt 2) u L ||theta|| and mixed precision still converges"
        ),
        paper="gradient norm above the threshold for about the first 500 of 2,000 iterations",
        measured="",
        criterion=(
            f"each mixed-fp16 seed: {CRITICAL_WINDOW} consecutive steps below the threshold "
            "(L: secant), and the final test error below the one at the entry step; a seed that "
            f"never entered is undecided when its run was too short to tell (asked for fewer "
            f"steps than the paper's {CRITICAL_ZONE_STEPS:,}), or float32's final test error on "
            f"that seed is above {TRAINED_MAX:g} or unknown (no float32 run); a run that "
            "diverged did not converge"
        ),
        holds=None,
        note=(
            "Theorem 1 covers gradient descent with step 1/L; the runs use Adam and a secant "
            "(lower) estimate of L, as the paper's figure does"
        ),
    )
    problem, label = CRITICAL_ZONE_RUNS
    missing = _missing(base, runs, CRITICAL_ZONE_RUNS)
    if missing:
        return missing
    fp32 = {r.summary.seed: r for r in runs.get(problem, "fp32")}
    parts, verdicts, consulted = [], [], []
    for r in sorted(runs.get(problem, label), key=lambda r: r.summary.seed):
        s = r.summary
        if s.critical_entry_step is not None:
            entry = s.test_error_at_entry
            entry = math.inf if entry is None else entry
            at_entry, at_end = _sci_pair(entry, s.final_test_error)
            parts.append(
                f"seed {s.seed}: entered at step {s.critical_entry_step} of {s.steps}, test error "
                f"{at_entry} there, {at_end} at the end"
                + (" (then diverged)" if s.diverged else "")
            )
            verdicts.append(bool(s.final_test_error < entry))
        elif s.diverged:  # asked for long enough or not, it did not converge
            parts.append(f"seed {s.seed}: diverged at step {s.steps}, never having entered")
            verdicts.append(False)
        elif s.iterations < CRITICAL_ZONE_STEPS:
            parts.append(
                f"seed {s.seed}: undecided, never entered in {s.steps} "
                f"step{'' if s.steps == 1 else 's'}, fewer than the paper's "
                f"{CRITICAL_ZONE_STEPS:,} (whose entry came near step 500)"
            )
            verdicts.append(None)
        elif s.seed not in fp32:
            parts.append(
                f"seed {s.seed}: undecided, never entered in {s.steps} steps, and no float32 "
                "run on that seed tells whether the problem trained"
            )
            verdicts.append(None)
        elif not fp32[s.seed].summary.final_test_error <= TRAINED_MAX:
            e32 = fp32[s.seed].summary.final_test_error
            parts.append(
                f"seed {s.seed}: undecided, never entered in {s.steps} steps, in which float32 "
                f"did not train (final test error {_sci(e32, TRAINED_MAX)})"
            )
            consulted.append(fp32[s.seed].summary.run_id)
            verdicts.append(None)
        else:
            parts.append(f"seed {s.seed}: never entered ({s.steps} steps)")
            verdicts.append(False)
    note = base.note
    if None in verdicts:
        note += (
            "; undecided seeds: runs too short to reach the zone, or without a float32 run "
            "that trained (train longer, and run fp32 beside mixed-fp16)"
        )
    return replace(
        base,
        measured="; ".join(parts),
        holds=_all(verdicts),
        note=note,
        runs=(*runs.ids(CRITICAL_ZONE_RUNS), *consulted),
    )


def _mixed_runs(runs: _Runs) -> list[StoredRun]:
    return [
        r for (_, policy), group in runs.groups.items() if policy.startswith("mixed") for r in group
    ]


def _cosine_bound(runs: _Runs) -> Claim:
    mixed = _mixed_runs(runs)
    base = Claim(
        id="traces.cosine-bound",
        source=_HAYFORD,
        claim="along the mixed-precision traces, 1 - cos(g~, g) <= 2 delta / (g + delta)",
        paper="companion bound of Theorem 1 (reconstructed)",
        measured="",
        criterion="every non-vacuous check (delta < g) of every mixed run",
        holds=None,
        note=(
            "delta = u L ||theta|| models rounding the parameters only, with L the secant "
            "(lower) estimate; the run's gradient also carries arithmetic rounding"
        ),
    )
    if not mixed:
        return replace(base, measured="not run", note="needs mixed-* runs")
    checks = sum(r.summary.cosine_nonvacuous for r in mixed)
    holds = sum(r.summary.cosine_bound_holds for r in mixed)
    vacuous = sum(r.summary.cosine_checks - r.summary.cosine_nonvacuous for r in mixed)
    return replace(
        base,
        measured=f"held at {holds} of {checks} checks ({vacuous} vacuous checks skipped)",
        holds=bool(checks and holds == checks) if checks else None,
        runs=tuple(r.summary.run_id for r in mixed),
    )


def _delta_bound(runs: _Runs) -> Claim:
    mixed = _mixed_runs(runs)
    base = Claim(
        id="traces.gradient-perturbation",
        source=_HAYFORD,
        claim="||g~ - g|| <= delta = u L ||theta|| (Theorem 1's assumption) along mixed traces",
        paper="assumed by Theorem 1 (reconstructed)",
        measured="",
        criterion="every gradient comparison of every mixed run",
        holds=None,
        note=(
            "an observation about the assumption, not the theorem: rounding the arithmetic "
            "(not only the parameters) perturbs g, and the secant L is a lower estimate"
        ),
    )
    if not mixed:
        return replace(base, measured="not run", note="needs mixed-* runs")
    counts = [delta_comparisons(r.trace) for r in mixed]
    checks = sum(c for c, _ in counts)
    holds = sum(h for _, h in counts)
    return replace(
        base,
        measured=f"held at {holds} of {checks} comparisons",
        holds=bool(holds == checks) if checks else None,
        runs=tuple(r.summary.run_id for r in mixed),
    )


def _speed_memory(runs: _Runs) -> Claim:
    base = Claim(
        id="pinn.mixed-speed-memory",
        source=f"{_HAYFORD}; {_MICIKEVICIUS}",
        claim="mixed precision saves memory and time against float32 on a GPU",
        paper="up to 1.75x faster, up to 50% less memory (PINNs); 1.5-2x, ~50% (2018)",
        measured="",
        criterion="on CUDA, every run of both: speed-up > 1 and peak-memory ratio < 1 against "
        "float32 in the same study",
        holds=None,
    )
    rows, verdicts = [], []
    for (problem, policy), group in sorted(runs.groups.items()):
        if not policy.startswith("mixed") or not runs.get(problem, "fp32"):
            continue
        if not _on_cuda(group, runs.get(problem, "fp32")):
            continue
        t32 = runs.median(problem, "fp32", "seconds_per_step")
        m32 = runs.median(problem, "fp32", "peak_memory")
        t = runs.median(problem, policy, "seconds_per_step")
        m = runs.median(problem, policy, "peak_memory")
        rows.append(
            f"{problem} {policy}: {_beside(t32 / t, 1.0, 2)}x speed, memory "
            f"{_beside(m / m32, 1.0, 2)}x"
        )
        verdicts.append(t32 / t > 1 and m / m32 < 1)
    if not rows:
        return replace(
            base,
            measured="not measured",
            note="needs CUDA: on a CPU mixed precision is emulated, so time and memory "
            "say nothing about low-precision hardware",
        )
    return replace(base, measured="; ".join(rows), holds=all(verdicts))


def _on_cuda(*groups: Sequence[StoredRun]) -> bool:
    """Did every run of every group train on CUDA (the only place time and memory mean
    something about low-precision hardware)?"""
    return all(r.summary.device == "cuda" for group in groups for r in group)


# -- Fourier neural operators (Tu et al. 2024): the FNO studies' runs ----------------------

_TU = "Tu et al., ICLR 2024"
#: Reduced-precision FNO runs and the full-precision run (same stabiliser) each is compared with.
FNO_TWINS = (
    ("half+tanh", "full+tanh"),
    ("mixed+tanh", "full+tanh"),
    ("schedule+tanh", "full+tanh"),
)
#: The FNO problems and the prefix of their claims' ids: ``fno-burgers`` is ``verify``'s study
#: (ids ``fno.*``); ``fno-darcy``'s claims (``fno-darcy.*``) are judged when its runs exist.
FNO_PREFIXES = {"fno-burgers": "fno", "fno-darcy": "fno-darcy"}


@dataclass(frozen=True)
class _FNOStudy:
    """One FNO problem's runs: ``value(mode, key)`` is the median over seeds of the summary's
    ``extra[key]`` for run ``fp32/mode``, a NaN value (a diverged run's error) counted as
    infinite; NaN when no run recorded ``key``."""

    runs: _Runs
    problem: str

    def key(self, mode: str) -> tuple[str, str]:
        return (self.problem, f"fp32/{mode}")

    def value(self, mode: str, key: str) -> float:
        values = [
            r.summary.extra[key] for r in self.runs.get(*self.key(mode)) if key in r.summary.extra
        ]
        return _median(values) if values else math.nan

    def per_seed(self, mode: str) -> dict[int, dict[str, float]]:
        """Each seed's metrics for run ``fp32/mode``."""
        return {r.summary.seed: r.summary.extra for r in self.runs.get(*self.key(mode))}

    def unmeasured(self, claim: Claim, modes, keys) -> Claim | None:
        """``claim`` left undecided when some run of ``modes`` lacks one of ``keys``."""
        lacking = sorted(
            {
                r.summary.run_id
                for m in modes
                for r in self.runs.get(*self.key(m))
                if any(k not in r.summary.extra for k in keys)
            }
        )
        if not lacking:
            return None
        return replace(
            claim,
            measured="not measured",
            note=f"runs without {', '.join(keys)} (written by an older mperror? run them "
            f"again): {', '.join(lacking)}",
        )


def _fno_accuracy(problem: str) -> Callable[[_Runs], Claim]:
    def judge(runs: _Runs) -> Claim:
        study = _FNOStudy(runs, problem)
        base = Claim(
            id=f"{FNO_PREFIXES[problem]}.reduced-precision-accuracy",
            source=_TU,
            claim=f"{problem}: an FNO with tanh-stabilised half / mixed spectral convolutions, "
            "or the precision schedule, matches full-precision accuracy",
            paper="little or no accuracy loss (Darcy, Navier-Stokes, ...); schedule 25% half "
            "+ tanh, 50% mixed, 25% full keeps accuracy",
            measured="",
            criterion=f"test error (final weights, own final mode, training resolution) of each "
            f"of {', '.join(m for m, _ in FNO_TWINS)} <= {MATCH_FACTOR:g} x full+tanh's, medians "
            f"over the seeds run in both where full+tanh trained (its error <= {TRAINED_MAX:g})",
            holds=None,
        )
        keys = [study.key(m) for pair in FNO_TWINS for m in pair]
        missing = _missing(base, runs, *dict.fromkeys(keys)) or study.unmeasured(
            base, [m for pair in FNO_TWINS for m in pair], ["test_error_1x"]
        )
        if missing:
            return missing
        rows, verdicts, untrained = [], [], []
        for mode, twin in FNO_TWINS:
            a, b = study.per_seed(mode), study.per_seed(twin)
            paired = sorted(a.keys() & b.keys())  # medians over the seeds run in both
            if not paired:
                rows.append(f"{mode}: no seed run beside {twin}")
                verdicts.append(None)
                continue
            # the full-precision baseline did not train on a seed (a run too short, or NaN):
            # nothing to match there
            seeds = [s for s in paired if b[s]["test_error_1x"] <= TRAINED_MAX]
            if not seeds:
                errors = ", ".join(f"{b[s]['test_error_1x']:.3e}" for s in paired)
                rows.append(f"{mode}: {twin} did not train beside it ({errors})")
                untrained.append(twin)
                verdicts.append(None)
                continue
            e = _median(a[s]["test_error_1x"] for s in seeds)
            e_full = _median(b[s]["test_error_1x"] for s in seeds)
            ratio = e / e_full
            rows.append(
                f"{mode} {e:.3e} vs {twin} {e_full:.3e} (ratio "
                f"{_beside(ratio, MATCH_FACTOR, 2)}; {_some_of(seeds, paired)})"
            )
            verdicts.append(bool(ratio <= MATCH_FACTOR))
        return replace(
            base,
            measured="; ".join(rows),
            holds=_all(verdicts),  # one mode failing decides ("each of"), whatever the others
            note=(
                f"{' and '.join(sorted(set(untrained)))} did not train (test error at 1x above "
                f"{TRAINED_MAX:g} or not finite on every seed run in both): nothing to match "
                "(train longer)"
                if untrained
                else ""
            ),
            runs=runs.ids(*dict.fromkeys(keys)),
        )

    return judge


def _fno_overflow(problem: str, *, stress: bool) -> Callable[[_Runs], Claim]:
    """``stress``: the problem's runs hold an overflow stress test (``stress_*`` metrics)."""
    from mperror.bounds.fft import fft_overflows
    from mperror.models import parse_model_precision

    stress_text = (
        ", and the stress test at N = 2**15 points, where |v| <= 1 guarantees N M <= 65504"
        if stress
        else ""
    )
    kinds = ("overflow_events", "eval_overflow_events") + (
        ("stress_overflow_events",) if stress else ()
    )
    sizes = [("fft_points_max", "spectral_input_max")]  # (N, M) of training and evaluation
    if stress:
        sizes.append(("stress_points", "stress_input_max"))

    def judge(runs: _Runs) -> Claim:
        study = _FNOStudy(runs, problem)
        base = Claim(
            id=f"{FNO_PREFIXES[problem]}.tanh-prevents-overflow",
            source=_TU,
            claim=f"{problem}: half-precision spectral convolutions without a stabiliser "
            "overflow; a tanh pre-activation prevents it",
            paper="plain AMP overflows on FNO; tanh before each spectral convolution prevents "
            "it (loss scaling, clipping and normalisation did not)",
            measured="",
            criterion=f"no overflow event in any +tanh run (training, evaluation at 1x-4x"
            f"{stress_text}), and the half run without tanh overflows somewhere; undecided "
            "when N M <= fmt.max held throughout that run (M its largest FFT input at each "
            "N) and it did not overflow, since its forward FFT, the transform tanh protects, "
            "cannot overflow then",
            holds=None,
        )
        plain = study.key("half")
        modes = dict.fromkeys(m for pair in FNO_TWINS for m in pair)
        stabilised = [study.key(m) for m in modes]
        missing = _missing(base, runs, plain, *stabilised) or study.unmeasured(
            base, ["half", *modes], [*kinds, *(k for pair in sizes for k in pair)]
        )
        if missing:
            return missing

        def events(mode: str) -> float:
            """The most overflow events of any seed ("any run" in the criterion)."""
            seeds = study.per_seed(mode).values()
            return max((math.fsum(extra[k] for k in kinds) for extra in seeds), default=0.0)

        tanh_events = {m: events(m) for m in modes}
        clean = all(v == 0 for v in tanh_events.values())
        overflowed = events("half")
        fmt = parse_model_precision("half")[0].fmt
        checks = {  # every seed's (N, M), the largest N M first
            (extra[n], extra[m]) for extra in study.per_seed("half").values() for n, m in sizes
        }
        known = sorted(
            ((int(n), m) for n, m in checks if math.isfinite(n) and math.isfinite(m)),
            key=lambda c: -c[0] * c[1],
        )
        possible = any(fft_overflows(n, m, fmt) for n, m in known) or len(known) < len(checks)
        measured = (
            f"half without tanh: {_overflow_text(overflowed)}; "
            + ", ".join(f"N M = {n} x {m:.3g} = {_sci(n * m, fmt.max, 2)}" for n, m in known)
            + f" (fp16 max {fmt.max:g}); "
            + ", ".join(f"{m}: {v:g} events" for m, v in tanh_events.items())
        )
        if overflowed > 0 or possible:
            holds: bool | None = clean and overflowed > 0
            note = (
                ""
                if overflowed > 0
                else "N M exceeded fp16's max, so overflow was possible, but no intermediate "
                "reached it (N M is the worst case: the zero mode sum |v_j| reaches it only "
                "when every v_j has one sign)"
            )
        else:
            holds = None if clean else False
            note = (
                "N M <= 65504 at every size this run saw: its forward FFT cannot overflow "
                "(theory/fno-bounds.md), so the claim is not tested here (tanh bounds only "
                "that transform's input; the contraction and inverse FFT after it are not "
                "covered); Tu et al.'s overflow needs larger grids or activations "
                "(fno.fft-overflow checks the condition itself)"
            )
        return replace(
            base,
            measured=measured,
            holds=holds,
            note=note,
            runs=runs.ids(plain, *stabilised),
        )

    return judge


def _overflow_text(events: float) -> str:
    return f"{events:g} overflow event" + ("" if events == 1 else "s")


def _fno_super_resolution(problem: str) -> Callable[[_Runs], Claim]:
    modes = ("full", "full+tanh", *(m for m, _ in FNO_TWINS))
    # each mode's full-precision twin (same stabiliser), whose training decides the mode
    twins = {"full": "full", "full+tanh": "full+tanh", **dict(FNO_TWINS)}

    def judge(runs: _Runs) -> Claim:
        study = _FNOStudy(runs, problem)
        base = Claim(
            id=f"{FNO_PREFIXES[problem]}.super-resolution",
            source=f"{_TU}; Li et al., ICLR 2021",
            claim=f"{problem}: an FNO trained at one resolution evaluates zero-shot at 2x and "
            "4x in every precision mode",
            paper="zero-shot super-resolution (Li et al.); checked per precision (Tu et al.)",
            measured="",
            criterion=f"test error at 4x <= {MATCH_FACTOR:g} x at 1x, same weights and mode, "
            f"for each of {', '.join(modes)}; a mode whose full-precision twin (full, or "
            f"full+tanh for the +tanh modes) did not train (1x error > {TRAINED_MAX:g}) is "
            "undecided",
            holds=None,
        )
        keys = [study.key(m) for m in modes]
        missing = _missing(base, runs, *keys) or study.unmeasured(
            base, modes, [f"test_error_{k}x" for k in (1, 2, 4)]
        )
        if missing:
            return missing
        rows, verdicts = [], []
        untrained = {
            m for m in set(twins.values()) if not study.value(m, "test_error_1x") <= TRAINED_MAX
        }
        for mode in modes:
            e1, e2, e4 = (study.value(mode, f"test_error_{k}x") for k in (1, 2, 4))
            rows.append(f"{mode} {e1:.3e} / {e2:.3e} / {e4:.3e}")
            if twins[mode] in untrained:  # too short a run: every model is as bad at any size
                verdicts.append(None)
            else:
                # A model whose error is not finite does not evaluate at any resolution (inf <=
                # inf held).
                verdicts.append(math.isfinite(e4) and e4 <= MATCH_FACTOR * e1)
        note = ""
        if untrained:
            note = (
                f"{' and '.join(sorted(untrained))} did not train (test error at 1x above "
                f"{TRAINED_MAX:g} or not finite): the modes beside them are undecided (train "
                "longer)"
            )
        return replace(
            base,
            measured="1x / 2x / 4x: " + "; ".join(rows),
            holds=_all(verdicts),
            note=note,
            runs=runs.ids(*keys),
        )

    return judge


def _fno_speed_memory(problem: str) -> Callable[[_Runs], Claim]:
    def judge(runs: _Runs) -> Claim:
        study = _FNOStudy(runs, problem)
        base = Claim(
            id=f"{FNO_PREFIXES[problem]}.speed-memory",
            source=_TU,
            claim=f"{problem}: half / mixed spectral convolutions save GPU memory and time "
            "against full",
            paper="up to 50% less memory, 1.41x to 1.58x throughput (V100, RTX 3090 Ti)",
            measured="",
            criterion="on CUDA, every run of both: speed-up > 1 and peak-memory ratio < 1 "
            "against full+tanh in the same study",
            holds=None,
        )
        full = runs.get(*study.key("full+tanh"))
        if not full or not _on_cuda(full):
            return replace(
                base,
                measured="not measured",
                note="needs CUDA: on a CPU the half spectral convolutions are emulated",
            )
        t0 = runs.median(*study.key("full+tanh"), "seconds_per_step")
        m0 = runs.median(*study.key("full+tanh"), "peak_memory")
        rows, verdicts = [], []
        for mode in ("half+tanh", "mixed+tanh"):
            if not runs.get(*study.key(mode)) or not _on_cuda(runs.get(*study.key(mode))):
                continue
            t = runs.median(*study.key(mode), "seconds_per_step")
            m = runs.median(*study.key(mode), "peak_memory")
            rows.append(
                f"{mode}: {_beside(t0 / t, 1.0, 2)}x speed, memory {_beside(m / m0, 1.0, 2)}x"
            )
            verdicts.append(t0 / t > 1 and m / m0 < 1)
        return replace(
            base, measured="; ".join(rows) or "not run", holds=all(verdicts) if rows else None
        )

    return judge


def _fno_claims(problem: str, *, stress: bool) -> tuple[Callable[[_Runs], Claim], ...]:
    return (
        _fno_accuracy(problem),
        _fno_overflow(problem, stress=stress),
        _fno_super_resolution(problem),
        _fno_speed_memory(problem),
    )


#: The claims in report order, each a function of the stored runs.
CLAIMS: tuple[Callable[[_Runs], Claim], ...] = (
    _mixed_matches("diffusion", "best L2 relative error mixed 1.107e-3 vs fp32 1.126e-3"),
    _mixed_matches("burgers", "L2 relative error mixed 0.045 +- 0.011 vs fp32 0.037 +- 0.010"),
    _mixed_matches("deeponet", "DeepONet trains in mixed precision with a relative-L2 loss"),
    _fp16_fails("regression", "final L2 relative error fp16 0.081 +- 0.026 vs fp32 0.015 +- 0.004"),
    _fp16_fails("burgers", "L2 relative error fp16 0.188 +- 0.050 vs fp32 0.037 +- 0.010"),
    _frozen(
        "regression", "unchanged weights 48% / 79% / 97% at iterations 100 / 1k / 10k (fp32 ~0%)"
    ),
    _frozen("burgers", "pure fp16 stagnates (Hayford et al. attribute it to lost updates)"),
    _weight_norm_jump,
    _critical_zone,
    _cosine_bound,
    _delta_bound,
    _speed_memory,
    *_fno_claims("fno-burgers", stress=True),
)
#: Claims judged only when runs of their problem exist (problems outside ``verify``'s studies).
OPTIONAL_CLAIMS: dict[str, tuple[Callable[[_Runs], Claim], ...]] = {
    "fno-darcy": _fno_claims("fno-darcy", stress=False),
}


def evaluate(runs: Sequence[StoredRun]) -> list[Claim]:
    """Every claim of :data:`CLAIMS` judged from ``runs``, then those of
    :data:`OPTIONAL_CLAIMS` whose problem has runs among ``runs``; ValueError for runs that
    :func:`check_comparable` refuses (a problem's runs trained with other settings)."""
    grouped = _Runs(runs)
    present = {problem for problem, _ in grouped.groups}
    judges = list(CLAIMS)
    for problem, extra in OPTIONAL_CLAIMS.items():
        if problem in present:
            judges.extend(extra)
    return [judge(grouped) for judge in judges]
