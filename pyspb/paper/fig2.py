"""Fig. 2: g2_cw(0) and N_cw versus phi (panel a) and versus chi / gamma (panel b)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._panel import PAPER_PHI, Run, bare, grid, model, panel

#: chi / gamma of Fig. 2 (the three curves of (a), the markers of (b))
FIG2_CHI_OVER_GAMMA = (0.1, 0.5, 3.0)

#: phi of the curves of Fig. 2(b) (um): the J = 0 point and the two |J| = gamma points
FIG2B_PHI = (0.21, 0.27, 0.33)


def with_chi_over_gamma(rates: xr.Dataset, ratios) -> xr.Dataset:
    """Model inputs with ``chi = ratio * gamma`` over a new dim ``chi_over_gamma``.

    The new ``chi`` carries no attrs (the product would keep gamma's ``long_name``):
    :func:`pyspb.attributes.annotate` labels it as the Kerr coefficient.
    """
    ratios = np.asarray(ratios, dtype=float)
    ratio = xr.DataArray(ratios, dims="chi_over_gamma", coords={"chi_over_gamma": ratios})
    return model(rates).assign(chi=bare(ratio * rates["gamma"]))


@panel
def fig2a(run: Run) -> tuple[xr.Dataset, str]:
    """Fig. 2(a): g2_cw(0) and N_cw versus phi at r = 0.35 um for chi / gamma = 0.1, 0.5, 3.

    chi / gamma is imposed by changing chi at fixed gamma (the loss rate of the device at
    r = 0.35 um): the inputs come from ``device.rates(phi=...)`` with ``chi`` replaced by
    ``chi_over_gamma * gamma``.

    Parameters
    ----------
    quick, cutoff, backend, device, progress
        As for :func:`pyspb.paper.fig1b`; ``quick`` uses 49 values of phi instead of 221.

    Returns
    -------
    xarray.Dataset
        ``g2_cw``, ``N_cw``, ``chi``, ``truncation_error`` over (``chi_over_gamma``, ``phi``),
        phi = 0..1.1 um plus the paper's points 0.21, 0.27, 0.33, 0.82 um.

    Notes
    -----
    The paper says N_cw is independent of chi.  That is exact only in the weak-drive limit
    (Eq. 6 has no chi): at the paper's Pin = 4 fW the exact N_cw changes by ~25 % between
    chi / gamma = 0.1 and 3 at the J = 0 point and by a factor 2.5 where |J| is largest.
    """
    phi = grid(0.0, 1.1, run.size(45, 221), PAPER_PHI)
    inputs = with_chi_over_gamma(run.device.rates(phi=phi), FIG2_CHI_OVER_GAMMA)
    out = run.solve(inputs)
    ds = out[["g2_cw", "N_cw", "truncation_error"]].assign(chi=inputs["chi"])
    caption = (
        f"g2_cw(0) and N_cw versus phi at r = {run.device.r} um for chi / gamma = 0.1, 0.5, 3 "
        "(chi changed at fixed gamma)"
    )
    return ds, caption


@panel
def fig2b(run: Run) -> tuple[xr.Dataset, str]:
    """Fig. 2(b): g2_cw(0) and N_cw versus chi / gamma at phi = 0.27 um and 0.21, 0.33 um.

    The x axis is chi / gamma: the caption contrasts chi / gamma = 0.1 (blue squares) and 3
    (red circles) at phi = 0.27 um, and 0.5 (green triangles) at phi = 0.21, 0.33 um, the
    vertical lines of panel (a); the text says "SPB can emerge with a specific strength of
    the nonlinearity, chi / gamma = 0.5".  So the panel is a sweep of chi / gamma (changed
    through chi at fixed gamma, r = 0.35 um) at those phi, with the three marked values of
    Fig. 2(a) included in the grid.  phi = 0.21 and 0.33 um are nearly mirror images about
    the J = 0 point (0.272 um) and give almost the same curves (:func:`pyspb.plot.fig2b`
    draws 0.33 um as crosses on the dashed 0.21 um curve).

    Parameters
    ----------
    quick, cutoff, backend, device, progress
        As for :func:`pyspb.paper.fig1b`; ``quick`` uses 15 values of chi / gamma instead of 63.

    Returns
    -------
    xarray.Dataset
        ``g2_cw``, ``N_cw``, ``chi``, ``truncation_error`` over (``phi``, ``chi_over_gamma``),
        chi / gamma = 0.01..10 (log-spaced) plus 0.1, 0.5, 3; phi = 0.21, 0.27, 0.33 um.

    Notes
    -----
    The blockade the paper reports at phi = 0.21, 0.33 um for chi / gamma = 0.5 is the
    weak-drive interference C20 = 0 (Eq. 5): the exact g2 there is ~0.84 at Pin = 4 fW and
    approaches Eq. (7)'s 0.015 only for a drive power ~1e-4 times smaller.
    """
    logspaced = np.logspace(-2, 1, run.size(13, 61))
    ratios = np.unique(np.round(np.concatenate([logspaced, FIG2_CHI_OVER_GAMMA]), 12))
    inputs = with_chi_over_gamma(run.device.rates(phi=list(FIG2B_PHI)), ratios)
    out = run.solve(inputs)
    ds = out[["g2_cw", "N_cw", "truncation_error"]].assign(chi=inputs["chi"]).transpose("phi", "chi_over_gamma")
    ds.attrs["markers"] = "chi_over_gamma 0.1 and 3 at phi 0.27 um; 0.5 at phi 0.21 and 0.33 um"
    caption = (
        f"g2_cw(0) and N_cw versus chi / gamma (chi changed at fixed gamma) at r = {run.device.r} um, "
        "phi = 0.27 um and phi = 0.21, 0.33 um; the curves of 0.21 and 0.33 um nearly coincide "
        "(0.21 um dashed, 0.33 um crosses)"
    )
    return ds, caption
