"""Training problems and in-package data solvers (nothing is downloaded).

Registered problems (:func:`get`, :func:`names`): ``regression``, ``diffusion``, ``burgers``,
``deeponet``, ``fno-burgers`` and ``fno-darcy`` (Fourier neural operators, 1-D and 2-D, with
precision modes of their own).
Each builds a :class:`ProblemInstance` at size ``"quick"`` or ``"full"``:

>>> inst = get("regression").build("quick", seed=0)
>>> inst.name, inst.size, inst.defaults.iterations
('regression', 'quick', 10000)
>>> names()
('regression', 'diffusion', 'burgers', 'deeponet', 'fno-burgers', 'fno-darcy')

Data generators for Fourier neural operators: :func:`darcy_dataset` and
:func:`burgers1d_dataset`.
"""

from __future__ import annotations

import difflib

from mperror.problems._base import SIZES, Problem, ProblemInstance, TrainDefaults
from mperror.problems.burgers import Burgers
from mperror.problems.burgers1d import burgers1d_dataset
from mperror.problems.darcy import darcy_dataset
from mperror.problems.deeponet import DeepONetAntiderivative
from mperror.problems.diffusion import Diffusion
from mperror.problems.fno_burgers import FNOBurgers
from mperror.problems.fno_darcy import FNODarcy
from mperror.problems.regression import Regression

__all__ = [
    "PROBLEMS",
    "SIZES",
    "Problem",
    "ProblemInstance",
    "TrainDefaults",
    "burgers1d_dataset",
    "darcy_dataset",
    "get",
    "names",
]

#: The registered problems by name, in a fixed order.
PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Regression(),
        Diffusion(),
        Burgers(),
        DeepONetAntiderivative(),
        FNOBurgers(),
        FNODarcy(),
    )
}


def names() -> tuple[str, ...]:
    """The registered problem names."""
    return tuple(PROBLEMS)


def get(name: str) -> Problem:
    """The problem registered as ``name``; a ValueError suggests the closest name."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = name.strip().lower()
    if key in PROBLEMS:
        return PROBLEMS[key]
    close = difflib.get_close_matches(key, names(), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown problem name {name!r}{hint} Known: {', '.join(names())}")
