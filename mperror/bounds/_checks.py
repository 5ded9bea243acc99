"""Argument checks shared by the bounds: numbers as Python or numpy scalars, never bools."""

from __future__ import annotations

import math

import numpy as np


def is_integer(value: object) -> bool:
    """A Python or numpy integer (not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def integer(value: object, argument: str, minimum: int) -> int:
    """``value`` as an int, or a ValueError naming ``argument`` unless it is an int >= minimum."""
    if not is_integer(value) or value < minimum:
        raise ValueError(f"{argument} must be an int >= {minimum}, got {value!r}")
    return int(value)


def nonnegative(value: object, argument: str) -> float:
    """``value`` as a float, or an error naming ``argument`` unless it is finite and >= 0."""
    real = is_integer(value) or isinstance(value, (float, np.floating))
    if not real or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{argument} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{argument} must be finite and >= 0, got {value!r}")
    return value
