"""The contract every registered problem keeps (registry, sizes, seeds, dtypes, autocast).

Most checks here are structural (shapes, dtypes, finiteness, determinism); the numerical
oracles for each problem live in test_problems_physics.py.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import pytest
import torch

from mperror._records import plain
from mperror.problems import PROBLEMS, SIZES, Problem, ProblemInstance, TrainDefaults, get, names
from mperror.problems._base import check_seed, generator, relative_l2
from mperror.train.optim import OPTIMIZERS

EXPECTED = ("regression", "diffusion", "burgers", "deeponet", "fno-burgers", "fno-darcy")
#: Problems whose model runs FFTs: CPU torch has no float16 or bfloat16 FFT, so on the CPU they
#: must refuse a half-precision model with a clear error (their half precision is the model's
#: own emulated mode, tests/models/test_fno.py).
FFT_MODELS = ("fno-burgers", "fno-darcy")


def _refuses_half_on_cpu(inst: ProblemInstance, run) -> bool:
    """True when ``inst`` is an FFT model and ``run()`` raised the FNO's clear TypeError."""
    if inst.name not in FFT_MODELS:
        return False
    with pytest.raises(TypeError, match="no FFT for it"):
        run()
    return True


@pytest.fixture(scope="module", params=EXPECTED)
def instance(request: pytest.FixtureRequest) -> ProblemInstance:
    """One quick instance per problem, shared by the tests of this module (never mutated)."""
    return get(request.param).build("quick", seed=0)


def _fresh_model(inst: ProblemInstance) -> torch.nn.Module:
    return copy.deepcopy(inst.model)


def _grads_finite(model: torch.nn.Module) -> bool:
    return all(
        p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in model.parameters()
    )


def test_registry_lists_the_problems() -> None:
    assert names() == EXPECTED
    for name in names():
        problem = get(name)
        assert isinstance(problem, Problem)
        assert problem.name == name
        assert PROBLEMS[name] is problem
        # run directories record it (mperror.train.store); a bool or 0 would be a slip
        assert type(problem.revision) is int and problem.revision >= 1


def test_get_is_case_and_space_insensitive() -> None:
    assert get("  Burgers ") is get("burgers")


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(
        ValueError, match=r"unknown problem name 'regresion'.*did you mean 'regression'"
    ):
        get("regresion")
    with pytest.raises(ValueError, match="Known: regression, diffusion, burgers, deeponet"):
        get("navier-stokes")
    with pytest.raises(TypeError, match="name must be a str"):
        get(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", EXPECTED)
@pytest.mark.parametrize("size", ["medium", "Quick", "", None])
def test_bad_size_raises_naming_the_argument(name: str, size: object) -> None:
    with pytest.raises(ValueError, match=r"size must be one of 'quick', 'full'"):
        get(name).build(size)  # type: ignore[arg-type]


def test_bad_size_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match="did you mean 'quick'"):
        get("regression").build("quik")


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed_raises_naming_the_argument(seed: object) -> None:
    with pytest.raises((TypeError, ValueError), match="seed must be a non-negative int"):
        get("regression").build("quick", seed=seed)  # type: ignore[arg-type]
    with pytest.raises((TypeError, ValueError), match="seed"):
        check_seed(seed)


def test_instance_fields(instance: ProblemInstance) -> None:
    assert instance.size == "quick" and instance.size in SIZES
    assert isinstance(instance.defaults, TrainDefaults)
    assert dataclasses.is_dataclass(instance.defaults)
    d = instance.defaults
    assert d.lr > 0 and d.iterations > 0 and d.adam_eps > 0 and 0 < d.eval_every <= d.iterations
    assert d.optimizer in OPTIMIZERS
    assert instance.config["seed"] == 0 and instance.config["size"] == "quick"
    assert instance.config["problem"] == instance.name
    json.dumps(plain(instance.config), allow_nan=False)  # JSON-ready, no tensors left
    assert all(p.dtype == torch.float32 for p in instance.model.parameters())
    assert all(p.device.type == "cpu" for p in instance.model.parameters())
    assert instance.name in repr(instance)


@pytest.mark.parametrize("size", SIZES)
def test_adam_eps_survives_float16(size: str) -> None:
    """Adam's epsilon is shared by every precision, so it must not flush to zero in float16:
    at least the smallest float16 subnormal 2^-24."""
    for name in names():
        assert get(name).defaults(size).adam_eps >= 2.0**-24


def test_defaults_without_building(instance: ProblemInstance) -> None:
    assert get(instance.name).defaults("quick") == instance.defaults


def test_loss_is_a_finite_scalar_that_backpropagates(instance: ProblemInstance) -> None:
    model = _fresh_model(instance)
    loss = instance.loss(model)
    assert loss.ndim == 0 and loss.dtype == torch.float32
    assert math.isfinite(loss.item()) and loss.item() >= 0
    loss.backward()
    assert _grads_finite(model)
    assert any(bool(p.grad.abs().sum() > 0) for p in model.parameters())


def test_test_error_is_finite(instance: ProblemInstance) -> None:
    error = instance.test_error(instance.model)
    assert isinstance(error, float)
    assert math.isfinite(error) and error > 0


def test_loss_in_float16(instance: ProblemInstance) -> None:
    """``model.half()``: the loss runs in float16 on the CPU and backpropagates."""
    model = _fresh_model(instance).half()
    if _refuses_half_on_cpu(instance, lambda: instance.loss(model)):
        return
    loss = instance.loss(model)
    assert loss.dtype == torch.float16
    assert math.isfinite(loss.item())
    loss.backward()
    assert all(p.grad.dtype == torch.float16 for p in model.parameters())
    error = instance.test_error(model)
    assert math.isfinite(error)


def test_loss_in_float64(instance: ProblemInstance) -> None:
    model = _fresh_model(instance).double()
    loss = instance.loss(model)
    assert loss.dtype == torch.float64
    loss.backward()
    assert _grads_finite(model)
    # Oracle: the float64 loss of the same weights. float32's unit roundoff is 6e-8; the six
    # problems differ by at most 1.2e-7 (measured 2026-12-07); 1e-5 leaves room for the
    # cancellation in a PDE residual (u_t - u_xx nearly cancel) at other weights.
    loss32 = instance.loss(_fresh_model(instance)).item()
    assert loss.item() == pytest.approx(loss32, rel=1e-5)


def test_loss_under_bfloat16_autocast(instance: ProblemInstance) -> None:
    model = _fresh_model(instance)

    def autocast_loss() -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return instance.loss(model)

    if _refuses_half_on_cpu(instance, autocast_loss):
        return
    loss = autocast_loss()
    assert loss.ndim == 0 and math.isfinite(loss.item())
    loss.backward()
    assert _grads_finite(model)
    assert all(p.grad.dtype == torch.float32 for p in model.parameters())
    # bfloat16's unit roundoff is 2^-8 ~ 0.004; a few layers and two derivatives make the
    # loss move by a few percent at most (measured: 1.3e-3 at most over the six problems).
    loss32 = instance.loss(_fresh_model(instance)).item()
    assert loss.item() == pytest.approx(loss32, rel=0.03)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert math.isfinite(instance.test_error(model))


def test_seeds_reproduce_and_differ() -> None:
    for name in names():
        a, b, c = (get(name).build("quick", seed=s) for s in (3, 3, 4))
        pa, pb, pc = (torch.cat([p.flatten() for p in x.model.parameters()]) for x in (a, b, c))
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, pc)
        assert a.loss(a.model).item() == b.loss(b.model).item()
        assert a.config == b.config


def test_build_leaves_the_global_generator_alone() -> None:
    state = torch.get_rng_state()
    for name in names():
        get(name).build("quick", seed=1)
    assert torch.equal(torch.get_rng_state(), state)


def test_loss_does_not_mutate_the_data(instance: ProblemInstance) -> None:
    tensors = {k: v.clone() for k, v in vars(instance).items() if isinstance(v, torch.Tensor)}
    half = instance.name not in FFT_MODELS  # CPU torch: no half FFT
    instance.loss(_fresh_model(instance).half() if half else _fresh_model(instance)).backward()
    for key, before in tensors.items():
        after = getattr(instance, key)
        assert torch.equal(after, before) and not after.requires_grad, key


def test_generator_streams_are_independent() -> None:
    draws = {(s, k): torch.rand(4, generator=generator(s, k)) for s in (0, 1) for k in (0, 1)}
    assert torch.equal(torch.rand(4, generator=generator(0, 1)), draws[0, 1])
    values = list(draws.values())
    assert all(not torch.equal(x, y) for i, x in enumerate(values) for y in values[i + 1 :])


def test_relative_l2() -> None:
    # Oracle: hand computation, ||(3, 4) - (0, 0)|| / ||(3, 4)|| = 1 and ||(1, 0)|| / ||(3, 4)||.
    ref = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert relative_l2(torch.zeros(2), ref) == 1.0
    assert relative_l2(torch.tensor([4.0, 4.0], dtype=torch.float16), ref) == 0.2
    assert math.isnan(relative_l2(torch.tensor([math.nan, 0.0]), ref))
    with pytest.raises(ValueError, match="prediction has 3 values"):
        relative_l2(torch.zeros(3), ref)
