"""What the figures draw, checked on the drawn data rather than on pixels."""

from __future__ import annotations

import numpy as np
import pytest

from mperror.report.figures import _running_mean


@pytest.mark.parametrize("width", [1, 4, 7])
def test_running_mean_keeps_a_constant_to_the_ends(width: int) -> None:
    """Oracle: the mean of a constant is that constant, at the ends too (a zero-padded window
    drew a run frozen at 97% as falling to about 49% at its first and last steps)."""
    y = np.full(40, 0.97)
    np.testing.assert_allclose(_running_mean(y, width), y, rtol=1e-15)


def test_running_mean_is_the_window_mean() -> None:
    """Oracle: means of the centred windows by hand (numpy's 'same' centring: width 3 at the
    first step covers steps 0 and 1 only)."""
    y = np.array([0.0, 3.0, 6.0, 9.0])
    np.testing.assert_allclose(_running_mean(y, 3), [1.5, 3.0, 6.0, 7.5])
