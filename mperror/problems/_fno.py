"""What the Fourier-neural-operator problems share: the relative-L2 loss, test errors at the
training resolution and at 2x and 4x (zero-shot super-resolution), and the hooks through which
the trainer sets and schedules the model's own precision (:mod:`mperror.models`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

import mperror.emulate
from mperror.models import FNO, PrecisionSchedule, parse_model_precision
from mperror.problems._base import ProblemInstance, TrainDefaults, check_size, param_dtype

if TYPE_CHECKING:
    from mperror.train.precision import Precision

__all__ = ["FNOInstance", "FNOProblem", "mean_relative_l2"]


def mean_relative_l2(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean over functions (the first axis) of ``||prediction - target|| / ||target||``."""
    diff = torch.linalg.vector_norm((prediction - target).flatten(1), dim=1)
    return (diff / torch.linalg.vector_norm(target.flatten(1), dim=1)).mean()


class FNOInstance(ProblemInstance):
    """Training inputs and targets ``(functions, 1, *grid)`` at the training resolution, and
    test pairs at 1x, 2x and 4x of it (``test``: resolution -> (inputs, float64 targets)).

    The loss is :func:`mean_relative_l2` in the model's dtype; test errors are computed in
    float64 from a prediction in the model's own dtype and precision mode.
    """

    model: FNO

    def __init__(
        self,
        *,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        test: dict[int, tuple[torch.Tensor, torch.Tensor]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.inputs, self.targets = inputs, targets
        self.test = test
        self.resolution = inputs.shape[-1]
        self.schedule: PrecisionSchedule | None = None

    def loss(self, model: nn.Module) -> torch.Tensor:
        dtype = param_dtype(model)
        return mean_relative_l2(model(self.inputs.to(dtype)), self.targets.to(dtype))

    def _error(self, model: nn.Module, resolution: int) -> float:
        inputs, targets = self.test[resolution]
        with torch.no_grad():
            prediction = model(inputs.to(param_dtype(model)))
        return mean_relative_l2(prediction.to(torch.float64), targets).item()

    def test_error(self, model: nn.Module) -> float:
        """Mean relative L2 error over the test functions at the training resolution."""
        return self._error(model, self.resolution)

    def set_model_precision(self, mode: str) -> None:
        """Parse ``mode`` (``MODE[-FMT][+tanh]`` or ``schedule...``) and set it on the model."""
        precision, schedule = parse_model_precision(mode)
        self.model.set_precision(precision)
        self.schedule = schedule

    def on_step(self, fraction: float) -> None:
        """A schedule's mode at ``fraction`` of training."""
        if self.schedule is not None:
            self.model.set_mode(self.schedule.mode_at(fraction))

    def final_metrics(self, model: nn.Module) -> dict[str, float]:
        """Test errors in the model's final mode at each evaluation resolution
        (``test_error_1x``, ``_2x``, ``_4x``), overflow events (``overflow_events`` in
        training, ``eval_overflow_events`` in those evaluations), the largest ``|v|`` an FFT
        saw (``spectral_input_max``), and the FFT sizes of the overflow condition
        ``N M <= fmt.max``: ``N`` is the number of grid points, ``fft_points`` in training and
        ``fft_points_max`` in the largest evaluation."""
        assert isinstance(model, FNO)
        metrics = {"overflow_events": float(model.overflow_events)}
        before = model.overflow_events
        try:
            for factor, resolution in zip((1, 2, 4), sorted(self.test), strict=True):
                metrics[f"test_error_{factor}x"] = self._error(model, resolution)
            metrics["eval_overflow_events"] = float(model.overflow_events - before)
        finally:  # the model's counter stays the training's
            model.overflow_events = before
        metrics["spectral_input_max"] = model.spectral_input_max
        metrics["fft_points"] = float(math.prod(self.inputs.shape[2:]))
        metrics["fft_points_max"] = float(math.prod(self.test[max(self.test)][0].shape[2:]))
        return metrics


class FNOProblem:
    """The problem-side share: model-precision validation and the training defaults."""

    name: str
    _defaults: dict[str, TrainDefaults]

    def check_policy(self, precision: Precision, device: torch.device) -> None:
        """ValueError for a mixed policy whose autocast (native or emulated) would hand the
        spectral convolutions half tensors on a CPU, where torch has no half FFT."""
        if device.type != "cpu" or precision.kind != "mixed":
            return
        half = precision.backend == "native" or (
            mperror.emulate.autocast(precision.fmt).cast_dtype in (torch.float16, torch.bfloat16)
        )
        if half:
            raise ValueError(
                f"policy {precision.name!r} on a CPU: autocast's layers hand the spectral "
                "convolutions half tensors, and CPU torch has no half FFT (CUDA autocast "
                "runs them in half); on a CPU, set the spectral precision with a model "
                "precision instead (fp32/half, fp32/mixed, fp32/schedule, ...)"
            )

    def check_model_precision(self, mode: str) -> None:
        """ValueError unless ``mode`` is a model precision (:func:`parse_model_precision`)."""
        parse_model_precision(mode)

    def defaults(self, size: str = "quick") -> TrainDefaults:
        """The training settings of ``size``, without building the problem."""
        return self._defaults[check_size(size)]
