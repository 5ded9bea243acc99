"""What an emulated run did: operator counts and what rounding did to the values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mperror._records import Record

__all__ = ["EmulationReport"]


@dataclass(frozen=True, kw_only=True)
class EmulationReport(Record):
    """Summary of the operators an :class:`~mperror.emulate.Emulation` ran.

    Attributes:
        policy: the policy, as plain data.
        ops: calls per ATen operator (``"aten.mm.default"``), views and metadata included.
        op_classes: the class each of those operators was treated as
            (:class:`~mperror.emulate.OpClass` values; ``"fp32"`` for the policy's float32
            operators; ``"<class>/ops"`` for those computed by :mod:`mperror.ops`;
            ``"<class>/float32 kernel"`` for fused kernels torch has no float64 version of,
            computed in float32 from rounded inputs, their outputs rounded once: oneDNN's LSTM
            layer).
        unclassified: operators the emulator has no class for that gave a floating result;
            each was computed in the working precision and rounded as elementwise (those with
            integer or bool results only, ``isin``, round nothing and are not listed).
        counted: whether value counts were collected (``emulate(..., count=False)`` skips them);
            the three counts below are 0 when not.
        rounded: real values passed through a rounding to a policy format (results and the
            inputs of matmul-class operators; a complex value counts twice); under
            ``storage="autocast"`` also results computed from half inputs and stored in a
            wider dtype, rounded to that dtype (``h + bias`` in float32). Operators the
            emulator runs natively (autocast's float32 operators) count nothing.
        overflowed: values whose rounding overflowed: non-finite although the value before
            rounding was finite, or, for a saturating format (e4m3fn), finite values whose
            rounding as if the exponent range were unbounded exceeds ``max`` (see
            :class:`~mperror.formats.Overflow`: e4m3fn rounds 450 to 448 without overflow, 470
            to 448 by saturation; in the stochastic modes every finite value beyond ``±max``
            counts, the direction taken not being kept); for operators computed by
            :mod:`mperror.ops`, non-finite results of finite inputs (an overflow inside an
            accumulation or an FFT stage).
        underflowed: nonzero values that rounded to zero.
    """

    policy: dict[str, Any]
    ops: dict[str, int]
    op_classes: dict[str, str]
    unclassified: tuple[str, ...]
    counted: bool
    rounded: int
    overflowed: int
    underflowed: int

    @property
    def calls(self) -> int:
        """Total operator calls."""
        return sum(self.ops.values())

    def __str__(self) -> str:
        name = self.policy.get("name") or "policy"
        lines = [f"emulation under {name}: {self.calls} operator calls"]
        if self.counted:
            lines.append(
                f"values rounded {self.rounded:,}; overflowed {self.overflowed:,}; "
                f"underflowed to zero {self.underflowed:,}"
            )
        else:
            lines.append("values not counted (count=False)")
        width = max([len("operator"), *(len(op) for op in self.ops)])
        lines.append(f"{'operator':<{width}}  {'class':<12}  {'calls':>8}")
        for op, calls in sorted(self.ops.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"{op:<{width}}  {self.op_classes.get(op, ''):<12}  {calls:>8}")
        if self.unclassified:
            lines.append("unclassified (rounded as elementwise): " + ", ".join(self.unclassified))
        return "\n".join(lines)
