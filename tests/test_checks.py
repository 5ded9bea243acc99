"""Integer arguments: numpy and one-element tensor integers are integers, bools never are.

Oracle: the same call with the equal Python int (the argument's value, not its type, decides
the result), and the error the call gives for a non-integer. Every accepted integer is kept as
a plain int, so formats and configurations compare, hash and serialise as with Python ints.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import mperror
from mperror import ops
from mperror._checks import is_integer
from mperror._records import plain
from mperror.formats import FloatFormat
from mperror.lipschitz import PowerIteration
from mperror.models.fno import FNO
from mperror.problems._base import check_seed, evenly_spaced
from mperror.train.config import RunConfig

INTEGERS = [np.int64(3), np.int32(3), np.uint8(3), torch.tensor(3), torch.tensor([3])]
NOT_INTEGERS = [True, np.bool_(True), torch.tensor(True), 3.0, np.float64(3.0), "3", None]


@pytest.mark.parametrize("value", INTEGERS, ids=repr)
def test_integer_kinds_count(value) -> None:
    assert is_integer(value)


@pytest.mark.parametrize("value", NOT_INTEGERS, ids=repr)
def test_bools_floats_and_strings_do_not(value) -> None:
    assert not is_integer(value)


@pytest.mark.parametrize("value", INTEGERS, ids=repr)
def test_float_format_keeps_plain_ints(value) -> None:
    emin = np.int64(-3) if isinstance(value, np.unsignedinteger) else -value
    fmt = FloatFormat(precision=value, emax=value + 4, emin=emin)
    assert fmt == FloatFormat(precision=3, emax=7, emin=-3)
    assert hash(fmt) == hash(FloatFormat(precision=3, emax=7, emin=-3))
    assert all(type(v) is int for v in (fmt.precision, fmt.emax, fmt.emin))
    json.dumps(plain(fmt))  # raises for numpy or torch values


@pytest.mark.parametrize("field", ["precision", "emax", "emin"])
def test_float_format_refuses_bools(field: str) -> None:
    kwargs = {"precision": 3, "emax": 7, field: True}
    with pytest.raises(ValueError, match=field):
        FloatFormat(**kwargs)


def test_round_takes_numpy_random_bits() -> None:
    x = torch.linspace(-3, 3, 1001)

    def rounded(bits) -> torch.Tensor:
        g = torch.Generator().manual_seed(7)
        return mperror.round(x, "e4m3fn", "stochastic", generator=g, random_bits=bits)

    assert torch.equal(rounded(np.int64(5)), rounded(5))
    with pytest.raises(ValueError, match="random_bits"):
        rounded(True)


def test_reductions_take_numpy_blocks_chunks_and_dims() -> None:
    x = torch.linspace(0.1, 7.0, 60).reshape(3, 20)
    as_python = ops.sum(x, "fp16", dim=1, order="blocked", block=4)
    assert torch.equal(
        ops.sum(x, "fp16", dim=np.int64(1), order="blocked", block=np.int64(4)), as_python
    )
    acc = ops.Accumulation(fmt="fp32", chunk=np.int64(4))
    assert type(acc.chunk) is int and acc == ops.Accumulation(fmt="fp32", chunk=4)
    for bad in (np.bool_(True), 4.0):
        with pytest.raises(ValueError, match="block"):
            ops.sum(x, "fp16", order="blocked", block=bad)
    with pytest.raises(ValueError, match="dim"):
        ops.sum(x, "fp16", dim=1.0)


def test_configurations_store_plain_ints() -> None:
    seed, iterations = np.int64(2), np.int32(9)
    config = RunConfig(problem="regression", policy="fp32", seed=seed, iterations=iterations)
    assert config == RunConfig(problem="regression", policy="fp32", seed=2, iterations=9)
    assert type(config.seed) is int and type(config.iterations) is int
    with pytest.raises(ValueError, match="iterations"):
        RunConfig(problem="regression", policy="fp32", iterations=True)
    assert type(PowerIteration(max_iter=np.int64(5)).max_iter) is int
    for seed in (torch.tensor(3), np.uint64(3)):  # the tensor's comparison with 2**64 raised
        assert check_seed(seed) == 3


def test_models_and_grids_take_numpy_sizes() -> None:
    model = FNO(dim=np.int64(1), width=np.int64(4), modes=(np.int64(3),), layers=np.int64(1))
    assert model(torch.ones(2, 1, 16)).shape == (2, 1, 16)
    assert torch.equal(evenly_spaced(np.int64(3)), evenly_spaced(3))
    with pytest.raises(ValueError, match="dim"):
        FNO(dim=True, width=4, modes=(3,), layers=1)
