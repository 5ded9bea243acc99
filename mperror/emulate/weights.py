"""Where the weights live: stored in a low-precision format, and the updates lost to it.

Mixed-precision training keeps float32 master weights: the optimizer step runs outside the
emulated forward and backward pass, in float32, and nothing is lost beyond float32 rounding. Pure
low-precision training stores the weights themselves in the format: after each step a weight
becomes ``fl(w + delta)``, which equals ``w`` whenever ``|delta|`` is below half the spacing of
the format at ``w`` in the direction of ``delta`` (round to nearest; a tie goes to the even
neighbour). Such lost updates freeze training: the PINN study of Hayford et al. (2024) reports
48%, 79% and 97% of the weights unchanged from one step to the next at iterations 100, 1,000 and
10,000 in pure float16.

Two ways to emulate pure low precision, both measured by :class:`LostUpdateMeter`:

* optimizer arithmetic in float32, weights stored in ``fmt``: run ``optimizer.step()`` as usual
  and round the weights with :func:`store_` (the meter does it when given ``fmt``); a weight's
  update counts as intended where the float32 step moved it or its gradient is nonzero (an
  update so small that float32 itself loses it is lost too);
* everything in ``fmt``: run ``optimizer.step()`` inside ``mperror.emulate(pure(fmt))``; the
  optimizer's state is then rounded too. (torch's Adam keeps its step counter in a float32
  tensor, which the emulation rounds as well: in float16 it stops at 2048, and the bias
  correction with it. Real float16 training keeps that counter in float32.) The intended update
  is not observable; the meter counts a weight's update as nonzero where its gradient is.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch

import mperror.rounding
from mperror._records import Record
from mperror.formats import FloatFormat, FormatLike, as_format
from mperror.rounding import RoundMode, explicit

__all__ = ["LostUpdateMeter", "LostUpdates", "lost_update_fraction", "store_"]

TensorOrTensors = torch.Tensor | Sequence[torch.Tensor]


def _as_list(value: TensorOrTensors | Iterable[torch.Tensor], argument: str) -> list[torch.Tensor]:
    if not isinstance(value, (torch.Tensor, Iterable)) or isinstance(value, (str, bytes)):
        raise TypeError(
            f"{argument} must be a tensor or a sequence of tensors, got {type(value).__name__}"
        )
    items = [value] if isinstance(value, torch.Tensor) else list(value)
    for t in items:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{argument} must be a tensor or a sequence of tensors, got {t!r}")
    return items


def _count_lost(
    before: torch.Tensor, after: torch.Tensor, moved: torch.Tensor
) -> tuple[int, int, int]:
    """(updated, lost, unchanged) counts for one tensor; ``moved`` marks nonzero updates."""
    same = after == before
    updated = int(torch.count_nonzero(moved))
    lost = int(torch.count_nonzero(same & moved))
    return updated, lost, int(torch.count_nonzero(same))


def lost_update_fraction(
    before: TensorOrTensors, after: TensorOrTensors, update: TensorOrTensors
) -> float:
    """Fraction of weights whose update was lost: ``after == before`` although ``update != 0``.

    Args:
        before: the weights before the step (a tensor or a sequence of tensors).
        after: the same weights after it, as stored.
        update: the update the optimizer meant to apply, same shapes.

    The fraction is over all weights (those with a zero update count as not lost). With
    ``w = -0.5`` stored in float16 (spacing ``2**-12`` toward zero, ``2**-11`` away from it),
    an update of ``+2**-14`` is lost and one of ``+2**-12`` is not:

    >>> w = torch.tensor([-0.5, -0.5])
    >>> delta = torch.tensor([2.0**-14, 2.0**-12])
    >>> stored = mperror.round(w + delta, "fp16")
    >>> lost_update_fraction(w, stored, delta)
    0.5
    """
    before_l = _as_list(before, "before")
    after_l = _as_list(after, "after")
    update_l = _as_list(update, "update")
    if not len(before_l) == len(after_l) == len(update_l):
        raise ValueError(
            f"before, after and update must hold as many tensors; got {len(before_l)}, "
            f"{len(after_l)} and {len(update_l)}"
        )
    total = lost = 0
    for b, a, u in zip(before_l, after_l, update_l, strict=True):
        if not b.shape == a.shape == u.shape:
            raise ValueError(
                f"before, after and update must have equal shapes, got {tuple(b.shape)}, "
                f"{tuple(a.shape)} and {tuple(u.shape)}"
            )
        total += b.numel()
        lost += _count_lost(b, a, u != 0)[1]
    return lost / total if total else 0.0


@torch.no_grad()
@explicit
def store_(
    params: TensorOrTensors | Iterable[torch.Tensor],
    fmt: FormatLike,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    *,
    generator: torch.Generator | None = None,
) -> None:
    """Store weights in ``fmt``: round every tensor in place (``mperror.round``, any mode)."""
    fmt = as_format(fmt)
    for p in _as_list(params, "params"):
        p.copy_(mperror.rounding.round(p.detach(), fmt, mode, generator=generator))


@dataclass(frozen=True, kw_only=True)
class LostUpdates(Record):
    """What one optimizer step did to the weights.

    Attributes:
        step: the step's index, from 0.
        weights: number of weights.
        updated: weights whose update was nonzero (the optimizer's intended update when the
            meter stores the weights; otherwise, weights with a nonzero gradient).
        lost: of those, weights that did not change.
        unchanged: weights equal before and after the step, whatever their update (the share
            Hayford et al. plot).
    """

    step: int
    weights: int
    updated: int
    lost: int
    unchanged: int

    @property
    def fraction(self) -> float:
        """``lost / weights``: the fraction of weights whose update was lost."""
        return self.lost / self.weights if self.weights else 0.0

    @property
    def unchanged_fraction(self) -> float:
        """``unchanged / weights``."""
        return self.unchanged / self.weights if self.weights else 0.0


class LostUpdateMeter:
    """Counts, at every optimizer step, the weights whose update was lost to rounding.

    Args:
        params: the weights (e.g. ``model.parameters()``).
        fmt: the format the weights are stored in. Given, the meter rounds the weights to it
            after the step (:func:`store_`) and takes a weight's update as intended where the
            float32 step moved it or its gradient is nonzero; ``None`` leaves the weights as
            the step wrote them (e.g. a step run inside ``mperror.emulate``) and takes a
            weight's update as nonzero where its gradient is. Either way a step that changed no
            weight while some gradient was inf or NaN counts as skipped (as GradScaler skips
            it: no update intended, none lost). Pass only the weights that train: a gradient
            in a param group with lr 0 counts as an intended update, and updates without a
            gradient (weight decay, momentum) are missed without ``fmt``.
        mode, generator: the rounding of :func:`store_`.

    ``store_seconds`` is the time the latest step's :func:`store_` took (0.0 without ``fmt``;
    device work synchronised): rounding the weights into their format is training work, while
    the rest of what the meter does is measurement, so a caller timing its steps adds it (the
    trainer does).

    Usage, one line per step; each costs a copy of the weights and a few comparisons::

        meter = LostUpdateMeter(model.parameters(), "fp16")
        meter.store()  # the initial weights, in fp16
        for ...:
            loss.backward()
            with meter.step():
                optimizer.step()
            meter.last.fraction
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        fmt: FormatLike | None = None,
        mode: RoundMode | str = RoundMode.NEAREST_EVEN,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        self.params = _as_list(params, "params")
        self.fmt: FloatFormat | None = None if fmt is None else as_format(fmt)
        self.mode = RoundMode.parse(mode)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__}"
            )
        self.generator = generator
        self.history: list[LostUpdates] = []
        self.store_seconds = 0.0

    def store(self) -> None:
        """Round the weights to ``fmt`` now (before the first step); no-op without ``fmt``."""
        if self.fmt is not None:
            store_(self.params, self.fmt, self.mode, generator=self.generator)

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """Wrap one optimizer step: snapshot before, compare (and store) after."""
        with torch.no_grad():
            before = [p.detach().clone() for p in self.params]
        yield
        with torch.no_grad():
            moved = [
                torch.zeros_like(p, dtype=torch.bool) if p.grad is None else p.grad != 0
                for p in self.params
            ]
            finite = all(p.grad is None or bool(p.grad.isfinite().all()) for p in self.params)
            if not finite and all(
                torch.equal(p, b) for p, b in zip(self.params, before, strict=True)
            ):  # a step skipped for its inf/NaN gradients (GradScaler): nothing was intended
                moved = [torch.zeros_like(m) for m in moved]
            if self.fmt is not None:
                moved = [m | (p != b) for m, p, b in zip(moved, self.params, before, strict=True)]
                cuda = {p.device for p in self.params if p.device.type == "cuda"}
                for device in cuda:  # the step's own device work is not the store's
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                self.store()
                for device in cuda:
                    torch.cuda.synchronize(device)
                self.store_seconds = time.perf_counter() - start
            weights = updated = lost = unchanged = 0
            for p, b, m in zip(self.params, before, moved, strict=True):
                u, lo, un = _count_lost(b, p.detach(), m)
                weights += p.numel()
                updated += u
                lost += lo
                unchanged += un
        self.history.append(
            LostUpdates(
                step=len(self.history),
                weights=weights,
                updated=updated,
                lost=lost,
                unchanged=unchanged,
            )
        )

    @property
    def last(self) -> LostUpdates:
        """The latest step's record."""
        if not self.history:
            raise ValueError("no step measured yet: wrap optimizer.step() in meter.step()")
        return self.history[-1]

    def fractions(self) -> list[float]:
        """The lost fraction of every step so far."""
        return [r.fraction for r in self.history]
