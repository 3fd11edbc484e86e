"""The paper's figures, panel by panel, as labelled xarray Datasets.

One function per panel of Tang et al., *Achieving Robust Single-Photon Blockade with a Single
Nanotip* (``fig1b`` ... ``fig4b``, one module per figure: :mod:`pyspb.paper.fig1` ...).  Each
returns an :class:`xarray.Dataset` with ``units`` and ``long_name`` on every variable and
coordinate, and attrs recording the panel, its caption, ``cutoff``, ``quick`` (1 or 0, so that
it survives NetCDF), the backend and the pyspb version.  :mod:`pyspb.plot` draws them;
:func:`pyspb.figures.reproduce` writes one NetCDF file and one PNG per panel.  Nothing here
imports matplotlib.

Every panel that solves steady states takes

* ``quick`` -- coarse grids and ``cutoff = 5`` (seconds per panel, for tests and CI; cutoff
  4 would leave 2.5e-5 of population in the top Fock level at chi / gamma = 0.01 in Fig. 2);
  the default ``False`` gives the paper's resolution with ``cutoff = 6``;
* ``cutoff`` -- the largest photon number kept per mode (the populations of the top level,
  ``truncation_error``, are kept in the Dataset; a :class:`~pyspb.TruncationWarning` says,
  once per panel, when they exceed :data:`TRUNCATION_WARNING`);
* ``backend`` -- as for :func:`pyspb.solve`;
* ``device`` -- the :class:`pyspb.Device` (default: the paper's parameters);
* ``progress`` -- passed to :func:`pyspb.solve` (None: a bar for large grids only).

``fig3b`` solves nothing (|J| comes from :meth:`pyspb.Device.rates`) and takes only ``quick``
and ``device``; :func:`compute` calls any panel by name with the arguments it takes.  The
panels declare themselves (:func:`pyspb.paper._panel.panel`), which fills :data:`FIGURES`
and :data:`GROUPS`.  :func:`paper_table` (``pyspb table``) gives the paper's headline numbers.

Rates are in 1e6 s^-1, lengths in micrometres, delays in 1e-6 s.
"""

from __future__ import annotations

from ._panel import (
    FIGURES,
    FULL_CUTOFF,
    GROUPS,
    PAPER_PHI,
    PAPER_R,
    QUICK_CUTOFF,
    RATES_ONLY,
    TRUNCATION_WARNING,
    compute,
    panels,
)

# importing the figure modules declares their panels; __all__ lists every declared panel
from .fig1 import CASES, fig1b, fig1c  # noqa: F401
from .fig2 import FIG2_CHI_OVER_GAMMA, FIG2B_PHI, fig2a, fig2b  # noqa: F401
from .fig3 import FIG3D_PHI, fig3b, fig3c, fig3d  # noqa: F401
from .fig4 import fig4a, fig4b  # noqa: F401
from .table import format_table, paper_table

__all__ = [
    "CASES",
    "FIGURES",
    "FIG2_CHI_OVER_GAMMA",
    "FIG2B_PHI",
    "FIG3D_PHI",
    "FULL_CUTOFF",
    "GROUPS",
    "PAPER_PHI",
    "PAPER_R",
    "QUICK_CUTOFF",
    "RATES_ONLY",
    "TRUNCATION_WARNING",
    "compute",
    "format_table",
    "panels",
    "paper_table",
    *FIGURES,
]
