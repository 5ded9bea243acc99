"""Argument checks shared by the bounds: numbers as Python or numpy scalars, never bools
(integers: see :mod:`mperror._checks`)."""

from __future__ import annotations

import math
import operator

import numpy as np

from mperror._checks import is_integer


def integer(value: object, argument: str, minimum: int) -> int:
    """``value`` as an int, or a ValueError naming ``argument`` unless it is an int >= minimum."""
    if not is_integer(value) or value < minimum:
        raise ValueError(f"{argument} must be an int >= {minimum}, got {value!r}")
    return operator.index(value)


def nonnegative(value: object, argument: str) -> float:
    """``value`` as a float, or an error naming ``argument`` unless it is finite and >= 0."""
    real = is_integer(value) or isinstance(value, (float, np.floating))
    if not real or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{argument} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{argument} must be finite and >= 0, got {value!r}")
    return value


def real_array(value: object, argument: str) -> np.ndarray:
    """``value`` (an array or a nested sequence of real numbers) as a float64 array, or a
    TypeError naming ``argument``: complex, bool and non-numeric values are refused, not cast
    (numpy's own cast drops imaginary parts with only a warning)."""
    try:
        array = np.asarray(value)
        if array.dtype.kind not in "fiuO":  # float, signed, unsigned, objects such as Fraction
            raise TypeError(f"values of dtype {array.dtype}")
        if array.dtype.kind == "O" and any(isinstance(v, (bool, np.bool_)) for v in array.flat):
            raise TypeError("bool values")
        return array.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{argument} must be a real tensor, array or sequence of floats ({err})"
        ) from None
