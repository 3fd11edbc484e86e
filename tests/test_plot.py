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
def test_panel_figure_has_labelled_axes(quick_panels, name):
    figure = plot.plot_panel(name, quick_panels[name])
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


def test_units_in_axis_labels(quick_panels):
    assert "$\\mu$s" in _data_axes(plot.fig1b(quick_panels["fig1b"]))[0].get_xlabel()
    assert "$\\mu$m" in _data_axes(plot.fig3d(quick_panels["fig3d"]))[0].get_xlabel()
    figure = plot.fig3b(quick_panels["fig3b"])
    colorbar = [ax for ax in figure.axes if ax.get_label() == "<colorbar>"][0]
    assert "s$^{-2}$" in colorbar.get_ylabel()
    inset = _data_axes(figure)[0].child_axes
    assert len(inset) == 1 and "gamma" in inset[0].get_ylabel() and inset[0].lines


def test_fig2_markers_follow_the_caption(quick_panels):
    figure = plot.fig2b(quick_panels["fig2b"])
    top = _data_axes(figure)[0]
    caption_marks = [line for line in top.lines if line.get_linestyle() == "None" and line.get_label().startswith("_")]
    markers = {line.get_marker() for line in caption_marks}
    assert markers == {"s", "o", "^"}


def test_given_axes_are_used(quick_panels):
    figure, ax = plt.subplots()
    assert plot.fig4b(quick_panels["fig4b"], ax=ax) is figure
    assert ax.get_xlabel() == r"$J_0/\gamma_1$"
    figure, axes = plt.subplots(2, 1)
    assert plot.fig2a(quick_panels["fig2a"], ax=axes) is figure


def test_wrong_axes_or_data_are_refused(quick_panels):
    figure, ax = plt.subplots()
    with pytest.raises(ValueError, match="needs 2 Axes"):
        plot.fig2a(quick_panels["fig2a"], ax=ax)
    with pytest.raises(ValueError, match="lacks"):
        plot.fig4a(quick_panels["fig1b"])
    with pytest.raises(TypeError):
        plot.fig1b("fig1b.nc")
    with pytest.raises(ValueError, match="unknown panel"):
        plot.plot_panel("fig9z", quick_panels["fig1b"])


def test_importing_pyspb_does_not_import_matplotlib():
    code = "import sys, pyspb, pyspb.paper, pyspb.cli; from pyspb import *; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_every_public_submodule_is_reachable_from_the_package():
    code = "import pyspb; [pyspb.sweep.run_sweep, pyspb.checkpoint.to_dataset, pyspb.analytic.weak_drive]"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_plot_is_reachable_as_an_attribute_of_the_package():
    import importlib

    import pyspb

    assert pyspb.plot is importlib.import_module("pyspb.plot")
    with pytest.raises(AttributeError, match="no attribute 'plots'"):
        pyspb.plots  # noqa: B018


def _text_outside(figure):
    """How far (inches) the drawn texts and axes stick out of the figure on each side, if they do."""
    figure.canvas.draw()
    drawn = figure.get_tightbbox(figure.canvas.get_renderer())  # everything drawn, in inches
    page = figure.bbox_inches
    margins = {
        "left": page.x0 - drawn.x0,
        "bottom": page.y0 - drawn.y0,
        "right": drawn.x1 - page.x1,
        "top": drawn.y1 - page.y1,
    }
    return {side: round(out, 3) for side, out in margins.items() if out > 0.01}


@pytest.mark.parametrize("name", list(paper.FIGURES))
def test_panel_texts_fit_and_are_readable(quick_panels, name):
    figure = plot.plot_panel(name, quick_panels[name])
    assert not _text_outside(figure)
    # issue 9, item 14: the Fig. 3(b) inset was written in 6-7 pt
    sizes = {
        text.get_text(): text.get_fontsize()
        for text in figure.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))
        if text.get_text() and text.get_visible()
    }
    too_small = {text: size for text, size in sizes.items() if size < plot.MIN_FONT_SIZE}
    assert not too_small, f"{name}: text below {plot.MIN_FONT_SIZE} pt: {too_small}"


def test_fig2b_draws_the_033_curve_distinguishably(quick_panels):
    # issue 9, item 14: phi = 0.33 um lies on the 0.21 um curve; a dotted grey line on a
    # dashed grey one could not be seen
    top = _data_axes(plot.fig2b(quick_panels["fig2b"]))[0]
    by_phi = {phi: [line for line in top.lines if f"= {phi} $" in line.get_label()] for phi in ("0.21", "0.33")}
    (line_021,), (line_033,) = by_phi["0.21"], by_phi["0.33"]
    assert line_033.get_marker() not in ("None", "", None, " ")
    assert line_033.get_color() != line_021.get_color()
    assert "0.21" in line_033.get_label()  # the legend says where it is
    assert "0.33 um crosses" in quick_panels["fig2b"].attrs["caption"]


@pytest.fixture(scope="module")
def tip_scan():
    import numpy as np

    import pyspb

    inputs = pyspb.Device().rates(r=np.linspace(0.2, 0.6, 9), phi=np.linspace(0.0, 1.0, 21))
    return pyspb.solve(inputs, cutoff=5, progress=False)


def test_correlation_map_shows_the_blockade_on_a_log_scale_centred_on_1(tip_scan):
    # issue 9, item 14: the README's map (xarray's default plot) had a linear colour scale
    # dominated by g2 ~ 4000 near r = 0.2, and a cut-off x label
    from matplotlib.colors import LogNorm

    g2 = tip_scan.g2_cw
    assert float(g2.max()) > 1000 and float(g2.min()) < 0.05  # both extremes are in the map
    figure = plot.correlation_map(g2)
    mesh = _data_axes(figure)[0].collections[0]
    assert isinstance(mesh.norm, LogNorm)
    assert mesh.norm(1.0) == pytest.approx(0.5)  # g2 = 1 is the middle colour
    assert mesh.norm(float(g2.min())) < 0.3  # the blockade is far from it
    assert not _text_outside(figure)
    axis = _data_axes(figure)[0]
    assert axis.get_xlabel() == r"$\phi$ ($\mu$m)" and axis.get_ylabel() == r"$r$ ($\mu$m)"


def test_correlation_map_refuses_what_is_not_a_map(tip_scan):
    with pytest.raises(ValueError, match="2-d"):
        plot.correlation_map(tip_scan.g2_cw.isel(r=0))
