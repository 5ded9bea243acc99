"""Machine checks for T1-gd-mixed-precision (theory/T1-gd-mixed-precision.md).

Theorem 1 of Hayford, Goldman-Wetzler, Wang and Lu (2024), as reconstructed in the note: an
L-smooth loss, a gradient evaluated at the rounded parameters ``theta~`` with
``||g~ - g|| <= delta = u L ||theta||``, one gradient-descent step ``theta+ = theta - g~ / L``.

This module derives, symbolically:

* the exact one-step identity ``<g, d> + L/2 ||d||**2 = -(||g||**2 - ||e||**2) / (2L)`` for
  ``d = -g~/L``, ``g~ = g + e`` (the descent lemma's right-hand side: the cross terms cancel);
* the published descent bound ``(g**2 - 4 g delta - delta**2) / (2L)`` as the result of bounding
  ``-<g, g~>`` and ``||g~||**2`` separately, and its slack against the exact identity;
* the critical gradient norms: ``(4 + 3 sqrt 2) delta`` (published bound, half of the
  exact-gradient decrease ``g**2/(4L)``), ``sqrt(2) delta`` (the sharp identity, same target),
  ``(2 + sqrt 6) delta`` (the earlier version's constant) and what it corresponds to;
* the cosine bounds ``1 - cos <= 2 delta / (g + delta)`` (published) and the sharp
  ``1 - sqrt(1 - (delta/g)**2)``, with the worst-case perturbation that attains the latter.

Run ``PYTHONPATH=. python theory/t1_gd.py`` to print the derivations; importing prints nothing.
"""

from __future__ import annotations

import sympy as sp

__all__ = [
    "COSINE_BOUND",
    "COSINE_BOUND_SHARP",
    "CRITICAL_FACTOR",
    "CRITICAL_FACTOR_EARLIER",
    "CRITICAL_FACTOR_SHARP",
    "DECREASE",
    "DECREASE_SHARP",
    "HALF_TARGET",
    "cosine_worst_case",
    "critical_factor",
    "descent_identity",
    "paper_descent_from_separate_bounds",
    "validation_constants",
    "verify",
]

g, delta, lip, r = sp.symbols("g delta L r", positive=True)
gg, ge, ee = sp.symbols("gg ge ee", real=True)  # <g, g>, <g, e>, <e, e>

#: Published guaranteed decrease ``L(theta) - L(theta+) >= DECREASE``.
DECREASE = (g**2 - 4 * g * delta - delta**2) / (2 * lip)
#: Sharp guaranteed decrease from the exact identity with ``||e|| <= delta``.
DECREASE_SHARP = (g**2 - delta**2) / (2 * lip)
#: Half of the exact-gradient decrease ``g**2 / (2L)`` of a step ``1/L``.
HALF_TARGET = g**2 / (4 * lip)
#: Published direction bound ``1 - cos(angle(g~, g)) <= 2 delta / (g + delta)`` (``delta < g``).
COSINE_BOUND = 2 * delta / (g + delta)
#: Sharp direction bound (``delta < g``): the largest angle has ``sin = delta / g``.
COSINE_BOUND_SHARP = 1 - sp.sqrt(1 - (delta / g) ** 2)


def descent_identity() -> sp.Expr:
    """``<g, d> + L/2 ||d||**2`` for ``d = -(g + e)/L``, in terms of the inner products.

    Simplifies to ``(ee - gg) / (2L)``: the cross term ``<g, e>`` cancels exactly.
    """
    inner_g_d = -(gg + ge) / lip
    norm_d_sq = (gg + 2 * ge + ee) / lip**2
    return sp.simplify(inner_g_d + lip / 2 * norm_d_sq)


def paper_descent_from_separate_bounds() -> sp.Expr:
    """The bound obtained with ``-<g, g~> <= -g**2 + g delta`` and ``||g~||**2 <= (g + delta)**2``.

    Returns the guaranteed decrease ``-(right-hand side)``; it equals :data:`DECREASE`.
    """
    inner = -(g**2) + g * delta
    norm_sq = (g + delta) ** 2
    return sp.expand(-(inner / lip + norm_sq / (2 * lip)))


def critical_factor(decrease: sp.Expr) -> sp.Expr:
    """The ``c`` with ``decrease >= g**2/(4L)`` exactly when ``g >= c delta`` (positive root)."""
    roots = sp.solve(sp.Eq(decrease, HALF_TARGET), g)
    (positive,) = [x for x in roots if x.is_positive]
    return sp.simplify(positive / delta)


#: ``4 + 3 sqrt 2``: published critical factor.
CRITICAL_FACTOR = critical_factor(DECREASE)
#: ``sqrt 2``: critical factor of the sharp decrease.
CRITICAL_FACTOR_SHARP = critical_factor(DECREASE_SHARP)
#: ``2 + sqrt 6``: the earlier version's factor, the half-target root of a ``2 g delta`` bound.
CRITICAL_FACTOR_EARLIER = critical_factor((g**2 - 2 * g * delta - delta**2) / (2 * lip))


def cosine_worst_case() -> tuple[sp.Expr, sp.Expr]:
    """``(||e||, cos(angle))`` for the tangent perturbation in the plane of ``g = (g, 0)``.

    ``g~ = g cos(a) (cos a, sin a)`` with ``sin a = r = delta / g``: ``e = g~ - g`` has norm
    ``delta`` and ``g~`` makes the angle ``a`` with ``g``, the largest any ``||e|| <= delta``
    allows, so ``1 - cos a`` is the sharp bound.
    """
    cos_a = sp.sqrt(1 - r**2)
    tilde = sp.Matrix([g * cos_a * cos_a, g * cos_a * r])
    e = tilde - sp.Matrix([g, 0])
    norm_e = sp.sqrt(sp.simplify(e.dot(e)))
    norm_tilde = sp.sqrt(sp.simplify(tilde.dot(tilde)))
    cos_angle = sp.simplify(tilde.dot(sp.Matrix([g, 0])) / (g * norm_tilde))
    return sp.simplify(norm_e), cos_angle


def validation_constants(precision: int = 11) -> dict[str, sp.Expr]:
    """The figure's ``c * u`` with ``u = 2**-precision`` (fp16: ``(4 + 3 sqrt 2) / 2**11``)."""
    unit = sp.Rational(1, 2**precision)
    return {
        "published": CRITICAL_FACTOR * unit,
        "earlier": CRITICAL_FACTOR_EARLIER * unit,
        "sharp": CRITICAL_FACTOR_SHARP * unit,
    }


def verify() -> None:
    """Assert every derivation in this module (the tests call this)."""
    assert sp.simplify(descent_identity() - (ee - gg) / (2 * lip)) == 0
    assert sp.simplify(paper_descent_from_separate_bounds() - DECREASE) == 0
    # Slack of the published bound against the sharp one: 4 g delta / (2L) >= 0.
    assert sp.simplify(DECREASE_SHARP - DECREASE - 2 * g * delta / lip) == 0
    # Half-target condition of the published bound is g**2 - 8 g delta - 2 delta**2 >= 0.
    assert (
        sp.simplify(4 * lip * (DECREASE - HALF_TARGET) - (g**2 - 8 * g * delta - 2 * delta**2)) == 0
    )
    assert sp.simplify(CRITICAL_FACTOR - (4 + 3 * sp.sqrt(2))) == 0
    assert sp.simplify(CRITICAL_FACTOR_SHARP - sp.sqrt(2)) == 0
    assert sp.simplify(CRITICAL_FACTOR_EARLIER - (2 + sp.sqrt(6))) == 0
    # (2 + sqrt 6) is also the root of g**2 - 4 g delta - 2 delta**2 = 0: the published decrease
    # asked to exceed delta**2/(2L) instead of g**2/(4L).
    (earlier_alt,) = [
        x for x in sp.solve(sp.Eq(DECREASE, delta**2 / (2 * lip)), g) if x.is_positive
    ]
    assert sp.simplify(earlier_alt / delta - (2 + sp.sqrt(6))) == 0
    # Published cosine bound from cos >= (g**2 - g delta) / (g (g + delta)).
    assert sp.simplify(1 - (g**2 - g * delta) / (g * (g + delta)) - COSINE_BOUND) == 0
    # Sharp <= published on 0 <= r < 1: with r = (1 - s**2)/(1 + s**2), s in (0, 1], the
    # square root is rational and the gap factors as s (1 - s)(s**2 + s + 2) / (s**2 + 1) >= 0.
    sharp_r = COSINE_BOUND_SHARP.subs(delta, r * g)
    paper_r = COSINE_BOUND.subs(delta, r * g)
    s = sp.symbols("s", positive=True)
    to_s = {r: (1 - s**2) / (1 + s**2)}
    gap = sp.factor(sp.simplify((paper_r - sharp_r).subs(to_s)))
    assert sp.simplify(gap - s * (1 - s) * (s**2 + s + 2) / (s**2 + 1)) == 0
    norm_e, cos_angle = cosine_worst_case()
    assert sp.simplify(norm_e - r * g) == 0
    assert sp.simplify(1 - cos_angle - sharp_r) == 0


def main() -> None:
    verify()
    print("<g,d> + L/2 ||d||^2 =", descent_identity())
    print("published decrease  =", DECREASE)
    print("sharp decrease      =", DECREASE_SHARP)
    print(
        "critical factors: published",
        CRITICAL_FACTOR,
        "sharp",
        CRITICAL_FACTOR_SHARP,
        "earlier",
        CRITICAL_FACTOR_EARLIER,
    )
    for name, value in validation_constants().items():
        print(f"fp16 {name}: {value} = {sp.N(value, 10)}")
    print("cosine: published", COSINE_BOUND, "sharp", COSINE_BOUND_SHARP)


if __name__ == "__main__":
    main()
