"""Fig. 4: the efficiency R (Eq. 8) over the tip position (panel a) and versus J0 (panel b)."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from ..analytic import efficiency, weak_drive
from ..design import optimize_tip
from ..observables import TruncationWarning
from ._panel import PAPER_PHI, PAPER_R, Run, bare, grid, model, panel

#: radial range of the tip search of Fig. 4(b) (um)
R_RANGE = (0.1, 1.2)


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


def _best_tips(run: Run, J0s: np.ndarray, objective: str, grid_size: tuple[int, int]) -> xr.Dataset:
    """:func:`pyspb.optimize_tip` for every J0 (one batched search); the panel warns about truncation."""
    with warnings.catch_warnings():  # the panel warns once, for all its solves (see Run.finish)
        warnings.simplefilter("ignore", TruncationWarning)
        best = optimize_tip(
            run.device,
            objective=objective,
            cutoff=run.cutoff,
            backend=run.backend,
            bounds={"r": R_RANGE},
            over={"J0_over_gamma1": J0s},
            grid=grid_size,
        )
    if "truncation_error" in best:
        run.truncation_errors.append(float(np.nanmax(best["truncation_error"].values)))
    return best


@panel
def fig4b(run: Run) -> tuple[xr.Dataset, str]:
    """Fig. 4(b): efficiency R versus J0 / gamma1 with and without the tip.

    * With the tip, the "min" of Eq. (8) is over the tip positions: for each J0,
      ``min g2`` is the smallest g2_cw(0) over (r, phi) found by :func:`pyspb.optimize_tip`
      (r = 0.1..1.2 um, phi over one period pi / k_opt of the coupling phase: a coarse grid,
      then a pattern search from its best local minima, for all J0 in the same solve calls;
      at J0 = 0 the best tip is the farthest, r = 1.2 um).
    * Without the tip there is nothing to tune: g2 of the cavity with J = J0.
    * g2_ideal is the ideal cavity's (J0 = 0, no tip), same chi, xi, Delta.

    The numerical curves use the exact steady state; the analytic markers use the weak-drive
    g2 (Eq. 7) in the same formula, its minimum found by the same search (objective
    ``"g2_cw_weak"``).

    Parameters
    ----------
    quick, cutoff, backend, device, progress
        As for :func:`pyspb.paper.fig1b`; ``quick`` uses J0 / gamma1 = 0, 0.9, ..., 3.6 (5
        values, a 12 x 12 coarse grid) instead of 0, 0.18, ..., 3.6 (21 values, 23 x 24).

    Returns
    -------
    xarray.Dataset
        Over ``case`` ("with tip", "without tip") and ``J0_over_gamma1``: ``R`` (numerical),
        ``R_weak`` (analytic), ``g2_cw`` and ``g2_cw_weak`` (minimum over tip positions with
        the tip); over ``J0_over_gamma1``: ``r_at_min``, ``phi_at_min`` (position of the
        numerical minimum) and the coordinate ``J0`` (1e6 s^-1); scalars ``g2_cw_ideal``,
        ``g2_cw_weak_ideal``; ``truncation_error`` (largest over the steady states behind
        the reported values).
    """
    device = run.device = run.device.replace(J0=None)
    J0s = grid(0.0, 3.6, run.size(5, 21))
    coarse = (12, 12) if run.quick else (23, 24)
    tip = _best_tips(run, J0s, "g2_cw", coarse)
    tip_weak = _best_tips(run, J0s, "g2_cw_weak", coarse)
    no_tip_inputs = model(device.rates(J0_over_gamma1=J0s, tip=False))
    no_tip = run.solve(no_tip_inputs)
    g2_ideal = float(ideal_cavity(run)["g2_cw"])
    g2_weak_ideal = float(weak_drive(model(device.rates(J0=0.0, tip=False)))["g2_cw_weak"])
    case = xr.DataArray(["with tip", "without tip"], dims="case", name="case")
    g2 = xr.concat([bare(tip["g2_cw"]), bare(no_tip["g2_cw"])], dim=case)
    g2_weak = xr.concat([bare(tip_weak["g2_cw_weak"]), bare(weak_drive(no_tip_inputs)["g2_cw_weak"])], dim=case)
    ds = xr.Dataset(
        {
            "R": efficiency(g2, g2_ideal),
            "R_weak": bare(efficiency(g2_weak, g2_weak_ideal)),
            "g2_cw": g2,
            "g2_cw_weak": g2_weak,
            "g2_cw_ideal": ((), g2_ideal),
            "g2_cw_weak_ideal": ((), g2_weak_ideal),
            "r_at_min": bare(tip["r"]),
            "phi_at_min": bare(tip["phi"]),
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
    ds["truncation_error"].attrs["comment"] = (
        "largest over the steady states behind the reported values (the optimal tip positions, the cavity "
        "without tip, the ideal cavity)"
    )
    ds.attrs["search"] = (
        f"min of g2 over r in {R_RANGE} um and phi over one period pi / k_opt by pyspb.optimize_tip: "
        f"{tip.attrs['search']}"
    )
    caption = (
        "efficiency R versus J0 / gamma1 with (red) and without (blue) the tip; curves numerical, markers analytic"
    )
    return ds, caption
