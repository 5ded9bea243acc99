"""The claims ``mperror verify`` checks, each judged from stored runs by a criterion fixed here.

Every criterion (a factor, a share) is a module constant, stated before any run: a claim that
does not reproduce on the machine at hand is reported as a finding, never tuned away. With
several seeds, a policy's number is the median over its seeds. Two additions were made after
seeing runs, and the report says so: the error ratios compare medians over the seeds run in
both precisions, and fp16-fails counts only seeds where float32 trained (``TRAINED_MAX``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from mperror._records import Record
from mperror.train.store import StoredRun
from mperror.train.summary import CRITICAL_WINDOW, delta_comparisons

__all__ = [
    "CLAIMS",
    "FAIL_FACTOR",
    "FNO_PREFIXES",
    "FNO_TWINS",
    "FROZEN_FP32_MAX",
    "FROZEN_MIN",
    "MATCH_FACTOR",
    "OPTIONAL_CLAIMS",
    "TRAINED_MAX",
    "Claim",
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
#: float16.
TRAINED_MAX = 0.1
#: "Frozen weights far above float32's": float16's unchanged share (last tenth of the run) is at
#: least FROZEN_MIN while float32's is at most FROZEN_FP32_MAX.
FROZEN_MIN = 0.5
FROZEN_FP32_MAX = 0.05


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


class _Runs:
    """Stored runs grouped by (problem, label): the label is the policy, followed by the
    model's own precision for models that have one (``"fp32/half+tanh"``)."""

    def __init__(self, runs: Sequence[StoredRun]) -> None:
        self.groups: dict[tuple[str, str], list[StoredRun]] = {}
        seen: dict[tuple[str, str, int], str] = {}
        for run in runs:
            key = (run.summary.problem, run.summary.label)
            twin = seen.setdefault((*key, run.summary.seed), run.summary.run_id)
            if twin != run.summary.run_id:  # e.g. another backend or optimizer, same seed
                raise ValueError(
                    f"runs {twin!r} and {run.summary.run_id!r} are both {key[0]} {key[1]} seed "
                    f"{run.summary.seed}: claims would pool them; report them from separate "
                    "directories"
                )
            self.groups.setdefault(key, []).append(run)

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


def _mixed_matches(problem: str, paper: str, mixed: str = "mixed-fp16") -> Callable[[_Runs], Claim]:
    def judge(runs: _Runs) -> Claim:
        base = Claim(
            id=f"{problem}.mixed-matches-fp32",
            source=_HAYFORD,
            claim=f"{problem}: {mixed} (fp32 master weights) matches float32 accuracy",
            paper=paper,
            measured="",
            criterion=(
                f"on the seeds run in both: median best test error of {mixed} <= "
                f"{MATCH_FACTOR:g} x float32's"
            ),
            holds=None,
        )
        missing = _missing(base, runs, (problem, "fp32"), (problem, mixed))
        if missing:
            return missing
        pairs = runs.paired(problem, "fp32", mixed)
        if not pairs:
            return _unpaired(base, "fp32", mixed)
        e32 = _median(a.summary.best_test_error for _, a, _ in pairs)
        emix = _median(b.summary.best_test_error for _, _, b in pairs)
        ratio = emix / e32
        return replace(
            base,
            measured=f"fp32 {e32:.3e}, {mixed} {emix:.3e} (ratio {ratio:.2f}; {_seeds(pairs)})",
            holds=bool(ratio <= MATCH_FACTOR),
            runs=_pair_ids(pairs),
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
        trained = [p for p in pairs if p[1].summary.final_test_error <= TRAINED_MAX]  # not NaN
        if not trained:
            return replace(
                base,
                measured="float32 did not train: final test error "
                + ", ".join(f"{a.summary.final_test_error:.3e} (seed {s})" for s, a, _ in pairs),
                note=f"no seed where float32 ended at or below {TRAINED_MAX:g}: both precisions "
                "failed to fit, so the ratio says nothing about float16 (train longer)",
                runs=_pair_ids(pairs),
            )
        e32 = _median(a.summary.final_test_error for _, a, _ in trained)
        e16 = _median(b.summary.final_test_error for _, _, b in trained)
        ratio = e16 / e32
        seeds = [s for s, _, _ in trained]
        return replace(
            base,
            measured=(
                f"fp32 {e32:.3e}, fp16 {e16:.3e} (ratio {ratio:.2f}; "
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
                f"{FROZEN_MIN:g}, fp32 <= {FROZEN_FP32_MAX:g}"
            ),
            holds=None,
        )
        missing = _missing(base, runs, (problem, "fp32"), (problem, "fp16"))
        if missing:
            return missing
        f32 = runs.median(problem, "fp32", "unchanged_final")
        f16 = runs.median(problem, "fp16", "unchanged_final")
        mixed = runs.median(problem, "mixed-fp16", "unchanged_final")
        extra = "" if math.isnan(mixed) else f", mixed-fp16 {mixed:.1%}"
        return replace(
            base,
            measured=f"fp16 {f16:.1%}, fp32 {f32:.1%}{extra}",
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
        measured=f"fp16 {a16:.2f} -> {b16:.2f}, fp32 {a32:.2f} -> {b32:.2f}",
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
            f"mixed-fp16: {CRITICAL_WINDOW} consecutive steps below the threshold (L: secant), "
            "and the final test error below the one at the entry step"
        ),
        holds=None,
        note=(
            "Theorem 1 covers gradient descent with step 1/L; the runs use Adam and a secant "
            "(lower) estimate of L, as the paper's figure does"
        ),
    )
    missing = _missing(base, runs, ("diffusion", "mixed-fp16"))
    if missing:
        return missing
    parts, verdicts = [], []
    for r in runs.get("diffusion", "mixed-fp16"):
        s = r.summary
        if s.critical_entry_step is None:
            parts.append(f"seed {s.seed}: never entered ({s.steps} steps)")
            verdicts.append(False)
        else:
            parts.append(
                f"seed {s.seed}: entered at step {s.critical_entry_step} of {s.steps}, test error "
                f"{s.test_error_at_entry:.3e} there, {s.final_test_error:.3e} at the end"
            )
            verdicts.append(bool(s.final_test_error < (s.test_error_at_entry or math.inf)))
    return replace(
        base,
        measured="; ".join(parts),
        holds=all(verdicts),
        runs=runs.ids(("diffusion", "mixed-fp16")),
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
        rows.append(f"{problem} {policy}: {t32 / t:.2f}x speed, memory {m / m32:.2f}x")
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
            f"of {', '.join(m for m, _ in FNO_TWINS)} <= {MATCH_FACTOR:g} x full+tanh's",
            holds=None,
        )
        keys = [study.key(m) for pair in FNO_TWINS for m in pair]
        missing = _missing(base, runs, *dict.fromkeys(keys)) or study.unmeasured(
            base, [m for pair in FNO_TWINS for m in pair], ["test_error_1x"]
        )
        if missing:
            return missing
        rows, verdicts, notes = [], [], []
        for mode, twin in FNO_TWINS:
            a, b = study.per_seed(mode), study.per_seed(twin)
            seeds = sorted(a.keys() & b.keys())  # medians over the seeds run in both
            if not seeds:
                rows.append(f"{mode}: no seed run beside {twin}")
                verdicts.append(None)
                continue
            e = _median(a[s]["test_error_1x"] for s in seeds)
            e_full = _median(b[s]["test_error_1x"] for s in seeds)
            rows.append(
                f"{mode} {e:.3e} vs {twin} {e_full:.3e} (ratio {e / e_full:.2f}; {_seeds(seeds)})"
            )
            if not math.isfinite(e_full):  # the baseline did not train: nothing to match
                notes.append(f"{twin}'s error is not finite")
                verdicts.append(None)
            else:
                verdicts.append(bool(e / e_full <= MATCH_FACTOR))
        # one mode failing decides the claim ("each of"), whatever the others' data
        holds = False if False in verdicts else (None if None in verdicts else True)
        return replace(
            base,
            measured="; ".join(rows),
            holds=holds,
            note="; ".join(notes),
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
            + ", ".join(f"N M = {n} x {m:.3g} = {n * m:.3g}" for n, m in known)
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
            f"for each of {', '.join(modes)}",
            holds=None,
        )
        keys = [study.key(m) for m in modes]
        missing = _missing(base, runs, *keys) or study.unmeasured(
            base, modes, [f"test_error_{k}x" for k in (1, 2, 4)]
        )
        if missing:
            return missing
        rows, verdicts = [], []
        for mode in modes:
            e1, e2, e4 = (study.value(mode, f"test_error_{k}x") for k in (1, 2, 4))
            rows.append(f"{mode} {e1:.3e} / {e2:.3e} / {e4:.3e}")
            # A model whose error is not finite does not evaluate at any resolution (inf <= inf).
            verdicts.append(math.isfinite(e4) and e4 <= MATCH_FACTOR * e1)
        return replace(
            base,
            measured="1x / 2x / 4x: " + "; ".join(rows),
            holds=all(verdicts),
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
            rows.append(f"{mode}: {t0 / t:.2f}x speed, memory {m / m0:.2f}x")
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
    :data:`OPTIONAL_CLAIMS` whose problem has runs among ``runs``."""
    grouped = _Runs(runs)
    present = {problem for problem, _ in grouped.groups}
    judges = list(CLAIMS)
    for problem, extra in OPTIONAL_CLAIMS.items():
        if problem in present:
            judges.extend(extra)
    return [judge(grouped) for judge in judges]
