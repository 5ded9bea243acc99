"""Machine checks for T-prob (theory/T-prob.md): the probabilistic constants of mperror.bounds.

Higham and Mary (SISC 2019): if ``delta_1..delta_n`` are independent, mean zero and
``|delta_k| <= u``, then ``prod (1 + delta_k)**(+-1) = 1 + theta_n`` with

    |theta_n| <= gamma~_n(lambda) = exp(lambda sqrt(n) u + n u**2 / (1 - u)) - 1

except with probability at most ``2 exp(-lambda**2 (1 - u)**2 / 2)``. The proof applies
Hoeffding's inequality to ``phi_k = log(1 + delta_k)``; this module checks each step of it
symbolically: the range of ``phi_k``, the Hoeffding exponent, the bound on ``|E phi_k|``, and the
``lambda`` below which the statement is vacuous. Connolly, Higham and Mary (SISC 2021) weaken
independence to mean independence (Azuma-Hoeffding); under stochastic rounding
``|delta_k| < 2u``, so the same formulas hold with ``u`` replaced by ``2u``.

Run ``PYTHONPATH=. python theory/t_prob.py`` to print the derivations; importing prints nothing.
"""

from __future__ import annotations

import sympy as sp

__all__ = [
    "FAILURE",
    "GAMMA_TILDE",
    "dot_failure",
    "failure_expr",
    "gamma_tilde_expr",
    "hoeffding_exponent",
    "lambda_vacuous",
    "log_range_slack",
    "mean_log_slack",
    "verify",
]

n, u, lam, t = sp.symbols("n u lambda t", positive=True)


def gamma_tilde_expr(count: sp.Expr = n, unit: sp.Expr = u, lam_: sp.Expr = lam) -> sp.Expr:
    """``exp(lambda sqrt(count) unit + count unit**2 / (1 - unit)) - 1``."""
    return sp.exp(lam_ * sp.sqrt(count) * unit + count * unit**2 / (1 - unit)) - 1


def failure_expr(unit: sp.Expr = u, lam_: sp.Expr = lam) -> sp.Expr:
    """Probability bound of the failure of one product: ``2 exp(-lambda**2 (1 - unit)**2 / 2)``."""
    return 2 * sp.exp(-(lam_**2) * (1 - unit) ** 2 / 2)


#: gamma~_n(lambda) in ``n``, ``u``, ``lambda``.
GAMMA_TILDE = gamma_tilde_expr()
#: Failure probability bound for one product of ``n`` factors.
FAILURE = failure_expr()


def dot_failure(terms: sp.Expr = n) -> sp.Expr:
    """Union bound over the ``terms`` products of a dot product: ``terms * FAILURE``."""
    return terms * FAILURE


def log_range_slack() -> sp.Expr:
    """``d/du [2u/(1-u) - log((1+u)/(1-u))]``: nonnegative, so ``phi_k``'s range is ``<= 2u/(1-u)``.

    ``log(1 + delta)`` for ``delta`` in ``[-u, u]`` lies in ``[log(1-u), log(1+u)]``, an interval
    of width ``log((1+u)/(1-u))``; the difference vanishes at ``u = 0`` and has this derivative.
    """
    return sp.factor(sp.diff(2 * u / (1 - u) - sp.log((1 + u) / (1 - u)), u))


def hoeffding_exponent() -> sp.Expr:
    """Hoeffding's exponent ``2 s**2 / (n c**2)``, ``s = lambda sqrt(n) u``, ``c = 2u/(1-u)``."""
    width = 2 * u / (1 - u)
    deviation = lam * sp.sqrt(n) * u
    return sp.simplify(2 * deviation**2 / (n * width**2))


def mean_log_slack() -> sp.Expr:
    """``u**2/(1-u) - u**2/(2 (1-u)**2)``, factored: nonnegative for ``u <= 1/2``.

    With ``E delta = 0``, ``|E log(1 + delta)| = |E(log(1+delta) - delta)| <= u**2 / (2(1-u)**2)``
    (Taylor with the remainder's ``1/(1+xi)**2 <= 1/(1-u)**2``); the published bound uses the
    simpler ``u**2 / (1 - u)``, which is larger for ``u <= 1/2``.
    """
    return sp.factor(u**2 / (1 - u) - u**2 / (2 * (1 - u) ** 2))


def lambda_vacuous(terms: sp.Expr = 1, unit: sp.Expr = u) -> sp.Expr:
    """The ``lambda`` at which ``terms * FAILURE = 1``; below it the statement says nothing.

    ``sqrt(2 log(2 terms)) / (1 - unit)``: about 1.1774 / (1 - u) for one product.
    """
    square = sp.symbols("square", positive=True)  # lambda**2: one root, no sign ambiguity
    (root,) = sp.solve(sp.Eq(terms * failure_expr(u, sp.sqrt(square)), 1), square)
    return sp.sqrt(root).subs(u, unit)


def verify() -> None:
    """Assert every step checked in this module (the tests call this)."""
    assert sp.simplify(log_range_slack() - 4 * u / ((1 - u) ** 2 * (1 + u))) == 0
    assert sp.simplify(hoeffding_exponent() - lam**2 * (1 - u) ** 2 / 2) == 0
    # With s = lambda sqrt(n) u the Hoeffding tail is 2 exp(-exponent) = FAILURE.
    assert sp.simplify(2 * sp.exp(-hoeffding_exponent()) - FAILURE) == 0
    assert sp.simplify(mean_log_slack() - u**2 * (1 - 2 * u) / (2 * (1 - u) ** 2)) == 0
    # Compared squared: sympy writes the root with |u - 1|, which is 1 - u for u < 1.
    terms = sp.symbols("terms", positive=True)
    closed = sp.sqrt(2 * sp.log(2 * terms)) / (1 - u)
    assert sp.simplify(sp.expand_log(lambda_vacuous(terms) ** 2 - closed**2, force=True)) == 0
    assert sp.simplify(lambda_vacuous(1) ** 2 - closed.subs(terms, 1) ** 2) == 0
    # First-order term: gamma~_n(lambda) = lambda sqrt(n) u + O(u**2).
    assert sp.simplify(sp.diff(GAMMA_TILDE, u).subs(u, 0) - lam * sp.sqrt(n)) == 0


def main() -> None:
    verify()
    print("gamma~_n(lambda) =", GAMMA_TILDE)
    print("failure probability <=", FAILURE, "; dot product:", dot_failure())
    print("d/du[2u/(1-u) - log((1+u)/(1-u))] =", log_range_slack())
    print("Hoeffding exponent =", hoeffding_exponent())
    print("u^2/(1-u) - u^2/(2(1-u)^2) =", mean_log_slack())
    print("vacuous below lambda =", lambda_vacuous())
    for name, p in (("fp16", 11), ("bf16", 8), ("e4m3fn", 4)):
        unit = sp.Rational(1, 2**p)
        print(f"{name}: lambda_min = {sp.N(lambda_vacuous(1, unit), 8)}")


if __name__ == "__main__":
    main()
