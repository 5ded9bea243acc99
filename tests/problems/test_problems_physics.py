"""Numerical oracles for the training problems: manufactured solutions and closed forms."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch
from scipy.stats import truncnorm
from torch import nn

from mperror.problems import get
from mperror.problems._base import evenly_spaced, generator, hammersley
from mperror.problems._nets import MLP
from mperror.problems.burgers import residual as burgers_residual
from mperror.problems.cole_hopf import NU
from mperror.problems.deeponet import FIELD, DeepONet
from mperror.problems.diffusion import HardConstrained, exact, source
from mperror.problems.diffusion import residual as diffusion_residual
from mperror.problems.grf import cosine_values_1d, neumann_1d
from mperror.problems.regression import target


class _Pointwise(nn.Module):
    """A "model" that evaluates a formula; its float64 parameter fixes the loss dtype."""

    def __init__(self, formula) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.formula = formula

    def forward(self, xt: torch.Tensor) -> torch.Tensor:
        return self.formula(xt) + 0 * self.anchor


def _zeroed(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model


def test_diffusion_exact_solution_has_zero_residual() -> None:
    """Manufactured solution: the PDE residual of sin(pi x) e^-t vanishes to round-off.

    Computed with autograd in float64; the terms are of size pi^2 ~ 10, so round-off is about
    10 * 2^-52 ~ 2e-15 per term. The bound 1e-12 is that times a few hundred.
    """
    gen = torch.Generator().manual_seed(0)
    xt = torch.rand(200, 2, generator=gen, dtype=torch.float64) * torch.tensor([2.0, 1.0])
    xt = (xt - torch.tensor([1.0, 0.0])).requires_grad_(True)
    r = diffusion_residual(_Pointwise(exact), xt, source(xt.detach()))
    assert r.abs().max().item() < 1e-12


def test_diffusion_source_matches_a_symbolic_derivation() -> None:
    """Oracle: sympy derives u_t - u_xx for u = sin(pi x) e^-t."""
    x, t = sp.symbols("x t")
    u = sp.sin(sp.pi * x) * sp.exp(-t)
    f = sp.lambdify((x, t), sp.diff(u, t) - sp.diff(u, x, 2), "numpy")
    pts = torch.tensor([[-0.7, 0.1], [0.2, 0.5], [0.9, 1.0], [0.0, 0.3]], dtype=torch.float64)
    expected = torch.tensor([f(float(a), float(b)) for a, b in pts], dtype=torch.float64)
    torch.testing.assert_close(source(pts).squeeze(1), expected, rtol=1e-14, atol=1e-14)


def test_diffusion_hard_constraint_holds_for_any_network() -> None:
    """By construction u(x, 0) = sin(pi x) and u(+-1, t) = sin(+-pi) (1e-16 in float64)."""
    net = MLP((2, 8, 1), generator=torch.Generator().manual_seed(1)).double()
    model = HardConstrained(net)
    x = torch.linspace(-1, 1, 11, dtype=torch.float64)
    at_t0 = model(torch.stack([x, torch.zeros_like(x)], 1)).squeeze(1)
    torch.testing.assert_close(at_t0, torch.sin(math.pi * x), rtol=0, atol=1e-15)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    for edge in (-1.0, 1.0):
        at_edge = model(torch.stack([torch.full_like(t, edge), t], 1))
        assert at_edge.abs().max().item() < 1e-15


def test_diffusion_loss_and_error_of_known_models() -> None:
    """Closed forms: the exact model has zero loss and error; N = 0 gives u = sin(pi x).

    With u = sin(pi x): u_t = 0 and u_xx = -pi^2 sin(pi x), so the residual is
    pi^2 s + e^-t (s - pi^2 s) with s = sin(pi x).
    """
    inst = get("diffusion").build("quick", seed=0)
    exact_model = _Pointwise(exact)
    assert inst.loss(exact_model).item() < 1e-24
    assert inst.test_error(exact_model) < 1e-15
    zero_net = HardConstrained(_zeroed(MLP((2, 4, 1), generator=torch.Generator()).double()))
    x, t = inst.xt_interior[:, 0], inst.xt_interior[:, 1]
    s = torch.sin(math.pi * x)
    r = math.pi**2 * s + torch.exp(-t) * (s - math.pi**2 * s)
    assert inst.loss(zero_net).item() == pytest.approx((r * r).mean().item(), rel=1e-12)


def test_diffusion_points() -> None:
    """Oracle: the paper's validation run (REFERENCES section 4): 500 interior and 10,000 test
    points on [-1, 1] x [0, 1], MLP [2, 32, 32, 32, 1], Adam lr 1e-3, 2,000 iterations."""
    inst = get("diffusion").build("full", seed=0)
    xt = inst.xt_interior
    assert xt.shape == (500, 2) and inst.xt_test.shape == (10_000, 2)
    assert xt[:, 0].abs().max() <= 1 and xt[:, 1].min() >= 0 and xt[:, 1].max() <= 1
    assert inst.defaults.iterations == 2000 and inst.defaults.lr == 1e-3
    assert inst.config["layers"] == [2, 32, 32, 32, 1]


def test_burgers_residual_of_a_closed_form() -> None:
    """u = sin(x) + t: u_t = 1, u_x = cos x, u_xx = -sin x (by hand)."""
    xt = torch.tensor([[0.3, 0.2], [-0.8, 0.9], [1.0, 0.0]], dtype=torch.float64)
    xt.requires_grad_(True)
    model = _Pointwise(lambda p: torch.sin(p[:, 0:1]) + p[:, 1:2])
    r = burgers_residual(model, xt, NU).detach().squeeze(1)
    x, t = xt[:, 0].detach(), xt[:, 1].detach()
    expected = 1 + (torch.sin(x) + t) * torch.cos(x) + NU * torch.sin(x)
    torch.testing.assert_close(r, expected, rtol=1e-14, atol=1e-15)


def test_burgers_zero_model_loss_and_error() -> None:
    """u = 0 satisfies the PDE and the boundary values; the loss is mean(sin^2(pi x_0))."""
    inst = get("burgers").build("quick", seed=0)
    model = _zeroed(MLP((2, 4, 1), generator=torch.Generator()).double())
    expected = (torch.sin(math.pi * inst.xt_initial[:, 0]) ** 2).mean().item()
    assert inst.loss(model).item() == pytest.approx(expected, rel=1e-14)
    assert inst.test_error(model) == 1.0  # ||0 - u|| / ||u||


def test_burgers_loss_takes_the_residual_on_every_training_point() -> None:
    """u = sin(x) + t, whose residual is 1 + u cos x + nu sin x (by hand, as above): the loss is
    the mean square of that over interior, boundary and initial points together, plus the mean
    squares of u on the boundary and of u + sin(pi x) on the initial points."""
    inst = get("burgers").build("quick", seed=0)
    model = _Pointwise(lambda p: torch.sin(p[:, 0:1]) + p[:, 1:2])
    every = torch.cat([inst.xt_interior, inst.xt_boundary, inst.xt_initial])
    x, t = every[:, 0], every[:, 1]
    r = 1 + (torch.sin(x) + t) * torch.cos(x) + NU * torch.sin(x)
    x_b, t_b = inst.xt_boundary[:, 0], inst.xt_boundary[:, 1]
    x_0 = inst.xt_initial[:, 0]
    expected = (
        (r**2).mean()
        + ((torch.sin(x_b) + t_b) ** 2).mean()
        + ((torch.sin(x_0) + torch.sin(math.pi * x_0)) ** 2).mean()
    )
    assert inst.loss(model).item() == pytest.approx(expected.item(), rel=1e-13)


def _bit_reversed(i: int, bits: int) -> float:
    """The base-2 radical inverse of ``i < 2**bits``, by reversing its binary digits."""
    return int(format(i, f"0{bits}b")[::-1], 2) / 2**bits


def test_hammersley_set_is_a_net() -> None:
    """Oracles: the definition (first coordinate i / (n + 1), second the binary digits of i
    mirrored about the point); and the (0, k, 2)-net property: with the corner (0, 0) added
    back, every dyadic box of area 2**-k holds exactly one point, for each of the k + 1 box
    shapes. 64 independent uniform points would fill the 8 x 8 boxes one each with probability
    64! / 64**64 (about 3e-27)."""
    k = 6
    n = 2**k - 1
    p = hammersley(n)
    assert p.dtype == torch.float64 and p.shape == (n, 2)
    assert p[:, 0].tolist() == [i / 2**k for i in range(1, n + 1)]
    assert p[:, 1].tolist() == [_bit_reversed(i, k) for i in range(1, n + 1)]
    net = torch.cat([torch.zeros(1, 2, dtype=torch.float64), p])
    for a in range(k + 1):
        box = (net[:, 0] * 2**a).floor().long() * 2 ** (k - a) + (
            net[:, 1] * 2 ** (k - a)
        ).floor().long()
        assert torch.equal(torch.bincount(box, minlength=2**k), torch.ones(2**k, dtype=torch.long))
    assert evenly_spaced(4).tolist() == [0.2, 0.4, 0.6, 0.8]
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="n must be an int >= 1"):
            hammersley(bad)


def test_burgers_points() -> None:
    """Oracle: the paper's run (REFERENCES section 4: 2,048 / 64 / 128 points on [-1, 1] x
    [0, 0.99], Adam lr 1e-3, eps 1e-5, 20,000 iterations), Raissi et al.'s 256 x 100 test grid,
    and u0 = -sin(pi x) in closed form."""
    inst = get("burgers").build("full", seed=0)
    assert inst.xt_interior.shape == (2048, 2)
    assert inst.xt_boundary.shape == (64, 2) and inst.xt_initial.shape == (128, 2)
    assert set(inst.xt_boundary[:, 0].tolist()) == {-1.0, 1.0}
    left, right = inst.xt_boundary[:32], inst.xt_boundary[32:]
    assert torch.all(left[:, 0] == -1) and torch.all(right[:, 0] == 1)
    assert torch.equal(left[:, 1], right[:, 1])  # both sides at the same times
    assert inst.xt_boundary[:, 1].unique().numel() == 32
    # the points are the problem's, not the seed's (as DeepXDE's Hammersley set); seeds differ
    # in the initial weights
    other = get("burgers").build("full", seed=1)
    for name in ("xt_interior", "xt_boundary", "xt_initial"):
        assert torch.equal(getattr(inst, name), getattr(other, name))
    assert torch.all(inst.xt_initial[:, 1] == 0)
    for pts in (inst.xt_interior, inst.xt_boundary, inst.xt_test):
        assert pts[:, 0].abs().max() <= 1 and pts[:, 1].min() >= 0 and pts[:, 1].max() <= 0.99
    torch.testing.assert_close(
        inst.u_initial.squeeze(1), -torch.sin(math.pi * inst.xt_initial[:, 0])
    )
    assert inst.xt_test.shape == (256 * 100, 2)
    d = inst.defaults
    assert (d.lr, d.adam_eps, d.iterations) == (1e-3, 1e-5, 20_000)


def test_regression_data_and_known_models() -> None:
    """Oracle: the paper's data (REFERENCES section 4: 16 equispaced points on [-1, 1], x sin(5x)
    written out here, MLP [1, 10, 10, 1], 10,000 iterations) and closed forms: the target has loss
    and error exactly 0, the zero model relative error ||0 - f|| / ||f|| = 1."""
    inst = get("regression").build("full", seed=0)
    x = inst.x_train.squeeze(1)
    torch.testing.assert_close(x, torch.linspace(-1, 1, 16, dtype=torch.float64))
    torch.testing.assert_close(inst.y_train.squeeze(1), x * torch.sin(5 * x))
    assert inst.test_error(_Pointwise(target)) == 0.0
    assert inst.loss(_Pointwise(target)).item() == 0.0
    assert inst.test_error(_zeroed(MLP((1, 3, 1), generator=torch.Generator()))) == 1.0
    assert inst.config["layers"] == [1, 10, 10, 1] and inst.defaults.iterations == 10_000


def test_deeponet_reference_matches_trapezoid_within_its_error_bound() -> None:
    """Oracle: the cumulative trapezoid rule on the sensors (the sensor and evaluation grids
    coincide), whose error at ``y`` is at most ``(h^2 / 12) y max|v''|``, with
    ``max|v''| <= sum_k |c_k| sqrt(2) (k pi)^2`` for the cosine series."""
    inst = get("deeponet").build("quick", seed=0)
    v, g = inst.sensors_train, inst.g_train
    y = inst.y.squeeze(1)
    assert torch.equal(y, torch.linspace(0, 1, v.shape[1], dtype=torch.float64))
    h = 1 / (v.shape[1] - 1)
    steps = (v[:, 1:] + v[:, :-1]) * h / 2
    trapezoid = torch.cat([torch.zeros_like(v[:, :1]), torch.cumsum(steps, dim=1)], dim=1)
    # The same coefficients the build drew: seed 0, stream 1.
    coef = neumann_1d(FIELD, v.shape[0], generator=generator(0, 1))
    torch.testing.assert_close(cosine_values_1d(coef, y), v, rtol=0, atol=0)
    k = torch.arange(FIELD.n_modes, dtype=torch.float64)
    v2_max = (coef.abs() * math.sqrt(2) * (k * math.pi) ** 2).sum(1, keepdim=True)
    bound = h**2 / 12 * y * v2_max
    assert torch.all((g - trapezoid).abs() <= bound + 1e-13)  # + float64 summation round-off


def test_deeponet_zero_model_and_shapes() -> None:
    """The zero operator has relative error exactly 1 for every function."""
    inst = get("deeponet").build("quick", seed=0)
    zero = _zeroed(DeepONet((100, 5), (1, 5), generator=torch.Generator()))
    assert inst.loss(zero).item() == 1.0
    assert inst.test_error(zero) == 1.0
    out = inst.model(inst.sensors_train.float()[:3], inst.y.float()[:7])
    assert out.shape == (3, 7)
    with pytest.raises(ValueError, match="same width p"):
        DeepONet((100, 5), (1, 6), generator=torch.Generator())


def test_deeponet_test_functions_do_not_depend_on_the_seed() -> None:
    a, b = (get("deeponet").build("quick", seed=s) for s in (0, 1))
    assert torch.equal(a.g_test, b.g_test)
    assert not torch.equal(a.g_train, b.g_train)


def test_mlp_glorot_uniform() -> None:
    """Weights lie in [-b, b], b = sqrt(6 / (fan_in + fan_out)); biases are zero.

    The sample variance of the 1,024 weights of a 32 x 32 layer estimates b^2 / 3; for a uniform
    law its relative standard deviation is sqrt((9/5 - 1) / 1024) ~ 0.028, so 0.14 is 5 sigma.
    """
    net = MLP((2, 32, 32, 1), generator=torch.Generator().manual_seed(0))
    for layer in net.linears:
        fan_out, fan_in = layer.weight.shape
        b = math.sqrt(6 / (fan_in + fan_out))
        assert layer.weight.abs().max().item() <= b
        assert torch.all(layer.bias == 0)
    w = net.linears[1].weight
    assert w.var().item() == pytest.approx(6 / 64 / 3, rel=0.14)
    with pytest.raises(ValueError, match="activation must be one of"):
        MLP((1, 1), "gelu", generator=torch.Generator())
    with pytest.raises(ValueError, match="layers must be"):
        MLP((1,), generator=torch.Generator())


def test_mlp_glorot_normal() -> None:
    """Keras's Glorot normal: a normal law truncated at two of its sigmas, with the variance
    2 / (fan_in + fan_out) after truncation. Oracle for the scale: scipy's truncated normal.

    The sample variance of the 1,024 weights of a 32 x 32 layer has relative standard deviation
    sqrt((kurtosis - 1) / 1024), the kurtosis taken from scipy's law (about 2.37, so 0.036);
    0.18 is 5 sigma.
    """
    law = truncnorm(-2, 2)
    net = MLP((2, 32, 32, 1), generator=torch.Generator().manual_seed(0), init="glorot_normal")
    for layer in net.linears:
        fan_out, fan_in = layer.weight.shape
        sigma = math.sqrt(2 / (fan_in + fan_out)) / law.std()
        assert layer.weight.abs().max().item() <= 2 * sigma
        assert torch.all(layer.bias == 0)
    kurtosis = float(law.stats(moments="k")) + 3
    spread = math.sqrt((kurtosis - 1) / 1024)
    assert net.linears[1].weight.var().item() == pytest.approx(2 / 64, rel=5 * spread)
    with pytest.raises(ValueError, match="init must be one of 'glorot_uniform', 'glorot_normal'"):
        MLP((1, 1), generator=torch.Generator(), init="he")


def test_quick_sizes_are_smaller_or_equal() -> None:
    for name in ("regression", "diffusion", "burgers", "deeponet"):
        quick, full = (get(name).defaults(s) for s in ("quick", "full"))
        assert quick.iterations <= full.iterations
        assert quick.adam_eps == full.adam_eps and quick.lr == full.lr
