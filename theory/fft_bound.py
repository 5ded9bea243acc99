"""Symbolic checks for theory/fft-bound.md (``T-fft-higham``).

Run ``PYTHONPATH=. python theory/fft_bound.py`` to print the checks and the per-format table.
Everything here is sympy or mpmath; the format parameters are typed from REFERENCES section 1,
not read from mperror, so that tests can compare the package against an independent source.
"""

from __future__ import annotations

import mpmath
import sympy as sp

u, mu, x = sp.symbols("u mu x", positive=True)
SQRT2 = sp.sqrt(2)

#: (precision p, emin, has subnormals) from REFERENCES section 1.
FORMATS: dict[str, tuple[int, int, bool]] = {
    "fp32": (24, -126, True),
    "fp16": (11, -14, True),
    "bf16": (8, -126, True),
    "e5m2": (3, -14, True),
    "e4m3fn": (4, -6, True),
}


def gamma(k: int, unit: sp.Expr = u) -> sp.Expr:
    """``gamma_k = k u / (1 - k u)``."""
    return k * unit / (1 - k * unit)


def eta_higham(unit: sp.Expr = u, twiddle: sp.Expr = mu) -> sp.Expr:
    """Higham's per-stage constant, Theorem 24.2: ``mu + gamma_4 (sqrt 2 + mu)``."""
    return twiddle + gamma(4, unit) * (SQRT2 + twiddle)


def eta_ours(unit: sp.Expr = u, twiddle: sp.Expr = mu) -> sp.Expr:
    """Our per-stage constant ``(1 + u)(1 + mu)(1 + sqrt 2 gamma_2) - 1`` (fft-bound.md, step 2)."""
    return (1 + unit) * (1 + twiddle) * (1 + SQRT2 * gamma(2, unit)) - 1


def eta_ours_below_higham() -> bool:
    """``eta_ours <= eta_higham`` for all ``0 < u < 1/4`` and ``mu >= 0``.

    The difference is affine in ``mu``; both coefficients are rational functions of ``u`` whose
    denominator ``(1 - 2u)(1 - 4u)`` is positive on ``(0, 1/4)``, and whose numerators have no
    root there and are positive at ``u = 1/8``.
    """
    difference = sp.expand(eta_higham() - eta_ours())
    coefficients = (difference.subs(mu, 0), sp.diff(difference, mu))
    interval = sp.Interval.open(0, sp.Rational(1, 4))
    for coefficient in coefficients:
        numerator, denominator = sp.fraction(sp.together(coefficient))
        if sp.solveset(sp.expand(numerator), u, interval) != sp.S.EmptySet:
            return False
        if sp.solveset(sp.expand(denominator), u, interval) != sp.S.EmptySet:
            return False
        if not coefficient.subs(u, sp.Rational(1, 8)) > 0:
            return False
    return True


def leading_constant() -> sp.Expr:
    """``lim_{u -> 0} eta / u`` with ``mu = u`` (twiddles rounded to the format), ``1 + 4 sqrt 2``.

    The per-mode bound of a forward-normalised FFT is ``rho M ~ (1 + 4 sqrt 2) u log2(N) M``.
    """
    return sp.limit(eta_higham(u, u) / u, u, 0)


def leading_constant_ours() -> sp.Expr:
    """The same limit for our constant: ``2 + 2 sqrt 2``."""
    return sp.limit(eta_ours(u, u) / u, u, 0)


def complex_product_lemma() -> sp.Expr:
    """``2 |z|^2 |w|^2 - [(|ac| + |bd|)^2 + (|ad| + |bc|)^2]`` as a sum of squares.

    With ``z = a + ib``, ``w = c + id`` (``a, b, c, d >= 0`` without loss of generality), this is
    ``(ac - bd)^2 + (ad - bc)^2 >= 0``, whence ``|fl(zw) - zw| <= sqrt 2 gamma_2 |z||w|`` (the
    real and imaginary parts are two-term dot products, each within ``gamma_2`` of its absolute
    value). Returns the difference minus that sum of squares, which simplifies to 0.
    """
    a, b, c, d = sp.symbols("a b c d", nonnegative=True)
    difference = 2 * (a**2 + b**2) * (c**2 + d**2) - ((a * c + b * d) ** 2 + (a * d + b * c) ** 2)
    return sp.expand(difference - ((a * c - b * d) ** 2 + (a * d - b * c) ** 2))


def exp_step() -> sp.Expr:
    """``d/dx [exp(x)(1 - x)] = -x exp(x) <= 0``: so ``exp(x) <= 1/(1 - x)`` on ``[0, 1)``.

    With ``(1 + eta)**t <= exp(t eta)`` this gives ``(1 + eta)**t - 1 <= t eta / (1 - t eta)``.
    """
    return sp.simplify(sp.diff(sp.exp(x) * (1 - x), x))


def twiddle_error(precision: int, emin: int, subnormals: bool = True) -> mpmath.mpf:
    """``mu = sqrt(u^2 + 2 h^2)`` for twiddles rounded to nearest, part by part."""
    unit = mpmath.mpf(2) ** -precision
    below = mpmath.mpf(2) ** (emin - precision + 1 if subnormals else emin)
    return mpmath.sqrt(unit**2 + 2 * (below / 2) ** 2)


def eta_value(name: str) -> mpmath.mpf:
    """``eta`` of a preset format with rounded twiddles, in mpmath; ``inf`` when ``4u >= 1``."""
    precision, emin, subnormals = FORMATS[name]
    unit = mpmath.mpf(2) ** -precision
    twiddle = twiddle_error(precision, emin, subnormals)
    if 4 * unit >= 1:
        return mpmath.inf
    return twiddle + 4 * unit / (1 - 4 * unit) * (mpmath.sqrt(2) + twiddle)


def rho_value(name: str, log2_n: int | mpmath.mpf) -> mpmath.mpf:
    """``t eta / (1 - t eta)``, or ``inf``."""
    eta = eta_value(name)
    s = log2_n * eta
    return mpmath.inf if s >= 1 else s / (1 - s)


def main() -> None:
    print("eta_ours <= eta_higham on 0 < u < 1/4:", eta_ours_below_higham())
    print("lim eta/u (Higham, mu = u):", leading_constant(), "=", sp.N(leading_constant()))
    print("lim eta/u (ours, mu = u):", leading_constant_ours(), "=", sp.N(leading_constant_ours()))
    print("complex product lemma residual:", complex_product_lemma())
    print("d/dx exp(x)(1 - x) =", exp_step())
    print()
    print("format   eta/u      largest t with rho < 1   rho at N = 64^2, 128^2, 256^2")
    for name, (precision, _, _) in FORMATS.items():
        eta = eta_value(name)
        ratio = eta * 2**precision
        # rho < 1 iff t eta < 1/2
        useful = int(mpmath.ceil(1 / (2 * eta))) - 1 if eta < mpmath.inf else 0
        rhos = ", ".join(mpmath.nstr(rho_value(name, t), 4) for t in (12, 14, 16))
        print(f"{name:8s} {mpmath.nstr(ratio, 6):10s} {max(useful, 0):<24d} {rhos}")


if __name__ == "__main__":
    main()
