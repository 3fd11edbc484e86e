"""Fig. 1: g2(tau) (panel b) and N_cw versus detuning (panel c) for three cavities."""

from __future__ import annotations

import xarray as xr

from ..correlations import g2_tau
from ..device import Device
from ._panel import Run, grid, model, panel

#: labels of the three cavities of Fig. 1 (coordinate ``case``)
CASES = ("ideal", "without tip", "with tip")


def three_cases(device: Device) -> xr.Dataset:
    """Model inputs of the ideal cavity, the cavity without tip and with tip, over ``case``."""
    parts = [
        device.rates(J0=0.0, tip=False),
        device.rates(tip=False),
        device.rates(tip=True),
    ]
    cases = xr.concat(
        [model(part).expand_dims(case=[label]) for part, label in zip(parts, CASES, strict=True)],
        dim="case",
        data_vars="all",
        coords="different",
        compat="equals",
        join="outer",
    )
    cases["case"].attrs["description"] = (
        "ideal: J0 = 0, no tip; without tip: J = J0; with tip: J = J0 + J_tip at the device's (r, phi)"
    )
    return cases


@panel
def fig1b(run: Run) -> tuple[xr.Dataset, str]:
    """Fig. 1(b): g2(tau) of the cw mode for the ideal cavity, without and with the tip.

    Parameters
    ----------
    quick : bool
        Coarse delay grid (31 delays) and cutoff 5.
    cutoff : int, optional
        Largest photon number per mode (default 6, or 5 when ``quick``).
    backend : str
        Backend of :func:`pyspb.g2_tau` and :func:`pyspb.solve`.
    device : pyspb.Device, optional
        Device parameters (default: the paper's, tip at r = 0.35 um, phi = 0.27 um).
    progress : bool, optional
        Progress bar of :func:`pyspb.solve`.

    Returns
    -------
    xarray.Dataset
        ``g2_cw_tau`` over (``case``, ``tau``), tau = 0..30 us (1e-6 s); ``N_cw``, ``g2_cw``,
        ``g3_cw``, ``g4_cw`` and ``truncation_error`` at zero delay over ``case``
        ("ideal": J0 = 0 and no tip; "without tip": J = J0 = 1.8 gamma1; "with tip").
    """
    tau = grid(0.0, 30.0, run.size(31, 301))
    inputs = three_cases(run.device)
    steady = run.solve(inputs)
    ds = xr.Dataset(
        {
            "g2_cw_tau": g2_tau(inputs, tau, cutoff=run.cutoff, backend=run.backend)["g2_cw_tau"],
            **{name: steady[name] for name in ("N_cw", "g2_cw", "g3_cw", "g4_cw", "truncation_error")},
        }
    )
    caption = (
        "g2_cw(tau) of the ideal cavity (J = 0), the cavity without tip (J = J0 = 1.8 gamma1) "
        f"and with the tip at r = {run.device.r} um, phi = {run.device.phi} um; Delta = {run.device.Delta}"
    )
    return ds, caption


@panel
def fig1c(run: Run) -> tuple[xr.Dataset, str]:
    """Fig. 1(c): mean photon number N_cw versus detuning Delta / gamma1, three cavities.

    Parameters
    ----------
    quick, cutoff, backend, device, progress
        As for :func:`fig1b`; ``quick`` uses 41 detunings instead of 401.

    Returns
    -------
    xarray.Dataset
        ``N_cw``, ``N_ccw``, ``g2_cw``, ``truncation_error`` over (``case``,
        ``Delta_over_gamma1``), Delta / gamma1 = -5..5, with the detuning ``Delta``
        (1e6 s^-1) as a coordinate.  The device's own ``Delta`` is replaced by the sweep.
    """
    x = grid(-5.0, 5.0, run.size(41, 401))
    gamma1 = float(run.device.rates(tip=False)["gamma1"])
    Delta = xr.DataArray(x * gamma1, dims="Delta_over_gamma1", coords={"Delta_over_gamma1": x})
    out = run.solve(three_cases(run.device).assign(Delta=Delta))
    ds = out[["N_cw", "N_ccw", "g2_cw", "truncation_error"]].assign_coords(Delta=Delta)
    caption = (
        "mean photon number N_cw versus Delta / gamma1 for the ideal cavity, without tip and "
        f"with the tip at r = {run.device.r} um, phi = {run.device.phi} um"
    )
    return ds, caption
