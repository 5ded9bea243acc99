"""Hessian-vector products of a closure loss over live tensors.

Two ways to compute H v for H = ∇²f(θ), f = ``loss_fn()`` and θ the tensors in ``params``:

``"forward_over_reverse"``
    Differentiate the gradient in direction v with forward-mode AD: inside a
    ``torch.autograd.forward_ad.dual_level``, each tensor in ``params`` is overwritten in place
    (under ``torch.no_grad``) by the dual number ``θᵢ + ε vᵢ`` with the *same* primal bits, so the
    closure, which refers to the tensors by identity, sees the tangent without knowing it. Then
    ``torch.autograd.grad(f, params)`` runs the backward pass on dual numbers and the tangent of
    each gradient is (H v)ᵢ. Leaving the dual level strips every tangent; the values were never
    changed. ``torch.func.jvp(torch.func.grad(f))`` cannot be used here: ``torch.func`` needs the
    parameters as function arguments, and a loss that calls ``torch.autograd.grad`` or
    ``requires_grad_`` inside (every PINN residual) is refused inside its transforms.
    Each product reruns ``loss_fn``.

``"double_backward"``
    g = ∇f with ``create_graph=True`` once, then H v = ∇(g·v) by a vector-Jacobian product
    through that graph, kept alive (``retain_graph=True``) and reused for every later product.
    Each product costs one backward pass through the gradient's graph; the graph stays in memory
    for the operator's lifetime.

``"auto"`` tries forward-over-reverse on the first product and switches to double backward for
good if that raises ``NotImplementedError`` or ``RuntimeError``, recording why in
``fallback_reason``. Cases where forward-over-reverse cannot apply: a custom
``torch.autograd.Function`` without a ``jvp`` staticmethod; an operator without a forward-mode
derivative formula; a ``loss_fn`` that itself opens a forward-AD ``dual_level`` (PyTorch does not
nest them). One case where the two disagree without an error: work that ``loss_fn`` does under
``torch.no_grad`` is invisible to reverse mode but still carries forward tangents, so
forward-over-reverse differentiates the gradient as it is computed while double backward treats
that work as constant. ``.detach()`` hides work from both.

Measured with this operator on one CPU thread (PINN loss u_t - u_xx on a [2, 32, 32, 32, 1]
tanh MLP, 2,241 parameters, 500 points; median ms per product, float32 / float64):
forward-over-reverse 19.9 / 27.6, double backward with the gradient graph reused 8.2 / 15.5,
double backward rebuilding the graph each time 16.4 / 28.0. The 0.58x advantage reported for
``torch.func`` forward-over-reverse (REFERENCES.md section 3) does not carry over to the closure
form on CPU; reusing the graph is what pays there, at the price of keeping it in memory. The
first forward-mode product in a process also costs about 3 s while torch prepares its
forward-mode decompositions (and torch warns, through torch.jit.script, that this is deprecated).
So the estimators default to ``"double_backward"``; ``"auto"`` and ``"forward_over_reverse"`` are
there for devices or losses where forward mode pays.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Literal

import torch
import torch.autograd.forward_ad as fwad

from mperror.lipschitz._params import checked_loss, flatten, gradients, unflatten
from mperror.lipschitz._protocol import LossFn

__all__ = ["HVP_METHODS", "HVPMethod", "HessianOperator", "check_hvp_method"]

HVPMethod = Literal["auto", "forward_over_reverse", "double_backward"]
HVP_METHODS: tuple[HVPMethod, ...] = ("auto", "forward_over_reverse", "double_backward")


def check_hvp_method(hvp: object) -> None:
    if hvp not in HVP_METHODS:
        raise ValueError(f"hvp must be one of {HVP_METHODS}; got {hvp!r}")


class HessianOperator:
    """v ↦ ∇²f(θ) v on flat float64 vectors, θ the concatenation of ``params``.

    Args:
        loss_fn: closure returning the scalar loss from the live tensors in ``params``.
        params: leaf tensors with ``requires_grad`` (already checked by the caller).
        method: one of :data:`HVP_METHODS` (see the module docstring).

    Vectors are float64 on the params' device; each piece is cast to its tensor's dtype before
    the product and the result cast back. The operator does not restore ``params``: wrap its use
    in :func:`mperror.lipschitz._params.preserved`. Use it as a context manager (or call
    :meth:`close`) to release the double-backward graph.

    Attributes:
        dim: the number of scalar parameters.
        evaluations: products computed so far.
        method_used: the method that computed them (``None`` before the first product).
        fallback_reason: why ``"auto"`` left forward-over-reverse, else ``None``.
    """

    def __init__(self, loss_fn: LossFn, params: Sequence[torch.Tensor], method: HVPMethod) -> None:
        check_hvp_method(method)
        self.loss_fn = loss_fn
        self.params = tuple(params)
        self.method = method
        self.dim = sum(p.numel() for p in self.params)
        self.device = self.params[0].device
        self.evaluations = 0
        self.method_used: str | None = None if method == "auto" else method
        self.fallback_reason: str | None = None
        self._grads: tuple[torch.Tensor | None, ...] | None = None

    def __enter__(self) -> HessianOperator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Drop the retained gradient graph (double backward)."""
        self._grads = None

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """H v for a flat float64 vector ``v`` of length :attr:`dim`."""
        if self.method_used is None:
            try:
                hv = self._forward_over_reverse(v)
            except (NotImplementedError, RuntimeError) as error:
                self.fallback_reason = f"{type(error).__name__}: {error}"
                self.method_used = "double_backward"
                hv = self._double_backward(v)
            else:
                self.method_used = "forward_over_reverse"
        elif self.method_used == "forward_over_reverse":
            hv = self._forward_over_reverse(v)
        else:
            hv = self._double_backward(v)
        self.evaluations += 1
        return hv

    def _forward_over_reverse(self, v: torch.Tensor) -> torch.Tensor:
        tangents = unflatten(v, self.params)
        with fwad.dual_level():
            with torch.no_grad():
                for p, t in zip(self.params, tangents, strict=True):
                    # Same primal bits: only the tangent is new, so nothing needs restoring.
                    p.copy_(fwad.make_dual(p.detach(), t))
            loss = checked_loss(self.loss_fn)
            grads = gradients(loss, self.params)
            hv = [None if g is None else fwad.unpack_dual(g).tangent for g in grads]
            return flatten(hv, self.params)

    def _double_backward(self, v: torch.Tensor) -> torch.Tensor:
        if self._grads is None:
            loss = checked_loss(self.loss_fn)
            self._grads = gradients(loss, self.params, create_graph=True)
        # A gradient piece that does not require grad is constant in θ: its Hessian rows are 0.
        live = [
            (g, t)
            for g, t in zip(self._grads, unflatten(v, self.params), strict=True)
            if g is not None and g.requires_grad
        ]
        if not live:
            return torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        hv = torch.autograd.grad(
            [g for g, _ in live],
            self.params,
            grad_outputs=[t for _, t in live],
            retain_graph=True,
            allow_unused=True,
        )
        return flatten(hv, self.params)
