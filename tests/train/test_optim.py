"""Adam with Keras's epsilon placement against Keras's update written out."""

from __future__ import annotations

import math

import pytest
import torch

from mperror.train.optim import KerasAdam, make_optimizer

BETA1, BETA2 = 0.9, 0.999


def _keras_steps(theta: torch.Tensor, grads: list[torch.Tensor], lr: float, eps: float):
    """Keras's Adam as its documentation states it: ``lr_t = lr sqrt(1 - b2**t) / (1 - b1**t)``,
    ``theta -= lr_t m / (sqrt(v) + eps)``, with ``m``, ``v`` the uncorrected moments."""
    m = torch.zeros_like(theta)
    v = torch.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        m = BETA1 * m + (1 - BETA1) * g
        v = BETA2 * v + (1 - BETA2) * g * g
        lr_t = lr * math.sqrt(1 - BETA2**t) / (1 - BETA1**t)
        theta = theta - lr_t * m / (v.sqrt() + eps)
    return theta


@pytest.mark.parametrize("eps", [1e-7, 1e-5, 1e-2])
def test_keras_adam_is_keras_update(eps: float) -> None:
    """Oracle: the Keras update above, in float64. The two evaluate the same exact expression in
    a different order, so they agree to a few float64 roundings per step (rel 1e-12 over 30
    steps); torch's own Adam differs from it by far more while epsilon matters."""
    gen = torch.Generator().manual_seed(0)
    theta0 = torch.randn(50, generator=gen, dtype=torch.float64)
    # gradients spanning 1e-6..1, so epsilon matters for some coordinates and not for others
    grads = [
        torch.randn(50, generator=gen, dtype=torch.float64)
        * 10.0 ** torch.linspace(-6, 0, 50, dtype=torch.float64)
        for _ in range(30)
    ]
    expected = _keras_steps(theta0, grads, 1e-2, eps)

    def run(opt_type: type) -> torch.Tensor:
        p = torch.nn.Parameter(theta0.clone())
        opt = opt_type([p], lr=1e-2, eps=eps)
        for g in grads:
            p.grad = g.clone()
            opt.step()
        return p.detach()

    torch.testing.assert_close(run(KerasAdam), expected, rtol=1e-12, atol=1e-15)
    gap = (run(torch.optim.Adam) - expected).abs().max()
    assert gap > 1e-6  # the two placements are distinguishable in this test


def test_skipped_steps_do_not_advance_the_epsilon_schedule() -> None:
    """Oracle: GradScaler skips a step with an infinite gradient, so the following step is
    Adam's first and must equal a fresh optimiser's first step."""
    fresh = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = KerasAdam([fresh], lr=0.1, eps=1e-2)
    fresh.grad = torch.tensor([0.5, 1e-3])
    opt.step()

    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = KerasAdam([p], lr=0.1, eps=1e-2)
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    scaler.scale(torch.ones(()))  # creates the scale tensor, as scaling a loss does
    p.grad = torch.tensor([math.inf, 1.0])
    scaler.step(opt)
    scaler.update()
    assert not opt.state  # skipped: Adam took no step
    p.grad = torch.tensor([0.5, 1e-3]) * scaler.get_scale()
    scaler.step(opt)
    assert torch.equal(p.detach(), fresh.detach())


def test_unequal_step_counts_in_a_group_are_refused() -> None:
    """Keras counts iterations once for all variables: after a step in which one parameter had
    no gradient, one epsilon for the group is no longer Keras's update for both (it silently
    used the larger count)."""
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = KerasAdam([a, b], lr=0.1)
    a.grad = torch.ones(2)
    opt.step()  # b had no gradient: it did not step
    b.grad = torch.ones(2)
    with pytest.raises(ValueError, match=r"step counts \[0, 1\]"):
        opt.step()
    separate = KerasAdam([{"params": [a]}, {"params": [b]}], lr=0.1)
    separate.step()


def test_unknown_optimizer_and_unsupported_options_are_refused() -> None:
    p = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer("sgd", p, lr=1e-3, eps=1e-8)
    with pytest.raises(ValueError, match="amsgrad"):
        KerasAdam(p, amsgrad=True)
