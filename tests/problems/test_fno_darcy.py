"""The fno-darcy problem: data at three resolutions of one solve on the periodic FFT grid, the
precision hooks and a short training run through the trainer. (The loss is the FNO problems'
shared one, checked in test_fno_burgers.py.)"""

from __future__ import annotations

import math

import pytest
import torch

from mperror import problems
from mperror.models import FNO
from mperror.problems._base import DATA_STREAM, MODEL_STREAM, TEST_STREAM, generator
from mperror.problems.darcy import FIELD, darcy_dataset, periodic_subsample
from mperror.problems.fno_darcy import A_HIGH, A_LOW, TEST_SEED, encode_permeability
from mperror.problems.grf import cosine_values_2d, neumann_2d
from mperror.train import RunConfig, train


@pytest.fixture(scope="module")
def instance():
    return problems.get("fno-darcy").build("quick", seed=0)


def test_periodic_subsample_keeps_the_nodes_i_over_n() -> None:
    """Oracle: the nodes ``(i / n, j / n)`` picked by explicit index arithmetic."""
    fine = 17
    values = torch.arange(float(fine * fine)).reshape(fine, fine)
    for n in (1, 2, 4, 8, 16):
        stride = (fine - 1) // n
        expected = torch.tensor(
            [[values[i * stride, j * stride] for j in range(n)] for i in range(n)]
        )
        assert torch.equal(periodic_subsample(values, n), expected)
    with pytest.raises(ValueError, match="resolution must be an int r with"):
        periodic_subsample(values, 3)  # 3 + 1 = 4 nodes: 3 does not divide 16
    for bad in (0, True, 2.0):
        with pytest.raises(ValueError, match="points must be a positive int"):
            periodic_subsample(values, bad)  # type: ignore[arg-type]


def test_data_are_the_solver_on_the_periodic_grid(instance) -> None:
    """Oracle: darcy_dataset called here at the fine resolution; every resolution is one fine
    solve subsampled, the test functions come from a stream of their own, and the nodes the
    periodic grid drops (x = 1, y = 1) carry u = 0 like their images on x = 0 and y = 0."""
    cfg = instance.config
    fine, n = cfg["fine_resolution"], cfg["resolution"]
    a, u = darcy_dataset(
        cfg["n_train_functions"], fine, seed=0, fine_resolution=fine, dtype=torch.float64
    )
    assert torch.equal(instance.inputs[:, 0], encode_permeability(periodic_subsample(a, n)).float())
    assert torch.equal(instance.targets[:, 0], periodic_subsample(u, n).float())
    assert set(instance.inputs.unique().tolist()) == {-1.0, 1.0}
    assert float(u[:, -1, :].abs().max()) == 0 and float(u[:, :, -1].abs().max()) == 0
    assert float(u[:, 0, :].abs().max()) == 0 and float(u[:, :, 0].abs().max()) == 0
    ta, tu = darcy_dataset(
        cfg["n_test_functions"], fine, seed=TEST_SEED, stream=TEST_STREAM, fine_resolution=fine,
        dtype=torch.float64,
    )  # fmt: skip
    assert sorted(instance.test) == cfg["eval_resolutions"] == [n, 2 * n, 4 * n]
    for res, (x, y) in instance.test.items():
        assert x.dtype == torch.float32 and y.dtype == torch.float64
        assert torch.equal(x[:, 0], encode_permeability(periodic_subsample(ta, res)).float())
        assert torch.equal(y[:, 0], periodic_subsample(tu, res))
    other = problems.get("fno-darcy").build("quick", seed=1)
    assert not torch.equal(other.inputs, instance.inputs)
    assert torch.equal(other.test[n][1], instance.test[n][1])


def test_no_training_seed_trains_on_the_test_functions() -> None:
    """Oracle: the test permeabilities themselves, compared with every training permeability.
    The test set is stream TEST_STREAM of TEST_SEED, which no training set draws from; in
    revision 1 it was the training stream of seed TEST_SEED = 2**31 - 1, so a run of that
    seed trained on the 16 test functions."""
    assert TEST_STREAM not in (DATA_STREAM, MODEL_STREAM)
    inst = problems.get("fno-darcy").build("quick", seed=TEST_SEED)
    train = inst.inputs[:, 0].flatten(1)
    test = inst.test[inst.resolution][0][:, 0].flatten(1)
    assert not (train[:, None, :] == test[None, :, :]).all(dim=-1).any()


def test_data_and_initial_weights_come_from_streams_of_their_own(instance) -> None:
    """Oracle: the permeabilities drawn here from the Gaussian random field on stream
    DATA_STREAM of the seed (thresholded and encoded; no solve), and the model built here from
    stream MODEL_STREAM. In revision 1 both came from stream 0, the same generator state."""
    cfg = instance.config
    fine, n = cfg["fine_resolution"], cfg["resolution"]
    coefficients = neumann_2d(
        FIELD, cfg["n_train_functions"], generator=generator(0, DATA_STREAM), zero_mean=True
    )
    g = cosine_values_2d(coefficients, torch.linspace(0.0, 1.0, fine, dtype=torch.float64))
    a = torch.where(g > 0, A_HIGH, A_LOW).to(torch.float64)
    expected = encode_permeability(periodic_subsample(a, n)).float()
    assert torch.equal(instance.inputs[:, 0], expected)
    model = FNO(
        dim=2, width=cfg["width"], modes=(cfg["modes"],) * 2, layers=cfg["layers"],
        generator=generator(0, MODEL_STREAM),
    )  # fmt: skip
    for ours, built in zip(model.parameters(), instance.model.parameters(), strict=True):
        assert torch.equal(ours, built)
    assert problems.get("fno-darcy").revision >= 2  # the data changed with the streams


def test_encoding_maps_the_two_permeabilities_to_plus_minus_one() -> None:
    assert encode_permeability(torch.tensor([A_LOW, A_HIGH])).tolist() == [-1.0, 1.0]


def test_precision_hooks_and_final_metrics() -> None:
    inst = problems.get("fno-darcy").build("quick", seed=0)
    with pytest.raises(ValueError, match="MODE"):
        problems.get("fno-darcy").check_model_precision("quarter")
    inst.set_model_precision("half-bf16+tanh")
    assert str(inst.model.precision) == "half-bf16+tanh"
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
    }
    n = inst.config["resolution"]
    assert metrics["fft_points"] == n * n and metrics["fft_points_max"] == 16 * n * n
    assert metrics["overflow_events"] == metrics["eval_overflow_events"] == 0
    assert 0 < metrics["spectral_input_max"] <= 1  # tanh
    # Oracle: test_error at the training resolution is what final_metrics reports at 1x.
    assert metrics["test_error_1x"] == pytest.approx(inst.test_error(inst.model), rel=1e-12)


def test_full_precision_training_learns_the_operator() -> None:
    """Oracle: the untrained model's own loss. Forty float32 Adam steps must cut the relative
    L2 loss by more than half (a broken target, loss or gradient path would not)."""
    inst = problems.get("fno-darcy").build("quick", seed=0)
    start = inst.loss(inst.model).item()
    optimizer = torch.optim.Adam(inst.model.parameters(), lr=inst.defaults.lr)
    for _ in range(40):
        optimizer.zero_grad()
        inst.loss(inst.model).backward()
        optimizer.step()
    assert inst.loss(inst.model).item() < 0.5 * start


def test_training_with_a_model_precision() -> None:
    """Through the trainer, emulated half spectral convolutions with the stabiliser."""
    config = RunConfig(
        problem="fno-darcy", policy="fp32", model_precision="half+tanh", iterations=2
    )
    summary = train(config).summary
    assert summary.run_id == "fno-darcy-quick-fp32-half_tanh-seed0"
    assert summary.extra["overflow_events"] == 0
    assert all(math.isfinite(summary.extra[f"test_error_{k}x"]) for k in (1, 2, 4))


def test_builds_share_one_solve_and_own_their_copies(instance) -> None:
    """Oracle: the solver's cache counters; an instance's data are its own (writing into them
    leaves the next build unchanged)."""
    from mperror.problems import fno_darcy

    def solves() -> int:
        return fno_darcy._train_data.cache_info().misses + fno_darcy._test_data.cache_info().misses

    problems.get("fno-darcy").build("quick", seed=0)  # solved now, or found in the cache
    before = solves()
    again = problems.get("fno-darcy").build("quick", seed=0)
    assert solves() == before  # found in the cache
    assert torch.equal(again.inputs, instance.inputs) and again.inputs is not instance.inputs
    again.targets.zero_()
    n = instance.resolution
    again.test[n][1].zero_()
    third = problems.get("fno-darcy").build("quick", seed=0)
    assert torch.equal(third.targets, instance.targets)
    assert torch.equal(third.test[n][1], instance.test[n][1])
