"""The fno-burgers problem: data at three resolutions of one solve, the precision hooks the
trainer calls, and a short training run through them."""

from __future__ import annotations

import math

import pytest
import torch

from mperror import problems
from mperror.models import FNO
from mperror.problems import burgers1d_dataset
from mperror.problems._base import DATA_STREAM, MODEL_STREAM, TEST_STREAM, generator
from mperror.problems.burgers1d import FIELD, subsample
from mperror.problems.fno_burgers import STRESS_POINTS, TEST_SEED
from mperror.problems.grf import periodic_1d, periodic_values_1d
from mperror.train import RunConfig, train
from mperror.train.trainer import check_config


@pytest.fixture(scope="module")
def instance():
    return problems.get("fno-burgers").build("quick", seed=0)


def test_data_are_the_solver_subsampled(instance) -> None:
    """Oracle: burgers1d_dataset called here; the test set at 1x, 2x, 4x is one fine solve
    subsampled (the same functions at every resolution), from a stream of its own."""
    cfg = instance.config
    fine, r = cfg["fine_resolution"], cfg["resolution"]
    u0, u1 = burgers1d_dataset(cfg["n_train_functions"], r, seed=0, fine_resolution=fine)
    assert torch.equal(instance.inputs[:, 0], u0) and torch.equal(instance.targets[:, 0], u1)
    t0, t1 = burgers1d_dataset(
        cfg["n_test_functions"], fine, seed=TEST_SEED, stream=TEST_STREAM, fine_resolution=fine,
        dtype=torch.float64,
    )  # fmt: skip
    assert sorted(instance.test) == cfg["eval_resolutions"] == [r, 2 * r, 4 * r]
    for res, (x, y) in instance.test.items():
        assert torch.equal(x[:, 0], subsample(t0, res).float())
        assert torch.equal(y[:, 0], subsample(t1, res))
    other = problems.get("fno-burgers").build("quick", seed=1)
    assert not torch.equal(other.inputs, instance.inputs)
    assert torch.equal(other.test[r][1], instance.test[r][1])


def test_no_training_seed_trains_on_the_test_functions() -> None:
    """Oracle: the test functions themselves, compared point for point with every training
    function. The test set is stream TEST_STREAM of TEST_SEED, which no training set draws
    from; in revision 1 it was the training stream of seed TEST_SEED = 2**31 - 1, so a run of
    that seed trained on the 32 test functions."""
    assert TEST_STREAM not in (DATA_STREAM, MODEL_STREAM)
    inst = problems.get("fno-burgers").build("quick", seed=TEST_SEED)
    train = inst.inputs[:, 0]
    test = inst.test[inst.resolution][0][:, 0]
    assert not (train[:, None, :] == test[None, :, :]).all(dim=-1).any()


def test_data_and_initial_weights_come_from_streams_of_their_own(instance) -> None:
    """Oracle: the initial values drawn here from the Gaussian random field on stream
    DATA_STREAM of the seed, and the model built here from stream MODEL_STREAM. In revision 1
    both came from stream 0, the same Mersenne-Twister state: weights and data were
    correlated."""
    cfg = instance.config
    fine, r = cfg["fine_resolution"], cfg["resolution"]
    coefficients = periodic_1d(
        FIELD, cfg["n_train_functions"], generator=generator(0, DATA_STREAM), zero_mean=True
    )
    u0 = subsample(periodic_values_1d(coefficients, fine), r).float()
    assert torch.equal(instance.inputs[:, 0], u0)
    model = FNO(
        dim=1, width=cfg["width"], modes=(cfg["modes"],), layers=cfg["layers"],
        generator=generator(0, MODEL_STREAM),
    )  # fmt: skip
    for ours, built in zip(model.parameters(), instance.model.parameters(), strict=True):
        assert torch.equal(ours, built)
    assert problems.get("fno-burgers").revision >= 2  # the data changed with the streams


def test_stress_input_interpolates_a_test_function(instance) -> None:
    """Oracle: the fine test function at the shared points (trigonometric interpolation is
    exact for a band-limited function) and its rfft, whose modes above the field's are zero."""
    fine = instance.config["fine_resolution"]
    coarse = instance.test[max(instance.test)][0][0, 0].double()
    stress = instance.stress[0, 0].double()
    assert stress.shape == (STRESS_POINTS,)
    stride = STRESS_POINTS // coarse.shape[0]
    # Both are float32 roundings of float64 values at most 2.8e-16 apart (measured: the
    # interpolation's round-off), so equal or one float32 ulp, <= 2**-23 max|v|, apart.
    # Measured: identical (max|v| = 0.79).
    ulp = 2.0**-23 * float(coarse.abs().max())
    assert torch.allclose(stress[::stride], coarse, rtol=0, atol=ulp)
    spectrum = torch.fft.rfft(stress).abs() / STRESS_POINTS
    assert float(spectrum[fine // 2 :].max()) < 1e-7 * float(spectrum.max())


def test_loss_is_the_mean_relative_l2(instance) -> None:
    """Oracle: the relative L2 error per function, averaged, computed here in float64. (The
    loss is FNOInstance's, shared with fno-darcy.)"""
    model = instance.model
    with torch.no_grad():
        pred = model(instance.inputs).double()
    target = instance.targets.double()
    per = (pred - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1)
    assert instance.loss(model).item() == pytest.approx(per.mean().item(), rel=1e-5)


def test_precision_hooks() -> None:
    inst = problems.get("fno-burgers").build("quick", seed=0)
    problems.get("fno-burgers").check_model_precision("half-bf16+tanh")
    with pytest.raises(ValueError, match="MODE"):
        problems.get("fno-burgers").check_model_precision("quarter")
    with pytest.raises(ValueError, match="MODE"):
        inst.set_model_precision("quarter")
    assert str(inst.model.precision) == "full"  # unchanged by the refused mode
    inst.set_model_precision("schedule+tanh")
    seen = []
    for fraction in (0.0, 0.3, 0.8):
        inst.on_step(fraction)
        seen.append(str(inst.model.precision))
    assert seen == ["half-fp16+tanh", "mixed-fp16+tanh", "full+tanh"]
    metrics = inst.final_metrics(inst.model)
    assert set(metrics) == {
        "overflow_events",
        "eval_overflow_events",
        "test_error_1x",
        "test_error_2x",
        "test_error_4x",
        "spectral_input_max",
        "fft_points",
        "fft_points_max",
        "stress_overflow_events",
        "stress_input_max",
        "stress_points",
    }
    assert metrics["fft_points"] == 64 and metrics["fft_points_max"] == 256
    assert metrics["stress_points"] == STRESS_POINTS == 2**15 <= 65504
    assert metrics["stress_overflow_events"] == 0 and metrics["stress_input_max"] <= 1
    assert 0 < metrics["spectral_input_max"] <= 1  # tanh
    # Oracle: test_error at the training resolution is what final_metrics reports at 1x.
    assert metrics["test_error_1x"] == pytest.approx(inst.test_error(inst.model), rel=1e-12)


def test_final_metrics_leave_the_training_overflow_count() -> None:
    """Oracle: no training step runs between two calls, so the second must report the first's
    counts. Lift weights scaled by 20 make the half FFT's input large enough to overflow
    (M > 2 at the 2**15 stress points); the evaluation and stress passes had been added to the
    model's training counter, and a second call reported them as training events."""
    inst = problems.get("fno-burgers").build("quick", seed=0)
    inst.set_model_precision("half")
    with torch.no_grad():
        inst.model.lift.weight.mul_(20.0)
    first = inst.final_metrics(inst.model)
    assert first["stress_overflow_events"] == 1  # the case is one that overflows
    second = inst.final_metrics(inst.model)
    assert inst.model.overflow_events == 0
    assert second == pytest.approx(first, nan_ok=True)


def test_training_with_a_model_precision() -> None:
    """The trainer validates the mode first, sets it on the model, evaluates the shadow in full
    precision and puts the problem's final metrics into the summary."""
    config = RunConfig(
        problem="fno-burgers", policy="fp32", model_precision="half+tanh", iterations=3
    )
    result = train(config)
    summary = result.summary
    assert summary.model_precision == "half+tanh" and summary.label == "fp32/half+tanh"
    assert summary.run_id == "fno-burgers-quick-fp32-half_tanh-seed0"
    assert summary.extra["overflow_events"] == 0
    assert all(math.isfinite(summary.extra[f"test_error_{k}x"]) for k in (1, 2, 4))
    assert math.isfinite(summary.final_test_error)
    with pytest.raises(ValueError, match="MODE"):
        train(RunConfig(problem="fno-burgers", policy="fp32", model_precision="quarter"))
    with pytest.raises(ValueError, match="model_precision is for problems"):
        train(RunConfig(problem="regression", policy="fp32", model_precision="half"))


@pytest.mark.parametrize(("policy", "backend"), [("mixed-fp16", "auto"), ("mixed-bf16", "native")])
def test_mixed_policies_are_refused_on_a_cpu_before_training(policy: str, backend: str) -> None:
    """Autocast (emulated or CPU torch.autocast) hands the spectral convolutions half tensors,
    and CPU torch has no half FFT (oracle: torch.fft.rfft of a CPU float16 tensor raises).
    The refusal comes from check_config, before any data are built; mixed-tf32 keeps float32
    tensors (no 16-bit dtype holds tf32) and is accepted."""
    with pytest.raises(RuntimeError):
        torch.fft.rfft(torch.ones(8, dtype=torch.float16))
    config = RunConfig(problem="fno-burgers", policy=policy, backend=backend, device="cpu")
    with pytest.raises(ValueError, match="no half FFT"):
        check_config(config)
    check_config(RunConfig(problem="fno-burgers", policy="mixed-tf32", device="cpu"))
