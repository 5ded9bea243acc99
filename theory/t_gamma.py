"""Machine checks for T-gamma (theory/T-gamma.md): the constants mperror.bounds.classic uses.

Two kinds of constant appear in the deterministic bounds:

* the function ``gamma_n = n u / (1 - n u)`` and the identities that make it a bound on a product
  of ``n`` factors ``(1 + delta)^(+-1)`` with ``|delta| <= u`` (Higham's Lemma 3.1); the
  induction steps are checked here symbolically;
* the subscript ``n``: the largest number of roundings any input suffers on its way to the result.
  It is counted here by building each algorithm's evaluation tree explicitly and walking it, for
  every small size, so the closed forms in the code are checked against a brute-force count
  rather than against a second copy of the same formula.

Run ``PYTHONPATH=. python theory/t_gamma.py`` to print the derivations; importing prints nothing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import sympy as sp

__all__ = [
    "BLOCK_FMA_COEFFICIENT",
    "GAMMA",
    "block_fma_coefficient",
    "block_fma_depth",
    "blocked_depth",
    "dot_depth",
    "gamma_expr",
    "induction_step_product",
    "induction_step_quotient",
    "infinite_from",
    "pairwise_depth",
    "recursive_depth",
    "two_format_coefficient",
    "vacuous_from",
    "verify",
]

n, k, m, u = sp.symbols("n k m u", positive=True)
u_in, u_acc = sp.symbols("u_in u_acc", positive=True)


def gamma_expr(count: sp.Expr = n, unit: sp.Expr = u) -> sp.Expr:
    """``gamma_count = count * unit / (1 - count * unit)`` (valid for ``count * unit < 1``)."""
    return count * unit / (1 - count * unit)


#: gamma_n as a sympy expression in ``n`` and ``u``.
GAMMA = gamma_expr()


def induction_step_product() -> sp.Expr:
    """``gamma_(k+1) - ((1 + gamma_k)(1 + u) - 1)``, factored.

    It equals ``(k+1) u**2 / ((1 - k u)(1 - (k+1) u))``, which is positive while
    ``(k+1) u < 1``: one more factor ``(1 + delta)``, ``|delta| <= u``, keeps
    ``|theta| <= gamma``. The lower side ``(1 - gamma_k)(1 - u) >= 1 - gamma_(k+1)`` follows
    from the same identity since ``(1 - gamma_k)(1 - u) - 1 >= -((1 + gamma_k)(1 + u) - 1)``.
    """
    return sp.factor(gamma_expr(k + 1) - ((1 + gamma_expr(k)) * (1 + u) - 1))


def induction_step_quotient() -> sp.Expr:
    """``gamma_(k+1) - ((1 + gamma_k) / (1 - u) - 1)``, factored.

    It equals ``k u**2 / ((1 - u)(1 - k u)(1 - (k+1) u)) >= 0``.

    A factor ``(1 + delta)**-1`` with ``|delta| <= u`` is at most ``1 / (1 - u)``.
    """
    return sp.factor(gamma_expr(k + 1) - ((1 + gamma_expr(k)) / (1 - u) - 1))


def two_format_coefficient(
    count_a: sp.Expr, unit_a: sp.Expr, count_b: sp.Expr, unit_b: sp.Expr
) -> sp.Expr:
    """Relative bound for ``count_a`` roundings of unit ``unit_a`` and ``count_b`` of ``unit_b``.

    ``(1 + gamma_a(unit_a))(1 + gamma_b(unit_b)) - 1``: the two products of factors are bounded
    separately and multiplied.
    """
    return (1 + gamma_expr(count_a, unit_a)) * (1 + gamma_expr(count_b, unit_b)) - 1


def block_fma_coefficient(count: sp.Expr = m) -> sp.Expr:
    """Relative coefficient of the block-FMA product bound, ``|C^ - AB| <= c |A||B|``.

    Inputs rounded once to the input format (``|a~ - a| <= u_in |a|``), products exact, each
    product then perturbed by at most ``count`` roundings of the accumulation format:
    ``(1 + u_in)**2 (1 + gamma_count(u_acc)) - 1``.
    """
    return (1 + u_in) ** 2 * (1 + gamma_expr(count, u_acc)) - 1


#: The block-FMA coefficient with ``m`` accumulation roundings.
BLOCK_FMA_COEFFICIENT = block_fma_coefficient()


def infinite_from(precision: int) -> int:
    """Smallest ``n`` with ``n u >= 1`` for ``u = 2**-precision``: gamma_n is infinite from it."""
    count = sp.symbols("count", positive=True)
    (root,) = sp.solve(sp.Eq(count * sp.Rational(1, 2**precision), 1), count)
    return int(sp.ceiling(root))


def vacuous_from(precision: int) -> int:
    """Smallest ``n`` with ``gamma_n >= 1`` (a 100% relative error allowed): ``n u >= 1/2``."""
    count = sp.symbols("count", positive=True)
    (root,) = sp.solve(sp.Eq(gamma_expr(count, sp.Rational(1, 2**precision)), 1), count)
    return int(sp.ceiling(root))


# -- evaluation trees ---------------------------------------------------------------------------
#
# A tree is ("leaf", name, is_zero), ("add", left, right) for one rounded addition,
# ("round", child) for one rounding of an exact value (a rounded product), or
# ("fused", children) for an exact sum rounded once. An addition with an exact zero operand
# and a fused sum with at most one nonzero child are exact: no rounding is counted.


def _leaf(name: object, zero: bool = False) -> tuple:
    return ("leaf", name, zero)


def _is_zero(tree: tuple) -> bool:
    kind = tree[0]
    if kind == "leaf":
        return tree[2]
    if kind == "add":
        return _is_zero(tree[1]) and _is_zero(tree[2])
    if kind == "round":
        return _is_zero(tree[1])
    return all(_is_zero(c) for c in tree[1])


def _depths(tree: tuple, acc: dict[object, int] | None = None, above: int = 0) -> dict[object, int]:
    """Number of roundings on the path from each nonzero leaf to the root."""
    acc = {} if acc is None else acc
    kind = tree[0]
    if kind == "leaf":
        if not tree[2]:
            acc[tree[1]] = above
        return acc
    if kind == "add":
        exact = _is_zero(tree[1]) or _is_zero(tree[2])
        for child in tree[1:]:
            _depths(child, acc, above + (0 if exact else 1))
        return acc
    if kind == "round":
        return _depths(tree[1], acc, above + (0 if _is_zero(tree[1]) else 1))
    nonzero = sum(not _is_zero(c) for c in tree[1])
    for child in tree[1]:
        _depths(child, acc, above + (1 if nonzero >= 2 else 0))
    return acc


def _chain(items: Sequence[tuple]) -> tuple:
    """Recursive summation ``((t0 + t1) + t2) + ...``."""
    tree = items[0]
    for item in items[1:]:
        tree = ("add", tree, item)
    return tree


def _pairwise(items: Sequence[tuple]) -> tuple:
    if len(items) == 1:
        return items[0]
    half = len(items) // 2
    return ("add", _pairwise(items[:half]), _pairwise(items[half:]))


def _max_depth(tree: tuple) -> int:
    return max(_depths(tree).values(), default=0)


def recursive_depth(count: int) -> int:
    """Worst rounding count of recursive summation of ``count`` terms, by walking its tree."""
    return _max_depth(_chain([_leaf(i) for i in range(count)]))


def pairwise_depth(count: int) -> int:
    """Worst rounding count of pairwise summation (halves split at ``count // 2``)."""
    return _max_depth(_pairwise([_leaf(i) for i in range(count)]))


def _blocks(count: int, block: int) -> list[list[int]]:
    return [list(range(s, min(s + block, count))) for s in range(0, count, block)]


def blocked_depth(count: int, block: int) -> tuple[int, int]:
    """Worst ``(inner, outer)`` rounding counts of blocked summation.

    Blocks of ``block`` consecutive terms are summed recursively, then the block sums are summed
    recursively. Returned separately because the outer sum may run in another format; the worst
    leaf attains both maxima at once (the first element of the first block).
    """
    sums = [_chain([_leaf(i) for i in b]) for b in _blocks(count, block)]
    tree = _chain(sums)
    inner = max(_max_depth(s) for s in sums)
    total = _depths(tree)
    outer = max(
        total[i] - _depths(sums[j])[i] for j, b in enumerate(_blocks(count, block)) for i in b
    )
    worst = max(total.values())
    assert worst == inner + outer, "the worst leaf must attain both maxima"
    return inner, outer


def dot_depth(count: int) -> int:
    """Worst rounding count of a recursive dot product whose products are rounded too."""
    return _max_depth(_chain([("round", _leaf(i)) for i in range(count)]))


def block_fma_depth(count: int, block: int, internal: str) -> int:
    """Worst accumulation rounding count of a block-FMA product ``C = A B`` (``C_0 = 0``).

    Each block FMA adds ``block`` exact products to the running ``C`` in the accumulation
    format. ``internal`` says how: ``"any"`` (the ``block + 1`` terms summed recursively in an
    unknown order: every order is enumerated), ``"c_last"`` (products summed recursively, then
    ``C`` added) or ``"exact"`` (exact sum, one rounding).
    """
    blocks = _blocks(count, block)
    if internal == "any":
        per_block_orders = []
        running = [_leaf("C0", zero=True)]
        # Enumerate every order of every FMA (small sizes only): the worst leaf over all orders.
        for b in blocks:
            per_block_orders.append(list(itertools.permutations([None, *b])))
        worst = 0
        for orders in itertools.product(*per_block_orders):
            tree = running[0]
            for order in orders:
                tree = _chain([tree if i is None else _leaf(i) for i in order])
            worst = max(worst, _max_depth(tree))
        return worst
    tree = _leaf("C0", zero=True)
    for b in blocks:
        products = [_leaf(i) for i in b]
        if internal == "c_last":
            tree = ("add", _chain(products), tree)
        elif internal == "exact":
            tree = ("fused", [tree, *products])
        else:
            raise ValueError(f"internal must be 'any', 'c_last' or 'exact', got {internal!r}")
    return _max_depth(tree)


def verify() -> None:
    """Assert every identity and count in this module (the tests call this)."""
    assert (
        sp.simplify(induction_step_product() - (k + 1) * u**2 / ((1 - k * u) * (1 - (k + 1) * u)))
        == 0
    )
    assert (
        sp.simplify(
            induction_step_quotient() - k * u**2 / ((1 - u) * (1 - k * u) * (1 - (k + 1) * u))
        )
        == 0
    )
    # The lower side (1 - gamma_k)(1 - u) >= 1 - gamma_(k+1): with u = t/(k+1), 0 < t < 1, the
    # difference is u**2 ((k + 1) + 2 k (1 - t)) over a positive denominator.
    t = sp.symbols("t", positive=True)
    lower = sp.factor((1 - gamma_expr(k)) * (1 - u) - (1 - gamma_expr(k + 1)))
    numer, denom = sp.fraction(sp.factor(lower.subs(u, t / (k + 1))))
    assert sp.expand(numer - t**2 * ((k + 1) + 2 * k * (1 - t))) == 0
    assert sp.expand(denom - (k + 1) * (1 - t) * (k + 1 - k * t)) == 0
    # The block-FMA coefficient expands to 2 u_in + u_in**2 + (1 + u_in)**2 gamma_m(u_acc).
    assert (
        sp.simplify(
            BLOCK_FMA_COEFFICIENT - (2 * u_in + u_in**2 + (1 + u_in) ** 2 * gamma_expr(m, u_acc))
        )
        == 0
    )
    for count in range(1, 34):
        assert recursive_depth(count) == count - 1
        assert pairwise_depth(count) == math.ceil(math.log2(count))
        assert dot_depth(count) == count
        for block in range(1, 10):
            inner, outer = blocked_depth(count, block)
            assert inner == min(block, count) - 1
            assert outer == math.ceil(count / block) - 1
    for count in range(1, 7):
        for block in range(1, 5):
            blocks = math.ceil(count / block)
            assert block_fma_depth(count, block, "any") == count - 1
            assert block_fma_depth(count, block, "c_last") == min(block, count) + blocks - 2
            single = 1 if min(block, count) == 1 else 0
            assert block_fma_depth(count, block, "exact") == blocks - single
    assert infinite_from(11) == 2048 and infinite_from(8) == 256
    assert vacuous_from(11) == 1024 and vacuous_from(8) == 128


def main() -> None:
    verify()
    print("gamma_n =", GAMMA)
    print("gamma_(k+1) - ((1+gamma_k)(1+u) - 1) =", induction_step_product())
    print("gamma_(k+1) - ((1+gamma_k)/(1-u) - 1) =", induction_step_quotient())
    print("block FMA coefficient =", sp.expand(BLOCK_FMA_COEFFICIENT))
    for count in (1, 2, 5, 8):
        print(
            f"n={count}: recursive {recursive_depth(count)}, pairwise {pairwise_depth(count)}, "
            f"dot {dot_depth(count)}, blocked(b=2) {blocked_depth(count, 2)}"
        )
    print("gamma_n infinite from n =", {p: infinite_from(p) for p in (11, 8, 4)})
    print("gamma_n >= 1 from n =", {p: vacuous_from(p) for p in (11, 8, 4)})


if __name__ == "__main__":
    main()
