"""Fig. 4: the efficiency R (Eq. 8) over the tip position (panel a) and versus J0 (panel b)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from ..analytic import efficiency, weak_drive
from ..device import Device
from ._panel import PAPER_PHI, PAPER_R, Run, bare, grid, model, panel


def ideal_cavity(run: Run) -> xr.Dataset:
    """The steady state of the ideal cavity (J0 = 0, no tip), same chi, xi and Delta."""
    return run.solve(model(run.device.rates(J0=0.0, tip=False)), progress=False)


@panel
def fig4a(run: Run) -> tuple[xr.Dataset, str]:
    """Fig. 4(a): efficiency R (Eq. 8) over the tip position (r, phi), J0 / gamma1 = 1.8.

    ``R = max(0, (1 - g2) / (1 - g2_ideal))`` with g2 = g2_cw(0) of the device with the tip
    at (r, phi) and g2_ideal that of the ideal cavity (J0 = 0, no tip) with the same chi, xi
    and Delta (:func:`pyspb.analytic.efficiency`).  Here each tip position is one device, so
    the "min" of Eq. (8) is the value at that position.

    Parameters
    ----------
    quick, cutoff, backend, device, progress
        As for :func:`pyspb.paper.fig1b`; ``quick`` uses a 17 x 49 grid (r = 0.2..0.6 um)
        instead of 141 x 221 (r = 0.1..0.8 um).

    Returns
    -------
    xarray.Dataset
        ``R``, ``g2_cw``, ``truncation_error`` over (``r``, ``phi``), phi = 0..1.1 um;
        ``g2_cw_ideal`` (scalar).
    """
    device = run.device
    r = grid(0.2, 0.6, 17, (PAPER_R,)) if run.quick else grid(0.1, 0.8, 141, (PAPER_R,))
    phi = grid(0.0, 1.1, run.size(45, 221), PAPER_PHI)
    out = run.solve(model(device.rates(r=r, phi=phi)))
    g2_ideal = ideal_cavity(run)["g2_cw"]
    ds = xr.Dataset(
        {
            "R": efficiency(out["g2_cw"], g2_ideal).transpose("r", "phi"),
            "g2_cw": out["g2_cw"],
            "g2_cw_ideal": bare(g2_ideal),
            "truncation_error": out["truncation_error"],
        }
    )
    J0 = device.J0_over_gamma1 if device.J0 is None else f"{device.J0} (1e6 s-1)"
    caption = f"efficiency R (Eq. 8) versus r and phi for J0 / gamma1 = {J0} and Delta = {device.Delta}"
    return ds, caption


def _scan_minimum(
    device: Device,
    J0_over_gamma1: np.ndarray,
    g2_of: Callable[[xr.Dataset], xr.DataArray],
    r_range: tuple[float, float],
    coarse: tuple[int, int],
    fine: int,
    stages: int,
) -> xr.Dataset:
    """Minimum of g2 over tip positions (r, phi), for each J0, by nested grid search.

    Stage 1 evaluates ``g2_of`` on a ``coarse`` grid of r in ``r_range`` and phi over one
    period pi / k_opt of the coupling phase (J is periodic in phi); every further stage puts
    a ``fine`` x ``fine`` grid spanning one previous step either side of the best point
    (so it may step beyond ``r_range`` when the best point is on its edge; r stays >= 0).
    Returns ``g2_min``, ``r_at_min``, ``phi_at_min`` over ``J0_over_gamma1``.
    """
    k_opt = float(device.rates(tip=False)["k_opt"])
    period = np.pi / k_opt
    r = np.linspace(*r_range, coarse[0])
    phi = np.linspace(0.0, period, coarse[1], endpoint=False)
    inputs = model(device.rates(J0_over_gamma1=J0_over_gamma1, r=r, phi=phi))
    g = g2_of(inputs).transpose("J0_over_gamma1", "r", "phi").fillna(np.inf).values
    best = g.reshape(g.shape[0], -1).argmin(axis=1)
    i_r, i_phi = np.unravel_index(best, g.shape[1:])
    r0, phi0 = r[i_r], phi[i_phi]
    g_min = g.reshape(g.shape[0], -1)[np.arange(g.shape[0]), best]
    dr, dphi = r[1] - r[0], phi[1] - phi[0]
    offsets = np.linspace(-1.0, 1.0, fine)
    rows = np.arange(len(J0_over_gamma1))
    # pointwise indexers: J0 number j takes the j-th block of `fine` local values of r and phi
    pick_J0 = xr.DataArray(rows, dims="J0_over_gamma1")
    pick_r = xr.DataArray(rows[:, None] * fine + np.arange(fine), dims=("J0_over_gamma1", "i_r"))
    pick_phi = xr.DataArray(rows[:, None] * fine + np.arange(fine), dims=("J0_over_gamma1", "i_phi"))
    for _ in range(stages):
        r_local = np.clip(r0[:, None] + dr * offsets, 0.0, None)
        phi_local = phi0[:, None] + dphi * offsets
        rates = device.rates(J0_over_gamma1=J0_over_gamma1, r=r_local.ravel(), phi=phi_local.ravel())
        local = model(rates).drop_vars(["r", "phi"]).isel(J0_over_gamma1=pick_J0, r=pick_r, phi=pick_phi)
        g = g2_of(local).transpose("J0_over_gamma1", "i_r", "i_phi").fillna(np.inf).values
        best = g.reshape(g.shape[0], -1).argmin(axis=1)
        i_r, i_phi = np.unravel_index(best, g.shape[1:])
        picked = g.reshape(g.shape[0], -1)[rows, best]
        better = picked <= g_min
        r0 = np.where(better, r_local[rows, i_r], r0)
        phi0 = np.where(better, phi_local[rows, i_phi], phi0)
        g_min = np.where(better, picked, g_min)
        dr, dphi = dr * 2 / (fine - 1), dphi * 2 / (fine - 1)
    coords = {"J0_over_gamma1": J0_over_gamma1}
    return xr.Dataset(
        {
            "g2_min": ("J0_over_gamma1", g_min),
            "r_at_min": ("J0_over_gamma1", r0),
            "phi_at_min": ("J0_over_gamma1", np.mod(phi0, period)),
        },
        coords=coords,
    )


@panel
def fig4b(run: Run) -> tuple[xr.Dataset, str]:
    """Fig. 4(b): efficiency R versus J0 / gamma1 with and without the tip.

    * With the tip, the "min" of Eq. (8) is over the tip positions: for each J0,
      ``min g2`` is the smallest g2_cw(0) found by a nested grid search over (r, phi)
      (r = 0.1..1.2 um, phi over one period pi / k_opt of the coupling phase; stage 1 a
      coarse grid, then finer grids spanning one step either side of the best point; at
      J0 = 0 the best tip is the farthest, and the refinements step beyond 1.2 um).
    * Without the tip there is nothing to tune: g2 of the cavity with J = J0.
    * g2_ideal is the ideal cavity's (J0 = 0, no tip), same chi, xi, Delta.

    The numerical curves use the exact steady state; the analytic markers use the weak-drive
    g2 (Eq. 7) in the same formula, its minimum found by the same search.

    Parameters
    ----------
    quick, cutoff, backend, device, progress
        As for :func:`pyspb.paper.fig1b`; ``quick`` uses J0 / gamma1 = 0, 0.9, ..., 3.6 (5
        values, a 12 x 12 grid and 6 refinements of 5 x 5) instead of 0, 0.18, ..., 3.6 (21
        values, 23 x 24 and 6 refinements of 7 x 7).

    Returns
    -------
    xarray.Dataset
        Over ``case`` ("with tip", "without tip") and ``J0_over_gamma1``: ``R`` (numerical),
        ``R_weak`` (analytic), ``g2_cw`` and ``g2_cw_weak`` (minimum over tip positions with
        the tip); over ``J0_over_gamma1``: ``r_at_min``, ``phi_at_min`` (position of the
        numerical minimum) and the coordinate ``J0`` (1e6 s^-1); scalars ``g2_cw_ideal``,
        ``g2_cw_weak_ideal``; ``truncation_error`` (largest over all solves).
    """
    device = run.device = run.device.replace(J0=None)
    J0s = grid(0.0, 3.6, run.size(5, 21))
    search: dict[str, Any] = {
        "r_range": (0.1, 1.2),
        "coarse": (12, 12) if run.quick else (23, 24),
        "fine": run.size(5, 7),
        "stages": 6,
    }

    def numerical(inputs: xr.Dataset) -> xr.DataArray:
        return run.solve(inputs)["g2_cw"]

    def analytic(inputs: xr.Dataset) -> xr.DataArray:
        return weak_drive(inputs)["g2_cw_weak"]

    tip = _scan_minimum(device, J0s, numerical, **search)
    tip_weak = _scan_minimum(device, J0s, analytic, **search)
    no_tip_inputs = model(device.rates(J0_over_gamma1=J0s, tip=False))
    no_tip = run.solve(no_tip_inputs)
    g2_ideal = float(ideal_cavity(run)["g2_cw"])
    g2_weak_ideal = float(weak_drive(model(device.rates(J0=0.0, tip=False)))["g2_cw_weak"])
    case = xr.DataArray(["with tip", "without tip"], dims="case", name="case")
    g2 = xr.concat([tip["g2_min"], bare(no_tip["g2_cw"])], dim=case)
    g2_weak = xr.concat([tip_weak["g2_min"], bare(weak_drive(no_tip_inputs)["g2_cw_weak"])], dim=case)
    ds = xr.Dataset(
        {
            "R": efficiency(g2, g2_ideal),
            "R_weak": bare(efficiency(g2_weak, g2_weak_ideal)),
            "g2_cw": g2,
            "g2_cw_weak": g2_weak,
            "g2_cw_ideal": ((), g2_ideal),
            "g2_cw_weak_ideal": ((), g2_weak_ideal),
            "r_at_min": tip["r_at_min"],
            "phi_at_min": tip["phi_at_min"],
        }
    )
    ds = ds.assign_coords(J0=("J0_over_gamma1", J0s * float(device.rates(tip=False)["gamma1"])))
    ds["g2_cw"].attrs["comment"] = (
        "with tip: minimum of g2_cw(0) over the scanned tip positions (r, phi); without tip: "
        "g2_cw(0) of the cavity with J = J0"
    )
    ds["g2_cw_weak"].attrs["comment"] = "as g2_cw, from the weak-drive Eq. (7)"
    ds["R"].attrs["comment"] = "Eq. (8); with tip the min is over tip positions (r, phi)"
    ds["truncation_error"] = ((), run.truncation())
    ds["truncation_error"].attrs["comment"] = "largest over all the steady states solved for this panel"
    ds.attrs["search"] = (
        f"min of g2 over r in {search['r_range']} um and phi over one period pi / k_opt: "
        f"{search['coarse'][0]} x {search['coarse'][1]} grid, then {search['stages']} "
        f"refinements of {search['fine']} x {search['fine']}"
    )
    caption = (
        "efficiency R versus J0 / gamma1 with (red) and without (blue) the tip; curves numerical, markers analytic"
    )
    return ds, caption
