"""Time correlations and emission spectra (not tied to a panel of the paper)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._style import axes, axis_label
from .maps import correlation_map


def g2_tau_map(g2: xr.DataArray, ax=None, *, log: bool = True):
    """Map of g2(tau) over the delay (x axis) and one other dim, log colour scale centred on 1.

    Parameters
    ----------
    g2 : xarray.DataArray
        ``g2_cw_tau``, ``g2_ccw_tau`` or ``g2_cross_tau`` of :func:`pyspb.g2_tau` over ``tau``
        and exactly one other dim (select the others first, e.g. ``.sel(r=0.35)``).
    ax : matplotlib.axes.Axes, optional
    log : bool
        Log colour scale centred on g2 = 1 (blockade blue, bunching red); ``False``: linear.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(g2, xr.DataArray) or "tau" not in g2.dims or g2.ndim != 2:
        raise ValueError(
            "g2_tau_map needs a 2-d DataArray over tau and one other dim, e.g. "
            f"out.g2_cw_tau.sel(r=0.35); got {getattr(g2, 'dims', type(g2).__name__)}"
        )
    other = next(dim for dim in g2.dims if dim != "tau")
    return correlation_map(g2.transpose(other, "tau"), ax, log=log)


def spectrum_plot(spectra: xr.Dataset, ax=None, *, log: bool = True):
    """Emission spectra ``S_cw`` and ``S_ccw`` of :func:`pyspb.spectrum` against omega.

    One point (``spectra`` over ``omega`` only): both modes as curves.  One further dim: a map
    of ``S_cw`` over (that dim, omega).  ``log`` uses a log scale for S.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import LogNorm, Normalize

    if not isinstance(spectra, xr.Dataset) or "S_cw" not in spectra or "omega" not in spectra.S_cw.dims:
        raise ValueError("spectrum_plot needs the Dataset of pyspb.spectrum (S_cw, S_ccw over omega)")
    S_cw = spectra.S_cw
    if S_cw.ndim == 1:
        figure, (axis,) = axes(ax)
        for name, colour in (("S_cw", "tab:red"), ("S_ccw", "tab:blue")):
            axis.plot(spectra.omega, spectra[name], color=colour, label=name.replace("S_", ""))
        if log:
            axis.set_yscale("log")
        axis.set_xlabel(axis_label(spectra.omega, "omega"))
        axis.set_ylabel(axis_label(S_cw))
        axis.legend()
        return figure
    if S_cw.ndim != 2:
        raise ValueError(f"spectrum_plot draws one point or one dim besides omega; select the others, got {S_cw.dims}")
    other = next(dim for dim in S_cw.dims if dim != "omega")
    shown = S_cw.transpose(other, "omega")
    figure, (axis,) = axes(ax, figsize=(5.5, 4.0))
    positive = shown.values[np.isfinite(shown.values) & (shown.values > 0)]
    top = float(positive.max()) if positive.size else 1.0
    norm: Normalize = LogNorm(vmin=top * 1e-6, vmax=top) if log else Normalize(vmin=0.0, vmax=top)
    mesh = axis.pcolormesh(
        shown.omega, shown[other], shown.clip(min=top * 1e-6) if log else shown, norm=norm, shading="nearest"
    )
    figure.colorbar(mesh, ax=axis).set_label(axis_label(S_cw))
    axis.set_xlabel(axis_label(shown.omega, "omega"))
    axis.set_ylabel(axis_label(shown[other], other))
    return figure
