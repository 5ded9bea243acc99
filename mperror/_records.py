"""The one way results cross module boundaries: frozen dataclasses with ``to_dict()``.

Bound checks, estimator results, training summaries and report rows are small frozen dataclasses
that inherit :class:`Record`, so the Markdown report and the JSON output read the same object.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import torch

__all__ = ["Record", "plain"]


def plain(value: Any) -> Any:
    """``value`` as JSON-ready Python data: records, enums, formats, tensors, tuples unpacked.

    Non-finite floats stay floats (``json.dumps`` writes them as ``NaN``/``Infinity``; pass
    ``allow_nan=False`` there to refuse them).
    """
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "describe"):
            return value.describe()
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, torch.Tensor):
        return plain(value.detach().cpu().tolist())
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


class Record:
    """Mixin for frozen dataclasses that cross a module boundary."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain Python data (see :func:`plain`)."""
        if not dataclasses.is_dataclass(self):
            raise TypeError(f"{type(self).__name__} must be a dataclass to use Record.to_dict")
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
