"""Draw the paper's panels from the Datasets of :mod:`pyspb.paper` (matplotlib).

One function per panel, named as in :mod:`pyspb.paper`; each takes the panel's Dataset and
an optional matplotlib ``ax`` (two Axes, top and bottom, for the two-row panels ``fig2a``
and ``fig2b``) and returns the :class:`matplotlib.figure.Figure`.  Colours follow the
paper: ideal cavity grey, without tip blue, with tip red; numerical results are curves,
analytic (weak-drive) results markers.  :func:`plot_panel` dispatches by panel name;
:func:`correlation_map` draws any g^(n) over two dims (e.g. a tip scan) on a log colour scale.

``import pyspb`` does not import this module, nor matplotlib; choose a backend
(``matplotlib.use("Agg")``) before plotting if no display is available.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from . import paper

__all__ = [
    "PLOTS",
    "axis_label",
    "correlation_map",
    "plot_panel",
    "fig1b",
    "fig1c",
    "fig2a",
    "fig2b",
    "fig3b",
    "fig3c",
    "fig3d",
    "fig4a",
    "fig4b",
]

#: colours of the three cavities (the paper's Fig. 1)
CASE_COLORS = {"ideal": "0.45", "without tip": "tab:blue", "with tip": "tab:red"}
#: colours and markers of chi / gamma in Fig. 2
CHI_STYLES = {0.1: ("tab:blue", "s"), 0.5: ("tab:green", "^"), 3.0: ("tab:red", "o")}
#: styles of the curves of Fig. 2(b) by phi (um); 0.33 lies on 0.21: crosses on the dashed line
FIG2B_STYLES: dict[float, dict[str, Any]] = {
    0.27: {"color": "tab:red", "ls": "-"},
    0.21: {"color": "0.35", "ls": "--"},
    0.33: {"color": "tab:purple", "ls": "none", "marker": "x", "ms": 5, "mew": 1.2},
}
#: smallest font size of any text in a figure (points), insets included
MIN_FONT_SIZE = 8
#: markers of the analytic results drawn on top of the numerical curves
MARKER_COUNT = 16

TAU_LABEL = r"$\tau$ ($\mu$s)"
R_LABEL = r"$r$ ($\mu$m)"
PHI_LABEL = r"$\phi$ ($\mu$m)"
G2_LABEL = r"$g^{(2)}_{\rm cw}(0)$"
N_LABEL = r"$N_{\rm cw}$"


def _axes(ax, rows: int = 1, figsize: tuple[float, float] = (5.0, 3.8)):
    """``(figure, [axes...])``: new ones if ``ax`` is None, else the given ones checked."""
    if ax is None:
        import matplotlib.pyplot as plt

        figure, grid = plt.subplots(rows, 1, figsize=figsize, sharex=True, squeeze=False, layout="constrained")
        return figure, list(grid[:, 0])
    axes = list(ax) if isinstance(ax, (Sequence, np.ndarray)) else [ax]
    if len(axes) != rows:
        raise ValueError(
            f"this panel needs {rows} Axes ({'top, bottom' if rows == 2 else 'one'}), got {len(axes)}; "
            "pass ax=None to create them"
        )
    for item in axes:
        if not hasattr(item, "get_figure"):
            raise TypeError(f"ax must be matplotlib Axes, got {type(item).__name__}")
    return axes[0].get_figure(), axes


def _require(ds: xr.Dataset, panel: str, names: Sequence[str]) -> None:
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"{panel}: expected the xarray.Dataset of pyspb.paper.{panel}, got {type(ds).__name__}")
    missing = [name for name in names if name not in ds.variables]
    if missing:
        raise ValueError(f"{panel}: the Dataset lacks {', '.join(missing)}; pass the output of pyspb.paper.{panel}()")


def _every(values: np.ndarray, count: int = MARKER_COUNT) -> slice:
    """A slice picking about ``count`` evenly spaced points (analytic markers)."""
    return slice(None, None, max(1, int(np.ceil(len(values) / count))))


def _quick_note(ax, ds: xr.Dataset) -> None:
    if ds.attrs.get("quick"):
        ax.text(
            0.99, 0.01, "quick", transform=ax.transAxes, ha="right", va="bottom", fontsize=MIN_FONT_SIZE, color="0.5"
        )


def fig1b(ds: xr.Dataset, ax=None):
    """Fig. 1(b): g2_cw(tau) versus tau (us), one curve per cavity, log scale.

    Parameters
    ----------
    ds : xarray.Dataset
        The output of :func:`pyspb.paper.fig1b`.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.figure.Figure
    """
    _require(ds, "fig1b", ("g2_cw_tau", "tau", "case"))
    figure, (axis,) = _axes(ax)
    for case in ds["case"].values:
        curve = ds["g2_cw_tau"].sel(case=case)
        axis.plot(
            ds["tau"], curve, color=CASE_COLORS.get(str(case)), label=f"{case}: $g^{{(2)}}(0)$ = {float(curve[0]):.3g}"
        )
    axis.axhline(1.0, color="0.7", lw=0.8, ls=":")
    axis.set_yscale("log")
    axis.set_xlabel(TAU_LABEL)
    axis.set_ylabel(r"$g^{(2)}_{\rm cw}(\tau)$")
    axis.set_xlim(float(ds["tau"].min()), float(ds["tau"].max()))
    axis.legend(fontsize=8, loc="lower right")
    axis.set_title("(b)", loc="left")
    _quick_note(axis, ds)
    return figure


def fig1c(ds: xr.Dataset, ax=None):
    """Fig. 1(c): N_cw versus Delta / gamma1, one curve per cavity.

    Parameters
    ----------
    ds : xarray.Dataset
        The output of :func:`pyspb.paper.fig1c`.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    _require(ds, "fig1c", ("N_cw", "Delta_over_gamma1", "case"))
    figure, (axis,) = _axes(ax)
    for case in ds["case"].values:
        axis.plot(ds["Delta_over_gamma1"], ds["N_cw"].sel(case=case), color=CASE_COLORS.get(str(case)), label=str(case))
    axis.set_xlabel(r"$\Delta/\gamma_1$")
    axis.set_ylabel(N_LABEL)
    axis.set_xlim(float(ds["Delta_over_gamma1"].min()), float(ds["Delta_over_gamma1"].max()))
    axis.set_ylim(bottom=0)
    axis.legend(fontsize=8)
    axis.set_title("(c)", loc="left")
    _quick_note(axis, ds)
    return figure


def _chi_style(ratio: float) -> tuple[str | None, str | None]:
    for value, style in CHI_STYLES.items():
        if np.isclose(ratio, value):
            return style
    return None, None


def fig2a(ds: xr.Dataset, ax=None):
    """Fig. 2(a): g2_cw(0) (top, log) and N_cw (bottom, log) versus phi, per chi / gamma.

    Vertical dashed lines: phi = 0.27 um (red, J = 0) and 0.21, 0.33 um (grey, |J| = gamma).

    Parameters
    ----------
    ds : xarray.Dataset
        The output of :func:`pyspb.paper.fig2a`.
    ax : sequence of two matplotlib Axes, optional
        Top (g2) and bottom (N_cw).

    Returns
    -------
    matplotlib.figure.Figure
    """
    _require(ds, "fig2a", ("g2_cw", "N_cw", "phi", "chi_over_gamma"))
    figure, (top, bottom) = _axes(ax, rows=2, figsize=(5.0, 5.5))
    for ratio in ds["chi_over_gamma"].values:
        color, _ = _chi_style(float(ratio))
        label = rf"$\chi/\gamma$ = {float(ratio):g}"
        top.plot(ds["phi"], ds["g2_cw"].sel(chi_over_gamma=ratio), color=color, label=label)
        bottom.plot(ds["phi"], ds["N_cw"].sel(chi_over_gamma=ratio), color=color, label=label)
    for axis in (top, bottom):
        axis.set_yscale("log")
        axis.axvline(0.27, color="tab:red", ls="--", lw=0.8)
        for phi in (0.21, 0.33):
            axis.axvline(phi, color="0.5", ls="--", lw=0.8)
        axis.set_xlim(float(ds["phi"].min()), float(ds["phi"].max()))
    top.axhline(1.0, color="0.7", lw=0.8, ls=":")
    top.set_ylabel(G2_LABEL)
    bottom.set_ylabel(N_LABEL)
    bottom.set_xlabel(PHI_LABEL)
    top.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    top.set_title("(a)", loc="left")
    _quick_note(bottom, ds)
    return figure


def fig2b(ds: xr.Dataset, ax=None):
    """Fig. 2(b): g2_cw(0) (top) and N_cw (bottom) versus chi / gamma at phi = 0.27, 0.21, 0.33 um.

    Markers: chi / gamma = 0.1 (blue squares) and 3 (red circles) at phi = 0.27 um, 0.5
    (green triangles) at phi = 0.21 and 0.33 um, as in the paper's caption.  The curves of
    phi = 0.21 and 0.33 um nearly coincide (mirror images about the J = 0 point): 0.21 um is
    dashed, 0.33 um is drawn as crosses on top of it.

    Parameters
    ----------
    ds : xarray.Dataset
        The output of :func:`pyspb.paper.fig2b`.
    ax : sequence of two matplotlib Axes, optional
        Top (g2) and bottom (N_cw).

    Returns
    -------
    matplotlib.figure.Figure
    """
    _require(ds, "fig2b", ("g2_cw", "N_cw", "phi", "chi_over_gamma"))
    figure, (top, bottom) = _axes(ax, rows=2, figsize=(5.0, 5.5))
    x = ds["chi_over_gamma"]
    pick = _every(x.values, 24)
    for phi in ds["phi"].values:
        style = next((s for p, s in FIG2B_STYLES.items() if np.isclose(phi, p)), {"color": None, "ls": "-"})
        label = rf"$\phi$ = {float(phi):g} $\mu$m"
        if np.isclose(phi, 0.33):
            label += " (on the 0.21 curve)"
        for axis, name in ((top, "g2_cw"), (bottom, "N_cw")):
            axis.plot(x, ds[name].sel(phi=phi), label=label, markevery=pick, **style)
    marks = ((0.1, (0.27,)), (3.0, (0.27,)), (0.5, (0.21, 0.33)))
    for ratio, phis in marks:
        color, marker = CHI_STYLES[ratio]
        for phi in phis:
            near_phi = ds["phi"].values[np.isclose(ds["phi"].values, phi)]
            near_x = x.values[np.isclose(x.values, ratio)]
            if near_phi.size == 0 or near_x.size == 0:
                continue
            point = ds.sel(phi=near_phi[0], chi_over_gamma=near_x[0])
            for axis, name in ((top, "g2_cw"), (bottom, "N_cw")):
                axis.plot(
                    near_x[0], float(point[name]), marker=marker, color=color, ls="none", ms=7, mfc="none", mew=1.5
                )
    for axis in (top, bottom):
        axis.set_xscale("log")
        axis.axvline(1.0, color="0.7", lw=0.8, ls=":")
        axis.set_xlim(float(x.min()), float(x.max()))
    top.set_yscale("log")
    top.axhline(1.0, color="0.7", lw=0.8, ls=":")
    top.set_ylabel(G2_LABEL)
    bottom.set_ylabel(N_LABEL)
    bottom.set_xlabel(r"$\chi/\gamma$")
    top.legend(fontsize=8, loc="lower left")
    top.set_title("(b)", loc="left")
    _quick_note(bottom, ds)
    return figure


def fig3b(ds: xr.Dataset, ax=None):
    """Fig. 3(b): map of |J|^2 over (phi, r) (log colour scale), inset |J| / gamma versus phi.

    Crosses mark the J = 0 positions; the inset's dashed line is |J| = gamma.

    Parameters
    ----------
    ds : xarray.Dataset
        The output of :func:`pyspb.paper.fig3b`.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import LogNorm

    _require(ds, "fig3b", ("J_abs_sq", "J_abs_over_gamma", "r", "phi"))
    figure, (axis,) = _axes(ax, figsize=(6.0, 4.6))
    values = ds["J_abs_sq"].transpose("r", "phi")
    positive = values.values[values.values > 0]
    norm = LogNorm(vmin=max(float(positive.min()), float(positive.max()) * 1e-8), vmax=float(positive.max()))
    mesh = axis.pcolormesh(ds["phi"], ds["r"], values.clip(min=norm.vmin), norm=norm, shading="nearest", cmap="viridis")
    colorbar = figure.colorbar(mesh, ax=axis)
    colorbar.set_label(r"$|J|^2$ ($10^{12}$ s$^{-2}$)")
    if "phi_cancel" in ds and "r_cancel" in ds:
        axis.plot(
            ds["phi_cancel"], np.full(ds["phi_cancel"].shape, float(ds["r_cancel"])), "wx", ms=8, mew=2, label="J = 0"
        )
    axis.set_xlabel(PHI_LABEL)
    axis.set_ylabel(R_LABEL)
    axis.set_title("(b)", loc="left")
    inset = axis.inset_axes((0.47, 0.5, 0.5, 0.46))
    inset.plot(ds["phi"], ds["J_abs_over_gamma"], color="k", lw=1)
    inset.axhline(1.0, color="tab:green", ls="--", lw=0.8)
    inset.set_facecolor("white")
    inset.set_xlabel(PHI_LABEL, fontsize=MIN_FONT_SIZE + 1, labelpad=1)
    inset.set_ylabel(r"$|J|/\gamma$", fontsize=MIN_FONT_SIZE + 1, labelpad=1)
    inset.tick_params(labelsize=MIN_FONT_SIZE)
    inset_r = ds.attrs.get("inset_r", ds.attrs.get("device_r", 0.35))
    inset.set_title(f"r = {inset_r:g} $\\mu$m", fontsize=MIN_FONT_SIZE + 1, pad=2)
    _quick_note(axis, ds)
    return figure


def fig3c(ds: xr.Dataset, ax=None):
    """Fig. 3(c): P01_ccw and P10_cw versus phi (log scale); curves exact, markers Eq. (6).

    Parameters
    ----------
    ds : xarray.Dataset
        The output of :func:`pyspb.paper.fig3c`.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    _require(ds, "fig3c", ("P10_cw_numerical", "P01_ccw_numerical", "P10_cw", "P01_ccw", "phi"))
    figure, (axis,) = _axes(ax)
    phi = ds["phi"].values
    pick = _every(phi)
    axis.plot(phi, ds["P01_ccw_numerical"], color="tab:blue", label=r"$P_{01}^{\rm ccw}$")
    axis.plot(phi, ds["P10_cw_numerical"], color="tab:red", label=r"$P_{10}^{\rm cw}$")
    axis.plot(phi[pick], ds["P01_ccw"].values[pick], "s", color="tab:blue", mfc="none", ms=5, label="Eq. (6)")
    axis.plot(phi[pick], ds["P10_cw"].values[pick], "o", color="tab:red", mfc="none", ms=5, label="Eq. (6)")
    for value in (0.27, 0.82):
        axis.axvline(value, color="0.6", ls="--", lw=0.8)
    axis.set_yscale("log")
    axis.set_xlabel(PHI_LABEL)
    axis.set_ylabel("probability")
    axis.set_xlim(phi.min(), phi.max())
    axis.legend(fontsize=8, ncol=2, loc="lower center")
    axis.set_title("(c)", loc="left")
    _quick_note(axis, ds)
    return figure


def fig3d(ds: xr.Dataset, ax=None):
    """Fig. 3(d): g2_cw(0) versus r (log scale), one colour per phi; curves exact, markers Eq. (7).

    Parameters
    ----------
    ds : xarray.Dataset
        The output of :func:`pyspb.paper.fig3d`.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    _require(ds, "fig3d", ("g2_cw", "g2_cw_weak", "r", "phi"))
    figure, (axis,) = _axes(ax)
    r = ds["r"].values
    pick = _every(r, 20)
    colors = ["tab:green", "tab:red", "tab:purple", "tab:blue", "tab:orange", "tab:brown"]
    for index, phi in enumerate(ds["phi"].values):
        color = colors[index % len(colors)]
        axis.plot(r, ds["g2_cw"].sel(phi=phi), color=color, label=rf"$\phi$ = {float(phi):g} $\mu$m")
        axis.plot(r[pick], ds["g2_cw_weak"].sel(phi=phi).values[pick], "o", color=color, mfc="none", ms=4)
    axis.plot([], [], "o", color="k", mfc="none", ms=4, label="Eq. (7)")
    axis.axhline(1.0, color="0.7", lw=0.8, ls=":")
    axis.set_yscale("log")
    axis.set_xlabel(R_LABEL)
    axis.set_ylabel(G2_LABEL)
    axis.set_xlim(r.min(), r.max())
    axis.legend(fontsize=8)
    axis.set_title("(d)", loc="left")
    _quick_note(axis, ds)
    return figure


def fig4a(ds: xr.Dataset, ax=None):
    """Fig. 4(a): map of the efficiency R over (phi, r); the cross marks its maximum.

    Parameters
    ----------
    ds : xarray.Dataset
        The output of :func:`pyspb.paper.fig4a`.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    _require(ds, "fig4a", ("R", "r", "phi"))
    figure, (axis,) = _axes(ax, figsize=(5.5, 4.2))
    R = ds["R"].transpose("r", "phi")
    mesh = axis.pcolormesh(ds["phi"], ds["r"], R, vmin=0.0, vmax=1.0, shading="nearest", cmap="magma")
    colorbar = figure.colorbar(mesh, ax=axis)
    colorbar.set_label(r"$\mathcal{R}$")
    best = R.where(R == R.max(), drop=True)
    if best.size:
        r_best, phi_best = float(best["r"][0]), float(best["phi"][0])
        axis.plot(phi_best, r_best, "c+", ms=10, mew=2, label=rf"max $\mathcal{{R}}$ = {100 * float(R.max()):.1f} %")
        axis.legend(fontsize=8, loc="upper right")
    axis.set_xlabel(PHI_LABEL)
    axis.set_ylabel(R_LABEL)
    axis.set_title("(a)", loc="left")
    _quick_note(axis, ds)
    return figure


def fig4b(ds: xr.Dataset, ax=None):
    """Fig. 4(b): R versus J0 / gamma1 with (red) and without (blue) the tip.

    Curves: exact steady state; markers: weak-drive g2 (Eq. 7) in Eq. (8).

    Parameters
    ----------
    ds : xarray.Dataset
        The output of :func:`pyspb.paper.fig4b`.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    _require(ds, "fig4b", ("R", "R_weak", "J0_over_gamma1", "case"))
    figure, (axis,) = _axes(ax)
    x = ds["J0_over_gamma1"].values
    pick = _every(x, 12)
    styles = {"with tip": ("tab:red", "o"), "without tip": ("tab:blue", "s")}
    for case in ds["case"].values:
        color, marker = styles.get(str(case), (None, "o"))
        axis.plot(x, ds["R"].sel(case=case), color=color, label=str(case))
        axis.plot(x[pick], ds["R_weak"].sel(case=case).values[pick], marker, color=color, mfc="none", ms=6)
    axis.plot([], [], "o", color="k", mfc="none", label="analytic (Eq. 7)")
    axis.set_xlabel(r"$J_0/\gamma_1$")
    axis.set_ylabel(r"$\mathcal{R}$")
    axis.set_xlim(x.min(), x.max())
    axis.set_ylim(-0.05, 1.05)
    axis.legend(fontsize=8, loc="center right")
    axis.set_title("(b)", loc="left")
    _quick_note(axis, ds)
    return figure


#: short axis labels of coordinates (symbol as in the paper); units come from the attrs
SYMBOLS = {
    "r": r"$r$",
    "phi": r"$\phi$",
    "Delta": r"$\Delta$",
    "Delta_over_gamma1": r"$\Delta/\gamma_1$",
    "chi": r"$\chi$",
    "chi_over_gamma": r"$\chi/\gamma$",
    "xi": r"$\xi$",
    "gamma": r"$\gamma$",
    "J0": r"$J_0$",
    "J0_over_gamma1": r"$J_0/\gamma_1$",
    "Pin": r"$P_{\rm in}$",
    "Q": r"$Q$",
    "tau": r"$\tau$",
}
#: units as typeset on axes
UNIT_TEXT = {"um": r"$\mu$m", "1e6 s-1": r"$10^6$ s$^{-1}$", "1e-6 s": r"$\mu$s", "1e12 s-2": r"$10^{12}$ s$^{-2}$"}


def axis_label(array: xr.DataArray, name: Hashable | None = None) -> str:
    r"""A short axis label: the paper's symbol (or the name) and the units in parentheses.

    Correlations ``g2_cw``, ``g3_ccw``, ... become :math:`g^{(2)}_{\rm cw}(0)`; dimensionless
    quantities (units "1") get no unit.
    """
    name = str(array.name if name is None else name)
    parts = name.split("_")
    if len(parts) == 2 and parts[0] in ("g2", "g3", "g4") and parts[1] in ("cw", "ccw"):
        symbol = rf"$g^{{({parts[0][1]})}}_{{\rm {parts[1]}}}(0)$"
    else:
        symbol = SYMBOLS.get(name, name)
    units = str(array.attrs.get("units", "1"))
    return symbol if units == "1" else f"{symbol} ({UNIT_TEXT.get(units, units)})"


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
    figure, (axis,) = _axes(ax, figsize=(5.5, 4.0))
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


#: panel name -> plotting function: the function of this module named as each panel of
#: :data:`pyspb.paper.FIGURES` (a panel without one fails here, at import)
PLOTS = {name: globals()[name] for name in paper.FIGURES}


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
