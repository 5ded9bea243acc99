"""Symbolic and high-precision checks for theory/fno-bounds.md (``T-fno-disc``, ``T-fno-prec``,
``T-fno-layer``).

Run ``PYTHONPATH=. python theory/fno_bounds.py`` to print the constants, the worst case and the
crossover table. Only sympy and mpmath are used, and the format parameters come from REFERENCES
section 1, so tests can compare mperror.bounds.fno against an independent computation.
"""

from __future__ import annotations

import mpmath
import sympy as sp

x, y, s, t, k = sp.symbols("x y s t k", positive=True)
HALF = sp.Rational(1, 2)

#: (precision p, emin, max finite) from REFERENCES section 1; all four have subnormals.
FORMATS: dict[str, tuple[int, int, float]] = {
    "fp16": (11, -14, 65504.0),
    "bf16": (8, -126, 3.3895313892515355e38),
    "e5m2": (3, -14, 57344.0),
    "e4m3fn": (4, -6, 448.0),
}


# T-fno-disc: the constants c_d = E||U[-1/2, 1/2]^d||_2.


def c1() -> sp.Expr:
    """``E|U[-1/2, 1/2]| = 2 int_0^(1/2) x dx = 1/4``."""
    return 2 * sp.integrate(x, (x, 0, HALF))


def c2() -> sp.Expr:
    """``int int_([-1/2, 1/2]^2) sqrt(x^2 + y^2) dx dy``, by the square's 8 symmetries.

    The integral over the square is 8 times that over the triangle ``0 <= y <= x <= 1/2``, where
    the inner integral is ``x^2 (sqrt 2 + asinh 1) / 2``.
    """
    inner = sp.integrate(sp.sqrt(x**2 + y**2), (y, 0, x))
    return sp.simplify(8 * sp.integrate(inner, (x, 0, HALF)))


def c2_closed_form() -> sp.Expr:
    """``(sqrt 2 + ln(1 + sqrt 2)) / 6``."""
    return (sp.sqrt(2) + sp.log(1 + sp.sqrt(2))) / 6


def c2_corner() -> sp.Expr:
    """``int int_([0, 1]^2) sqrt(x^2 + y^2)``: the corner-grid constant, ``2 c_2``."""
    inner = sp.integrate(sp.sqrt(x**2 + y**2), (y, 0, x))
    return sp.simplify(2 * sp.integrate(inner, (x, 0, 1)))


def c3_inner() -> sp.Expr:
    """``int_0^s sqrt(1 + s^2 + t^2) dt`` in closed form (sympy)."""
    return sp.integrate(sp.sqrt(1 + s**2 + t**2), (t, 0, s))


def c3_mpmath(dps: int = 30) -> mpmath.mpf:
    """``c_3 = E||U[-1/2, 1/2]^3||``, by the cube's 48 symmetries and one mpmath quadrature.

    Over the simplex ``0 <= z <= y <= x <= 1/2``, with ``y = s x`` and ``z = t x``, the integral
    factors as ``int_0^(1/2) x^3 dx * J = J / 64``, ``J = int_0^1 int_0^s sqrt(1 + s^2 + t^2)``;
    so ``c_3 = 48 J / 64``. The inner integral is exact (:func:`c3_inner`), the outer by mpmath.
    """
    inner = sp.lambdify(s, c3_inner(), modules="mpmath")
    with mpmath.workdps(dps):
        return 48 * mpmath.quad(inner, [0, 1]) / 64


def c3_mpmath_direct(dps: int = 15) -> mpmath.mpf:
    """``c_3`` by a plain two-dimensional mpmath quadrature (a cross-check of the reduction)."""

    def column(a: mpmath.mpf, b: mpmath.mpf) -> mpmath.mpf:
        # int_0^(1/2) sqrt(r^2 + z^2) dz in closed form, r^2 = a^2 + b^2
        r2 = a * a + b * b
        half = mpmath.mpf(1) / 2
        root = mpmath.sqrt(r2 + half**2)
        if r2 == 0:
            return half**2 / 2
        return (half * root + r2 * mpmath.asinh(half / mpmath.sqrt(r2))) / 2

    with mpmath.workdps(dps):
        return 8 * mpmath.quad(column, [0, 0.5], [0, 0.5])


def second_moment() -> sp.Expr:
    """``E U_i^2 = 1/12`` for ``U_i ~ U[-1/2, 1/2]``: so ``E||U||^2 = d/12`` and, by Jensen,
    ``c_d <= sqrt(d/12)``."""
    return sp.integrate(x**2, (x, -HALF, HALF))


# T-fno-disc: the tight example and aliasing.


def worst_case_error(n: int, w: int, grid: str = "centred", m: float = 1.0) -> mpmath.mpf:
    """``|v^(w) - v^_n(w)|`` for ``v = M sin(2 pi (n + w) x)`` in mpmath (``v^(w) = 0``).

    ``v^_n`` is the rectangle rule (corner grid) or the midpoint rule (centred grid).
    """
    with mpmath.workdps(30):
        total = mpmath.mpc(0)
        for j in range(n):
            node = mpmath.mpf(j) / n if grid == "corner" else (j + mpmath.mpf(1) / 2) / n
            total += m * mpmath.sin(2 * mpmath.pi * (n + w) * node) * mpmath.expjpi(-2 * w * node)
        return abs(total / n)


def worst_case_ratio_limit(grid: str = "centred") -> sp.Expr:
    """``lim_{n -> oo}`` of the bound over the error ``M/2`` in the worst case: ``pi`` (``2 pi``).

    The example's Lipschitz constant is ``L = 2 pi (n + w) M``.
    """
    n, w, m = sp.symbols("n w M", positive=True)
    constant = c1() if grid == "centred" else 2 * c1()
    bound = constant * (2 * sp.pi * (n + w) * m + 2 * sp.pi * w * m) / n
    return sp.limit(bound / (m / 2), n, sp.oo)


def triangle_coefficient(mode: int) -> sp.Expr:
    """Closed form of the Fourier coefficient of ``|x - 1/2|`` on ``[0, 1)``.

    ``1/4`` at ``0``, ``1 / (pi^2 k^2)`` for odd ``k``, ``0`` for even ``k != 0``.
    """
    if mode == 0:
        return sp.Rational(1, 4)
    return sp.Rational(1 - (-1) ** mode, 2) / (sp.pi**2 * mode**2)


def triangle_coefficient_integral(mode: int) -> sp.Expr:
    """``int_0^1 |x - 1/2| exp(-2 pi i k x) dx`` by sympy (the oracle for the closed form)."""
    phase = sp.exp(-2 * sp.pi * sp.I * mode * x)
    left = sp.integrate((HALF - x) * phase, (x, 0, HALF))
    right = sp.integrate((x - HALF) * phase, (x, HALF, 1))
    return sp.simplify(left + right)


# T-fno-prec: the crossover, independently in mpmath.


def crossover_log2(
    name: str,
    *,
    lipschitz: float = 1.0,
    bound_m: float = 1.0,
    w_norm: float = 0.0,
    d: int = 1,
    c: mpmath.mpf | None = None,
    fft_arithmetic: bool = True,
) -> mpmath.mpf:
    """``log2 n*`` where ``delta + rho(d log2 n)(M + delta)`` meets ``c K / n`` (mpmath bisection).

    ``delta = u M`` (``M >= 2**emin``), ``eta`` with twiddles rounded to nearest
    (``mu = sqrt(u^2 + 2 h^2)``), and ``inf`` precision where ``N (M + delta) > max``.
    """
    precision, emin, fmax = FORMATS[name]
    with mpmath.workdps(30):
        unit = mpmath.mpf(2) ** -precision
        half_spacing = mpmath.mpf(2) ** (emin - precision) if bound_m < 2**emin else 0
        delta = max(unit * bound_m, half_spacing)
        twiddle = mpmath.sqrt(unit**2 + 2 * (mpmath.mpf(2) ** (emin - precision)) ** 2)
        eta = twiddle + 4 * unit / (1 - 4 * unit) * (mpmath.sqrt(2) + twiddle)
        if c is None:
            c = [None, mpmath.mpf(1) / 4, (mpmath.sqrt(2) + mpmath.log(1 + mpmath.sqrt(2))) / 6][d]
        slope = c * (lipschitz + 2 * mpmath.pi * w_norm * bound_m)

        def gap(log2_n: mpmath.mpf) -> mpmath.mpf:
            disc = slope / mpmath.mpf(2) ** log2_n
            if not fft_arithmetic:
                return delta - disc
            arg = d * log2_n
            if arg * eta >= 1 or mpmath.mpf(2) ** arg * (bound_m + delta) > fmax:
                return mpmath.inf
            return delta + arg * eta / (1 - arg * eta) * (bound_m + delta) - disc

        if gap(0) >= 0:
            return mpmath.mpf(0)
        lo, hi = mpmath.mpf(0), mpmath.log(slope / delta, 2)
        for _ in range(200):
            mid = (lo + hi) / 2
            if gap(mid) >= 0:
                hi = mid
            else:
                lo = mid
        return hi


# T-fno-layer: the bound as a sympy expression.


def layer_bound(norm: str = "rms") -> tuple[sp.Expr, dict[str, sp.Symbol]]:
    """The Fourier-layer bound of fno-bounds.md as a sympy expression, and its symbols.

    Symbols: ``M, delta, rho, r, r_abs, u, g_store, c_in, m``.
    """
    names = "M delta rho r r_abs u g_store c_in m"
    symbols = dict(zip(names.split(), sp.symbols(names, nonnegative=True), strict=True))
    m_, delta, rho, r, r_abs, u_, g_store, c_in, modes = symbols.values()
    e1 = sp.sqrt(c_in) * (delta + rho * (m_ + delta))
    s1 = sp.sqrt(c_in) * m_ + e1
    e2 = r * e1 + r_abs * s1 * (u_ + (1 + u_) * g_store)
    s2 = r * sp.sqrt(c_in) * m_ + e2
    bound = e2 + rho * s2
    if norm == "max":
        bound = sp.sqrt(modes) * bound
    return bound, symbols


def layer_first_order() -> sp.Expr:
    """The rms bound over ``r sqrt(c_in) M`` to first order in the small quantities."""
    bound, sym = layer_bound()
    eps = sp.Symbol("epsilon", positive=True)
    small = {sym[name]: eps * sym[name] for name in ("delta", "rho", "u", "g_store")}
    scaled = bound.subs(small) / (sym["r"] * sp.sqrt(sym["c_in"]) * sym["M"])
    return sp.expand(sp.series(scaled, eps, 0, 2).removeO().subs(eps, 1))


def main() -> None:
    print("c_1 =", c1())
    print("c_2 =", c2(), "=", sp.N(c2(), 20))
    print("c_2 - closed form =", sp.simplify(c2() - c2_closed_form()))
    print("corner c_2 / centred c_2 =", sp.simplify(c2_corner() / c2()))
    print("c_3 (mpmath) =", mpmath.nstr(c3_mpmath(), 25), " direct:", c3_mpmath_direct())
    print(
        "E U^2 =",
        second_moment(),
        "-> sqrt(d/12):",
        [sp.sqrt(sp.Rational(d, 12)) for d in (1, 2, 3)],
    )
    print(
        "worst case M sin(2 pi (n + w) x), M = 1: error at n = 16, 64 (w = 3):",
        [mpmath.nstr(worst_case_error(n, 3), 15) for n in (16, 64)],
    )
    print(
        "bound / error as n -> oo:",
        worst_case_ratio_limit(),
        "(centred),",
        worst_case_ratio_limit("corner"),
        "(corner)",
    )
    print()
    print("crossover n* (L = M = 1, w = 0):")
    print("format   d  input rounding only   with FFT arithmetic")
    for name in FORMATS:
        for d in (1, 2):
            only = mpmath.mpf(2) ** crossover_log2(name, d=d, fft_arithmetic=False)
            full = mpmath.mpf(2) ** crossover_log2(name, d=d)
            print(f"{name:8s} {d}  {mpmath.nstr(only, 8):20s} {mpmath.nstr(full, 8)}")
    print()
    print("layer bound / (r sqrt(c_in) M), first order:", layer_first_order())


if __name__ == "__main__":
    main()
