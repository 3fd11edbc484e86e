"""Fig. 3: the coupling |J| over the tip position (panel b), single-photon probabilities (c), g2 versus r (d)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..analytic import cancellation_positions, weak_drive
from ._panel import PAPER_PHI, PAPER_R, Run, bare, grid, model, panel, rates_panel

#: phi of the curves of Fig. 3(d) (um): |J| = gamma (0.21), J = 0 (0.27), in between (0.40)
#: and the largest |J| (0.545); the caption gives no values, these show the regimes
FIG3D_PHI = (0.21, 0.27, 0.40, 0.545)


@rates_panel
def fig3b(run: Run) -> tuple[xr.Dataset, str]:
    """Fig. 3(b): |J|^2 over (r, phi), and the inset |J| / gamma versus phi at r = 0.35 um.

    No steady state is solved: |J| and gamma come from :meth:`pyspb.Device.rates`, so this
    panel takes only ``quick`` and ``device`` (no cutoff, backend or progress).

    Parameters
    ----------
    quick : bool
        A 29 x 49 grid instead of 141 x 221.
    device : pyspb.Device, optional
        Device parameters (default: the paper's).

    Returns
    -------
    xarray.Dataset
        ``J_abs_sq`` ((1e6 s^-1)^2) over (``r``, ``phi``), r = 0.1..0.8 um,
        phi = 0..1.1 um; ``J_abs_over_gamma`` over ``phi`` at the device's r (attr
        ``inset_r``); ``r_cancel`` and ``phi_cancel`` (over ``l`` = 0, 1): the tip positions
        where J = 0.
    """
    device = run.device
    r = grid(0.1, 0.8, run.size(29, 141), (PAPER_R,))
    phi = grid(0.0, 1.1, run.size(45, 221), PAPER_PHI)
    rates = device.rates(r=r, phi=phi)
    inset = device.rates(phi=phi)
    cancel = cancellation_positions(device)
    ds = xr.Dataset(
        {
            "J_abs_sq": bare(rates["J_abs"] ** 2).transpose("r", "phi"),
            "J_abs_over_gamma": bare(inset["J_abs"] / inset["gamma"]),
            # the positions are r and phi values, but not the grid's: their own labels
            "r_cancel": bare(cancel["r"]),
            "phi_cancel": bare(cancel["phi"]),
        }
    )
    ds["J_abs_over_gamma"].attrs["comment"] = f"inset: at r = {device.r} um"
    ds["J_abs_sq"].attrs["units"] = "1e12 s-2"
    ds.attrs["inset_r"] = device.r
    ds.attrs["comment"] = "no steady state is solved for this panel: |J| and gamma come from Device.rates"
    caption = f"|J|^2 versus r and phi; inset: |J| / gamma versus phi at r = {device.r} um"
    return ds, caption


@panel
def fig3c(run: Run) -> tuple[xr.Dataset, str]:
    """Fig. 3(c): single-photon probabilities P01_ccw and P10_cw versus phi at r = 0.35 um.

    Numerical: ``<0,1|rho|0,1>`` and ``<1,0|rho|1,0>`` of the exact steady state
    (``pyspb.solve(..., P=True)``); analytic: the weak-drive Eq. (6)
    (:func:`pyspb.analytic.weak_drive`), which holds for xi << gamma.

    Parameters
    ----------
    quick, cutoff, backend, device, progress
        As for :func:`pyspb.paper.fig1b`; ``quick`` uses 49 values of phi instead of 221.

    Returns
    -------
    xarray.Dataset
        ``P10_cw_numerical``, ``P01_ccw_numerical`` (exact), ``P10_cw``, ``P01_ccw``
        (Eq. 6), ``N_cw``, ``truncation_error`` over ``phi`` = 0..1.1 um.

    Notes
    -----
    At the paper's drive (xi / gamma ~ 0.2) Eq. (6) overestimates the revived P10 at J = 0
    by ~33 % (the exact vacuum population is below 1 there); elsewhere it is within ~10 %.
    """
    phi = grid(0.0, 1.1, run.size(45, 221), PAPER_PHI)
    inputs = model(run.device.rates(phi=phi))
    out = run.solve(inputs, P=True)
    weak = weak_drive(inputs)
    ds = xr.Dataset(
        {
            "P10_cw_numerical": bare(out["P"].sel(n_cw=1, n_ccw=0, drop=True)),
            "P01_ccw_numerical": bare(out["P"].sel(n_cw=0, n_ccw=1, drop=True)),
            "P10_cw": weak["P10_cw"],
            "P01_ccw": weak["P01_ccw"],
            "N_cw": out["N_cw"],
            "truncation_error": out["truncation_error"],
        }
    )
    caption = (
        f"P01_ccw and P10_cw versus phi at r = {run.device.r} um: exact steady state (curves) and "
        "weak-drive Eq. (6) (markers)"
    )
    return ds, caption


@panel
def fig3d(run: Run) -> tuple[xr.Dataset, str]:
    """Fig. 3(d): g2_cw(0) versus r for several phi, numerical and analytic.

    The caption does not give the phi values; :data:`FIG3D_PHI` takes phi = 0.27 um (J = 0
    at r = 0.35 um, the blockade revives), 0.21 um (|J| = gamma there), 0.40 um and
    0.545 um (the tip adds to the intrinsic coupling, |J| largest).

    Parameters
    ----------
    quick, cutoff, backend, device, progress
        As for :func:`pyspb.paper.fig1b`; ``quick`` uses 21 values of r instead of 201.

    Returns
    -------
    xarray.Dataset
        ``g2_cw`` (exact steady state), ``g2_cw_weak`` (Eq. 7), ``N_cw``,
        ``truncation_error`` over (``phi``, ``r``), r = 0..1 um.
    """
    r = grid(0.0, 1.0, run.size(21, 201), (PAPER_R,))
    inputs = model(run.device.rates(phi=np.array(FIG3D_PHI), r=r))
    out = run.solve(inputs)
    ds = out[["g2_cw", "N_cw", "truncation_error"]].assign(g2_cw_weak=weak_drive(inputs)["g2_cw_weak"])
    caption = "g2_cw(0) versus r for several phi: exact steady state (curves) and weak-drive Eq. (7) (markers)"
    return ds, caption
