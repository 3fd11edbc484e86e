"""Files and pictures of the paper's panels: compute (:mod:`pyspb.paper`), save, draw (:mod:`pyspb.plot`).

This layer sits above both the computing layer and the drawing one: ``import pyspb`` and
``import pyspb.paper`` never import it (nor matplotlib).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import xarray as xr

from . import paper, plot
from .io import save

__all__ = ["reproduce", "write_panel"]


def write_panel(name: str, ds: xr.Dataset, out_dir: str | os.PathLike, dpi: int = 100) -> tuple[Path, Path]:
    """Save panel ``name``'s Dataset as ``<out_dir>/<name>.nc`` and draw it as ``<name>.png``.

    The NetCDF file is written atomically (:func:`pyspb.save`); the figure is closed after
    saving.  ``out_dir`` is created if missing.  Returns the two paths.
    """
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nc = save(ds, out_dir / f"{name}.nc")
    figure = plot.plot_panel(name, ds)
    png = out_dir / f"{name}.png"
    try:
        figure.savefig(png, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(figure)
    return nc, png


def reproduce(
    figures: str | Iterable[str] = "all",
    out_dir: str | os.PathLike = ".",
    quick: bool = False,
    cutoff: int | None = None,
    backend: str = "native",
    progress: bool = False,
    dpi: int = 100,
) -> dict[str, tuple[Path, Path]]:
    """Compute, save and plot the paper's panels: one NetCDF file and one PNG per panel.

    Parameters
    ----------
    figures : str or iterable of str
        "all", figures "fig1".."fig4" (all their panels) or panels "fig1b", ..., "fig4b".
    out_dir : path-like
        Directory for ``<panel>.nc`` and ``<panel>.png`` (created if missing).
    quick : bool
        Coarse grids and cutoff 5 (seconds per panel).
    cutoff : int, optional
        Largest photon number per mode (default 6, or 5 when ``quick``); unused by panels
        that solve no steady state (``fig3b``).
    backend : str
        Backend of :func:`pyspb.solve`.
    progress : bool
        Print one line per panel (name, time) to stderr and show :func:`pyspb.solve`'s
        progress bars for large grids.
    dpi : int
        Resolution of the PNGs (dots per inch).

    Returns
    -------
    dict
        Panel name -> (NetCDF path, PNG path).
    """
    selected = paper.panels(figures)
    written: dict[str, tuple[Path, Path]] = {}
    for name in selected:
        start = time.perf_counter()
        ds = paper.compute(name, quick=quick, cutoff=cutoff, backend=backend, progress=None if progress else False)
        nc, png = written[name] = write_panel(name, ds, out_dir, dpi=dpi)
        if progress:
            print(f"{name}: {time.perf_counter() - start:.1f} s -> {nc.name}, {png.name}", file=sys.stderr)
    return written
