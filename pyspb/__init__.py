"""pyspb: photon blockade in a Kerr whispering-gallery resonator with backscattering and a nanotip.

Build a grid of model inputs (:class:`Device` or your own Dataset), :func:`solve` it for the
exact steady state of the truncated two-mode model, get labelled xarray results, and
:func:`save` them as NetCDF.  See ``docs/model.md`` for the model and the parameter mapping.

Submodules: :mod:`~pyspb.analytic` (the paper's weak-drive formulas), :mod:`~pyspb.paper` (its
figures' data), :mod:`~pyspb.sweep` (TOML sweep configurations), :mod:`~pyspb.checkpoint`;
:mod:`pyspb.plot` and :mod:`pyspb.figures` draw with matplotlib and are loaded on first use
(``import pyspb`` and ``from pyspb import *`` do not import matplotlib).
"""

from . import analytic, checkpoint, paper, sweep
from ._version import __version__
from .correlations import g2_tau
from .design import optimize_tip, tolerance
from .device import Device
from .fitting import fit
from .grid import rate_grid
from .io import load, save
from .observables import TruncationWarning
from .solve import solve
from .spectrum import spectrum

__all__ = [
    "__version__",
    "Device",
    "TruncationWarning",
    "analytic",
    "checkpoint",
    "fit",
    "g2_tau",
    "load",
    "optimize_tip",
    "paper",
    "rate_grid",
    "save",
    "solve",
    "spectrum",
    "sweep",
    "tolerance",
]


def __getattr__(name: str):
    # pyspb.plot and pyspb.figures import matplotlib: loaded on first use, not by ``import pyspb``
    if name in ("plot", "figures"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'pyspb' has no attribute {name!r}")
