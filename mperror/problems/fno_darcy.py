"""A 2-D Fourier neural operator learning the Darcy-flow map ``a -> u`` (Li et al. 2021).

The data are :func:`~mperror.problems.darcy.darcy_dataset`: ``-div(a grad u) = 1`` on the unit
square, ``u = 0`` on the boundary, ``a`` equal to 12 or 3 by the sign of a Gaussian random
field, solved by finite differences on a fine grid in the package. The FNO sees the periodic
grid of :func:`~mperror.problems.darcy.periodic_subsample` (nodes ``i / n``, ``n`` a power of
two, so cuFFT's half FFT can run it natively); ``u`` vanishes on the whole boundary, so the
periodic extension of the target is continuous. The input channel is ``a`` mapped to
``{-1, +1}``; the loss is the mean over functions of the relative L2 error. The zero-shot
super-resolution check evaluates the trained model on the same test functions at 2x and 4x the
training resolution (all subsamples of one fine solve).

Precision works as in :mod:`~mperror.problems.fno_burgers`: the run's policy is normally
``fp32`` and ``RunConfig.model_precision`` sets the spectral convolutions' mode. The overflow
condition of an unnormalised 2-D FFT is ``N M <= fmt.max`` with ``N`` the number of grid
points, reported as ``fft_points`` (there is no separate stress test: the evaluation at 4x is
``16 N`` points).

This problem is not in ``mperror verify``'s quick suite: with emulated half spectral
convolutions a quick training step costs about 10x a float32 one on a CPU (261 ms against 25 ms
on two AMD EPYC cores), minutes per run. Train it with ``mperror run fno-darcy``; the report
judges the ``fno-darcy.*`` claims (:data:`mperror.report.claims.OPTIONAL_CLAIMS`).

>>> FNODarcy().defaults("quick").iterations
300
"""

from __future__ import annotations

import functools

import torch

from mperror.models import FNO
from mperror.problems._base import (
    DATA_STREAM,
    MODEL_STREAM,
    TEST_STREAM,
    TrainDefaults,
    check_seed,
    check_size,
    generator,
)
from mperror.problems._fno import FNOInstance, FNOProblem
from mperror.problems.darcy import FIELD, darcy_dataset, periodic_subsample

__all__ = ["A_HIGH", "A_LOW", "TEST_SEED", "TEST_STREAM", "FNODarcy", "encode_permeability"]

#: The test functions are stream :data:`TEST_STREAM` of this seed, the same for every training
#: seed and apart from all of them: training functions are stream ``DATA_STREAM`` of the run's
#: seed, so no seed (this one included) trains on them.
TEST_SEED = 0
#: The two permeabilities (``a_high`` where the field is positive).
A_HIGH, A_LOW = 12.0, 3.0
# size -> (train functions, test functions, training points per side, fine nodes per side,
#          width, modes per side, layers)
_SIZES = {
    "quick": (32, 16, 16, 65, 12, 6, 4),
    "full": (1000, 200, 64, 257, 32, 12, 4),
}
_DEFAULTS = {
    "quick": TrainDefaults(lr=1e-3, iterations=300, adam_eps=1e-5, eval_every=25),
    "full": TrainDefaults(lr=1e-3, iterations=5000, adam_eps=1e-5, eval_every=100),
}


def encode_permeability(a: torch.Tensor) -> torch.Tensor:
    """The input channel: ``a`` mapped affinely from ``{A_LOW, A_HIGH}`` to ``{-1, +1}``."""
    return (a - (A_HIGH + A_LOW) / 2) / ((A_HIGH - A_LOW) / 2)


def _solve(size: str, n_samples: int, seed: int, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
    fine = _SIZES[size][3]
    return darcy_dataset(
        n_samples, fine, seed=seed, stream=stream, fine_resolution=fine, a_high=A_HIGH,
        a_low=A_LOW, dtype=torch.float64,
    )  # fmt: skip


def _channel(values: torch.Tensor, points: int) -> torch.Tensor:
    return periodic_subsample(values, points).unsqueeze(1)


# The solves dominate building (the full size: 1,200 sparse systems), so the data of the last
# two (size, seed) pairs stay in memory, on the CPU; every instance gets copies. The test
# functions are the same for every seed.
@functools.lru_cache(maxsize=2)
def _train_data(size: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training inputs and targets ``(n_train, 1, points, points)``, float32."""
    n_train, _, points, *_ = _SIZES[size]
    a, u = _solve(size, n_train, seed, DATA_STREAM)
    return _channel(encode_permeability(a), points).float(), _channel(u, points).float()


@functools.lru_cache(maxsize=2)
def _test_data(size: str) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Test inputs (float32) and targets (float64) at 1x, 2x and 4x the training points."""
    _, n_test, points, *_ = _SIZES[size]
    a, u = _solve(size, n_test, TEST_SEED, TEST_STREAM)
    return {
        n: (_channel(encode_permeability(a), n).float(), _channel(u, n))
        for n in (points, 2 * points, 4 * points)
    }


class FNODarcy(FNOProblem):
    """The 2-D Darcy operator ``a -> u`` learnt by an FNO.

    ``"quick"``: 32 training and 16 test functions at 16 x 16 points (test also at 32 x 32 and
    64 x 64), solved on 65 x 65 nodes, width 12, 6 x 6 modes, 4 Fourier layers, 300
    full-batch Adam steps at learning rate 1e-3. ``"full"``: 1,000 and 200 functions at
    64 x 64 (test at 128 and 256), solved on 257 x 257 nodes, width 32, 12 x 12 modes, 4
    layers, 5,000 steps at 1e-3 (Li et al.'s Darcy FNO width and modes; their data are on a
    421-node grid, ours on a power-of-two one; building it solves 1,200 sparse systems of
    65,025 unknowns, 0.36 s each on one AMD EPYC core). Training functions depend on the seed,
    test functions do not (:data:`TEST_SEED`). The data of the last two seeds and the test
    functions stay in memory, so the policies of a study solve once; each instance gets its own
    copies.

    Random streams (:func:`~mperror.problems._base.generator`): the initial weights are stream
    ``MODEL_STREAM`` (0) of the seed, the training functions stream ``DATA_STREAM`` (1), the
    test functions stream ``TEST_STREAM`` (2) of :data:`TEST_SEED`, which no training set
    draws from. Revision 2 (this one) introduced them; revision 1 drew the training functions
    from stream 0, the weights' own, and the test functions from stream 0 of seed
    ``2**31 - 1``, so that a run with that seed trained on its test set.
    """

    name = "fno-darcy"
    revision = 2
    _defaults = _DEFAULTS

    def build(
        self, size: str = "quick", *, seed: int = 0, device: str | torch.device = "cpu"
    ) -> FNOInstance:
        size = check_size(size)
        seed = check_seed(seed)
        n_train, n_test, points, fine, width, modes, layers = _SIZES[size]
        inputs, targets = (t.to(device, copy=True) for t in _train_data(size, seed))
        test = {
            n: (x.to(device, copy=True), y.to(device, copy=True))
            for n, (x, y) in _test_data(size).items()
        }
        resolutions = sorted(test)
        model = FNO(
            dim=2,
            width=width,
            modes=(modes, modes),
            layers=layers,
            generator=generator(seed, MODEL_STREAM),
        )
        config = {
            "problem": self.name,
            "size": size,
            "seed": seed,
            "operator": "a -> u for -div(a grad u) = 1 on (0, 1)^2, u = 0 on the boundary",
            "permeability": f"{A_HIGH} where a GRF is positive, {A_LOW} elsewhere",
            "grf": FIELD.to_dict(),
            "input": "a mapped affinely to {-1, +1}",
            "solver": "5-point finite differences, harmonic-mean faces, SuperLU (splu), float64",
            "fine_resolution": fine,
            "grid": "nodes i / n, 0 <= i < n, per side (periodic_subsample)",
            "resolution": points,
            "eval_resolutions": resolutions,
            "n_train_functions": n_train,
            "n_test_functions": n_test,
            "training_functions": f"stream {DATA_STREAM} of the seed",
            "test_functions": f"stream {TEST_STREAM} of seed {TEST_SEED}, for every seed",
            "initial_weights": f"stream {MODEL_STREAM} of the seed",
            "width": width,
            "modes": modes,
            "layers": layers,
            "loss": "mean over functions of the relative L2 error",
            "test_error": "the same, over the test functions at the training resolution",
        }
        return FNOInstance(
            name=self.name,
            size=size,
            model=model.to(device),
            defaults=_DEFAULTS[size],
            config=config,
            inputs=inputs,
            targets=targets,
            test=test,
        )
