import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pyspb import paper, plot  # noqa: E402

LOG_Y = {"fig1b", "fig2a", "fig2b", "fig3c", "fig3d"}
LOG_X = {"fig2b"}
LEGEND = {"fig1b", "fig1c", "fig2a", "fig2b", "fig3c", "fig3d", "fig4b"}


@pytest.fixture(scope="module")
def quick():
    return {name: function(quick=True) for name, function in paper.FIGURES.items()}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _data_axes(figure):
    """The panel's own Axes, not colour bars (insets are child Axes, not listed)."""
    return [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]


def test_plots_cover_every_panel():
    assert list(plot.PLOTS) == list(paper.FIGURES)


@pytest.mark.parametrize("name", list(paper.FIGURES))
def test_panel_figure_has_labelled_axes(quick, name):
    figure = plot.plot_panel(name, quick[name])
    assert isinstance(figure, Figure)
    axes = _data_axes(figure)
    assert axes
    for ax in axes:
        assert ax.get_ylabel(), f"{name}: missing y label"
        assert ax.lines or ax.collections
    assert axes[-1].get_xlabel(), f"{name}: missing x label"
    if name in LOG_Y:
        assert all(ax.get_yscale() == "log" for ax in axes[:1])
    if name in LOG_X:
        assert axes[0].get_xscale() == "log"
    if name in LEGEND:
        assert any(ax.get_legend() is not None for ax in axes)
    figure.canvas.draw()  # renders without error


def test_units_in_axis_labels(quick):
    assert "$\\mu$s" in _data_axes(plot.fig1b(quick["fig1b"]))[0].get_xlabel()
    assert "$\\mu$m" in _data_axes(plot.fig3d(quick["fig3d"]))[0].get_xlabel()
    figure = plot.fig3b(quick["fig3b"])
    colorbar = [ax for ax in figure.axes if ax.get_label() == "<colorbar>"][0]
    assert "s$^{-2}$" in colorbar.get_ylabel()
    inset = _data_axes(figure)[0].child_axes
    assert len(inset) == 1 and "gamma" in inset[0].get_ylabel() and inset[0].lines


def test_fig2_markers_follow_the_caption(quick):
    figure = plot.fig2b(quick["fig2b"])
    top = _data_axes(figure)[0]
    markers = {line.get_marker() for line in top.lines if line.get_linestyle() == "None"}
    assert markers == {"s", "o", "^"}


def test_given_axes_are_used(quick):
    figure, ax = plt.subplots()
    assert plot.fig4b(quick["fig4b"], ax=ax) is figure
    assert ax.get_xlabel() == r"$J_0/\gamma_1$"
    figure, axes = plt.subplots(2, 1)
    assert plot.fig2a(quick["fig2a"], ax=axes) is figure


def test_wrong_axes_or_data_are_refused(quick):
    figure, ax = plt.subplots()
    with pytest.raises(ValueError, match="needs 2 Axes"):
        plot.fig2a(quick["fig2a"], ax=ax)
    with pytest.raises(ValueError, match="lacks"):
        plot.fig4a(quick["fig1b"])
    with pytest.raises(TypeError):
        plot.fig1b("fig1b.nc")
    with pytest.raises(ValueError, match="unknown panel"):
        plot.plot_panel("fig9z", quick["fig1b"])


def test_importing_pyspb_does_not_import_matplotlib():
    code = "import sys, pyspb, pyspb.paper, pyspb.cli; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_plot_is_reachable_as_an_attribute_of_the_package():
    import importlib

    import pyspb

    assert pyspb.plot is importlib.import_module("pyspb.plot")
    with pytest.raises(AttributeError, match="no attribute 'plots'"):
        pyspb.plots  # noqa: B018
