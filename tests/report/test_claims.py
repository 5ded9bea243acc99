"""Claims are judged by their stated criteria; the report carries every claim and figure.

Oracle: manufactured summaries whose numbers sit on either side of each criterion's constant
(mperror.report.claims: MATCH_FACTOR, FAIL_FACTOR, TRAINED_MAX, FROZEN_MIN, FROZEN_FP32_MAX).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from mperror import problems
from mperror.report import CLAIMS, evaluate, write_report
from mperror.report.claims import (
    CRITICAL_ZONE_STEPS,
    FAIL_FACTOR,
    FROZEN_FP32_MAX,
    FROZEN_MIN,
    FROZEN_MIN_STEPS,
    MATCH_FACTOR,
    TRAINED_MAX,
    check_comparable,
    check_current,
)
from mperror.train import RunConfig, StoredRun, Trace, train
from mperror.train.summary import CRITICAL_WINDOW


@pytest.fixture(scope="module")
def template() -> StoredRun:
    result = train(
        RunConfig(problem="regression", policy="mixed-fp16", iterations=12, eval_every=3)
    )
    return StoredRun(path=None, config=result.config, trace=result.trace, summary=result.summary)


def _run(template: StoredRun, problem: str, policy: str, **fields) -> StoredRun:
    fields = {"run_id": f"{problem}-{policy}", **fields}
    summary = replace(template.summary, problem=problem, policy=policy, **fields)
    return replace(template, summary=summary)


def _by_id(claims):
    return {c.id: c for c in claims}


@pytest.mark.parametrize(
    ("factor", "holds"), [(0.99 * MATCH_FACTOR, True), (1.01 * MATCH_FACTOR, False)]
)
def test_mixed_matches_fp32(template, factor, holds) -> None:
    runs = [
        _run(template, "diffusion", "fp32", best_test_error=1e-3, final_test_error=1e-3),
        _run(template, "diffusion", "mixed-fp16", best_test_error=factor * 1e-3),
    ]
    claim = _by_id(evaluate(runs))["diffusion.mixed-matches-fp32"]
    assert claim.holds is holds
    assert claim.runs == ("diffusion-fp32", "diffusion-mixed-fp16")


@pytest.mark.parametrize(
    ("factor", "holds"), [(1.01 * FAIL_FACTOR, True), (0.99 * FAIL_FACTOR, False)]
)
def test_fp16_fails(template, factor, holds) -> None:
    runs = [
        _run(template, "burgers", "fp32", final_test_error=0.04),
        _run(template, "burgers", "fp16", final_test_error=factor * 0.04),
    ]
    assert _by_id(evaluate(runs))["burgers.fp16-fails"].holds is holds


def _seeded(template, policy: str, errors: dict[int, float]) -> list[StoredRun]:
    return [
        _run(template, "burgers", policy, seed=s, final_test_error=e, run_id=f"{policy}-{s}")
        for s, e in errors.items()
    ]


def test_fp16_fails_is_judged_on_the_paired_seeds_where_float32_trained(template) -> None:
    """Seeds 0 and 2 of float32 stall above TRAINED_MAX and seed 4 has no fp16 twin: only seeds
    1 and 3 count, medians 0.03 (fp32) and 0.27 (fp16)."""
    stalled = 1.5 * TRAINED_MAX
    runs = _seeded(template, "fp32", {0: stalled, 1: 0.02, 2: stalled, 3: 0.04, 4: 0.01}) + (
        _seeded(template, "fp16", {0: 0.01, 1: 0.24, 2: 0.01, 3: 0.30})
    )
    claim = _by_id(evaluate(runs))["burgers.fp16-fails"]
    assert claim.holds is True
    assert "fp32 3.000e-02, fp16 2.700e-01 (ratio 9.00; 2 of 4 paired seeds: [1, 3])" in (
        claim.measured
    )
    assert claim.runs == ("fp32-1", "fp16-1", "fp32-3", "fp16-3")


@pytest.mark.parametrize(
    ("fp32_error", "decided"), [(TRAINED_MAX, True), (1.01 * TRAINED_MAX, False)]
)
def test_fp16_fails_is_undecided_where_float32_did_not_train(template, fp32_error, decided) -> None:
    runs = _seeded(template, "fp32", {0: fp32_error}) + _seeded(template, "fp16", {0: 0.9})
    claim = _by_id(evaluate(runs))["burgers.fp16-fails"]
    assert claim.holds is (True if decided else None)
    assert decided or "float32 did not train" in claim.measured


def test_fp16_fails_counts_a_diverged_fp16_run_as_a_failure(template) -> None:
    runs = _seeded(template, "fp32", {0: 0.04, 1: 0.05}) + (
        _seeded(template, "fp16", {0: math.nan, 1: math.nan})
    )
    assert _by_id(evaluate(runs))["burgers.fp16-fails"].holds is True


def test_error_ratios_need_a_seed_run_in_both(template) -> None:
    runs = _seeded(template, "fp32", {0: 0.04}) + _seeded(template, "fp16", {1: 0.5})
    runs += [_run(template, "burgers", "mixed-fp16", seed=2, best_test_error=0.04)]
    claims = _by_id(evaluate(runs))
    for name in ("burgers.fp16-fails", "burgers.mixed-matches-fp32"):
        assert claims[name].holds is None and claims[name].measured == "no seed run in both"


@pytest.mark.parametrize(
    ("f16", "f32", "holds"),
    [
        (FROZEN_MIN, FROZEN_FP32_MAX, True),
        (FROZEN_MIN - 0.01, 0.0, False),
        (0.99, FROZEN_FP32_MAX + 0.01, False),
    ],
)
def test_frozen_weights(template, f16, f32, holds) -> None:
    runs = [
        _run(template, "regression", "fp32", unchanged_final=f32, steps=FROZEN_MIN_STEPS),
        _run(template, "regression", "fp16", unchanged_final=f16, steps=FROZEN_MIN_STEPS),
    ]
    assert _by_id(evaluate(runs))["regression.fp16-frozen-weights"].holds is holds


def test_frozen_weights_of_runs_too_short_are_undecided(template) -> None:
    """A run of a few steps has a "last tenth" of one step or none: its frozen share judged
    the claim (the paper's first figure is at iteration 100)."""
    runs = [
        _run(template, "regression", "fp32", unchanged_final=0.0, steps=FROZEN_MIN_STEPS),
        _run(template, "regression", "fp16", unchanged_final=1.0, steps=3),
    ]
    claim = _by_id(evaluate(runs))["regression.fp16-frozen-weights"]
    assert claim.holds is None and "regression-fp16 (3 steps)" in claim.note


def test_median_over_seeds(template) -> None:
    """Three seeds: the median (not the mean, not the best) decides; seed 3, run in float32
    only, does not count."""
    runs = [
        _run(
            template,
            "diffusion",
            "fp32",
            best_test_error=e,
            final_test_error=TRAINED_MAX,
            seed=s,
            run_id=f"fp32-{s}",
        )
        for s, e in enumerate([1.0, 1.0, 1.0, 1e-9])
    ] + [
        _run(template, "diffusion", "mixed-fp16", best_test_error=e, seed=s, run_id=f"mixed-{s}")
        for s, e in enumerate([1.0, 1.5, math.nan])
    ]
    claim = _by_id(evaluate(runs))["diffusion.mixed-matches-fp32"]
    assert claim.holds is True
    assert "ratio 1.50; 3 paired seeds" in claim.measured  # the NaN counts as the largest
    assert claim.runs == ("fp32-0", "mixed-0", "fp32-1", "mixed-1", "fp32-2", "mixed-2")


def test_critical_zone(template) -> None:
    entered = _run(
        template,
        "diffusion",
        "mixed-fp16",
        critical_entry_step=5,
        test_error_at_entry=1e-2,
        final_test_error=1e-3,
    )
    never = replace(
        entered,
        summary=replace(
            entered.summary,
            critical_entry_step=None,
            steps=CRITICAL_ZONE_STEPS,
            iterations=CRITICAL_ZONE_STEPS,
        ),
    )
    worse = replace(entered, summary=replace(entered.summary, final_test_error=2e-2))
    fp32 = _run(template, "diffusion", "fp32", final_test_error=1e-3)  # it trained there
    assert _by_id(evaluate([entered]))["diffusion.critical-zone"].holds is True
    assert _by_id(evaluate([never, fp32]))["diffusion.critical-zone"].holds is False
    assert _by_id(evaluate([worse]))["diffusion.critical-zone"].holds is False


def _with_deltas(run: StoredRun, errors: list[float], deltas: list[float]) -> StoredRun:
    """``run`` with a trace whose gradient comparisons are ``||g~ - g|| = errors`` against
    ``deltas`` (NaN: no delta, as when the secant L is not yet defined)."""
    trace = Trace()
    for error, delta in zip(errors, deltas, strict=True):
        trace.append({"step": len(trace), "grad_error": error, "delta": delta})
    return replace(run, trace=trace)


def test_trace_bounds_count_checks(template) -> None:
    """Oracle: the comparisons counted by hand. ``ok``: 3 with a delta, all within it. ``bad``:
    3 with a delta, one within, one overflowed (inf) and one NaN; a zero gradient gives no
    cosine but is still a delta comparison."""
    ok = _run(
        template,
        "diffusion",
        "mixed-fp16",
        cosine_checks=4,
        cosine_nonvacuous=3,
        cosine_bound_holds=3,
    )
    ok = _with_deltas(ok, [0.0, 0.5, 0.5, 0.5], [math.nan, 1.0, 1.0, 1.0])
    bad = _run(
        template,
        "burgers",
        "mixed-fp16",
        cosine_checks=1,
        cosine_nonvacuous=1,
        cosine_bound_holds=0,
    )
    bad = _with_deltas(bad, [0.5, math.inf, math.nan, 0.0], [1.0, 1.0, 1.0, math.nan])
    claims = _by_id(evaluate([ok]))
    assert claims["traces.cosine-bound"].holds is True
    assert claims["traces.gradient-perturbation"].holds is True
    assert "3 of 3" in claims["traces.gradient-perturbation"].measured
    claims = _by_id(evaluate([ok, bad]))
    assert claims["traces.cosine-bound"].holds is False
    assert "3 of 4" in claims["traces.cosine-bound"].measured
    assert claims["traces.gradient-perturbation"].holds is False
    assert "4 of 6" in claims["traces.gradient-perturbation"].measured


def test_weight_norm_jump_needs_step_100(template) -> None:
    """The criterion reads ||theta|| at step 100: runs shorter than that leave it undecided
    (the 12-step template), whatever their norms did."""
    runs = [
        _run(template, "regression", "fp16", run_id="r16"),
        _run(template, "regression", "fp32", run_id="r32"),
    ]
    claim = _by_id(evaluate(runs))["regression.fp16-weight-norm"]
    assert claim.holds is None
    assert "r16" in claim.note and "r32" in claim.note


def _norms(run: StoredRun, first: float, at100: float) -> StoredRun:
    trace = Trace()
    for k in range(101):
        trace.append({"step": k, "theta_norm": first if k < 100 else at100})
    return replace(run, trace=trace)


@pytest.mark.parametrize(("jump", "holds"), [(5.0, True), (4.9, False)])
def test_weight_norm_jump_reads_step_100(template, jump, holds) -> None:
    """Oracle: the criterion's factors by hand: fp16's norm at step 100 >= 5x its first,
    float32's below 2x."""
    runs = [
        _norms(_run(template, "regression", "fp16"), 2.0, 2.0 * jump),
        _norms(_run(template, "regression", "fp32"), 2.0, 3.9),
    ]
    assert _by_id(evaluate(runs))["regression.fp16-weight-norm"].holds is holds


def test_two_runs_of_one_label_and_seed_are_refused(template) -> None:
    """Runs that differ only in a setting outside the label (backend, optimizer) would be
    pooled into one median and paired arbitrarily."""
    runs = [
        _run(template, "burgers", "fp16", run_id="burgers-fp16-seed0"),
        _run(template, "burgers", "fp16", run_id="burgers-fp16-adam-keras-seed0"),
    ]
    with pytest.raises(ValueError, match="separate directories"):
        evaluate(runs)


def test_missing_runs_are_undecided_not_failed() -> None:
    claims = evaluate([])
    assert len(claims) == len(CLAIMS)
    assert all(c.holds is None for c in claims)
    assert all(c.measured in ("not run", "not measured") for c in claims)


def test_speed_needs_cuda(template) -> None:
    runs = [_run(template, "diffusion", "fp32"), _run(template, "diffusion", "mixed-fp16")]
    claim = _by_id(evaluate(runs))["pinn.mixed-speed-memory"]
    assert claim.holds is None and "CUDA" in claim.note
    cuda = [replace(r, summary=replace(r.summary, device="cuda")) for r in runs]
    cuda[1] = replace(
        cuda[1],
        summary=replace(
            cuda[1].summary,
            seconds_per_step=cuda[0].summary.seconds_per_step / 2,
            peak_memory=cuda[0].summary.peak_memory / 2,
        ),
    )
    claim = _by_id(evaluate(cuda))["pinn.mixed-speed-memory"]
    assert claim.holds is True and "2.00x speed, memory 0.50x" in claim.measured
    # float32 on the CPU beside a CUDA mixed run: time and memory of different machines
    claim = _by_id(evaluate([runs[0], cuda[1]]))["pinn.mixed-speed-memory"]
    assert claim.holds is None and "CUDA" in claim.note


def test_fno_super_resolution_fails_a_run_with_no_finite_error(template) -> None:
    """A model whose errors are NaN (diverged) does not evaluate at 4x (inf <= 2 inf held)."""
    runs = [_fno(template, m) for m in _FNO_MODES if m != "half+tanh"]
    nan = dict.fromkeys(("test_error_1x", "test_error_2x", "test_error_4x"), math.nan)
    runs.append(_fno(template, "half+tanh", **nan))
    assert _by_id(evaluate(runs))["fno.super-resolution"].holds is False


def test_report_files(template, tmp_path) -> None:
    runs = [_run(template, "diffusion", "fp32"), _run(template, "diffusion", "mixed-fp16")]
    claims = write_report(runs, tmp_path, setting="quick")
    text = (tmp_path / "report.md").read_text()
    for c in claims:
        assert f"**{c.id}**" in text
    data = json.loads((tmp_path / "report.json").read_text())
    assert [c["id"] for c in data["claims"]] == [c.id for c in claims]
    assert len(data["runs"]) == 2
    # the header's torch is the runs' (a GPU run reported on a laptop keeps its own)
    gpu = [replace(r, summary=replace(r.summary, torch_version="2.11.0+cu128")) for r in runs]
    write_report(gpu, tmp_path, setting="quick")
    assert "trained with torch 2.11.0+cu128" in (tmp_path / "report.md").read_text()
    for name in data["figures"].values():
        assert (tmp_path / name).stat().st_size > 1000
        assert f"]({name})" in text
    assert {"critical_zone", "cosine", "loss", "test_error", "frozen"} <= set(data["figures"])
    assert not math.isnan(data["runs"][0]["best_test_error"])


# The FNO study's claims, from manufactured fno-burgers summaries.


def _fno(template: StoredRun, mode: str, **extra: float) -> StoredRun:
    values = {
        "overflow_events": 0.0,
        "eval_overflow_events": 0.0,
        "test_error_1x": 0.05,
        "test_error_2x": 0.05,
        "test_error_4x": 0.05,
        "spectral_input_max": 0.9,
        "fft_points": 64.0,
        "fft_points_max": 256.0,
        "stress_overflow_events": 0.0,
        "stress_input_max": 0.9,
        "stress_points": 32768.0,
        **extra,
    }
    run = _run(template, "fno-burgers", "fp32", model_precision=mode, extra=values)
    return replace(run, summary=replace(run.summary, run_id=f"fno-{mode}"))


_FNO_MODES = ("full", "half", "full+tanh", "half+tanh", "mixed+tanh", "schedule+tanh")


@pytest.mark.parametrize(
    ("factor", "holds"), [(0.99 * MATCH_FACTOR, True), (1.01 * MATCH_FACTOR, False)]
)
def test_fno_reduced_precision_accuracy(template, factor, holds) -> None:
    runs = [_fno(template, m) for m in _FNO_MODES if m != "mixed+tanh"]
    runs.append(_fno(template, "mixed+tanh", test_error_1x=factor * 0.05))
    claim = _by_id(evaluate(runs))["fno.reduced-precision-accuracy"]
    assert claim.holds is holds
    assert "fno-mixed+tanh" in claim.runs


@pytest.mark.parametrize(
    ("plain", "tanh_events", "holds"),
    [
        ({"overflow_events": 3.0, "spectral_input_max": 900.0}, 0.0, True),
        ({"overflow_events": 3.0, "spectral_input_max": 900.0}, 1.0, False),
        # N M = 256 * 300 > 65504 was possible, yet nothing overflowed: a finding.
        ({"spectral_input_max": 300.0}, 0.0, False),
        # N M = 256 * 2 and 32768 * 0.9 <= 65504: the forward FFT cannot overflow: undecided.
        ({"spectral_input_max": 2.0}, 0.0, None),
        # The stress test overflows the unstabilised run: holds.
        ({"stress_overflow_events": 1.0, "stress_input_max": 2.5}, 0.0, True),
        # N M = 32768 * 2.5 > 65504 at the stress test without an overflow: a finding.
        ({"stress_input_max": 2.5}, 0.0, False),
    ],
)
def test_fno_tanh_prevents_overflow(template, plain, tanh_events, holds) -> None:
    """Oracle: the criterion by hand with fft_overflows' condition N M > 65504 (fp16)."""
    runs = [_fno(template, m) for m in _FNO_MODES if m not in ("half", "half+tanh")]
    runs.append(_fno(template, "half", **plain))
    runs.append(_fno(template, "half+tanh", stress_overflow_events=tanh_events))
    claim = _by_id(evaluate(runs))["fno.tanh-prevents-overflow"]
    assert claim.holds is holds
    assert ("forward FFT cannot overflow" in claim.note) is (holds is None)


@pytest.mark.parametrize(("factor", "holds"), [(MATCH_FACTOR, True), (1.01 * MATCH_FACTOR, False)])
def test_fno_super_resolution(template, factor, holds) -> None:
    runs = [_fno(template, m) for m in _FNO_MODES if m != "schedule+tanh"]
    runs.append(_fno(template, "schedule+tanh", test_error_4x=factor * 0.05))
    assert _by_id(evaluate(runs))["fno.super-resolution"].holds is holds


def test_fno_claims_without_their_metrics_are_undecided(template) -> None:
    """A run whose summary lacks a metric (an older mperror wrote it) leaves the claims that
    read it undecided, naming the run; they were judged as failing."""
    runs = [_fno(template, m) for m in _FNO_MODES]
    del runs[-1].summary.extra["test_error_4x"]
    del runs[-1].summary.extra["test_error_1x"]
    claims = _by_id(evaluate(runs))
    for key in ("fno.reduced-precision-accuracy", "fno.super-resolution"):
        assert claims[key].holds is None
        assert "fno-schedule+tanh" in claims[key].note
    assert claims["fno.tanh-prevents-overflow"].holds is None  # N M small: as before


def test_fno_diverged_seed_counts_against_its_mode(template) -> None:
    """Oracle: of three mixed+tanh seeds one diverged (NaN error): the median of (0.05, 0.05,
    inf) is 0.05, of (0.05, inf, inf) infinite; dropping the NaN would give 0.05 for both."""

    def seeds(mode, errors):
        return [
            replace(r, summary=replace(r.summary, seed=k, run_id=f"{mode}-{k}"))
            for k, e in enumerate(errors)
            for r in [_fno(template, mode, test_error_1x=e)]
        ]

    base = [_fno(template, m) for m in _FNO_MODES if m not in ("mixed+tanh", "full+tanh")]
    base += seeds("full+tanh", [0.05, 0.05, 0.05])
    one = _by_id(evaluate(base + seeds("mixed+tanh", [0.05, 0.05, math.nan])))
    two = _by_id(evaluate(base + seeds("mixed+tanh", [0.05, math.nan, math.nan])))
    assert one["fno.reduced-precision-accuracy"].holds is True
    assert two["fno.reduced-precision-accuracy"].holds is False


def test_fno_accuracy_pairs_seeds_and_needs_a_trained_baseline(template) -> None:
    """The ratio compares medians over the seeds run in both modes (the module's rule; half on
    seeds 1-3 against full on seed 0 was judged); a full+tanh that did not train (NaN) leaves
    it undecided (a ratio to inf held)."""

    def at(mode, seed, error):
        run = _fno(template, mode, test_error_1x=error)
        return replace(run, summary=replace(run.summary, seed=seed, run_id=f"{mode}-{seed}"))

    others = [_fno(template, m) for m in _FNO_MODES if m not in ("half+tanh", "full+tanh")]
    disjoint = others + [at("full+tanh", 0, 0.05)] + [at("half+tanh", s, 0.07) for s in (1, 2, 3)]
    claim = _by_id(evaluate(disjoint))["fno.reduced-precision-accuracy"]
    assert claim.holds is None and "half+tanh: no seed run beside full+tanh" in claim.measured
    assert len(claim.runs) == len(set(claim.runs))  # full+tanh was listed once per mode
    # "each of" the three: a mode ten times worse fails the claim, whatever the unpaired one
    failing = [r for r in disjoint if r.summary.run_id != "fno-mixed+tanh"]
    claim = _by_id(evaluate([*failing, at("mixed+tanh", 0, 0.5)]))["fno.reduced-precision-accuracy"]
    assert claim.holds is False
    diverged = [*others, at("full+tanh", 0, math.nan), at("half+tanh", 0, 0.01)]
    claim = _by_id(evaluate(diverged))["fno.reduced-precision-accuracy"]
    assert claim.holds is None and "not finite" in claim.note


def test_fno_overflow_counts_any_seed(template) -> None:
    """The criterion says "no overflow event in any +tanh run": one overflowing seed of three
    fails it (a median over seeds was 0)."""
    runs = [_fno(template, m) for m in _FNO_MODES if m not in ("half", "half+tanh")]
    runs.append(_fno(template, "half", overflow_events=3.0, spectral_input_max=900.0))
    for seed, events in enumerate([0.0, 0.0, 7.0]):
        run = _fno(template, "half+tanh", overflow_events=events)
        runs.append(replace(run, summary=replace(run.summary, seed=seed, run_id=f"ht-{seed}")))
    claim = _by_id(evaluate(runs))["fno.tanh-prevents-overflow"]
    assert claim.holds is False and "half+tanh: 7 events" in claim.measured


def test_fno_claims_need_their_runs(template) -> None:
    claims = _by_id(evaluate([_fno(template, "full")]))
    for key in ("fno.reduced-precision-accuracy", "fno.tanh-prevents-overflow"):
        assert claims[key].holds is None and "needs runs of" in claims[key].note
    assert claims["fno.speed-memory"].holds is None and "CUDA" in claims["fno.speed-memory"].note


# The fno-darcy claims: judged only when its runs exist, from metrics without a stress test.


def _darcy(template: StoredRun, mode: str, **extra: float) -> StoredRun:
    values = {
        "overflow_events": 0.0,
        "eval_overflow_events": 0.0,
        "test_error_1x": 0.1,
        "test_error_2x": 0.1,
        "test_error_4x": 0.1,
        "spectral_input_max": 0.9,
        "fft_points": 256.0,
        "fft_points_max": 4096.0,
        **extra,
    }
    run = _run(template, "fno-darcy", "fp32", model_precision=mode, extra=values)
    return replace(run, summary=replace(run.summary, run_id=f"darcy-{mode}"))


def test_darcy_claims_appear_only_with_darcy_runs(template) -> None:
    assert not any(c.id.startswith("fno-darcy.") for c in evaluate([_fno(template, "full")]))
    claims = _by_id(evaluate([_darcy(template, m) for m in _FNO_MODES]))
    darcy = [k for k in claims if k.startswith("fno-darcy.")]
    assert sorted(darcy) == [
        "fno-darcy.reduced-precision-accuracy",
        "fno-darcy.speed-memory",
        "fno-darcy.super-resolution",
        "fno-darcy.tanh-prevents-overflow",
    ]
    assert claims["fno-darcy.reduced-precision-accuracy"].holds is True
    assert claims["fno-darcy.super-resolution"].holds is True
    assert "darcy-half+tanh" in claims["fno-darcy.reduced-precision-accuracy"].runs
    assert claims["fno.reduced-precision-accuracy"].holds is None  # no fno-burgers runs


@pytest.mark.parametrize(
    ("plain", "holds"),
    [
        # N M = 4096 * 20 > 65504 and the run overflowed: holds.
        ({"overflow_events": 2.0, "spectral_input_max": 20.0}, True),
        # N M = 4096 * 20 > 65504 was possible, yet nothing overflowed: a finding.
        ({"spectral_input_max": 20.0}, False),
        # N M = 4096 * 15 = 61440 <= 65504: overflow impossible, so undecided.
        ({"spectral_input_max": 15.0}, None),
    ],
)
def test_darcy_overflow_without_a_stress_test(template, plain, holds) -> None:
    """Oracle: the criterion by hand with fft_overflows' condition N M > 65504 (fp16), from the
    training and evaluation sizes alone (no stress metrics in the summaries)."""
    runs = [_darcy(template, m) for m in _FNO_MODES if m != "half"]
    runs.append(_darcy(template, "half", **plain))
    claim = _by_id(evaluate(runs))["fno-darcy.tanh-prevents-overflow"]
    assert claim.holds is holds
    assert "stress test" not in claim.criterion and "4096 x" in claim.measured


# Runs judged together share every setting but the swept ones (policy, seed, backend, model
# precision), and the problem's revision.


def _with_config(run: StoredRun, **fields) -> StoredRun:
    return replace(run, config=replace(run.config, **fields))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"iterations": 150}, "iterations 12 vs 150"),
        ({"lr": 0.5}, "lr 0.001 vs 0.5"),
        ({"adam_eps": 1e-8}, "adam_eps 1e-05 vs 1e-08"),
        ({"optimizer": "adam-keras"}, "optimizer 'adam' vs 'adam-keras'"),
    ],
)
def test_runs_with_other_settings_are_refused(template, change, named) -> None:
    """fp16 trained for 150 steps beside fp32's 12 was paired and judged (fp16-fails); every
    resolved setting outside SWEPT_FIELDS must match within a problem."""
    runs = [
        _run(template, "burgers", "fp32", run_id="burgers-fp32-seed0"),
        _with_config(_run(template, "burgers", "fp16", run_id="burgers-fp16-seed0"), **change),
    ]
    with pytest.raises(ValueError, match="burgers-fp32-seed0") as error:
        evaluate(runs)
    assert "burgers-fp16-seed0" in str(error.value) and named in str(error.value)


def test_a_scaler_run_is_judged_beside_runs_without_one(template) -> None:
    """A '+scaler' run's config records the loss scale it chose (512, say), every other run
    None: the initial scale goes with the policy, so the two are still comparable."""
    runs = [
        _run(template, "burgers", "fp32", run_id="burgers-fp32-seed0"),
        _with_config(
            _run(template, "burgers", "mixed-fp16", run_id="burgers-mixed-fp16_scaler-seed0"),
            policy="mixed-fp16+scaler",
            init_scale=512.0,
        ),
    ]
    check_comparable(runs)


def test_runs_of_another_problem_revision_are_refused(template) -> None:
    """The README: runs of an older revision are not mixed in (None: a directory written
    before revisions were recorded)."""
    runs = [
        replace(_run(template, "burgers", "fp32"), problem_revision=1),
        replace(_run(template, "burgers", "fp16"), problem_revision=None),
    ]
    with pytest.raises(ValueError, match=r"burgers-fp32.*burgers-fp16.*problem_revision 1 vs None"):
        evaluate(runs)


@pytest.mark.parametrize("stored", [0, None])
def test_runs_of_a_revision_other_than_the_current_are_refused(template, stored) -> None:
    """Oracle: problems.get("burgers").revision, the current definition. Every run of an older
    revision (or none recorded) was judged without a word: refused, naming the run and both
    revisions; runs of the current revision pass."""
    current = problems.get("burgers").revision
    runs = [
        replace(_run(template, "burgers", policy), problem_revision=current)
        for policy in ("fp32", "fp16")
    ]
    check_current(runs)
    stale = [replace(r, problem_revision=stored) for r in runs]
    recorded = "no recorded revision" if stored is None else f"revision {stored}"
    with pytest.raises(ValueError, match=rf"'burgers-fp32' .*{recorded}.*revision {current}"):
        check_current(stale)


def test_report_lists_unfinished_runs(template, tmp_path) -> None:
    """Oracle: the unfinished runs passed in, each listed as not finished in both files; none
    passed, the JSON says so (an empty list) and the Markdown has no such section."""
    runs = [_run(template, "diffusion", "fp32"), _run(template, "diffusion", "mixed-fp16")]
    unfinished = {"diffusion-quick-mixed-bf16-seed0": "interrupted while training (x)"}
    write_report(runs, tmp_path, setting="quick", unfinished=unfinished)
    text = (tmp_path / "report.md").read_text()
    assert "## Unfinished runs" in text
    assert "- diffusion-quick-mixed-bf16-seed0: interrupted while training (x)" in text
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["unfinished"] == [
        {"run": "diffusion-quick-mixed-bf16-seed0", "state": "interrupted while training (x)"}
    ]
    write_report(runs, tmp_path, setting="quick")
    assert "Unfinished" not in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "report.json").read_text())["unfinished"] == []


def test_swept_fields_and_other_problems_may_differ(template) -> None:
    """Backend and model precision are swept fields; another problem may have its own
    settings."""
    trained = {"best_test_error": 0.05, "final_test_error": 0.05}
    runs = [
        _run(template, "burgers", "fp32", **trained),
        _with_config(_run(template, "burgers", "mixed-fp16", **trained), backend="native"),
        _with_config(_run(template, "diffusion", "fp32"), iterations=150),
    ]
    claim = _by_id(evaluate(runs))["burgers.mixed-matches-fp32"]
    assert claim.holds is True and claim.runs == ("burgers-fp32", "burgers-mixed-fp16")


# Runs too short to decide a claim leave it undecided; a diverged run is not a match.


def test_a_diverged_mixed_run_does_not_match_float32(template) -> None:
    """Oracle: a diverged run's best test error is the one before it diverged (step 0 here, as
    good as float32's); counted as infinite, the ratio is inf > MATCH_FACTOR."""
    runs = [
        _run(template, "diffusion", "fp32", best_test_error=1e-3, final_test_error=1e-3),
        _run(
            template,
            "diffusion",
            "mixed-fp16",
            best_test_error=1e-3,
            final_test_error=math.nan,
            diverged=True,
        ),
    ]
    claim = _by_id(evaluate(runs))["diffusion.mixed-matches-fp32"]
    assert claim.holds is False
    assert "mixed-fp16 inf (ratio inf" in claim.measured and "diverged" in claim.note


@pytest.mark.parametrize(
    ("fp32_error", "decided"), [(TRAINED_MAX, True), (1.01 * TRAINED_MAX, False), (math.nan, False)]
)
def test_mixed_matches_is_undecided_where_float32_did_not_train(
    template, fp32_error, decided
) -> None:
    """Both at a test error of 0.9 after a run too short to fit matched "within 2x"."""
    runs = [
        _run(template, "diffusion", "fp32", best_test_error=0.09, final_test_error=fp32_error),
        _run(template, "diffusion", "mixed-fp16", best_test_error=0.09),
    ]
    claim = _by_id(evaluate(runs))["diffusion.mixed-matches-fp32"]
    assert claim.holds is (True if decided else None)
    assert decided or "float32 did not train" in claim.measured


def _zone(template, steps: int, **fields) -> StoredRun:
    fields = {"iterations": steps, **fields}  # asked for as many steps as it ran, unless given
    return _run(
        template, "diffusion", "mixed-fp16", steps=steps, critical_entry_step=None, **fields
    )


@pytest.mark.parametrize(
    ("steps", "fp32_error", "holds"),
    [
        (CRITICAL_WINDOW - 1, None, None),  # cannot have entered: an entry takes 10 steps
        # shorter than the paper's run, which entered near step 500: a quick run's 500 steps
        # end about there (it had read as "does not hold")
        (500, None, None),
        (CRITICAL_ZONE_STEPS - 1, None, None),
        (CRITICAL_ZONE_STEPS, None, None),  # no float32 run: whether it trains is unknown
        (CRITICAL_ZONE_STEPS, 1.01 * TRAINED_MAX, None),  # float32 did not train on the seed
        (CRITICAL_ZONE_STEPS, TRAINED_MAX, False),
    ],
)
def test_critical_zone_never_entered_by_a_run_too_short_is_undecided(
    template, steps, fp32_error, holds
) -> None:
    """Oracle: the criterion by hand. A 1-step run "did not hold" though no run shorter than
    CRITICAL_WINDOW can enter; a never-entered seed decides against the claim only in a run as
    long as the paper's (CRITICAL_ZONE_STEPS)."""
    runs = [_zone(template, steps)]
    if fp32_error is not None:
        runs.append(_run(template, "diffusion", "fp32", final_test_error=fp32_error))
    claim = _by_id(evaluate(runs))["diffusion.critical-zone"]
    assert claim.holds is holds
    assert (holds is None) is ("undecided" in claim.measured)


def test_critical_zone_one_failing_seed_decides(template) -> None:
    """Seeds 0 (too short) and 1 (never entered in a long enough run, float32 trained on it):
    does not hold."""
    runs = [
        _zone(template, 3, seed=0, run_id="z0"),
        _zone(template, CRITICAL_ZONE_STEPS, seed=1, run_id="z1"),
        _run(template, "diffusion", "fp32", seed=1, run_id="f1", final_test_error=1e-3),
    ]
    assert _by_id(evaluate(runs))["diffusion.critical-zone"].holds is False
    assert _by_id(evaluate(runs[:1]))["diffusion.critical-zone"].holds is None


def test_critical_zone_divergence_and_printed_errors(template) -> None:
    """Oracle: the criterion by hand. A run asked for the paper's 2,000 steps that diverged at
    step 1,500 without entering did not converge: does not hold (judged by the steps it ran, it
    had read "undecided, too short (train longer)"). A run that entered with test error 0.0100001
    and ended at 0.0100000 holds, and the printed errors show which is smaller (both had
    printed 1.000e-02)."""
    diverged = _zone(template, 1500, iterations=CRITICAL_ZONE_STEPS, diverged=True)
    fp32 = _run(template, "diffusion", "fp32", final_test_error=1e-3)
    claim = _by_id(evaluate([diverged, fp32]))["diffusion.critical-zone"]
    assert claim.holds is False and "diverged at step 1500" in claim.measured
    close = _run(
        template,
        "diffusion",
        "mixed-fp16",
        critical_entry_step=600,
        test_error_at_entry=0.0100001,
        final_test_error=0.0100000,
    )
    claim = _by_id(evaluate([close]))["diffusion.critical-zone"]
    assert claim.holds is True
    assert "1.00001e-02 there, 1.00000e-02 at the end" in claim.measured


def test_fno_claims_are_undecided_where_full_precision_did_not_train(template) -> None:
    """A 3-step quick study: every mode at a test error of 4.16 "matched" full+tanh and
    "super-resolved" (4.16 at 4x against 4.16 at 1x)."""
    untrained = dict.fromkeys(("test_error_1x", "test_error_2x", "test_error_4x"), 4.16)
    claims = _by_id(evaluate([_fno(template, m, **untrained) for m in _FNO_MODES]))
    for key in ("fno.reduced-precision-accuracy", "fno.super-resolution"):
        assert claims[key].holds is None
        assert "did not train" in claims[key].note
    # full (no tanh) trained, full+tanh did not: the +tanh modes stay undecided, full is judged
    runs = [_fno(template, m, **untrained) for m in _FNO_MODES if m != "full"]
    runs.append(_fno(template, "full", test_error_4x=1.01 * MATCH_FACTOR * 0.05))
    assert _by_id(evaluate(runs))["fno.super-resolution"].holds is False


# The printed numbers agree with the verdict (rounded to two decimals they crossed the line).


def test_printed_ratio_is_on_the_verdicts_side(template) -> None:
    """Oracle: 2.004 > 2 = MATCH_FACTOR does not hold, yet printed as "2.00"; 1.996 < 2 =
    FAIL_FACTOR does not hold, printed "2.00" too."""
    runs = [
        _run(template, "burgers", "fp32", best_test_error=0.01, final_test_error=0.01),
        _run(template, "burgers", "mixed-fp16", best_test_error=0.02004),
        _run(template, "burgers", "fp16", final_test_error=0.01996),
    ]
    claims = _by_id(evaluate(runs))
    mixed, fails = claims["burgers.mixed-matches-fp32"], claims["burgers.fp16-fails"]
    assert mixed.holds is False and "(ratio 2.004;" in mixed.measured
    assert fails.holds is False and "(ratio 1.996;" in fails.measured
    runs[1] = _run(template, "burgers", "mixed-fp16", best_test_error=0.015)
    assert "(ratio 1.50;" in _by_id(evaluate(runs))["burgers.mixed-matches-fp32"].measured


@pytest.mark.parametrize(
    ("f16", "f32", "printed"),
    [
        (FROZEN_MIN - 4e-5, 0.0, "fp16 49.996%, fp32 0.0%"),  # .1% printed 50.0%
        (0.9, FROZEN_FP32_MAX + 4e-5, "fp16 90.0%, fp32 5.004%"),  # .1% printed 5.0%
    ],
)
def test_printed_share_is_on_the_verdicts_side(template, f16, f32, printed) -> None:
    runs = [
        _run(template, "regression", "fp32", unchanged_final=f32, steps=FROZEN_MIN_STEPS),
        _run(template, "regression", "fp16", unchanged_final=f16, steps=FROZEN_MIN_STEPS),
    ]
    claim = _by_id(evaluate(runs))["regression.fp16-frozen-weights"]
    assert claim.holds is False and claim.measured == printed


def test_report_header_shows_overridden_settings(template, tmp_path) -> None:
    """The template trained 12 iterations, evaluating every 3: not regression's quick
    defaults (problems.get("regression").defaults("quick")), and the header says so."""
    from mperror import problems

    defaults = problems.get("regression").defaults("quick")
    assert (defaults.iterations, defaults.eval_every) != (12, 3)
    runs = [_run(template, "regression", "fp32")]
    write_report(runs, tmp_path, setting="quick")
    text = (tmp_path / "report.md").read_text()
    assert "Setting: **quick, overridden: regression iterations 12, eval_every 3**" in text
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["overrides"] == {"regression": {"iterations": 12, "eval_every": 3}}
    defaulted = _with_config(
        runs[0], iterations=defaults.iterations, eval_every=defaults.eval_every
    )
    write_report([defaulted], tmp_path, setting="quick")
    assert "Setting: **quick**," in (tmp_path / "report.md").read_text()


def test_printed_products_and_norm_ratios_keep_their_side() -> None:
    """Oracle: the thresholds by hand. N M = 65504 (exactly fp16's max: no overflow possible)
    and 65536 (possible) had both printed 6.55e+04; the weight norm's 5x and 2x ratios are
    printed beside the norms, with the digits their thresholds need."""
    from mperror.report import claims

    assert claims._sci(65504.0, 65504.0, 2) == "6.5504e+04"
    assert claims._sci(65536.0, 65504.0, 2) == "6.554e+04"
    assert claims._beside(4.9999, 5.0, 2) == "4.9999" and claims._beside(5.0, 5.0, 2) == "5.00"
