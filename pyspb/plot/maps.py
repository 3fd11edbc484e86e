"""Maps of any result over two dims (not tied to a panel of the paper)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._style import axes, axis_label


def correlation_map(correlation: xr.DataArray, ax=None, *, log: bool = True, cmap: str = "RdBu_r"):
    """Map of a correlation g^(n)(0) over two dims, on a log colour scale centred on 1.

    Blockade (g < 1) is blue, bunching (g > 1) red, g = 1 white: the colour limits span as
    many decades below 1 as above, so neither a huge bunching peak nor a deep antibunching
    dip hides the other.  Axis labels are short (symbol and units) and fit in the figure.

    Parameters
    ----------
    correlation : xarray.DataArray
        A 2-d DataArray (e.g. ``pyspb.solve(...).g2_cw`` over (r, phi)); the last dim is
        the x axis.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    log : bool
        Log colour scale (default); ``False`` gives a linear one from 0.
    cmap : str
        A diverging matplotlib colour map.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import LogNorm, Normalize

    if not isinstance(correlation, xr.DataArray) or correlation.ndim != 2:
        raise ValueError(
            "correlation_map needs a 2-d xarray.DataArray, e.g. out.g2_cw over (r, phi); got "
            f"{getattr(correlation, 'dims', type(correlation).__name__)}; select the other dims first"
        )
    figure, (axis,) = axes(ax, figsize=(5.5, 4.0))
    y_dim, x_dim = correlation.dims
    values = correlation.values
    finite = values[np.isfinite(values) & (values > 0)]
    if log:
        decades = max(1.0, float(np.max(np.abs(np.log10(finite))))) if finite.size else 1.0
        norm: Normalize = LogNorm(vmin=10.0**-decades, vmax=10.0**decades)
        shown = correlation.clip(min=norm.vmin)
    else:
        norm = Normalize(vmin=0.0, vmax=float(finite.max()) if finite.size else 1.0)
        shown = correlation
    mesh = axis.pcolormesh(correlation[x_dim], correlation[y_dim], shown, norm=norm, shading="nearest", cmap=cmap)
    colorbar = figure.colorbar(mesh, ax=axis)
    colorbar.set_label(axis_label(correlation))
    axis.set_xlabel(axis_label(correlation[x_dim], x_dim))
    axis.set_ylabel(axis_label(correlation[y_dim], y_dim))
    return figure
