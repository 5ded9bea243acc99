"""Lost weight updates, on a manufactured case where the lost ones are known in advance.

w = -0.5 in fp16. Toward zero the neighbour is -0.5 + 2**-12 (spacing 2**-12 in [0.25, 0.5));
away from zero it is -0.5 - 2**-11 (spacing 2**-11 in [0.5, 1)). Round to nearest keeps -0.5
when the update is below half the spacing in its direction: |delta| < 2**-13 toward zero,
|delta| < 2**-12 away from zero; a tie goes to the even significand, -0.5 (1024 * 2**-11),
so delta = +2**-13 exactly is lost too.
"""

from __future__ import annotations

import math

import pytest
import torch

import mperror
from mperror.emulate import LostUpdateMeter, lost_update_fraction, pure, store_

# (update, lost?) derived in the module docstring.
CASES = [
    (0.99 * 2.0**-13, True),
    (2.0**-13, True),  # tie: stays at the even -0.5
    (1.01 * 2.0**-13, False),
    (0.99 * 2.0**-12, False),
    (-0.99 * 2.0**-12, True),
    (-(2.0**-12), True),  # tie again: -0.5 is even, -0.5 - 2**-11 is odd
    (-1.01 * 2.0**-12, False),
    (0.0, False),  # no update: not counted as lost
]
DELTA = torch.tensor([d for d, _ in CASES])
LOST = torch.tensor([lost for _, lost in CASES])


def test_manufactured_lost_updates() -> None:
    """Oracle: the hand derivation in the module docstring (fp16 gaps either side of -0.5, ties
    to even); the fraction is the count of derived losses over all 8 weights."""
    w = torch.full((len(CASES),), -0.5)
    stored = mperror.round(w + DELTA, "fp16")
    assert torch.equal(stored == w, LOST | (DELTA == 0))
    assert lost_update_fraction(w, stored, DELTA) == int(LOST.sum()) / len(CASES)
    assert lost_update_fraction([w, w], [stored, stored], [DELTA, DELTA]) == int(LOST.sum()) / len(
        CASES
    )


def sgd_on_manufactured_gradients(meter: LostUpdateMeter, param: torch.nn.Parameter) -> None:
    """One SGD step with lr 1 and gradient -delta: the optimizer's update is exactly delta."""
    optimizer = torch.optim.SGD([param], lr=1.0)
    param.grad = -DELTA.clone()
    with meter.step():
        optimizer.step()


def test_meter_with_weights_stored_in_fp16() -> None:
    """fp32 optimizer arithmetic, weights stored in fp16 by the meter: lost exactly as derived."""
    param = torch.nn.Parameter(torch.full((len(CASES),), -0.5))
    meter = LostUpdateMeter([param], "fp16")
    meter.store()
    sgd_on_manufactured_gradients(meter, param)
    record = meter.last
    assert record.step == 0 and record.weights == len(CASES)
    assert record.updated == int((DELTA != 0).sum())
    assert record.lost == int(LOST.sum())
    assert record.unchanged == int((LOST | (DELTA == 0)).sum())
    assert record.fraction == int(LOST.sum()) / len(CASES)
    assert meter.fractions() == [record.fraction]
    assert torch.equal(param.detach() == -0.5, LOST | (DELTA == 0))


def test_meter_around_an_emulated_optimizer_step() -> None:
    """Everything in fp16: the step runs inside the emulator (p + (-lr) * grad rounded once),
    the meter stores nothing and counts a weight as updated where its gradient is nonzero."""
    param = torch.nn.Parameter(torch.full((len(CASES),), -0.5))
    meter = LostUpdateMeter([param])
    with mperror.emulate(pure("fp16")):
        sgd_on_manufactured_gradients(meter, param)
    assert meter.last.lost == int(LOST.sum())
    assert meter.last.updated == int((DELTA != 0).sum())


def test_store_rounds_in_place_and_errors_are_clear() -> None:
    p = torch.nn.Parameter(torch.tensor([1 + 2.0**-20, 3.0]))
    store_([p], "bf16")
    assert p.tolist() == [1.0, 3.0]
    with pytest.raises(ValueError, match="no step"):
        _ = LostUpdateMeter([p]).last
    with pytest.raises(ValueError, match="as many tensors"):
        lost_update_fraction([p], [p, p], [p])
    with pytest.raises(ValueError, match="equal shapes"):
        lost_update_fraction(torch.ones(2), torch.ones(3), torch.ones(2))
    with pytest.raises(TypeError, match="tensor"):
        lost_update_fraction([1.0], [1.0], [1.0])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="before must be a tensor"):
        lost_update_fraction(1.0, 1.0, 0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        LostUpdateMeter([p], "fp16", "stochastic", generator=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="generator"):
        LostUpdateMeter([p], None, generator="abc")  # type: ignore[arg-type]


def test_meter_counts_an_update_float32_itself_lost() -> None:
    """Oracle: by hand. Both weights 1.0 get nonzero gradients 2**-30 and 2**-12 (SGD, lr 1):
    float32 keeps 1 - 2**-30 at 1.0, fp16 storage keeps 1 - 2**-12 at 1.0: both updates lost
    (the meter counted only the one float32 carried out)."""
    param = torch.nn.Parameter(torch.ones(2))
    meter = LostUpdateMeter([param], "fp16")
    optimizer = torch.optim.SGD([param], lr=1.0)
    param.grad = torch.tensor([2.0**-30, 2.0**-12])
    with meter.step():
        optimizer.step()
    assert (meter.last.updated, meter.last.lost) == (2, 2)
    assert torch.equal(param.detach(), torch.ones(2))


def test_meter_agrees_with_the_spacing_rule_on_random_updates() -> None:
    """Oracle: mperror.bounds.gd.lost_updates, which predicts a loss from the spacing of fp16
    around each weight without rounding anything. The step itself is float32 arithmetic
    (w - lr g, rounded to float32), so the update the storage rounding sees is the float32
    result minus w, exact in float64; an update float32 itself lost (a nonzero gradient, no
    float32 change) was intended and is lost too."""
    from mperror.bounds.gd import lost_updates

    gen = torch.Generator().manual_seed(5)
    w0 = mperror.round(torch.randn(4000, generator=gen), "fp16")
    scales = torch.exp2(torch.randint(-20, -4, (4000,), generator=gen).float())
    grad = torch.randn(4000, generator=gen) * scales
    param = torch.nn.Parameter(w0.clone())
    meter = LostUpdateMeter([param], "fp16")
    optimizer = torch.optim.SGD([param], lr=1.0)
    param.grad = grad
    with meter.step():
        optimizer.step()
        effective = param.detach().double() - w0.double()
    expected = lost_updates(w0, effective, "fp16")
    lost_in_float32 = (effective == 0) & (grad != 0)
    assert int(lost_in_float32.sum()) > 0  # the case occurs here
    assert meter.last.lost == int(expected.sum()) + int(lost_in_float32.sum())
    assert 0 < meter.last.lost < meter.last.updated  # both kinds occur


@pytest.mark.parametrize("fmt", [None, "fp16"])
def test_meter_a_skipped_step_loses_nothing(fmt) -> None:
    """Oracle: GradScaler's rule: a step whose gradients hold inf or NaN is skipped, so no
    update was intended. Gradients [inf, 1] and a skipped step had counted both weights (or the
    finite one) as lost; a step that ran still counts."""
    param = torch.nn.Parameter(torch.ones(2))
    meter = LostUpdateMeter([param], fmt)
    param.grad = torch.tensor([math.inf, 1.0])
    with meter.step():
        pass  # skipped
    assert (meter.last.updated, meter.last.lost, meter.last.unchanged) == (0, 0, 2)
    param.grad = torch.tensor([2.0**-12, 1.0])
    with meter.step(), torch.no_grad():
        param -= param.grad  # 1 - 2**-12 is lost to fp16 storage (and kept in float32)
    assert meter.last.updated == 2 and meter.last.lost == (1 if fmt else 0)


# From a mutation review: modes and meter cases no test had used.


def test_store_rounds_by_the_mode_given() -> None:
    """Oracle: hand rounding, 1 + 2**-20 toward positive in fp16 is 1 + 2**-10."""
    p = torch.nn.Parameter(torch.full((1,), 1 + 2.0**-20))
    store_([p], "fp16", "toward_positive")
    assert p.item() == 1 + 2.0**-10


def test_meter_counts_updates_made_without_a_gradient() -> None:
    """Oracle: the docstring, an update is any change the step asked for (weight decay or
    momentum with a zero gradient); 1 - 2**-13 rounds back to 1 in fp16: one update, lost."""
    p = torch.nn.Parameter(torch.ones(1))
    meter = LostUpdateMeter([p], "fp16")
    p.grad = torch.zeros(1)
    with meter.step(), torch.no_grad():
        p -= 2.0**-13
    assert (meter.last.updated, meter.last.lost) == (1, 1)


def test_a_step_that_float32_loses_entirely_is_not_a_skipped_step() -> None:
    """Oracle: float32 arithmetic, 1 - 2**-30 is 1: both updates asked for, both lost (finite
    gradients, so not a step GradScaler skipped)."""
    p = torch.nn.Parameter(torch.ones(2))
    meter = LostUpdateMeter([p])
    p.grad = torch.tensor([2.0**-30, 2.0**-30])
    with meter.step(), torch.no_grad():
        p -= p.grad
    assert (meter.last.updated, meter.last.lost) == (2, 2)


def test_unchanged_and_lost_fractions_by_hand() -> None:
    """Oracle: hand count over four fp16 weights: two zero updates, one lost (2**-30), one
    made (1.0): three unchanged of four, one lost of four."""
    p = torch.nn.Parameter(torch.ones(4))
    meter = LostUpdateMeter([p], "fp16")
    p.grad = torch.tensor([0.0, 0.0, 2.0**-30, 1.0])
    with meter.step(), torch.no_grad():
        p -= p.grad
    assert meter.last.unchanged_fraction == 0.75 and meter.last.fraction == 0.25


def test_a_skipped_step_with_one_non_finite_gradient_counts_nothing() -> None:
    """Oracle: GradScaler's rule, one non-finite gradient skips the whole step: nothing was
    asked for, so nothing is updated or lost in either parameter."""
    p, q = torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1))
    meter = LostUpdateMeter([p, q], "fp16")
    p.grad, q.grad = torch.tensor([math.inf]), torch.tensor([1.0])
    with meter.step():
        pass
    assert (meter.last.updated, meter.last.lost) == (0, 0)
