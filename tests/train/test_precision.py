"""Precision policies: parsing, errors, backends, and what each compute context rounds."""

from __future__ import annotations

import pytest
import torch

from mperror import formats
from mperror.train import RunConfig
from mperror.train.precision import Precision, examples, parse


@pytest.mark.parametrize("name", examples())
def test_examples_parse_to_themselves(name: str) -> None:
    assert parse(name).name == name


@pytest.mark.parametrize(
    ("text", "name", "kind", "fmt", "scaler"),
    [
        ("pure-fp16", "fp16", "pure", "fp16", False),
        (" MIXED-FP16+scaler ", "mixed-fp16+scaler", "mixed", "fp16", True),
        ("mixed-float8_e4m3fn", "mixed-e4m3fn", "mixed", "e4m3fn", False),
        ("pure-e5m2", "pure-e5m2", "pure", "e5m2", False),
        ("float32", "fp32", "fp32", "fp32", False),
        ("mixed-fp32", "fp32", "fp32", "fp32", False),
    ],
)
def test_normalisation(text: str, name: str, kind: str, fmt: str, scaler: bool) -> None:
    p = parse(text)
    assert (p.name, p.kind, p.fmt.name, p.grad_scaler) == (name, kind, fmt, scaler)


def test_bad_policies_name_what_is_allowed() -> None:
    with pytest.raises(ValueError, match=r"unknown policy 'mixed_fp16'.*did you mean 'mixed-fp16'"):
        parse("mixed_fp16")
    with pytest.raises(ValueError, match="unknown format"):
        parse("pure-fp17")
    with pytest.raises(ValueError, match="master weights"):
        parse("fp16+scaler")
    with pytest.raises(ValueError, match="backend 'native' needs fp16 or bf16"):
        parse("pure-e4m3fn", backend="native")
    with pytest.raises(ValueError, match="backend must be one of"):
        parse("fp16", backend="gpu")
    with pytest.raises(TypeError, match="policy must be a str"):
        parse(16)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fp64"):
        parse("pure-fp64")


@pytest.mark.parametrize(
    ("name", "device", "backend", "dtype", "stores"),
    [
        ("fp32", "cpu", "native", torch.float32, None),
        ("fp16", "cpu", "native", torch.float16, None),
        ("bf16", "cuda", "native", torch.bfloat16, None),
        ("mixed-fp16", "cpu", "emulated", torch.float32, None),
        ("mixed-fp16", "cuda", "native", torch.float32, None),
        ("mixed-e5m2", "cuda", "emulated", torch.float32, None),
        ("pure-e4m3fn", "cpu", "emulated", torch.float32, "e4m3fn"),
    ],
)
def test_resolve(name, device, backend, dtype, stores) -> None:
    """Oracle: the backend table of mperror.train.precision's docstring."""
    p = parse(name).resolve(device)
    assert p.backend == backend
    assert p.param_dtype == dtype
    assert (p.stores_weights.name if p.stores_weights else None) == stores


def test_compute_contexts_round_as_named() -> None:
    """Oracle: fp16's spacing at 1 is 2**-10, so 1 + 2**-12 rounds to 1 (and 1 + 2**-9 stays);
    float32 holds both. Under mixed (autocast's rules) float32 tensors add in float32 and exp
    stays float32, so both keep float32's values; under pure fp16 both are rounded to fp16."""
    x = torch.tensor([1.0, 1.0])
    d = torch.tensor([2.0**-12, 2.0**-9])
    cpu = torch.device("cpu")
    with parse("fp32").resolve(cpu).compute(cpu) as em:
        assert em is None
        assert (x + d).tolist() == [1 + 2.0**-12, 1 + 2.0**-9]
    for name in ("mixed-fp16", "pure-fp16"):
        p = Precision(name=name, kind=name.split("-")[0], fmt=parse(name).fmt, backend="emulated")
        with p.compute(cpu) as em:
            assert em is not None
            pure = name.startswith("pure")
            assert (x + d).tolist() == [1.0 if pure else 1 + 2.0**-12, 1 + 2.0**-9]
            e = torch.exp(torch.tensor([2.0**-12]))
        exact32 = torch.exp(torch.tensor([2.0**-12], dtype=torch.float64)).float()
        if name.startswith("mixed"):
            assert torch.equal(e, exact32)
        else:
            assert e.item() == 1.0  # exp(2**-12) = 1 + 2**-12 + ... rounds to 1 in fp16
    with pytest.raises(ValueError, match="resolve"), parse("mixed-fp16").compute(cpu):
        pass


@pytest.mark.parametrize("policy", ["fp32", "float32", "mixed-fp32"])
def test_fp32_with_the_emulated_backend_is_refused(policy: str) -> None:
    """fp32 always runs natively: backend 'emulated' was dropped silently while the run id
    said '-emulated'. 'auto' and 'native' stay, and name the same run."""
    with pytest.raises(ValueError, match=r"backend 'emulated' \(--backend\) has nothing"):
        parse(policy, backend="emulated")
    with pytest.raises(ValueError, match="nothing to emulate"):
        RunConfig(problem="regression", policy=policy, backend="emulated")
    assert parse(policy, backend="native").resolve("cpu").backend == "native"
    assert parse(policy).resolve("cpu").backend == "native"


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"fmt": "fp16"}, TypeError, "fmt must be a FloatFormat"),  # failed later on .name
        ({"grad_scaler": "no"}, TypeError, "grad_scaler must be a bool"),  # "no" is truthy
        ({"fmt": formats.FP64}, ValueError, "fmt must be a format float32 holds"),
        ({"kind": "mixed", "fmt": formats.FP32}, ValueError, "kind 'fp32' goes with fmt fp32"),
        ({"kind": "fp32", "fmt": formats.FP16}, ValueError, "kind 'fp32' goes with fmt fp32"),
    ],
)
def test_precision_fields_parse_would_refuse_are_refused(fields, error, match) -> None:
    """Oracle: parse's own refusals; the record made directly must not hold what parse would
    never make."""
    args = {"name": "mixed-fp16", "kind": "mixed", "fmt": formats.FP16, **fields}
    with pytest.raises(error, match=match):
        Precision(**args)
