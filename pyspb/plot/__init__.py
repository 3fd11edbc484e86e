"""Draw the paper's panels from the Datasets of :mod:`pyspb.paper` (matplotlib).

One function per panel, named as in :mod:`pyspb.paper`; each takes the panel's Dataset and
an optional matplotlib ``ax`` (two Axes, top and bottom, for the two-row panels ``fig2a``
and ``fig2b``) and returns the :class:`matplotlib.figure.Figure`.  Colours follow the
paper: ideal cavity grey, without tip blue, with tip red; numerical results are curves,
analytic (weak-drive) results markers.  :func:`plot_panel` dispatches by panel name;
:func:`correlation_map` draws any g^(n) over two dims (e.g. a tip scan) on a log colour scale;
:func:`g2_tau_map` draws g2(tau) over the delay and one other dim, :func:`spectrum_plot` the
emission spectra of :func:`pyspb.spectrum`.

``import pyspb`` does not import this module, nor matplotlib; choose a backend
(``matplotlib.use("Agg")``) before plotting if no display is available.
"""

from __future__ import annotations

import xarray as xr

from .. import paper
from . import panels
from ._style import MIN_FONT_SIZE, axis_label
from .correlations import g2_tau_map, spectrum_plot
from .maps import correlation_map
from .panels import fig1b, fig1c, fig2a, fig2b, fig3b, fig3c, fig3d, fig4a, fig4b  # noqa: F401

__all__ = [
    "MIN_FONT_SIZE",
    "PLOTS",
    "axis_label",
    "correlation_map",
    "g2_tau_map",
    "plot_panel",
    "spectrum_plot",
    *paper.FIGURES,
]

#: panel name -> drawing function: the function of :mod:`pyspb.plot.panels` named as each
#: panel of :data:`pyspb.paper.FIGURES` (a panel without one fails here, at import)
PLOTS = {name: getattr(panels, name) for name in paper.FIGURES}


def plot_panel(name: str, ds: xr.Dataset, ax=None):
    """Draw panel ``name`` ("fig1b", ..., "fig4b") from its Dataset; return the Figure.

    Raises
    ------
    ValueError
        For an unknown panel name.
    """
    if name not in PLOTS:
        raise ValueError(f"unknown panel {name!r}; known: {', '.join(PLOTS)}")
    return PLOTS[name](ds, ax=ax)
