"""The training loop: the trace records what a plain loop computes, policy by policy."""

from __future__ import annotations

import math
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mperror
from mperror import problems
from mperror.train import COLUMNS, RunConfig, RunSummary, Trace, initial_scale, train
from mperror.train.optim import KerasAdam

STEPS = 12


def _plain_adam_losses(
    problem: str, steps: int, lr: float, eps: float, adam: type = torch.optim.Adam
) -> list[float]:
    """An independent float32 loop: the problem's model and loss, ``adam``, nothing else."""
    inst = problems.get(problem).build("quick", seed=0)
    opt = adam(inst.model.parameters(), lr=lr, eps=eps)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = inst.loss(inst.model)
        loss.backward()
        losses.append(loss.item())
        opt.step()
    return losses


@pytest.mark.parametrize("problem", ["regression", "diffusion"])
def test_fp32_trace_is_the_plain_loop(problem: str) -> None:
    """Oracle: a hand-written Adam loop. The trainer's measurements must not change training."""
    result = train(RunConfig(problem=problem, policy="fp32", iterations=STEPS, eval_every=5))
    cfg = result.config
    assert result.trace["loss"] == _plain_adam_losses(problem, STEPS, cfg.lr, cfg.adam_eps)
    assert set(result.trace.columns) == set(COLUMNS)
    assert result.trace["step"] == list(range(STEPS))
    assert not any(result.trace["nonfinite"])


def test_adam_keras_option_is_the_plain_keras_loop() -> None:
    """Oracle: a plain loop with KerasAdam (whose update tests/train/test_optim.py checks
    against Keras's formula); and the option changes training (torch's Adam differs)."""
    cfg = RunConfig(problem="regression", policy="fp32", iterations=STEPS, optimizer="adam-keras")
    result = train(cfg)
    assert result.config.optimizer == "adam-keras"
    lr, eps = result.config.lr, result.config.adam_eps
    assert result.trace["loss"] == _plain_adam_losses("regression", STEPS, lr, eps, KerasAdam)
    assert result.trace["loss"] != _plain_adam_losses("regression", STEPS, lr, eps)
    assert cfg.run_id == "regression-quick-fp32-adam-keras-seed0"
    default = RunConfig(problem="regression", policy="fp32", iterations=STEPS)
    assert default.resolved(problems.get("regression").defaults("quick")).optimizer == "adam"


def test_trace_columns_follow_their_definitions() -> None:
    """Oracles: autograd's gradient of the fresh model at step 0; Theorem 1's constant written
    as the expression (4 + 3 sqrt 2) u; a float32 run compared with float32 has 1 - cos = 0 up
    to the float64 rounding of the dot product."""
    result = train(RunConfig(problem="regression", policy="fp32", iterations=STEPS, eval_every=4))
    t = result.trace
    inst = problems.get("regression").build("quick", seed=0)
    grads = torch.autograd.grad(inst.loss(inst.model), list(inst.model.parameters()))
    g0 = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
    assert t["grad_norm"][0] == pytest.approx(g0, rel=1e-12)
    theta0 = math.sqrt(
        sum(float((p.detach().double() ** 2).sum()) for p in inst.model.parameters())
    )
    assert t["theta_norm"][0] == pytest.approx(theta0, rel=1e-12)
    assert math.isnan(t["lipschitz"][0])  # a secant needs two steps
    for k in range(1, STEPS):
        expected = (4 + 3 * math.sqrt(2)) * 2.0**-24 * t["lipschitz"][k] * t["theta_norm"][k]
        assert t["critical_norm"][k] == pytest.approx(expected, rel=1e-14)
    measured = [k for k in range(STEPS) if not math.isnan(t["cosine_distance"][k])]
    assert measured == [0, 4, 8, 11]  # every cosine_every (= eval_every) steps and the last
    assert all(abs(t["cosine_distance"][k]) < 1e-12 for k in measured)
    assert all(t["grad_error"][k] == 0.0 for k in measured)
    evaluated = [k for k in range(STEPS) if not math.isnan(t["test_error"][k])]
    assert evaluated == [0, 4, 8, 11]
    assert t["unchanged_fraction"] == [0.0] * STEPS  # Adam moves every float32 weight


def test_secant_column_is_the_secant_of_the_plain_loop() -> None:
    """Oracle: a hand-written float32 Adam loop (the trainer's float32 trace is that loop, test
    above) and the secant L_k = ||g_k - g_(k-1)|| / ||theta_k - theta_(k-1)|| over its weight
    matrices, in float64, as Hayford et al. estimate L."""
    result = train(RunConfig(problem="regression", policy="fp32", iterations=STEPS))
    cfg = result.config
    inst = problems.get("regression").build("quick", seed=0)
    matrices = [p for p in inst.model.parameters() if p.ndim >= 2]
    opt = torch.optim.Adam(inst.model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    history = []
    for _ in range(STEPS):
        opt.zero_grad()
        inst.loss(inst.model).backward()
        history.append(
            (
                torch.cat([p.detach().double().flatten() for p in matrices]),
                torch.cat([p.grad.double().flatten() for p in matrices]),
            )
        )
        opt.step()
    for k in range(1, STEPS):
        (theta0, g0), (theta1, g1) = history[k - 1], history[k]
        secant = float((g1 - g0).norm() / (theta1 - theta0).norm())
        assert result.trace["lipschitz"][k] == pytest.approx(secant, rel=1e-12)


def test_gradient_comparison_of_a_mixed_run_by_hand() -> None:
    """Oracle: at step 0 the run's gradient g~ is the gradient of the fresh model under the
    emulated CUDA autocast lists (what mixed-fp16 runs on a CPU), and g the float32 one;
    ||g~ - g|| and 1 - cos(g~, g) computed here. (A float32 run compares g with itself.)"""
    t = train(RunConfig(problem="regression", policy="mixed-fp16", iterations=1)).trace
    inst = problems.get("regression").build("quick", seed=0)
    params = list(inst.model.parameters())

    def flat(grads) -> torch.Tensor:
        return torch.cat([g.double().flatten() for g in grads])

    g = flat(torch.autograd.grad(inst.loss(inst.model), params))
    with mperror.emulate(mperror.emulate.autocast("fp16")):
        g_run = flat(torch.autograd.grad(inst.loss(inst.model), params))
    error = float((g_run - g).norm())
    assert error > 0
    assert t["grad_error"][0] == pytest.approx(error, rel=1e-12)
    cosine = 1 - float(g_run @ g) / float(g_run.norm() * g.norm())
    assert t["cosine_distance"][0] == pytest.approx(cosine, rel=1e-6)


def test_final_values_are_those_of_the_final_weights() -> None:
    """Oracle: a plain float32 Adam loop of two steps, its model's test error and weight norm
    after the second step (a trace row measures the weights its step starts from, so the last
    row is a step early: the summary took it)."""
    result = train(RunConfig(problem="regression", policy="fp32", iterations=2))
    cfg = result.config
    inst = problems.get("regression").build("quick", seed=0)
    opt = torch.optim.Adam(inst.model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    for _ in range(2):
        opt.zero_grad()
        inst.loss(inst.model).backward()
        opt.step()
    norm = math.sqrt(sum(float((p.detach().double() ** 2).sum()) for p in inst.model.parameters()))
    s = result.summary
    assert s.final_test_error == pytest.approx(inst.test_error(inst.model), rel=1e-12)
    assert s.final_test_error != result.trace["test_error"][-1]
    assert s.theta_norm_final == pytest.approx(norm, rel=1e-12)
    assert s.best_test_error == min(
        s.final_test_error, *(e for e in result.trace["test_error"] if not math.isnan(e))
    )


def test_a_comparison_without_a_cosine_fails_the_cosine_bound() -> None:
    """Oracle: the counts by hand on a manufactured two-step trace: step 0 compares (1 - cos =
    1e-6 within 1e-3), step 1's run gradient overflowed (no cosine, a bound all the same): two
    checks, one held, as delta_comparisons counts the same two steps (it was 1 of 1)."""
    from mperror.train.precision import parse
    from mperror.train.summary import delta_comparisons, summarise

    cfg = RunConfig(problem="regression", policy="mixed-fp16", iterations=2)
    common = {"loss": 1.0, "theta_norm": 1.0, "lipschitz": 1.0, "cosine_bound": 1e-3}
    common |= {"delta": 1e-3, "seconds": 0.1, "peak_memory": 1.0}
    t = Trace()
    t.append({**common, "step": 0, "grad_norm": 1.0, "cosine_distance": 1e-6, "grad_error": 1e-6})
    t.append({**common, "step": 1, "grad_norm": math.inf, "grad_error": math.inf})
    s = summarise(cfg, parse("mixed-fp16"), t, run_id="x", diverged=False)
    assert (s.cosine_checks, s.cosine_nonvacuous, s.cosine_bound_holds) == (2, 2, 1)
    assert delta_comparisons(t) == (2, 1)


def test_same_seed_same_trace_and_seeds_differ() -> None:
    """Oracle: reproducibility (the problem is built from the seed alone)."""
    cfg = RunConfig(problem="regression", policy="mixed-fp16", iterations=5, eval_every=5)
    a, b = train(cfg), train(cfg)
    assert a.trace["loss"] == b.trace["loss"]
    other = train(RunConfig(problem="regression", policy="mixed-fp16", iterations=5, seed=1))
    assert other.trace["loss"] != a.trace["loss"]


def test_pure_emulated_policy_stores_weights_in_the_format() -> None:
    """Oracle: a value of a format is a fixed point of rounding to it."""
    from mperror.train import trainer

    seen = []
    original = trainer._loop

    def spy(cfg, precision, instance, *args):
        trace = original(cfg, precision, instance, *args)
        seen.extend(p.detach().clone() for p in instance.model.parameters())
        return trace

    trainer._loop = spy
    try:
        result = train(RunConfig(problem="regression", policy="pure-e4m3fn", iterations=6))
    finally:
        trainer._loop = original
    assert result.config.backend == "emulated"
    for p in seen:
        assert torch.equal(mperror.round(p, "e4m3fn"), p)
    # With u = 2**-4 Adam's steps of about lr = 1e-3 are lost on nearly every weight.
    assert result.summary.unchanged_final > 0.9


def test_native_fp16_trains_in_half() -> None:
    """Oracle: the dtype of the loss (the model and data are float16)."""
    result = train(RunConfig(problem="regression", policy="fp16", iterations=4))
    assert result.config.backend == "native"
    x = torch.tensor([result.trace["loss"][0]])
    assert torch.equal(mperror.round(x, "fp16", dtype=torch.float32), x)  # an fp16 value


def test_grad_scaler_skips_an_overflowing_first_step() -> None:
    """Oracle: the loss is of order 1, so scaled by 2**30 the emulated fp16 backward (max
    65504) overflows: GradScaler skips the step and halves its scale."""
    cfg = RunConfig(
        problem="regression", policy="mixed-fp16+scaler", iterations=24, init_scale=2.0**30
    )
    t = train(cfg).trace
    assert t["skipped"][0] == 1.0
    assert t["loss_scale"][:2] == [2.0**30, 2.0**29]
    assert t["unchanged_fraction"][0] == 1.0  # a skipped step changes no weight
    assert math.isnan(t["lost_fraction"][0])  # ... and requested no update, so lost none
    skipped = [v == 1.0 for v in t["skipped"]]
    assert not all(skipped)  # the scale fell until the backward fits
    assert [math.isnan(v) for v in t["lost_fraction"]] == skipped


def test_the_resolved_config_records_the_scale_chosen() -> None:
    """Oracle: the rule (initial_scale) on the float32 first loss, and the trace's first
    loss_scale: the resolved config (config.json) must name the scale the run used, not None;
    a run without a scaler has none."""
    result = train(RunConfig(problem="regression", policy="mixed-fp16+scaler", iterations=2))
    assert result.config.init_scale == result.trace["loss_scale"][0]
    plain = train(RunConfig(problem="regression", policy="mixed-fp16", iterations=2))
    assert plain.config.init_scale is None


@pytest.mark.parametrize(
    ("policy", "scale", "match"),
    [
        # GradScaler stores its scale in float32: 1e-46 would become 0 (unscaling by 1/0 made
        # NaN gradients that counted as a step taken) and 1e39 failed inside torch.
        ("mixed-fp16+scaler", 1e-46, "init_scale must be a float32 value"),
        ("mixed-fp16+scaler", 1e39, "init_scale must be a float32 value"),
        ("mixed-fp16+scaler", 0.1, "init_scale must be a float32 value"),  # rounds in float32
        ("mixed-fp16", 1024.0, "init_scale applies to '.scaler' policies only"),
        ("fp32", 1024.0, "init_scale applies to '.scaler' policies only"),
    ],
)
def test_init_scale_that_would_be_changed_or_ignored_is_refused(policy, scale, match) -> None:
    with pytest.raises(ValueError, match=match):
        RunConfig(problem="regression", policy=policy, init_scale=scale)


@pytest.mark.parametrize("iterations", [1, 3])
def test_weights_gone_non_finite_end_the_run_as_diverged(iterations: int) -> None:
    """Oracle: Adam's first step moves every weight with a nonzero gradient by about lr, and
    lr = 1e5 is past float16's largest value (65504): the fp16 weights become infinite at the
    first step, the last one when ``iterations`` is 1."""
    s = train(RunConfig(problem="regression", policy="fp16", iterations=iterations, lr=1e5)).summary
    assert (s.steps, s.diverged) == (1, True)
    assert math.isnan(s.final_test_error) and math.isnan(s.theta_norm_final)
    assert math.isfinite(s.best_test_error)  # evaluated before the step


def test_initial_scale_rule() -> None:
    """Oracle: the rule's arithmetic by hand: 65504 / (64 * 3) = 341.2 -> 2**8."""
    assert initial_scale(3.0, 65504.0) == 2.0**8
    assert initial_scale(1e-6, 3.4e38) == 2.0**16  # capped
    assert initial_scale(1e9, 65504.0) == 1.0  # at least 1
    assert initial_scale(math.inf, 65504.0) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"problem": "burger"}, "did you mean 'burgers'"),
        ({"policy": "fp8"}, "unknown policy"),
        ({"iterations": 0}, "iterations must be an int >= 1"),
        ({"lr": -1.0}, "lr must be a finite int or float > 0"),
        ({"size": "huge"}, "size must be one of"),
        ({"device": "tpu"}, "device must be"),
        ({"seed": -1}, "seed must be a non-negative int"),
        # torch.Generator.manual_seed takes unsigned 64-bit seeds: "Overflow when unpacking"
        ({"seed": 2**64}, r"seed must be a non-negative int below 2\*\*64"),
        ({"optimizer": "sgd"}, "optimizer must be one of"),
    ],
)
def test_bad_configs_are_refused_by_name(kwargs, match) -> None:
    args = {"problem": "regression", "policy": "fp32", **kwargs}
    with pytest.raises(ValueError, match=match):
        RunConfig(**args)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_device_without_cuda_is_refused_before_training() -> None:
    """A CUDA config can be made and read back anywhere (a GPU run reported on a laptop);
    training it without CUDA is refused by name, before anything is built."""
    config = RunConfig(problem="regression", policy="fp32", device="cuda")
    assert RunConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="device 'cuda'"):
        train(config)


@pytest.mark.gpu
@pytest.mark.parametrize("policy", ["fp32", "mixed-fp16", "mixed-bf16", "fp16"])
def test_cuda_runs(policy: str) -> None:
    """Oracle: the float32 loop on CUDA has finite losses and TF32 is restored afterwards."""
    before = torch.backends.cuda.matmul.allow_tf32
    result = train(RunConfig(problem="diffusion", policy=policy, iterations=5, device="cuda"))
    assert torch.backends.cuda.matmul.allow_tf32 == before
    assert result.config.backend == "native"
    assert result.summary.device == "cuda"
    assert result.summary.device_name == torch.cuda.get_device_name()
    assert result.summary.peak_memory > 0
    assert all(math.isfinite(v) for v in result.trace["loss"])


def test_the_largest_seed_trains() -> None:
    """Oracle: torch.Generator.manual_seed's range, unsigned 64-bit: 2**64 - 1 is a seed."""
    result = train(RunConfig(problem="regression", policy="fp32", seed=2**64 - 1, iterations=1))
    assert result.summary.seed == 2**64 - 1 and len(result.trace) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB: Linux")
def test_cpu_peak_memory_is_the_process_peak_and_says_so() -> None:
    """On a CPU the trainer records ru_maxrss, the process's peak since it started: a run
    later in a study records the earlier runs' peaks too. The trace column and the summary
    field say so (they read as the run's own peak)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    summary = train(RunConfig(problem="regression", policy="fp32", iterations=2)).summary
    assert summary.device == "cpu" and summary.peak_memory >= before
    assert "process-wide" in COLUMNS["peak_memory"]
    assert "process-wide" in " ".join(RunSummary.__doc__.split())


def test_training_runs_without_tqdm(tmp_path) -> None:
    """Oracle: a fresh interpreter in which ``import tqdm`` fails (a failing module of that name
    shadows it), as on a GPU machine without network: a short run still trains and is stored,
    and the one line on stderr says why no bar is shown."""
    (tmp_path / "tqdm.py").write_text("raise ImportError('tqdm is blocked')\n")
    root = Path(mperror.__file__).resolve().parents[1]
    out = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    command = [sys.executable, "-m", "mperror", "run", "regression", "-p", "fp32"]
    done = subprocess.run(
        [*command, "--iterations", "2", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "tqdm is not installed: no progress bars" in done.stderr
    assert (out / "regression-quick-fp32-seed0" / "summary.json").exists()


def test_gradient_comparison_with_a_non_finite_float32_gradient() -> None:
    """Oracle: the definitions: a float32 gradient of infinite norm has no cosine bound (the
    bound needs a finite g), and the comparison records its norm instead of stopping the run
    (cosine_distance_bound had raised ValueError in the middle of training)."""
    from mperror.train.precision import parse
    from mperror.train.trainer import _compare_gradients

    class Shadow:
        def gradient(self):
            return None, [torch.tensor([math.inf, 1.0])]

    row = _compare_gradients(Shadow(), [torch.tensor([1.0, 1.0])], 2.0, 3.0, parse("mixed-fp16"))
    assert row["fp32_grad_norm"] == math.inf and "cosine_bound" not in row
    assert row["delta"] == 2.0 * 3.0 * 2.0**-11  # u L ||theta||, still recorded


def test_the_lost_update_meter_is_not_training_time(monkeypatch) -> None:
    """Oracle: a meter made to take 0.25 s before and after every optimizer step (its snapshot
    of the weights and its comparisons) while the regression step itself takes milliseconds:
    the recorded training time per step stays far below the 0.5 s the meter adds."""
    import contextlib
    import time

    from mperror.emulate import LostUpdateMeter

    original = LostUpdateMeter.step

    @contextlib.contextmanager
    def slow_step(self):
        with original(self):
            time.sleep(0.25)
            yield
            time.sleep(0.25)

    monkeypatch.setattr(LostUpdateMeter, "step", slow_step)
    result = train(RunConfig(problem="regression", policy="fp32", iterations=2))
    assert result.summary.seconds_per_step < 0.25


def test_storing_the_weights_in_their_format_is_training_time(monkeypatch) -> None:
    """Oracle: store_ made to take 0.2 s; a pure emulated run rounds its weights into the
    format after every step (training work: the weights live in the format), so its recorded
    time per step is at least that, while the meter's snapshot and comparisons stay out
    (the test above). The trainer had left the store out with them."""
    import time

    import mperror.emulate.weights as weights

    original = weights.store_

    def slow_store(*args, **kwargs):
        time.sleep(0.2)
        return original(*args, **kwargs)

    monkeypatch.setattr(weights, "store_", slow_store)
    result = train(RunConfig(problem="regression", policy="pure-e4m3fn", iterations=2))
    assert result.summary.seconds_per_step >= 0.2
