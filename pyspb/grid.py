"""Model-input grids: checking a Dataset of rates and flattening it to arrays of points.

The inputs of :func:`pyspb.solve` are an :class:`xarray.Dataset` with variables ``Delta``,
``chi``, ``xi``, ``gamma`` and either a complex ``J`` or ``J_re`` (and optionally ``J_im``),
as scalars or arrays over any shared dims.  :func:`flatten_inputs` checks them and returns
the broadcast template and the flat arrays the backends work on.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["INPUT_NAMES", "MODEL_INPUTS", "POINT_ORDER", "check_inputs", "flatten_inputs", "is_lazy", "rate_grid"]

#: the model inputs as a Dataset stores them (the one list of their names; see docs/model.md)
MODEL_INPUTS = ("Delta", "J_re", "J_im", "chi", "xi", "gamma")
#: the order in which backends take the inputs of a point (``J`` complex)
POINT_ORDER = ("Delta", "J", "chi", "xi", "gamma")
#: the real model inputs (every input but J)
_REAL_INPUTS = tuple(name for name in POINT_ORDER if name != "J")
#: names under which model inputs may appear in a Dataset (a result records those it was given)
INPUT_NAMES = ("Delta", "J", "J_re", "J_im", "chi", "xi", "gamma")


def _real_variable(inputs: xr.Dataset, name: str) -> xr.Variable:
    var = inputs.variables[name].to_base_variable()
    if not np.issubdtype(var.dtype, np.number) or var.dtype == bool:
        raise TypeError(f"input {name!r} must be numeric, got dtype {var.dtype}")
    data = var.data  # NumPy or dask: reduced below, not loaded
    if np.issubdtype(var.dtype, np.complexfloating):
        if bool((data.imag != 0).any()):
            raise TypeError(f"input {name!r} must be real, got complex values")
        data = data.real
    return xr.Variable(var.dims, data.astype(float))  # (Variable.astype costs ~0.1 ms: apply_ufunc)


def is_lazy(inputs: xr.Dataset) -> bool:
    """True if any model input is a dask array (chunked with ``Dataset.chunk``)."""
    # the model inputs only: asking a variable for its chunks costs ~12-30 us (a Protocol check),
    # so NumPy data (the usual case) is recognised first
    return isinstance(inputs, xr.Dataset) and any(
        not isinstance(inputs.variables[name].data, np.ndarray) and inputs.variables[name].chunks is not None
        for name in INPUT_NAMES
        if name in inputs.data_vars
    )


def flatten_inputs(inputs: xr.Dataset) -> tuple[xr.DataArray, dict[str, np.ndarray]]:
    """Check the model inputs and broadcast them to flat arrays.

    Returns
    -------
    template : DataArray
        Zeros with the broadcast dims (in the order in which ``Delta, J, chi, xi, gamma``
        first name them, as :func:`xarray.broadcast` orders them) and every coord of the
        inputs that lives on them, to shape results.
    flat : dict
        ``Delta, J, chi, xi, gamma`` as 1-d arrays (``J`` complex), in the template's
        C order.
    """
    checked = _checked_variables(inputs)
    sizes: dict = {}
    for var in checked.values():
        for dim, size in zip(var.dims, var.shape, strict=True):
            sizes.setdefault(dim, size)
    dims = tuple(sizes)
    # NumPy only from here (xarray's broadcast and alignment cost ~1 ms on a single point)
    flat = {name: np.ascontiguousarray(var.set_dims(sizes).values).ravel() for name, var in checked.items()}
    coords = {name: coord for name, coord in inputs.coords.items() if set(coord.dims) <= set(dims)}
    template = xr.DataArray(np.zeros(tuple(sizes.values())), dims=dims, coords=coords)
    return template, flat


def check_inputs(inputs: xr.Dataset) -> dict[str, xr.DataArray]:
    """Check the model inputs; return ``Delta, J, chi, xi, gamma`` (J complex) as DataArrays.

    Works on numpy- and dask-backed inputs (dask inputs are reduced, not loaded, to check).
    Each DataArray carries the inputs' coords on its dims.

    Raises
    ------
    TypeError
        If ``inputs`` is not a Dataset, or a variable is missing or not numeric.
    ValueError
        For NaN or infinite values, ``gamma <= 0``, ``xi < 0``.
    """
    checked = _checked_variables(inputs)
    return {
        name: xr.DataArray(
            var, coords={key: coord for key, coord in inputs.coords.items() if set(coord.dims) <= set(var.dims)}
        )
        for name, var in checked.items()
    }


def _checked_variables(inputs: xr.Dataset) -> dict[str, xr.Variable]:
    """:func:`check_inputs` on the bare variables (no coords, no alignment: fast on small grids)."""
    if not isinstance(inputs, xr.Dataset):
        raise TypeError(
            f"inputs must be an xarray.Dataset with variables {', '.join(_REAL_INPUTS)} and J "
            f"(or J_re, J_im), got {type(inputs).__name__}; pyspb.Device().rates() builds one"
        )
    has_J = "J" in inputs
    missing = [name for name in _REAL_INPUTS if name not in inputs]
    if not has_J and "J_re" not in inputs:
        missing.append("J (or J_re and J_im)")
    if missing:
        raise TypeError(f"inputs lack the variable(s) {', '.join(missing)}; see docs/model.md, section 1")
    if has_J and ("J_re" in inputs or "J_im" in inputs):
        raise ValueError("inputs have both J and J_re/J_im: give the coupling one way only")
    real = {name: _real_variable(inputs, name) for name in _REAL_INPUTS}
    if has_J:
        J = inputs.variables["J"].to_base_variable()
        if not np.issubdtype(J.dtype, np.number) or J.dtype == bool:
            raise TypeError(f"input 'J' must be numeric, got dtype {J.dtype}")
        J = xr.Variable(J.dims, J.data.astype(complex))
    else:
        J = _real_variable(inputs, "J_re") + 1j * (_real_variable(inputs, "J_im") if "J_im" in inputs else 0.0)
    checked = {name: (J if name == "J" else real[name]) for name in POINT_ORDER}
    for name, var in checked.items():
        bad = int((~np.isfinite(var.data)).sum())
        if bad:
            raise ValueError(f"input {name!r} has {bad} NaN or infinite value(s)")
    if bool((real["gamma"].data <= 0).any()):
        raise ValueError("gamma must be > 0 everywhere (it is the loss rate of each mode)")
    if bool((real["xi"].data < 0).any()):
        raise ValueError(
            "xi must be >= 0: it is the drive amplitude (a drive phase of pi is the same as xi > 0 with J -> -J)"
        )
    return checked


def rate_grid(**values) -> xr.Dataset:
    """A Dataset of model inputs; 1-d array values become dims with coords.

    Example: ``rate_grid(Delta=np.linspace(-1, 1, 5), J=0.4, chi=1.6, xi=0.06, gamma=0.24)``.
    """
    from .attributes import annotate

    ds = xr.Dataset()
    for name, value in values.items():
        value = np.asarray(value)
        if value.ndim == 0:
            ds[name] = xr.DataArray(value)
        elif value.ndim == 1:
            ds[name] = xr.DataArray(value, dims=name, coords={name: value})
        else:
            raise ValueError(f"{name!r}: give a scalar or a 1-d array, got {value.ndim} dims")
    return annotate(ds)
