"""``pyspb.fit``: least-squares fits of :class:`pyspb.Device` parameters to measured data.

A measurement is an :class:`xarray.Dataset` whose variables are quantities pyspb computes
(``g2_cw``, ``N_cw``, ...) over coords that are ``Device`` fields (``Delta``, ``Pin``, ``r``,
...), optionally with ``<name>_sigma`` uncertainties.  :func:`fit` adjusts chosen ``Device``
fields within bounds until the exact steady state matches the data.

Every model evaluation is one batched :func:`pyspb.solve` call over all data points, and
every Jacobian one more call over all the perturbed parameter sets at once: the cost of a
fit is a few dozen solver calls, whatever the number of points.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .attributes import VARIABLES, annotate
from .device import Device
from .grid import MODEL_INPUTS
from .observables import TruncationWarning
from .solve import OBSERVABLES, solve, warn_if_truncated

__all__ = [
    "fit",
    "flatten_like",
    "field_value",
    "FITTABLE_FIELDS",
    "SINGULAR_RTOL",
    "parse_assignment",
    "device_from_assignments",
    "fit_file",
]

#: Device fields that take a number (every field but ``tip``)
FITTABLE_FIELDS = tuple(f.name for f in dataclasses.fields(Device) if f.name != "tip")
#: all Device fields
DEVICE_FIELDS = tuple(f.name for f in dataclasses.fields(Device))
#: singular values of the (scaled) Jacobian below this fraction of the largest are treated as
#: zero: below the accuracy of the finite differences (the solver is accurate to ~1e-10)
SINGULAR_RTOL = 1e-5
#: step of the central finite differences, in the scaled parameters (log10 or bounds-normalised)
FD_STEP = 1e-4
#: the dim along which points are solved
_POINT = "point"


def fit(
    data: xr.Dataset,
    device: Device | None = None,
    params: Mapping[str, tuple[float, float]] | None = None,
    cutoff: int = 5,
    backend: str = "native",
    *,
    start: Mapping[str, float] | None = None,
    variables: Sequence[str] | None = None,
    max_evaluations: int = 100,
    tolerance: float | None = None,
) -> xr.Dataset:
    """Fit chosen :class:`pyspb.Device` fields to measured data by least squares.

    Built on :func:`scipy.optimize.least_squares` (trust-region reflective): it is
    maintained with SciPy, which pyspb needs anyway, takes bounds, and takes a user-supplied
    Jacobian, which here is computed by central finite differences for all parameters in one
    batched :func:`pyspb.solve` call (lmfit wraps the same routine but would add a
    dependency and hide the Jacobian).  Parameters are scaled before they reach the
    optimiser: a parameter whose bounds span a factor 10 or more (``Q``) is fitted as
    ``log10`` of its value, others as ``(value - low) / (high - low)``, so that all are of
    order one.

    Parameters
    ----------
    data : xarray.Dataset
        The measurement: variables that pyspb computes (``N_cw``, ``g2_cw``, ``g3_cw``, ...,
        see :func:`pyspb.solve`) over dims whose coords are ``Device`` fields (``Delta``,
        ``Pin``, ``r``, ...; scattered points may use a dim such as ``point`` with
        ``Device``-field coords along it).  Scalar ``Device``-field coords fix that field.
        Optional ``<name>_sigma`` variables are the standard uncertainties (same units);
        without them the fit is unweighted.  NaN data points are ignored.
    device : Device, optional
        Every field that is neither fitted nor a coordinate of the data (default: the
        paper's device), and the start of the fitted fields.
    params : mapping
        Fitted field -> bounds ``(low, high)`` in the field's units, e.g.
        ``{"Q": (1e9, 1e11), "J0_over_gamma1": (0.5, 5)}``.
    cutoff : int
        Largest photon number kept per mode (as :func:`pyspb.solve`).
    backend : str
        As :func:`pyspb.solve`.
    start : mapping, optional
        Start values overriding the device's.
    variables : sequence of str, optional
        The data variables to fit (default: every variable that is not a ``_sigma``).
    max_evaluations : int
        Largest number of model evaluations (each one solve call).
    tolerance : float, optional
        Accuracy asked of the native engine (as :func:`pyspb.solve`).

    Returns
    -------
    xarray.Dataset
        For each fitted parameter ``p``: ``p`` (best value) and ``p_stderr`` (standard error,
        inf for a parameter the data do not determine); ``covariance`` and ``correlation``
        over ``(param, param2)``; ``chi2_reduced``; for each fitted variable ``v``: the data
        ``v`` (and ``v_sigma``), the best-fit model ``v_fit`` over the data's coords, and
        ``v_residual = v - v_fit``.  Attrs record the optimiser's status, message and
        number of evaluations, the solver calls and points, the scaling, bounds and start
        of each parameter, and the provenance of the solves.  With ``_sigma`` the
        covariance is absolute (``(J^T J)^-1`` of the weighted residuals); without, it is
        scaled by ``chi2_reduced`` (the scatter of the data estimates their uncertainty).

    Raises
    ------
    ValueError
        For an unknown ``Device`` field, a variable pyspb does not compute, data dims that
        are not ``Device`` fields, bounds that exclude the start, no finite data, or fewer
        data than parameters.

    Warns
    -----
    RuntimeWarning
        For a parameter the data cannot determine (singular covariance: its stderr is inf),
        a parameter at its bound, an optimiser that stopped without converging, or a
        truncation error above :data:`pyspb.observables.TRUNCATION_WARNING` at the best fit
        (a :class:`pyspb.TruncationWarning`, once, not per evaluation).
    """
    started = time.perf_counter()
    device = Device() if device is None else device
    if not isinstance(data, xr.Dataset):
        raise TypeError(f"data must be an xarray.Dataset of measured pyspb outputs, got {type(data).__name__}")
    problem = _Problem(data, device, _check_params(params, device, start, data), variables)
    problem.solve_options = {"cutoff": cutoff, "backend": backend, "tolerance": tolerance}
    result = _least_squares(problem, max_evaluations)
    names = list(problem.params)
    best = problem.to_physical(result.x)
    res = problem.residuals(result.x[None, :])[0]
    jac = problem.jacobian(result.x)
    m, n = res.size, len(names)
    dof = m - n
    chi2_reduced = float(res @ res) / dof
    cov, undetermined = _parameter_covariance(problem, result.x, jac, chi2_reduced)
    out = _parameters_dataset(names, best, cov, undetermined)
    out["chi2_reduced"] = xr.DataArray(chi2_reduced)
    out["chi2_reduced"].attrs["comment"] = (
        f"sum of squared {'weighted ' if problem.weighted else ''}residuals over {m} data minus {n} parameters"
    )
    out = out.merge(problem.fit_report(best, cutoff, backend, tolerance))
    _record_fit(out, result, problem, m, dof, started)
    _warn_about(result, problem, names, best, undetermined, out)
    return annotate(out)


def _least_squares(problem: _Problem, max_evaluations: int) -> Any:
    """Least squares in the scaled parameters from the start, by SciPy's trust-region reflective method."""
    from scipy.optimize import least_squares

    x0 = problem.to_scaled(problem.start)
    lower, upper = problem.scaled_bounds()

    def residuals(x: np.ndarray) -> np.ndarray:
        return problem.residuals(x[None, :])[0]

    def jacobian(x: np.ndarray) -> np.ndarray:
        return problem.jacobian(x)

    return least_squares(
        residuals,
        x0,
        jac=jacobian,
        bounds=(lower, upper),
        method="trf",
        x_scale=1.0,
        max_nfev=max_evaluations,
        ftol=1e-10,
        xtol=1e-10,
        gtol=1e-10,
    )


def _parameter_covariance(
    problem: _Problem, x: np.ndarray, jac: np.ndarray, chi2_reduced: float
) -> tuple[np.ndarray, list[int]]:
    """Covariance of the physical parameters at scaled x (NaN rows, inf variance where undetermined)."""
    names = list(problem.params)
    cov_scaled, undetermined = _covariance(jac, names)
    if not problem.weighted:
        cov_scaled = cov_scaled * chi2_reduced
    derivative = problem.derivative(x)
    cov = cov_scaled * np.outer(derivative, derivative)
    for j in undetermined:
        cov[j, :] = np.nan
        cov[:, j] = np.nan
        cov[j, j] = np.inf
    return cov, undetermined


def _parameters_dataset(names: list[str], best: np.ndarray, cov: np.ndarray, undetermined: list[int]) -> xr.Dataset:
    """Best values, standard errors, covariance and correlation of the fitted parameters."""
    stderr = np.sqrt(np.diag(cov))
    out = xr.Dataset()
    for j, name in enumerate(names):
        long_name, units = _field_labels(name)
        out[name] = xr.DataArray(best[j], attrs={"long_name": f"best-fit {long_name}", "units": units})
        out[f"{name}_stderr"] = xr.DataArray(
            stderr[j], attrs={"long_name": f"standard error of the fitted {long_name}", "units": units}
        )
        if j in undetermined:
            out[f"{name}_stderr"].attrs["comment"] = "inf: the data do not determine this parameter"
    param_coords = {
        "param": ("param", names, {"long_name": "fitted parameter"}),  # labels: no units (CF)
        "param2": ("param2", names, {"long_name": "fitted parameter"}),
    }
    out["covariance"] = xr.DataArray(cov, dims=("param", "param2"), coords=param_coords)
    all_units = {_field_labels(p)[1] for p in names}
    if all_units == {"1"}:
        out["covariance"].attrs["units"] = "1"  # else no one unit: each element's is in the comment
    out["covariance"].attrs["comment"] = (
        "units: those of param times those of param2 (" + ", ".join(f"{p}: {_field_labels(p)[1]}" for p in names) + ")"
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = cov / np.outer(stderr, stderr)
    out["correlation"] = xr.DataArray(correlation, dims=("param", "param2"), coords=param_coords)
    return out


def _record_fit(out: xr.Dataset, result: Any, problem: _Problem, m: int, dof: int, started: float) -> None:
    """The attrs of a fit: the solves' provenance, the optimiser's outcome, costs, and each parameter's setup."""
    out.attrs.update({k: v for k, v in problem.last_attrs.items() if k not in ("created",)})
    out.attrs.update(
        {
            "optimizer": "scipy.optimize.least_squares (trf, central-difference Jacobian batched in one solve call)",
            "optimizer_status": int(result.status),
            "optimizer_message": str(result.message),
            "optimizer_success": int(bool(result.success)),
            "evaluations": int(result.nfev),
            "jacobian_evaluations": int(result.njev),
            "solve_calls": problem.solve_calls,
            "points_solved": problem.points_solved,
            "data_points": m,
            "degrees_of_freedom": dof,
            "weights": "<name>_sigma (absolute)" if problem.weighted else "none (covariance scaled by chi2_reduced)",
            "seconds": round(time.perf_counter() - started, 3),
        }
    )
    for j, name in enumerate(problem.params):
        low, high = problem.params[name]
        out.attrs[f"{name}_bounds"] = [low, high]
        out.attrs[f"{name}_start"] = problem.start[j]
        out.attrs[f"{name}_scale"] = problem.scales[j]


# --------------------------------------------------------------------------- checks


def _field_labels(name: str) -> tuple[str, str]:
    """(long_name, units) of a Device field or variable from the attributes table."""
    long_name, units = VARIABLES.get(name, (name, "1"))
    return long_name, units or "1"


def _check_params(
    params: Mapping[str, tuple[float, float]] | None,
    device: Device,
    start: Mapping[str, float] | None,
    data: xr.Dataset,
) -> dict[str, tuple[float, float, float]]:
    """Fitted field -> (low, high, start), checked."""
    if not params:
        raise ValueError('params must name at least one Device field with its bounds, e.g. {"Q": (1e9, 1e11)}')
    start = dict(start or {})
    unknown = sorted(set(params) - set(FITTABLE_FIELDS)) + sorted(set(start) - set(params))
    if unknown:
        raise ValueError(
            f"unknown or unfitted parameter(s) {', '.join(unknown)}: params and start take numeric "
            f"pyspb.Device fields ({', '.join(FITTABLE_FIELDS)}), start only fitted ones"
        )
    if "J0" in params and "J0_over_gamma1" in params:
        raise ValueError("fit J0 or J0_over_gamma1, not both (they are the same coupling)")
    scanned = sorted(set(params) & set(data.coords))
    if scanned:
        raise ValueError(f"{', '.join(scanned)} is a coordinate of the data: a scanned field cannot also be fitted")
    checked = {}
    for name, bounds in params.items():
        try:
            low, high = (float(b) for b in bounds)
        except (TypeError, ValueError):
            raise ValueError(f"bounds of {name} must be two numbers (low, high), got {bounds!r}") from None
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(f"bounds of {name} must be finite with low < high, got ({low}, {high})")
        value = float(start[name]) if name in start else field_value(device, name)
        if not low <= value <= high:
            where = "start" if name in start else f"device's {name}"
            raise ValueError(
                f"the bounds ({low:g}, {high:g}) of {name} exclude its start {value:g} (the {where}): "
                f"widen the bounds or give start={{{name!r}: value}}"
            )
        checked[name] = (low, high, value)
    return checked


def field_value(device: Device, name: str) -> float:
    """The value of a numeric Device field, also where the device leaves it as None.

    ``J0`` and ``J0_over_gamma1`` follow from each other (``J0 = J0_over_gamma1 * gamma1``);
    ``gamma_ex`` None is critical coupling, ``gamma_ex = gamma0``.
    """
    value = getattr(device, name)
    if value is not None:
        return float(value)
    rates = device.rates(tip=False)
    if name == "J0_over_gamma1":
        return float(rates["J0"] / rates["gamma1"])
    return float(rates[name])  # J0, gamma_ex


# --------------------------------------------------------------------------- the problem


class _Problem:
    """Data flattened to points, parameter scaling, and batched model evaluations."""

    def __init__(
        self,
        data: xr.Dataset,
        device: Device,
        params: dict[str, tuple[float, float, float]],
        variables: Sequence[str] | None,
    ) -> None:
        self.device = device
        self.params = {name: (low, high) for name, (low, high, _) in params.items()}
        self.start = np.array([value for _, _, value in params.values()])
        self.scales = ["log10" if low > 0 and high / low >= 10 else "linear" for low, high in self.params.values()]
        self.names = self._variables(data, variables)
        self.solve_options: dict[str, Any] = {}
        self.solve_calls = 0
        self.points_solved = 0
        self.truncation: xr.DataArray | None = None
        self.model_nan = 0
        self.last_attrs: dict[str, Any] = {}
        self._cache: dict[bytes, np.ndarray] = {}

        measured = [data[name] for name in self.names]
        self.template = xr.broadcast(*measured)[0].copy()
        self.template.attrs = {}
        self.template.name = None
        for name in self.names:
            for dim in data[name].dims:
                self._check_dim(data, name, dim)
        self.data = data
        self.values = {name: flatten_like(data[name], self.template) for name in self.names}
        self.weighted, self.sigma = self._uncertainties(data)
        self.masks = {name: np.isfinite(self.values[name]) for name in self.names}
        self.used = self._used_points()
        # Device-field coords over the data's dims (index or not), as flat arrays; scalars fix a field
        self.fields, self.fixed = self._device_coords(data)

    def _uncertainties(self, data: xr.Dataset) -> tuple[bool, dict[str, np.ndarray]]:
        """(weighted, sigma of each variable as a flat array: its ``_sigma``, else ones), checked."""
        with_sigma = [f"{name}_sigma" in data for name in self.names]
        weighted = all(with_sigma)
        if any(with_sigma) and not weighted:
            missing = [name for name, has in zip(self.names, with_sigma, strict=True) if not has]
            raise ValueError(
                f"{', '.join(missing)} have no <name>_sigma while other variables do: give uncertainties for "
                f"every fitted variable or for none (unweighted)"
            )
        sigmas: dict[str, np.ndarray] = {}
        for name in self.names:
            sigma_name = f"{name}_sigma"
            if sigma_name in data:
                sigma = flatten_like(data[sigma_name], self.template)
                finite = np.isfinite(self.values[name])
                if not np.all(np.isfinite(sigma[finite]) & (sigma[finite] > 0)):
                    raise ValueError(f"{sigma_name} must be finite and > 0 wherever {name} is given")
                sigmas[name] = sigma
            else:
                sigmas[name] = np.ones_like(self.values[name])
        return weighted, sigmas

    def _used_points(self) -> np.ndarray:
        """Flat indices of the points where any variable has data; checks that they outnumber the parameters."""
        used = np.zeros(self.template.size, dtype=bool)
        for mask in self.masks.values():
            used |= mask
        m = sum(int(mask.sum()) for mask in self.masks.values())
        if m == 0:
            raise ValueError(f"the data variables {', '.join(self.names)} have no finite values: nothing to fit")
        if m <= len(self.params):
            raise ValueError(f"{m} data point(s) cannot determine {len(self.params)} parameter(s): give more data")
        return np.flatnonzero(used)

    def _device_coords(self, data: xr.Dataset) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(Device-field coords over the data's dims as flat arrays, scalar Device-field coords)."""
        dims = self.template.dims
        fields: dict[str, np.ndarray] = {}
        fixed: dict[str, Any] = {}
        for key, coord in data.coords.items():
            name = str(key)
            if name not in DEVICE_FIELDS or not set(coord.dims) <= set(dims):
                continue
            if coord.ndim == 0:
                fixed[name] = coord.item()
            else:
                fields[name] = flatten_like(coord, self.template)
        return fields, fixed

    @staticmethod
    def _variables(data: xr.Dataset, variables: Sequence[str] | None) -> list[str]:
        all_names = [str(name) for name in data.data_vars]
        for name in all_names:
            if name.endswith("_sigma") and name[: -len("_sigma")] not in data.data_vars:
                raise ValueError(f"{name} has no variable {name[: -len('_sigma')]} whose uncertainty it would be")
        names = list(variables) if variables is not None else [n for n in all_names if not n.endswith("_sigma")]
        if not names:
            raise ValueError(
                f"the data have no variable to fit: give measured pyspb outputs ({', '.join(OBSERVABLES)})"
            )
        for name in names:
            if name not in data.data_vars:
                raise ValueError(f"variables names {name!r}, which the data do not have")
            if name not in OBSERVABLES:
                raise ValueError(
                    f"data variable {name!r} is not a quantity pyspb.solve computes ({', '.join(OBSERVABLES)}); "
                    f"drop it or choose the fitted ones with variables=[...]"
                )
            if not np.issubdtype(data[name].dtype, np.floating) and not np.issubdtype(data[name].dtype, np.integer):
                raise TypeError(f"data variable {name!r} must be real numbers, got dtype {data[name].dtype}")
        return names

    @staticmethod
    def _check_dim(data: xr.Dataset, name: str, dim: Any) -> None:
        if dim in DEVICE_FIELDS and dim in data.coords:
            return
        along = [str(c) for c, coord in data.coords.items() if c in DEVICE_FIELDS and dim in coord.dims]
        if not along:
            raise ValueError(
                f"dim {dim!r} of data variable {name!r} is neither a pyspb.Device field with coordinates nor "
                f"carries Device-field coordinates: pyspb cannot model it (Device fields: {', '.join(DEVICE_FIELDS)})"
            )

    # ---- scaling

    def to_scaled(self, values: np.ndarray) -> np.ndarray:
        out = np.empty(len(values))
        for j, ((low, high), scale) in enumerate(zip(self.params.values(), self.scales, strict=True)):
            out[j] = math.log10(values[j]) if scale == "log10" else (values[j] - low) / (high - low)
        return out

    def to_physical(self, x: np.ndarray) -> np.ndarray:
        out = np.empty(x.shape)
        for j, ((low, high), scale) in enumerate(zip(self.params.values(), self.scales, strict=True)):
            out[..., j] = 10.0 ** x[..., j] if scale == "log10" else low + x[..., j] * (high - low)
        # the scaled bounds map back to the bounds up to rounding: keep the physical ones exactly
        lows = np.array([low for low, _ in self.params.values()])
        highs = np.array([high for _, high in self.params.values()])
        return np.clip(out, lows, highs)

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """d(physical) / d(scaled) of each parameter at x."""
        physical = self.to_physical(x)
        return np.array(
            [
                physical[j] * math.log(10.0) if scale == "log10" else high - low
                for j, ((low, high), scale) in enumerate(zip(self.params.values(), self.scales, strict=True))
            ]
        )

    def scaled_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lows = np.array([low for low, _ in self.params.values()])
        highs = np.array([high for _, high in self.params.values()])
        return self.to_scaled(lows), self.to_scaled(highs)

    # ---- the model

    def model(self, physical: np.ndarray, points: np.ndarray) -> dict[str, np.ndarray]:
        """The fitted variables for K parameter sets (K, P) at the given flat points: (K, npoints) each.

        One :func:`pyspb.solve` call for all sets and points.
        """
        k, npts = physical.shape[0], points.size
        coords: dict[str, Any] = dict(self.fixed)
        for name, values in self.fields.items():
            coords[name] = xr.DataArray(np.tile(values[points], k), dims=_POINT)
        for j, name in enumerate(self.params):
            coords[name] = xr.DataArray(np.repeat(physical[:, j], npts), dims=_POINT)
        rates = self.device.rates(**coords)
        with warnings.catch_warnings():  # warned once, for the best fit (see fit)
            warnings.simplefilter("ignore", TruncationWarning)
            out = solve(rates[list(MODEL_INPUTS)], progress=False, **self.solve_options)
        self.solve_calls += 1
        self.points_solved += k * npts
        self.truncation = out["truncation_error"]
        self.last_attrs = dict(out.attrs)
        return {name: out[name].values.reshape(k, npts) for name in self.names}

    def residuals(self, x: np.ndarray) -> np.ndarray:
        """Weighted residuals (model - data) for K scaled parameter sets (K, P): (K, m)."""
        keys = [row.tobytes() for row in x]
        todo = [i for i, key in enumerate(keys) if key not in self._cache]
        if todo:
            model = self.model(self.to_physical(x[todo]), self.used)
            position = np.full(self.template.size, -1)
            position[self.used] = np.arange(self.used.size)
            for row, i in enumerate(todo):
                parts = []
                for name in self.names:
                    mask = self.masks[name]
                    values = model[name][row, position[mask]]
                    parts.append((values - self.values[name][mask]) / self.sigma[name][mask])
                res = np.concatenate(parts)
                bad = ~np.isfinite(res)
                if bad.all():
                    raise ValueError(
                        f"fit: the model ({', '.join(self.names)}) is NaN at every data point (undefined g^(n), see "
                        "pyspb.solve's comments: e.g. g4 needs cutoff >= 4, a grossly truncated cutoff gives NaN): "
                        "nothing to fit; raise cutoff or fit other variables"
                    )
                if bad.any():
                    # the model is undefined (NaN g^(n)) where data exist: left out, counted, warned about
                    self.model_nan = int(bad.sum())
                    res[bad] = 0.0
                self._cache[keys[i]] = res
        return np.stack([self._cache[key] for key in keys])

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """Central differences in the scaled parameters, all sets in one solve call."""
        lower, upper = self.scaled_bounds()
        n = x.size
        steps = np.eye(n) * FD_STEP
        plus = np.minimum(x + steps, upper)
        minus = np.maximum(x - steps, lower)
        values = self.residuals(np.concatenate([plus, minus]))
        width = np.diag(plus - minus)
        return ((values[:n] - values[n:]) / width[:, None]).T

    def fit_report(self, best: np.ndarray, cutoff: int, backend: str, tolerance: float | None) -> xr.Dataset:
        """The data, the best-fit model over all the data's points, and the residuals."""
        model = self.model(best[None, :], np.arange(self.template.size))
        out = xr.Dataset()
        for name in self.names:
            data = self.data[name]
            fitted = self.template.copy(data=model[name][0].reshape(self.template.shape))
            out[name] = data
            if f"{name}_sigma" in self.data:
                out[f"{name}_sigma"] = self.data[f"{name}_sigma"]
            long_name, units = _field_labels(name)
            out[f"{name}_fit"] = fitted.assign_attrs(long_name=f"best-fit model of {long_name}", units=units)
            out[f"{name}_residual"] = (data - fitted).assign_attrs(
                long_name=f"residual of {long_name} (data - fit)", units=units
            )
        return out


def flatten_like(array: xr.DataArray, template: xr.DataArray) -> np.ndarray:
    """Values of ``array`` broadcast to the template's dims, flattened in its C order."""
    broadcast = array.broadcast_like(template).transpose(*template.dims)
    return np.asarray(broadcast.values, dtype=float).ravel()


def _covariance(jac: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[int]]:
    """(J^T J)^-1 by SVD, and the indices of parameters in its null space (undetermined)."""
    _, s, vt = np.linalg.svd(jac, full_matrices=False)
    keep = s > SINGULAR_RTOL * (s[0] if s.size and s[0] > 0 else 1.0)
    if s.size and s[0] == 0:
        keep[:] = False
    v = vt.T
    cov = (v[:, keep] / s[keep] ** 2) @ v[:, keep].T
    null = v[:, ~keep]
    undetermined = [j for j in range(len(names)) if null.size and np.max(np.abs(null[j])) > 1e-3]
    return cov, undetermined


def _warn_about(result: Any, problem: _Problem, names: list[str], best: np.ndarray, undetermined: list[int], out):
    if undetermined:
        which = ", ".join(names[j] for j in undetermined)
        warnings.warn(
            f"fit: the data do not determine {which} (singular covariance): stderr is inf; fix it in the device, "
            f"or add data that depend on it",
            RuntimeWarning,
            stacklevel=3,
        )
    at_bound = [
        name
        for name, value, (low, high) in zip(names, best, problem.params.values(), strict=True)
        if np.isclose(value, low, rtol=1e-6, atol=0) or np.isclose(value, high, rtol=1e-6, atol=0)
    ]
    if at_bound:
        out.attrs["at_bound"] = at_bound
        warnings.warn(
            f"fit: {', '.join(at_bound)} ended at a bound: the best fit may lie beyond it and its stderr means "
            f"little; widen the bounds",
            RuntimeWarning,
            stacklevel=3,
        )
    if not result.success or result.status == 0:
        warnings.warn(
            f"fit: the optimiser stopped without converging ({result.message}); raise max_evaluations or give a "
            f"better start",
            RuntimeWarning,
            stacklevel=3,
        )
    if problem.model_nan:
        out.attrs["model_undefined_points"] = problem.model_nan
        warnings.warn(
            f"fit: the model is NaN (undefined g^(n), see pyspb.solve) at {problem.model_nan} data point(s), which "
            f"were left out of chi2",
            RuntimeWarning,
            stacklevel=3,
        )
    # the last solve was the best-fit model over all the data's points (fit_report)
    if problem.truncation is not None:
        warn_if_truncated(problem.truncation, problem.solve_options["cutoff"], "pyspb.fit", stacklevel=3)
        out.attrs["truncation_error_max"] = float(problem.truncation.max())


# --------------------------------------------------------------------------- command line


def parse_assignment(text: str) -> tuple[str, str]:
    """``"name=value"`` -> ``(name, value)``; a ValueError saying what to write otherwise."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ValueError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def device_from_assignments(assignments: Sequence[str] = ()) -> Device:
    """A Device with fields set from ``"name=value"`` strings (``tip=false`` removes the tip)."""
    changes: dict[str, Any] = {}
    for text in assignments:
        name, value = parse_assignment(text)
        if name not in DEVICE_FIELDS:
            raise ValueError(f"--device {name}: not a pyspb.Device field ({', '.join(DEVICE_FIELDS)})")
        if name == "tip":
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"--device tip={value}: give true or false")
            changes[name] = value.lower() in ("true", "1")
        else:
            try:
                changes[name] = float(value)
            except ValueError:
                raise ValueError(f"--device {name}={value}: not a number") from None
    return Device(**changes)


def parse_bounds(text: str) -> tuple[str, tuple[float, float]]:
    """``"Q=1e9:1e11"`` -> ``("Q", (1e9, 1e11))``."""
    name, value = parse_assignment(text)
    low, sep, high = value.partition(":")
    try:
        if not sep:
            raise ValueError
        return name, (float(low), float(high))
    except ValueError:
        raise ValueError(f"--param {text}: expected NAME=LOW:HIGH, e.g. Q=1e9:1e11") from None


def fit_file(
    data_path: str,
    out: str,
    params: Sequence[str],
    *,
    device: Sequence[str] = (),
    start: Sequence[str] = (),
    variables: Sequence[str] | None = None,
    cutoff: int = 5,
    backend: str = "native",
) -> xr.Dataset:
    """``pyspb fit``: read a NetCDF measurement, fit, write the result (checked before fitting)."""
    from pathlib import Path

    from .io import load, save

    bounds = dict(parse_bounds(text) for text in params)
    starts = {name: float(value) for name, value in map(parse_assignment, start)}
    target = Path(out)
    if not target.parent.exists():
        raise ValueError(f"cannot write {out}: the directory {target.parent} does not exist")
    data = load(data_path)
    result = fit(
        data, device_from_assignments(device), bounds, cutoff, backend, start=starts or None, variables=variables
    )
    save(result, target)
    return result
