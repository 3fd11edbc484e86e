"""The paper's panels, one drawing function per panel of :mod:`pyspb.paper` (same names)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._style import (
    CASE_COLORS,
    CHI_STYLES,
    FIG2B_STYLES,
    G2_LABEL,
    MIN_FONT_SIZE,
    N_LABEL,
    PHI_LABEL,
    R_LABEL,
    TAU_LABEL,
    axes,
    every,
    quick_note,
    require,
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
    require(ds, "fig1b", ("g2_cw_tau", "tau", "case"))
    figure, (axis,) = axes(ax)
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
    quick_note(axis, ds)
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
    require(ds, "fig1c", ("N_cw", "Delta_over_gamma1", "case"))
    figure, (axis,) = axes(ax)
    for case in ds["case"].values:
        axis.plot(ds["Delta_over_gamma1"], ds["N_cw"].sel(case=case), color=CASE_COLORS.get(str(case)), label=str(case))
    axis.set_xlabel(r"$\Delta/\gamma_1$")
    axis.set_ylabel(N_LABEL)
    axis.set_xlim(float(ds["Delta_over_gamma1"].min()), float(ds["Delta_over_gamma1"].max()))
    axis.set_ylim(bottom=0)
    axis.legend(fontsize=8)
    axis.set_title("(c)", loc="left")
    quick_note(axis, ds)
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
    require(ds, "fig2a", ("g2_cw", "N_cw", "phi", "chi_over_gamma"))
    figure, (top, bottom) = axes(ax, rows=2, figsize=(5.0, 5.5))
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
    quick_note(bottom, ds)
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
    require(ds, "fig2b", ("g2_cw", "N_cw", "phi", "chi_over_gamma"))
    figure, (top, bottom) = axes(ax, rows=2, figsize=(5.0, 5.5))
    x = ds["chi_over_gamma"]
    pick = every(x.values, 24)
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
    quick_note(bottom, ds)
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

    require(ds, "fig3b", ("J_abs_sq", "J_abs_over_gamma", "r", "phi"))
    figure, (axis,) = axes(ax, figsize=(6.0, 4.6))
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
    quick_note(axis, ds)
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
    require(ds, "fig3c", ("P10_cw_numerical", "P01_ccw_numerical", "P10_cw", "P01_ccw", "phi"))
    figure, (axis,) = axes(ax)
    phi = ds["phi"].values
    pick = every(phi)
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
    quick_note(axis, ds)
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
    require(ds, "fig3d", ("g2_cw", "g2_cw_weak", "r", "phi"))
    figure, (axis,) = axes(ax)
    r = ds["r"].values
    pick = every(r, 20)
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
    quick_note(axis, ds)
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
    require(ds, "fig4a", ("R", "r", "phi"))
    figure, (axis,) = axes(ax, figsize=(5.5, 4.2))
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
    quick_note(axis, ds)
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
    require(ds, "fig4b", ("R", "R_weak", "J0_over_gamma1", "case"))
    figure, (axis,) = axes(ax)
    x = ds["J0_over_gamma1"].values
    pick = every(x, 12)
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
    quick_note(axis, ds)
    return figure
