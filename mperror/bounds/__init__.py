"""Rounding-error bounds, each carrying its theorem (see theory/ for the notes and proofs)."""

from mperror.bounds._result import BoundResult

__all__ = ["BoundResult"]
