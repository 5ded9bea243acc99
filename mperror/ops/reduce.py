"""Sums, dot products and matrix products under an explicit accumulation model.

A reduction of ``n`` terms is modelled as a sequence of correctly rounded operations (each one
exact through float64, see :mod:`mperror.ops._common`), described by an :class:`Accumulation`:
the accumulation format ``A`` (``fl_A`` rounds to it by ``mode``), the summation order, and for
dot and matrix products whether the products are rounded. With output format ``F``:

* **Terms.** ``sum``: ``t_i = x_i``. ``dot``/``matmul``: ``t_i = fl_A(x_i y_i)`` (the scalar
  models: each product rounded to the accumulation format, as a multiply-then-add unit does),
  or ``t_i = x_i y_i`` exactly (the block-FMA model below). Inputs are first rounded to ``F``
  (round to nearest even): matmul-class ops take low-precision inputs.
* ``order="recursive"``: ``s_1 = fl_A(t_1)``, ``s_i = fl_A(s_{i-1} + t_i)``: a later term
  enters its addition exactly, not rounded to ``A`` first (which matters when ``A`` is
  narrower than ``F``). Every term suffers at most ``n - 1`` roundings, one more when it is
  not a value of ``A`` (``t_1``'s own rounding, or a rounded product).
* ``order="pairwise"``: leaves ``fl_A(t_i)``; each level adds neighbours ``(1,2), (3,4), ...``
  with one rounding each, an odd last element passing up unchanged; ``ceil(log2 n)`` levels,
  so at most ``ceil(log2 n)`` roundings per term (plus the leaf's own, where ``t_i`` is not a
  value of ``A``).
* ``order="blocked"``, ``block=b``: consecutive blocks of ``b`` terms (the last may be
  shorter), each summed recursively as above, then the ``m = ceil(n/b)`` block sums summed
  recursively:
  at most ``(b - 1) + (m - 1)`` roundings per term (plus a block's first term's own, where it
  is not a value of ``A``).
* **Block FMA** (``chunk=k``; Blanchard, Higham, Lopez, Mary and Pranesh, "Mixed precision
  block fused multiply-add: error analysis and application to GPU tensor cores", SISC 42(3),
  2020): products exact; the ``k`` products of each chunk summed recursively in ``A``
  (``u_1 = p_1`` exactly, ``u_i = fl_A(u_{i-1} + p_i)``, a lone product rounded once), then
  the chunk sums accumulated recursively in ``A``, ``C_j = fl_A(C_{j-1} + u^{(j)})``: at most
  ``(k - 1) + (ceil(n/k) - 1)`` roundings per term in ``A``, one more where a product is not a
  value of ``A`` (a lone product's own rounding). ``A`` defaults to fp32 here (as on
  tensor cores). The paper leaves the order inside a block FMA open (its bounds cover any
  order); this model fixes one. Real tensor cores align and truncate instead of rounding
  (Fasi, Higham, Mikaitis and Pranesh, PeerJ CS 2021), so this is a model of the analysis,
  not a bit-exact emulation of a GPU.
* **Output.** The accumulated ``s`` is rounded once more to ``F``: ``fl_F(s)`` (the identity
  when ``A = F``). An empty reduction gives ``+0``.

With ``A = F`` and round to nearest these give the classic bounds (no underflow):
``|s^ - s| <= gamma_{n-1} sum|x_i|`` for a recursive sum, ``gamma_n sum|x_i y_i|`` for a
recursive dot product, ``gamma_{ceil log2 n}`` (plus one for products) for pairwise, with
``gamma_k = k u / (1 - k u)`` (Higham, Accuracy and Stability of Numerical Algorithms, ch. 3-4).

Computation is vectorised over independent outputs: a loop over the reduction index (recursive,
blocked) or one tensor operation per tree level (pairwise). A matrix product materialises its
``n*m*k`` products (per batch entry), in blocks of at most ``2**22`` terms (of whole batch
entries, or of rows of one entry; more only when one row, ``k*m`` terms, exceeds that).

``A = fp64`` with ``mode="nearest_even"`` uses native float64 arithmetic (it *is* that
rounding); otherwise ``A`` needs precision at most 51, and with rounded or exact products the
input format needs precision at most 25 (products exact in float64).
"""

from __future__ import annotations

import builtins
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from mperror._checks import is_integer
from mperror._records import Record
from mperror.formats import FP32, FloatFormat, FormatLike
from mperror.ops import _common
from mperror.rounding import RoundMode, explicit

__all__ = ["Accumulation", "dot", "matmul", "sum"]

ORDERS = ("recursive", "pairwise", "blocked")
_MAX_TERMS = 1 << 22  # products held at once by matmul (32 MiB of float64)


@dataclass(frozen=True, kw_only=True)
class Accumulation(Record):
    """How a reduction accumulates (see the module docstring for each model's maths).

    Args:
        fmt: the accumulation format (a FloatFormat, preset name or dtype). ``None``: the
            output format in the scalar models, fp32 in the block-FMA model.
        order: ``"recursive"``, ``"pairwise"`` or ``"blocked"``.
        block: the block size ``b`` of ``order="blocked"`` (required there, refused elsewhere).
        chunk: ``k`` for the block-FMA (tensor-core) model: products exact, summed ``k`` at a
            time (4, 8 or 16 on current tensor cores; any positive int). Needs
            ``order="recursive"``: the model fixes its own order.

    >>> Accumulation(fmt="fp32", chunk=4).to_dict()["chunk"]
    4
    """

    fmt: FloatFormat | str | torch.dtype | None = None
    order: str = "recursive"
    block: int | None = None
    chunk: int | None = None

    def __post_init__(self) -> None:
        if self.fmt is not None:
            object.__setattr__(self, "fmt", _common.parse_format(self.fmt, "Accumulation.fmt"))
        if self.order not in ORDERS:
            raise ValueError(
                f"order must be one of {', '.join(map(repr, ORDERS))}; got {self.order!r}"
            )
        if self.order == "blocked":
            if not _positive_int(self.block):
                raise ValueError(f"order 'blocked' needs block, a positive int; got {self.block!r}")
            object.__setattr__(self, "block", operator.index(self.block))
        elif self.block is not None:
            raise ValueError(f"block applies to order 'blocked' only; got order {self.order!r}")
        if self.chunk is not None:
            if not _positive_int(self.chunk):
                raise ValueError(f"chunk must be a positive int or None; got {self.chunk!r}")
            object.__setattr__(self, "chunk", operator.index(self.chunk))
            if self.order != "recursive":
                raise ValueError(
                    "chunk (the block-FMA model) fixes its own order; leave order 'recursive'"
                )

    def format_for(self, output: FloatFormat) -> FloatFormat:
        """The accumulation format used when the output format is ``output``."""
        if self.fmt is not None:
            assert isinstance(self.fmt, FloatFormat)
            return self.fmt
        return FP32 if self.chunk is not None else output


def _positive_int(value: object) -> bool:
    return is_integer(value) and value >= 1


AccumulateLike = Accumulation | FormatLike | None


def _model(accumulate: AccumulateLike, order: str, block: int | None) -> Accumulation:
    if isinstance(accumulate, Accumulation):
        if order != "recursive" or block is not None:
            raise ValueError(
                "give order and block inside the Accumulation passed as accumulate, not beside it"
            )
        return accumulate
    if accumulate is not None and not isinstance(accumulate, (FloatFormat, str, torch.dtype)):
        raise TypeError(
            "accumulate must be None, a format (FloatFormat, preset name or dtype) or an "
            f"Accumulation; got {type(accumulate).__name__}"
        )
    if accumulate is not None:
        accumulate = _common.parse_format(accumulate, "accumulate")
    return Accumulation(fmt=accumulate, order=order, block=block)


class _Plan:
    """The checked setting of one reduction: formats, mode, and the rounding primitives."""

    def __init__(
        self,
        fmt: FormatLike,
        accumulate: AccumulateLike,
        order: str,
        block: int | None,
        mode: RoundMode | str,
        generator: torch.Generator | None,
        *,
        products: bool,
    ) -> None:
        self.fmt = _common.parse_format(fmt)
        self.mode = _common.parse_mode(mode)
        self.model = _model(accumulate, order, block)
        self.acc = self.model.format_for(self.fmt)
        self.generator = generator
        self.products = products
        self.native = _common.check_accumulation_format(self.acc, self.mode, "accumulate")
        # a partial sum (below 2**(acc.emax + 1)) plus a term (below 2**(fmt.emax + 1), or the
        # accumulator's bound) stays below 2**1023 while both emax are at most 1021; reduce()
        # looks at the terms themselves when fmt's range allows more (fp64 inputs, say)
        self.may_pass = max(self.acc.emax, self.fmt.emax) >= 1022 and not self.native
        self.wide = self.may_pass
        exact_products_needed = self.model.chunk is not None or not self.native
        if products and exact_products_needed:
            if self.fmt.precision > _common.ELEMENTWISE_MAX_PRECISION:
                raise ValueError(
                    f"fmt {self.fmt} has precision {self.fmt.precision}, but products are "
                    "formed exactly through float64 only for precision <= "
                    f"{_common.ELEMENTWISE_MAX_PRECISION} (53 >= 2p + 2), which the block-FMA "
                    "model (Accumulation(chunk=...)) and every accumulate format other than "
                    "fp64 need; use a narrower fmt, or accumulate=None / 'fp64' with mode "
                    "'nearest_even' (native float64 arithmetic)"
                )
            _common.check_product_format(self.fmt)

    def add(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _common.add_rounded(
            a, b, self.acc, self.mode, self.generator, self.native, beyond_float64=self.wide
        )

    def to_acc(self, x: torch.Tensor) -> torch.Tensor:
        if self.native:
            return x
        return _common.round_to(x, self.acc, self.mode, self.generator)

    def reduce(self, terms: torch.Tensor) -> torch.Tensor:
        """Accumulate ``terms`` (float64, reduction index first; exact products in the block-FMA
        model) and round to the output format: a float64 tensor of shape ``terms.shape[1:]``."""
        if terms.shape[0] == 0:
            return terms.new_zeros(terms.shape[1:])
        if self.may_pass:  # for these terms (a matmul reduces block after block)
            # A sum passes float64's range only with a term of at least 2**1021 (a partial sum
            # of the accumulator, emax <= 1022, stays below 2**1023), or a non-finite one.
            self.wide = not bool(terms.abs().amax() < 2.0**1021)
        model = self.model
        if model.chunk is not None:  # block FMA: exact products, chunk sums rounded to A
            s = _recursive(self.to_acc(_blocks(terms, model.chunk, self.add)), self.add)
            return _common.round_to(s, self.fmt, self.mode, self.generator)
        if self.products:  # the scalar models' terms: t_i = fl_A(x_i y_i)
            terms = self.to_acc(terms)
        if model.order == "recursive":  # s_1 = fl_A(t_1); later terms enter the sums as they are
            s = _recursive(terms, self.add, first=self.to_acc)
        elif model.order == "pairwise":  # leaves fl_A(t_i)
            s = _pairwise(self.to_acc(terms), self.add)
        else:
            assert model.block is not None
            blocks = _blocks(terms, model.block, self.add, first=self.to_acc)
            s = _recursive(blocks, self.add)
        return _common.round_to(s, self.fmt, self.mode, self.generator)


Add = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _recursive(t: torch.Tensor, add: Add, first: Callable | None = None) -> torch.Tensor:
    """``s_1 = first(t_1)`` (the first term as it enters the accumulator), then
    ``s_i = add(s_{i-1}, t_i)``."""
    s = t[0] if first is None else first(t[0])
    for i in builtins.range(1, t.shape[0]):
        s = add(s, t[i])
    return s


def _pairwise(t: torch.Tensor, add: Add) -> torch.Tensor:
    while t.shape[0] > 1:
        pairs = t.shape[0] // 2
        summed = add(t[0 : 2 * pairs : 2], t[1 : 2 * pairs : 2])
        t = torch.cat([summed, t[2 * pairs :]]) if t.shape[0] % 2 else summed
    return t[0]


def _blocks(t: torch.Tensor, b: int, add: Add, first: Callable | None = None) -> torch.Tensor:
    """Recursive sums of consecutive blocks of ``b`` rows, all blocks at once: shape
    ``(ceil(n/b), *rest)``. The first row of each block enters as ``first`` makes it
    (unrounded by default, as block-FMA products do)."""
    n = t.shape[0]
    m = -(-n // b)
    last = n - (m - 1) * b  # rows in the last block, 1..b
    padded = torch.cat([t, t.new_zeros((m * b - n, *t.shape[1:]))])
    by_position = padded.view(m, b, *t.shape[1:]).transpose(0, 1)  # [i, j] = t[j*b + i]
    s = by_position[0] if first is None else first(by_position[0])
    for i in builtins.range(1, b):
        if i < last:
            s = add(s, by_position[i])
        else:  # the last block has ended: only the full blocks go on
            s = torch.cat([add(s[: m - 1], by_position[i, : m - 1]), s[m - 1 :]])
    return s


def _broadcast_shape(first: Sequence[int], second: Sequence[int]) -> tuple[int, ...]:
    """The broadcast of two batch shapes (torch.broadcast_shapes imports sympy on first use)."""
    width = max(len(first), len(second))
    a = [1] * (width - len(first)) + list(first)
    b = [1] * (width - len(second)) + list(second)
    shape = []
    for i, j in zip(a, b, strict=True):
        if i != j and 1 not in (i, j):
            raise ValueError(f"batch shapes {tuple(first)} and {tuple(second)} do not broadcast")
        shape.append(j if i == 1 else i)
    return tuple(shape)


def _reduced_dims(dim: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if dim is None:
        return tuple(builtins.range(ndim))
    dims = [dim] if is_integer(dim) else list(dim) if isinstance(dim, Sequence) else []
    if not dims or not all(is_integer(d) for d in dims):
        raise ValueError(f"dim must be None, an int or a non-empty sequence of ints; got {dim!r}")
    dims = [operator.index(d) for d in dims]
    rank = max(ndim, 1)
    for d in dims:
        if not -rank <= d < rank:
            raise ValueError(f"dim {d} is out of range for a tensor with {ndim} dimensions")
    normalised = sorted({d % rank for d in dims})
    if len(normalised) != len(dims):
        raise ValueError(f"dim has repeated dimensions: {dim!r}")
    return tuple(normalised) if ndim else ()


@explicit
def sum(
    x: torch.Tensor,
    fmt: FormatLike,
    *,
    dim: int | Sequence[int] | None = None,
    keepdim: bool = False,
    accumulate: AccumulateLike = None,
    order: str = "recursive",
    block: int | None = None,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sum of ``x`` over ``dim`` under an accumulation model, rounded to ``fmt``.

    Args:
        x: a real floating-point tensor; its values are first rounded to ``fmt``.
        fmt: the input and output format.
        dim, keepdim: as :func:`torch.sum`. Several dimensions are summed as one flattened run
            in row-major order (the last reduced dimension varies fastest); ``None`` sums all.
        accumulate: ``None`` (accumulate in ``fmt``), an accumulation format, or an
            :class:`Accumulation` (then ``order`` and ``block`` go inside it).
        order, block: the summation order (``"recursive"``, ``"pairwise"``, ``"blocked"``) and
            the block size of ``"blocked"``.
        mode, generator: the rounding mode of every rounding, and the stochastic modes' source.

    Returns a tensor of ``x``'s dtype holding values of ``fmt``.

    >>> x = torch.tensor([1.0] + [2.0**-11] * 4)
    >>> sum(x, "fp16").item(), sum(x, "fp16", accumulate="fp32").item()
    (1.0, 1.001953125)
    """
    x = _common.real_tensor(x, "x")
    plan = _Plan(fmt, accumulate, order, block, mode, generator, products=False)
    dtype = _common.check_output_dtype(x.dtype, plan.fmt)
    if not isinstance(keepdim, bool):
        raise TypeError(f"keepdim must be a bool, got {type(keepdim).__name__}")
    dims = _reduced_dims(dim, x.dim())
    kept = [d for d in builtins.range(x.dim()) if d not in dims]
    values = _common.operand(x, plan.fmt).permute([*dims, *kept])
    kept_shape = [x.shape[d] for d in kept]
    terms = values.reshape(math.prod(x.shape[d] for d in dims), *kept_shape)
    result = plan.reduce(terms)
    if keepdim:
        result = result.reshape([1 if d in dims else x.shape[d] for d in builtins.range(x.dim())])
    return result.to(dtype)


@explicit
def dot(
    x: torch.Tensor,
    y: torch.Tensor,
    fmt: FormatLike,
    *,
    accumulate: AccumulateLike = None,
    order: str = "recursive",
    block: int | None = None,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Dot products ``sum_i x_i y_i`` over the last dimension, under an accumulation model.

    ``x`` and ``y`` broadcast against each other (1-D inputs give a 0-d result, as
    :func:`torch.dot`); the other arguments are those of :func:`sum`. Products are rounded to
    the accumulation format, or exact in the block-FMA model (``Accumulation(chunk=k)``).

    >>> x, y = torch.tensor([1.0, 2.0**-11, 2.0**-11, 2.0**-11]), torch.ones(4)
    >>> dot(x, y, "fp16").item(), dot(x, y, "fp16", order="pairwise").item()
    (1.0, 1.0009765625)
    """
    x = _common.real_tensor(x, "x")
    y = _common.real_tensor(y, "y")
    if x.dim() == 0 or y.dim() == 0:
        raise ValueError("dot needs x and y with at least one dimension (the reduced one)")
    try:
        _broadcast_shape(x.shape, y.shape)
    except ValueError:
        raise ValueError(
            f"x and y must broadcast against each other; got shapes {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        ) from None
    plan = _Plan(fmt, accumulate, order, block, mode, generator, products=True)
    dtype = _common.check_output_dtype(torch.promote_types(x.dtype, y.dtype), plan.fmt)
    a, b = torch.broadcast_tensors(_common.operand(x, plan.fmt), _common.operand(y, plan.fmt))
    return plan.reduce((a * b).movedim(-1, 0)).to(dtype)


@explicit
def matmul(
    a: torch.Tensor,
    b: torch.Tensor,
    fmt: FormatLike,
    *,
    accumulate: AccumulateLike = None,
    order: str = "recursive",
    block: int | None = None,
    mode: RoundMode | str = RoundMode.NEAREST_EVEN,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Matrix product ``a @ b`` where every entry is a :func:`dot` under the given model.

    Shapes as :func:`torch.matmul` for ``(..., n, k) @ (..., k, m)`` (2-D or batched; batch
    dimensions broadcast); 1-D operands are refused (use :func:`dot`). The other arguments are
    those of :func:`sum`.

    >>> a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> matmul(a, a, "fp32")
    tensor([[ 7., 10.],
            [15., 22.]])
    """
    a = _common.real_tensor(a, "a")
    b = _common.real_tensor(b, "b")
    if a.dim() < 2 or b.dim() < 2:
        raise ValueError(
            f"matmul needs operands with at least 2 dimensions, got {a.dim()} and {b.dim()} "
            "(use dot for vectors)"
        )
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied")
    plan = _Plan(fmt, accumulate, order, block, mode, generator, products=True)
    dtype = _common.check_output_dtype(torch.promote_types(a.dtype, b.dtype), plan.fmt)
    batch = _broadcast_shape(a.shape[:-2], b.shape[:-2])
    n, k, m = a.shape[-2], a.shape[-1], b.shape[-1]
    count = math.prod(batch)
    if 0 in (count, n, m):
        return torch.zeros(*batch, n, m, dtype=dtype, device=a.device)
    # (k, batch, n) and (k, batch, m), the batch flattened
    left = _common.operand(a, plan.fmt).expand(*batch, n, k).reshape(count, n, k).movedim(-1, 0)
    right = _common.operand(b, plan.fmt).expand(*batch, k, m).reshape(count, k, m).movedim(-2, 0)
    # blocks of whole batch entries where one holds few enough terms, else of rows of one entry
    per_entry = max(1, k * n * m)
    entries = max(1, _MAX_TERMS // per_entry)
    rows = n if per_entry <= _MAX_TERMS else max(1, _MAX_TERMS // max(1, k * m))
    blocks = []
    for first in builtins.range(0, count, entries):
        parts = []
        for start in builtins.range(0, n, rows):
            lhs = left[:, first : first + entries, start : start + rows, None]
            parts.append(plan.reduce(lhs * right[:, first : first + entries, None, :]))
        blocks.append(torch.cat(parts, dim=-2))
    return torch.cat(blocks).reshape(*batch, n, m).to(dtype)
