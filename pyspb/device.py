"""Device parameters -> model rates (docs/model.md, section 2, the paper's numbers as defaults).

Units: rates in 1e6 s^-1, lengths in micrometres, power in W, ``chi3`` in m^2/V^2.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from .attributes import annotate

__all__ = ["Device"]

HBAR = 1.054571817e-34  # J s
EPSILON0 = 8.8541878128e-12  # F / m
SPEEDOFLIGHT = 299792458.0  # m / s
#: the paper's intrinsic coupling J0 / gamma1, used where neither J0 nor J0_over_gamma1 is given
DEFAULT_J0_OVER_GAMMA1 = 1.8


@dataclass(frozen=True)
class Device:
    """A Kerr whispering-gallery resonator with an intrinsic scatterer and a nanotip.

    Every field can be overridden here or swept in :meth:`rates`.

    Parameters
    ----------
    wavelength : float
        Vacuum wavelength (um).
    Q : float
        Intrinsic quality factor; ``gamma0 = omega0 / Q``.
    gamma_ex : float or None
        Cavity-waveguide coupling rate (1e6 s^-1); None means critical coupling,
        ``gamma_ex = gamma0``.
    chi3 : float
        ``chi^(3) / eps_r^2`` (m^2/V^2).
    Veff : float
        Effective mode volume (um^3).
    Pin : float
        Input power (W).
    n0 : float
        Refractive index.
    theta : float
        Initial phase (rad).
    theta_t : float
        Radial phase of the tip shape (rad/um).
    a_t, decay_t : float
        Tip coupling amplitude (1e6 s^-1) and decay length ``1 / (2 beta_t)`` (um).
    a_gamma, decay_gamma : float
        Tip loss amplitude (1e6 s^-1) and decay length ``1 / (2 beta_gamma)`` (um).
    J0, J0_over_gamma1 : float or None
        Intrinsic backscattering coupling, given one way: ``J0`` (1e6 s^-1) or
        ``J0_over_gamma1`` (``J0 = J0_over_gamma1 * gamma1``; 0 for an ideal cavity).  Neither
        given: ``J0_over_gamma1 = 1.8`` (the paper's); both given: ValueError.  Giving one in
        :meth:`replace` or :meth:`rates` replaces the device's other one.
    Delta : float
        Detuning (1e6 s^-1).
    r, phi : float
        Tip position: radial distance and azimuthal distance from the scatterer (um).
    tip : bool
        False removes the tip (``J = J0``, ``gamma = gamma1``); must be a bool.
    """

    wavelength: float = 1.55
    Q: float = 1e10
    gamma_ex: float | None = None
    chi3: float = 1.8e-17
    Veff: float = 150.0
    Pin: float = 4e-15
    n0: float = 1.4
    theta: float = -np.pi / 2
    theta_t: float = 1.5 * np.pi
    a_t: float = 14.3
    decay_t: float = 0.099
    a_gamma: float = 2.43
    decay_gamma: float = 0.092
    J0: float | None = None
    J0_over_gamma1: float | None = None
    Delta: float = 0.0
    r: float = 0.35
    phi: float = 0.27
    tip: bool = True

    #: fields that may not be negative, and those that must be > 0
    _non_negative = ("r", "Pin", "a_t", "a_gamma", "chi3", "J0", "J0_over_gamma1", "gamma_ex")
    _positive = ("wavelength", "Q", "Veff", "n0", "decay_t", "decay_gamma")

    def __post_init__(self) -> None:
        _check_tip(self.tip)
        if self.J0 is not None and self.J0_over_gamma1 is not None:
            raise ValueError(
                f"give J0 or J0_over_gamma1, not both (got J0 = {self.J0}, J0_over_gamma1 = "
                f"{self.J0_over_gamma1}): set the other to None"
            )
        if self.J0 is None and self.J0_over_gamma1 is None:
            object.__setattr__(self, "J0_over_gamma1", DEFAULT_J0_OVER_GAMMA1)

    def replace(self, **changes) -> Device:
        """A copy with some fields changed (``J0`` replaces ``J0_over_gamma1`` and vice versa)."""
        return dataclasses.replace(self, **_one_coupling(changes))

    def rates(self, **coords) -> xr.Dataset:
        """Model inputs and derived rates over a grid of device parameters.

        Parameters
        ----------
        **coords
            Device fields (see the class).  A 1-d array becomes a dimension of that name
            with those coordinates (several arrays span a grid); a scalar overrides the
            field.  ``J0`` given here replaces the device's ``J0_over_gamma1`` and vice versa
            (both here: ValueError); ``tip`` must be a bool.
            Example: ``Device().rates(r=np.linspace(0.1, 0.6, 51), phi=0.27)``.
            An :class:`xarray.DataArray` keeps its own dims, so that several fields can
            vary together along one dim (pointwise, not a grid): ``Device().rates(
            r=xr.DataArray(r_samples, dims="sample"), phi=xr.DataArray(phi_samples,
            dims="sample"))``; the field becomes a coordinate along those dims.

        Returns
        -------
        xarray.Dataset
            ``Delta, J_re, J_im, chi, xi, gamma`` (the inputs of :func:`pyspb.solve`) and
            ``omega0, gamma0, gamma_ex, gamma1, gamma_tip, J0, J_tip_re, J_tip_im, J_abs,
            Theta, k_opt``, with ``units`` and ``long_name``; scalar device fields are
            recorded in the attrs as ``device_<name>``.
        """
        scalars, swept = self._parse(coords)
        parameters = {name: swept.get(name, value) for name, value in scalars.items()}
        self._check(parameters)
        return _dataset(_physics(parameters), scalars, swept)

    def _parse(self, coords: dict[str, Any]) -> tuple[dict[str, Any], dict[str, xr.DataArray]]:
        """Split the call's values into scalar fields (all of them) and swept 1-d coords."""
        fields = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(coords) - set(fields))
        if unknown:
            raise TypeError(f"unknown device parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
        if "J0" in coords and "J0_over_gamma1" in coords:
            raise ValueError("give J0 or J0_over_gamma1, not both")
        scalars = {name: getattr(self, name) for name in fields}
        given = {name: None for name in ("J0", "J0_over_gamma1") if coords.get(name) is not None}
        scalars.update(_one_coupling(given))  # the call's J0 (or J0_over_gamma1) replaces the device's other one
        swept: dict[str, xr.DataArray] = {}
        for name, value in coords.items():
            if name == "tip":
                scalars["tip"] = _check_tip(value)
            elif value is None:
                scalars[name] = None
            elif isinstance(value, xr.DataArray):
                # pointwise: several fields along one shared dim (e.g. Monte Carlo samples), not a grid
                swept[name] = value.astype(float)
                scalars[name] = None
            else:
                array = np.asarray(value, dtype=float)
                if array.ndim > 1:
                    raise ValueError(f"{name}: give a scalar or a 1-d array, got {array.ndim} dims")
                if array.ndim == 1:
                    swept[name] = xr.DataArray(array, dims=name, coords={name: array})
                    scalars[name] = None
                else:
                    scalars[name] = float(array)
        if scalars["J0"] is None and scalars["J0_over_gamma1"] is None and not {"J0", "J0_over_gamma1"} & set(swept):
            scalars["J0_over_gamma1"] = DEFAULT_J0_OVER_GAMMA1
        return scalars, swept

    @classmethod
    def _check(cls, p: dict) -> None:
        for name in cls._non_negative + cls._positive:
            value = p[name]
            if value is None:
                continue
            values = np.asarray(value)
            if not np.all(np.isfinite(values)):
                raise ValueError(f"device parameter {name} must be finite, got {value!r}")
            if name in cls._positive and np.any(values <= 0):
                raise ValueError(f"device parameter {name} must be > 0, got {value!r}")
            if name in cls._non_negative and np.any(values < 0):
                what = "tip distance r" if name == "r" else f"device parameter {name}"
                raise ValueError(f"{what} must be >= 0, got {value!r}")
        for name in ("theta", "theta_t", "Delta", "phi"):
            if not np.all(np.isfinite(np.asarray(p[name]))):
                raise ValueError(f"device parameter {name} must be finite, got {p[name]!r}")


def _one_coupling(changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` plus None for the other of J0 / J0_over_gamma1 where only one is given."""
    changes = dict(changes)
    for given, other in (("J0", "J0_over_gamma1"), ("J0_over_gamma1", "J0")):
        if given in changes and other not in changes:
            changes[other] = None
    return changes


def _check_tip(value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"tip must be True or False, got {value!r}")
    return bool(value)


def _physics(p: dict[str, Any]) -> dict[str, Any]:
    """The rates of docs/model.md, section 2, from checked device parameters (scalars or DataArrays)."""
    wavelength_m = p["wavelength"] * 1e-6
    omega0_si = 2 * np.pi * SPEEDOFLIGHT / wavelength_m  # s^-1
    omega0 = omega0_si / 1e6
    gamma0 = omega0 / p["Q"]
    gamma_ex = gamma0 if p["gamma_ex"] is None else p["gamma_ex"] + 0 * gamma0
    gamma1 = gamma0 + gamma_ex
    chi = 3 * HBAR * omega0_si**2 * p["chi3"] / (4 * EPSILON0 * p["Veff"] * 1e-18) / 1e6
    xi = np.sqrt(gamma_ex * 1e6 * p["Pin"] / (HBAR * omega0_si)) / 1e6
    J0 = p["J0"] + 0 * gamma1 if p["J0"] is not None else p["J0_over_gamma1"] * gamma1
    k_opt = 2 * np.pi * p["n0"] / p["wavelength"]
    Theta = 2 * k_opt * p["phi"] + p["theta"] + p["theta_t"] * p["r"]
    if p["tip"]:
        J_tip = p["a_t"] * np.exp(-p["r"] / p["decay_t"]) * np.exp(-1j * Theta)
        gamma_tip = p["a_gamma"] * np.exp(-p["r"] / p["decay_gamma"])
    else:
        J_tip = 0j * Theta
        gamma_tip = 0.0 * Theta
    J = J0 + J_tip
    gamma = gamma1 + gamma_tip
    return {
        "Delta": p["Delta"] + 0 * gamma,
        "J_re": np.real(J),
        "J_im": np.imag(J),
        "chi": chi,
        "xi": xi,
        "gamma": gamma,
        "omega0": omega0,
        "gamma0": gamma0,
        "gamma_ex": gamma_ex,
        "gamma1": gamma1,
        "gamma_tip": gamma_tip,
        "J0": J0,
        "J_tip_re": np.real(J_tip),
        "J_tip_im": np.imag(J_tip),
        "J_abs": np.abs(J),
        "Theta": Theta,
        "k_opt": k_opt,
    }


def _dataset(variables: dict[str, Any], scalars: dict[str, Any], swept: dict[str, xr.DataArray]) -> xr.Dataset:
    """The labelled Dataset: variables, swept coords, scalar fields as ``device_<name>`` attrs."""
    ds = xr.Dataset({name: _as_dataarray(value) for name, value in variables.items()})
    ds = ds.assign_coords({name: _coordinate(name, array) for name, array in swept.items()})
    for name in sorted(set(scalars) - set(swept)):
        value = scalars[name]
        if value is not None:
            ds.attrs[f"device_{name}"] = int(value) if isinstance(value, bool) else value
    ds.attrs["units_convention"] = "rates in 1e6 s-1, lengths in um, power in W"
    return annotate(ds)


def _coordinate(name: str, array: xr.DataArray) -> xr.DataArray:
    """A swept field as a coord: its own dim's index, or (pointwise) a coord along the DataArray's dims."""
    if name in array.coords:
        return array[name]
    return array.drop_attrs() if hasattr(array, "drop_attrs") else array


def _as_dataarray(value) -> xr.DataArray:
    if isinstance(value, xr.DataArray):
        return value.drop_attrs() if hasattr(value, "drop_attrs") else value
    return xr.DataArray(np.asarray(value, dtype=float))
