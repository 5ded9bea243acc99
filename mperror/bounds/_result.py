"""The record every bound returns."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mperror._records import Record

__all__ = ["BoundResult"]


@dataclass(frozen=True, kw_only=True)
class BoundResult(Record):
    """A bound, optionally checked against an observed error.

    Attributes:
        theorem: stable id of the theory/ note that proves it, e.g. ``"T-gamma.dot"``.
        bound: the bound's value (``math.inf`` where it is vacuous because ``n u >= 1``).
        vacuous: True when the bound says nothing useful (infinite, or no smaller than the
            trivial bound it improves on, e.g. a relative error bound >= 1).
        assumptions: the conditions under which the bound is proved, in words.
        probability: for probabilistic bounds, the probability with which the bound may fail
            (``None`` for deterministic bounds).
        observed: the measured error, when the bound was checked.
        holds: ``observed <= bound`` when checked, else ``None``.
        ratio: ``observed / bound`` when checked (a tightness measure), else ``None``.
    """

    theorem: str
    bound: float
    vacuous: bool = False
    assumptions: tuple[str, ...] = ()
    probability: float | None = None
    observed: float | None = None
    holds: bool | None = None
    ratio: float | None = None

    def check(self, observed: float) -> BoundResult:
        """This bound with ``observed`` filled in and compared."""
        observed = float(observed)
        holds = not math.isnan(observed) and observed <= self.bound
        if self.bound == 0.0:
            ratio = 0.0 if observed == 0.0 else math.inf
        else:
            ratio = observed / self.bound
        return BoundResult(
            theorem=self.theorem,
            bound=self.bound,
            vacuous=self.vacuous,
            assumptions=self.assumptions,
            probability=self.probability,
            observed=observed,
            holds=holds,
            ratio=ratio,
        )
