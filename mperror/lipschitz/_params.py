"""Shared plumbing: checking arguments, flat vectors over a tuple of tensors, restoring params."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch

from mperror._checks import is_integer, is_real
from mperror.lipschitz._protocol import LossFn

__all__ = [
    "as_params",
    "as_tensors",
    "check_generator",
    "check_positive_int",
    "check_radius",
    "checked_loss",
    "flat_gradient",
    "flatten",
    "norm",
    "preserved",
    "random_ball",
    "random_unit",
    "set_flat",
    "unflatten",
]

_SAME_SIZE_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def as_tensors(tensors: object, *, argument: str) -> tuple[torch.Tensor, ...]:
    """``tensors`` as a tuple of distinct real floating strided tensors on one device."""
    if isinstance(tensors, torch.Tensor):
        raise TypeError(
            f"{argument} must be a sequence of tensors, not a single tensor; pass [{argument}]"
        )
    if not isinstance(tensors, Iterable):
        raise TypeError(
            f"{argument} must be a sequence of tensors, e.g. list(model.parameters()); "
            f"got {type(tensors).__name__}"
        )
    result = tuple(tensors)
    if not result:
        raise ValueError(f"{argument} must contain at least one tensor; got an empty sequence")
    seen: dict[int, int] = {}
    for i, t in enumerate(result):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{argument}[{i}] must be a torch.Tensor; got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{argument}[{i}] must have a real floating dtype; got {t.dtype}")
        if t.layout != torch.strided:
            raise TypeError(f"{argument}[{i}] must be a dense (strided) tensor; got {t.layout}")
        if id(t) in seen:
            raise ValueError(f"{argument}[{i}] is the same tensor as {argument}[{seen[id(t)]}]")
        seen[id(t)] = i
        if t.device != result[0].device:
            raise ValueError(
                f"{argument} must all be on one device; {argument}[0] is on "
                f"{result[0].device}, {argument}[{i}] on {t.device}"
            )
    return result


def as_params(params: object) -> tuple[torch.Tensor, ...]:
    """``params`` checked against the estimator contract (leaves with ``requires_grad``)."""
    result = as_tensors(params, argument="params")
    if sum(p.numel() for p in result) == 0:
        raise ValueError("params must hold at least one value; they have none")
    for i, p in enumerate(result):
        if not p.requires_grad:
            raise ValueError(
                f"params[{i}] must have requires_grad=True: the loss is differentiated with "
                "respect to params"
            )
        if not p.is_leaf:
            raise ValueError(
                f"params[{i}] must be a leaf tensor (e.g. an nn.Parameter); it was computed "
                f"by {type(p.grad_fn).__name__}"
            )
    return result


def check_generator(generator: object) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None; got {type(generator).__name__}"
        )


def check_positive_int(value: object, *, argument: str) -> int:
    """``value`` as a plain int, or an error naming ``argument`` unless it is an int >= 1."""
    if not is_integer(value):
        raise TypeError(f"{argument} must be an int; got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{argument} must be >= 1; got {value}")
    return operator.index(value)


def check_tolerance(value: object, *, zero: bool) -> None:
    """``tol``: None or a real number in [0, 1) (in (0, 1) unless ``zero``)."""
    if value is None:
        return
    if not is_real(value):
        raise TypeError(f"tol must be a float or None; got {type(value).__name__}")
    low = value >= 0.0 if zero else value > 0.0
    if not (math.isfinite(value) and low and value < 1.0):
        allowed = "[0, 1)" if zero else "(0, 1)"
        raise ValueError(f"tol must be None or a float in {allowed}; got {value!r}")


def check_radius(value: object, *, argument: str = "radius") -> None:
    if not is_real(value):
        raise TypeError(f"{argument} must be a float; got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{argument} must be finite and > 0; got {value}")


def checked_loss(loss_fn: LossFn) -> torch.Tensor:
    """``loss_fn()``, checked to be a finite one-element floating tensor that needs a gradient."""
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be a callable taking no arguments; got {type(loss_fn).__name__}"
        )
    loss = loss_fn()
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"loss_fn() must return a torch.Tensor; it returned {type(loss).__name__}")
    if loss.numel() != 1:
        raise ValueError(
            f"loss_fn() must return a scalar (one-element) tensor; it returned shape "
            f"{tuple(loss.shape)}: reduce it with .sum() or .mean()"
        )
    if not loss.is_floating_point():
        raise TypeError(f"loss_fn() must return a real floating tensor; got {loss.dtype}")
    if not loss.requires_grad:
        raise ValueError(
            "loss_fn() returned a tensor that does not require grad: it must be computed from "
            "params inside loss_fn (not under torch.no_grad or from detached copies)"
        )
    value = loss.detach().item()
    if not math.isfinite(value):
        raise ValueError(f"loss_fn() returned a non-finite loss ({value}); L is undefined there")
    return loss


def flatten(tensors: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]) -> torch.Tensor:
    """One float64 vector from per-tensor pieces (``None`` is zeros shaped like ``like``)."""
    pieces = [
        torch.zeros(p.numel(), dtype=torch.float64, device=p.device)
        if t is None
        else t.detach().reshape(-1).to(torch.float64)
        for t, p in zip(tensors, like, strict=True)
    ]
    return torch.cat(pieces)


def unflatten(v: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Split a flat vector into pieces shaped and typed like ``like``."""
    pieces = []
    offset = 0
    for p in like:
        pieces.append(v[offset : offset + p.numel()].reshape(p.shape).to(p.dtype))
        offset += p.numel()
    return pieces


def set_flat(params: Sequence[torch.Tensor], v: torch.Tensor) -> torch.Tensor:
    """Write ``v`` into ``params`` (rounding to their dtypes); return what was actually stored.

    The return value lets a difference quotient divide by the step that was really taken, not
    by the float64 step that was asked for.
    """
    with torch.no_grad():
        for p, piece in zip(params, unflatten(v, params), strict=True):
            p.copy_(piece)
    return flatten(params, params)


def gradients(
    loss: torch.Tensor, params: Sequence[torch.Tensor], *, create_graph: bool = False
) -> tuple[torch.Tensor | None, ...]:
    """``torch.autograd.grad(loss, params)``, ``None`` for a param the loss ignores; a loss that
    ignores every param raises ValueError (its Hessian would read as 0, and L = 0 would make
    any bound that needs L hold vacuously)."""
    grads = torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True)
    if all(g is None for g in grads):
        raise ValueError(
            "loss_fn() does not depend on any tensor in params: pass the tensors it computes "
            "from (e.g. list(model.parameters()) of the model loss_fn calls, not of a copy)"
        )
    return grads


def flat_gradient(loss_fn: LossFn, params: Sequence[torch.Tensor]) -> torch.Tensor:
    """∇loss at the current params, flattened to float64 (zeros for params the loss ignores)."""
    return flatten(gradients(checked_loss(loss_fn), params), params)


def norm(x: torch.Tensor) -> float:
    """‖x‖₂ as a float, scaled so that squares of entries above 1e154 do not overflow."""
    scale = x.abs().max() if x.numel() else x.new_zeros(())
    if not torch.isfinite(scale) or scale == 0:
        return scale.item()
    return (scale * torch.linalg.vector_norm(x / scale)).item()


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().view(_SAME_SIZE_INT[t.element_size()])


@contextmanager
def preserved(params: Sequence[torch.Tensor]) -> Iterator[None]:
    """Restore the values (bitwise) and ``requires_grad`` of ``params`` on exit, even on errors;
    gradients enabled inside (an estimator differentiates the loss, in a ``torch.no_grad()``
    block too).

    Values are written back only where their bits changed, so an estimator that never wrote to
    a tensor leaves its version counter alone.
    """
    saved = [(p.detach().clone(), p.requires_grad) for p in params]
    try:
        with torch.enable_grad():
            yield
    finally:
        with torch.no_grad():
            for p, (value, requires_grad) in zip(params, saved, strict=True):
                if p.requires_grad != requires_grad:
                    p.requires_grad_(requires_grad)
                if not torch.equal(_bits(p), _bits(value)):
                    p.copy_(value)


def _standard_normal(n: int, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.randn(n, dtype=torch.float64)
    return torch.randn(n, dtype=torch.float64, generator=generator, device=generator.device)


def random_unit(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """A float64 vector uniform on the unit sphere of Rⁿ, drawn from ``generator``."""
    z = _standard_normal(n, generator).to(device)
    return z / torch.linalg.vector_norm(z)


def random_ball(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """A float64 vector uniform in the unit ball of Rⁿ: a uniform direction times U^(1/n)."""
    direction = random_unit(n, generator, device)
    if generator is None:
        u = torch.rand((), dtype=torch.float64)
    else:
        u = torch.rand((), dtype=torch.float64, generator=generator, device=generator.device)
    return direction * u.to(device) ** (1.0 / n)
