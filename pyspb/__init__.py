"""pyspb: photon blockade in a Kerr whispering-gallery resonator with backscattering and a nanotip.

Build a grid of model inputs (:class:`Device` or your own Dataset), :func:`solve` it for the
exact steady state of the truncated two-mode model, get labelled xarray results, and
:func:`save` them as NetCDF.  See SPEC.md for the model and the parameter mapping.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pyspb")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from . import analytic, paper
from .correlations import g2_tau
from .device import Device
from .grid import rate_grid
from .io import load, save
from .solve import solve

__all__ = ["__version__", "Device", "analytic", "g2_tau", "load", "paper", "plot", "rate_grid", "save", "solve"]


def __getattr__(name: str):
    # pyspb.plot imports matplotlib: loaded on first use, not by ``import pyspb``
    if name == "plot":
        import importlib

        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module 'pyspb' has no attribute {name!r}")
