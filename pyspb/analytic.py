"""The paper's analytic results: weak-drive formulas (Eqs. 5-7), J = 0 tip positions, R (Eq. 8).

The weak-drive formulas hold for ``xi << gamma`` (the paper truncates to three photons and
neglects quantum jumps); :func:`pyspb.solve` gives the exact numbers to compare with.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .attributes import annotate
from .device import Device

__all__ = ["weak_drive", "efficiency", "cancellation_positions", "SPB_CONDITIONS"]

#: the conditions C20 = 0 of the paper (Delta = 0): chi / gamma = 1/2 and |J| / gamma = 1
SPB_CONDITIONS = {"chi_over_gamma": 0.5, "J_abs_over_gamma": 1.0}


def _coupling(inputs: xr.Dataset) -> xr.DataArray:
    if "J" in inputs:
        return inputs["J"].astype(complex)
    return inputs["J_re"] + 1j * (inputs["J_im"] if "J_im" in inputs else 0.0)


def weak_drive(inputs: xr.Dataset) -> xr.Dataset:
    """Eqs. (5)-(7): ``C20``, ``P10_cw``, ``P01_ccw`` and the estimate ``g2_cw_weak``.

    With ``Delta1 = 2 Delta - i gamma``, ``Delta2 = Delta1 + 2 chi``,
    ``eta1 = 4 |J|^2 - Delta1^2``, ``eta2 = 4 |J|^2 - Delta2^2``:

    * ``C20 = 2 sqrt(2) xi^2 (Delta1 Delta2 + 4 |J|^2 chi / Delta2) / (eta1 eta2)``
    * ``P10_cw = 4 xi^2 |Delta1 / eta1|^2``, ``P01_ccw = 16 xi^2 |J / eta1|^2``
    * ``g2_cw_weak = |eta1 (Delta1 Delta2 + 4 |J|^2 chi / Delta2) / (Delta1^2 eta2)|^2``

    Parameters
    ----------
    inputs : xarray.Dataset
        The model inputs of :func:`pyspb.solve` (any dims).

    Returns
    -------
    xarray.Dataset
        ``C20_re, C20_im, P10_cw, P01_ccw, g2_cw_weak`` over the inputs' dims.
    """
    J = _coupling(inputs)
    Delta, chi, xi, gamma = (inputs[name] for name in ("Delta", "chi", "xi", "gamma"))
    J2 = abs(J) ** 2
    Delta1 = 2 * Delta - 1j * gamma
    Delta2 = Delta1 + 2 * chi
    eta1 = 4 * J2 - Delta1**2
    eta2 = 4 * J2 - Delta2**2
    numerator = Delta1 * Delta2 + 4 * J2 * chi / Delta2
    C20 = 2 * np.sqrt(2) * xi**2 * numerator / (eta1 * eta2)
    out = xr.Dataset(
        {
            "C20_re": C20.real,
            "C20_im": C20.imag,
            "P10_cw": 4 * xi**2 * abs(Delta1 / eta1) ** 2,
            "P01_ccw": 16 * xi**2 * abs(J / eta1) ** 2,
            "g2_cw_weak": abs(eta1 * numerator / (Delta1**2 * eta2)) ** 2,
        }
    )
    for var in out.data_vars.values():
        var.attrs = {}
    return annotate(out)


def efficiency(g2_device, g2_ideal):
    """Eq. (8): ``R = max(0, (1 - g2_device) / (1 - g2_ideal))``.

    ``g2_ideal`` is g2(0) of the ideal cavity (J0 = 0, no tip) under the same chi, xi and
    Delta.  For the paper's Fig. 4(b), ``g2_device`` is the minimum of g2(0) over the tip
    positions scanned for each J0 (see :mod:`pyspb.paper`).

    One rule for numbers, arrays and DataArrays (which may be mixed): R is NaN where
    ``g2_ideal >= 1`` (the ideal cavity shows no antibunching to compare with: Eq. (8) is
    undefined there, never a ZeroDivisionError or inf) and where an input is NaN; R is 0
    where the device bunches (``g2_device > 1``) and may exceed 1 where the device is more
    antibunched than the ideal cavity.

    Returns
    -------
    float, ndarray or DataArray
        A float for scalar inputs, an array for arrays, a DataArray named ``R`` (with
        ``units``, ``long_name`` and a ``comment`` on the NaN rule) if either input is one.

    Raises
    ------
    ValueError
        If either g2 is negative anywhere (g2(0) of any state is >= 0).
    """
    for name, g2 in (("g2_device", g2_device), ("g2_ideal", g2_ideal)):
        if bool(np.any(np.less(g2, 0))):
            raise ValueError(f"{name} must be >= 0 (g2(0) of any state is), got negative values")
    antibunched = np.less(g2_ideal, 1)  # where Eq. (8) is defined (NaN: False, and NaN anyway)
    with np.errstate(divide="ignore", invalid="ignore"):
        R = np.maximum(np.divide(np.subtract(1, g2_device), np.subtract(1, g2_ideal)), 0.0)
    if isinstance(R, xr.DataArray):
        out = R.where(antibunched).rename("R")
        out.attrs = {"comment": "NaN where g2_ideal >= 1 (no antibunching to compare with) or an input is NaN"}
        return annotate(out)
    R = np.where(antibunched, R, np.nan)
    return float(R) if R.ndim == 0 else R


def cancellation_positions(device: Device | None = None, orders=(0, 1)) -> xr.Dataset:
    """Tip positions where the tip cancels the intrinsic coupling (J = 0).

    ``r* = ln(a_t / J0) / (2 beta_t)`` and
    ``phi_l = ((2 l + 1) pi - theta - theta_t r*) / (2 k_opt)`` for integer l.

    Returns
    -------
    xarray.Dataset
        ``r`` (scalar, um) and ``phi`` over dim ``l`` (um).
    """
    device = Device() if device is None else device
    base = device.rates(tip=False)
    J0 = float(base.J0)
    if J0 <= 0 or J0 >= device.a_t:
        raise ValueError(f"no cancellation point: need 0 < J0 < a_t, got J0 = {J0}, a_t = {device.a_t}")
    r_star = device.decay_t * np.log(device.a_t / J0)
    l = np.asarray(orders)
    phi = ((2 * l + 1) * np.pi - device.theta - device.theta_t * r_star) / (2 * float(base.k_opt))
    ds = xr.Dataset({"r": ((), r_star), "phi": (("l",), phi)}, coords={"l": l})
    ds["l"].attrs = {"long_name": "order l of the cancellation point", "units": "1"}
    return annotate(ds)
