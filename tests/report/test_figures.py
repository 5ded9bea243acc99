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


def test_figures_are_written_whole(tmp_path) -> None:
    """A failing save leaves the old figure in place and no temporary file behind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mperror.report.figures import save_figure

    path = tmp_path / "f.png"
    fig = plt.figure()
    save_figure(fig, path)
    before = path.read_bytes()
    assert before.startswith(b"\x89PNG")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    fig.savefig = broken
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, path)
    plt.close(fig)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]
