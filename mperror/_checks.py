"""The integer and real-number checks the modules' argument validation shares.

An integer argument is anything :func:`operator.index` takes: a Python int, a numpy integer
(``np.int64`` from an array), a one-element integer tensor. Bools never count (Python's,
numpy's, bool tensors): ``True`` as a size or a precision is a mistake, not a 1. Callers keep
``operator.index(value)``, a plain int, so nothing numpy- or torch-typed reaches a format, a
configuration or a JSON file.
"""

from __future__ import annotations

import operator

import numpy as np
import torch

__all__ = ["is_integer", "is_real"]


def is_integer(value: object) -> bool:
    """Is ``value`` an integer for mperror's arguments (see the module docstring)?

    >>> is_integer(3), is_integer(np.int64(3)), is_integer(torch.tensor(3))
    (True, True, True)
    >>> is_integer(True), is_integer(np.bool_(True)), is_integer(3.0), is_integer("3")
    (False, False, False, False)
    """
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, torch.Tensor) and value.dtype is torch.bool:
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def is_real(value: object) -> bool:
    """Is ``value`` a real number for mperror's float arguments: a Python int or float (numpy's
    float64 is one), never a bool?

    >>> is_real(0.5), is_real(2), is_real(np.float64(0.5)), is_real(True), is_real("0.5")
    (True, True, True, False, False)
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool)
