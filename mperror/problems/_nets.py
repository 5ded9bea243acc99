"""Fully connected networks with a seeded Glorot-uniform initialisation.

Layers are created with :func:`torch.nn.utils.skip_init` and initialised from an explicit
generator, so building a model never touches torch's global random state.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Sequence

import torch
from torch import nn

from mperror._checks import is_integer

__all__ = ["ACTIVATIONS", "MLP"]

#: Activation functions by name.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sin": torch.sin,
}


# The standard deviation of a standard normal truncated to [-2, 2].
_TRUNCATED_STD = 0.87962566103423978


def _glorot_normal(weight: torch.Tensor, generator: torch.Generator) -> None:
    fan_out, fan_in = weight.shape
    sigma = math.sqrt(2 / (fan_in + fan_out)) / _TRUNCATED_STD
    nn.init.trunc_normal_(weight, 0.0, sigma, -2 * sigma, 2 * sigma, generator=generator)


def _glorot_uniform(weight: torch.Tensor, generator: torch.Generator) -> None:
    nn.init.xavier_uniform_(weight, generator=generator)


_INITS: dict[str, Callable[[torch.Tensor, torch.Generator], None]] = {
    "glorot_uniform": _glorot_uniform,
    "glorot_normal": _glorot_normal,
}


class MLP(nn.Module):
    """A multilayer perceptron ``layers[0] -> layers[1] -> ... -> layers[-1]``.

    Biases start at zero and weights are Glorot (Xavier) with variance
    ``2 / (fan_in + fan_out)``, drawn as ``init`` says:

    - ``"glorot_uniform"``: ``U(-b, b)`` with ``b = sqrt(6 / (fan_in + fan_out))``.
    - ``"glorot_normal"``: Keras's Glorot normal, the initialiser of Hayford et al.'s (2024)
      DeepXDE Burgers run: a normal law truncated at two of its standard deviations, scaled so
      that the truncated law has the variance above (its parameter ``sigma`` is the target
      standard deviation divided by 0.87962566103423978, the standard deviation of a standard
      normal truncated to ``[-2, 2]``).

    The activation follows every hidden layer, and the output layer too when ``activate_last``
    is true (a DeepONet trunk).

    Args:
        layers: widths, input first; at least two entries.
        activation: a key of :data:`ACTIVATIONS`.
        generator: the generator the initial weights are drawn from.
        activate_last: whether the activation also follows the output layer.
        init: ``"glorot_uniform"`` (default) or ``"glorot_normal"``.
    """

    def __init__(
        self,
        layers: Sequence[int],
        activation: str = "tanh",
        *,
        generator: torch.Generator,
        activate_last: bool = False,
        init: str = "glorot_uniform",
    ) -> None:
        super().__init__()
        layers = tuple(layers)
        if len(layers) < 2 or not all(is_integer(w) and w >= 1 for w in layers):
            raise ValueError(f"layers must be at least two positive ints, got {layers!r}")
        layers = tuple(operator.index(w) for w in layers)
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}, got {activation!r}"
            )
        if init not in _INITS:
            raise ValueError(f"init must be one of {', '.join(map(repr, _INITS))}, got {init!r}")
        self.layers = layers
        self.activation = activation
        self.activate_last = activate_last
        linears = [
            nn.utils.skip_init(nn.Linear, n_in, n_out, dtype=torch.float32)
            for n_in, n_out in itertools.pairwise(layers)
        ]
        with torch.no_grad():
            for linear in linears:
                _INITS[init](linear.weight, generator)
                nn.init.zeros_(linear.bias)
        self.linears = nn.ModuleList(linears)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = ACTIVATIONS[self.activation]
        last = len(self.linears) - 1
        for i, linear in enumerate(self.linears):
            x = linear(x)
            if i < last or self.activate_last:
                x = act(x)
        return x

    def extra_repr(self) -> str:
        return f"layers={list(self.layers)}, activation={self.activation!r}"
