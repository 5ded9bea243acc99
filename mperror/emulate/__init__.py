"""Emulated arithmetic: run any torch program as if computed in a chosen format.

``with mperror.emulate(policy): ...`` rounds the result of every floating-point ATen operator,
forward, backward and double backward, to the format the :class:`Policy` names for its class of
operator (:func:`pure`: one format everywhere; :func:`autocast`: torch's CUDA autocast lists).
:mod:`mperror.emulate.weights` measures the weight updates lost when weights are stored in a
low-precision format.

This package is itself callable, ``mperror.emulate(policy)`` being :func:`emulate`, so that the
context manager and its policies read as one name: ``mperror.emulate.pure("fp16")``.
"""

from __future__ import annotations

import sys
import types

from mperror.emulate.classify import OpInfo, classify
from mperror.emulate.mode import Emulation, emulate
from mperror.emulate.policy import AUTOCAST_FP32_OPS, OpClass, Policy, autocast, pure
from mperror.emulate.report import EmulationReport
from mperror.emulate.weights import LostUpdateMeter, LostUpdates, lost_update_fraction, store_

__all__ = [
    "AUTOCAST_FP32_OPS",
    "Emulation",
    "EmulationReport",
    "LostUpdateMeter",
    "LostUpdates",
    "OpClass",
    "OpInfo",
    "Policy",
    "autocast",
    "classify",
    "emulate",
    "lost_update_fraction",
    "pure",
    "store_",
]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs) -> Emulation:
        return emulate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
