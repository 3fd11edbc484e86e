"""``pyspb.solve``: the labelled layer around the backends (steady states and g^(n)(0))."""

from __future__ import annotations

import numbers
import os

import numpy as np
import xarray as xr

from .attributes import annotate
from .backends import get_backend
from .checkpoint import Checkpoint, fingerprint
from .grid import POINT_ORDER, check_inputs, flatten_inputs, is_lazy
from .observables import MAX_ORDER, RESOLUTION, correlations, truncation_error
from .reporting import progress_bar, provenance

__all__ = ["solve", "check_cutoff"]

#: points sent to a backend at a time (progress is reported per chunk)
DEFAULT_CHUNK = 2048

OBSERVABLES = ("N_cw", "N_ccw", "g2_cw", "g3_cw", "g4_cw", "g2_ccw", "g3_ccw", "g4_ccw", "g2_cross")


def check_cutoff(cutoff) -> int:
    """Return ``cutoff`` as an int >= 1, or raise a ValueError/TypeError saying why not."""
    if isinstance(cutoff, bool) or not isinstance(cutoff, numbers.Integral):
        raise TypeError(f"cutoff must be an integer (the largest photon number kept per mode), got {cutoff!r}")
    if cutoff < 1:
        raise ValueError(f"cutoff must be >= 1, got {cutoff}; g4 needs cutoff >= 4")
    return int(cutoff)


#: cutoffs tried by ``cutoff="auto"``, and the relative change of g2..g4 it accepts
AUTO_CUTOFFS = tuple(range(4, 31, 2))
AUTO_TOLERANCE = 1e-6


def solve(
    inputs: xr.Dataset,
    cutoff: int | str = 6,
    backend: str = "native",
    *,
    P: bool = False,
    tolerance: float | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> xr.Dataset:
    """Exact steady state of the truncated model at every grid point, and its observables.

    Parameters
    ----------
    inputs : xarray.Dataset
        Variables ``Delta``, ``chi``, ``xi``, ``gamma`` (real) and ``J`` (complex) or
        ``J_re``/``J_im``, in one rate unit, as scalars or arrays over any shared dims
        (:meth:`pyspb.Device.rates` builds one).
    cutoff : int or "auto"
        Largest photon number kept per mode (Fock states 0..cutoff); g^(n) needs
        ``cutoff >= n`` and is NaN otherwise.  Check ``truncation_error`` in the result.
        "auto" raises the cutoff (4, 6, 8, ...) until N, g2, g3 and g4 of both modes change
        by less than :data:`AUTO_TOLERANCE` (relative) at every point; the attrs record the
        cutoff used.
    backend : {"native", "julia", "auto"}
        "native" (NumPy/SciPy), "julia" (QuantumOptics.jl via juliacall) or "auto" (Julia
        if Julia and pyspb's Julia packages are already installed, so that nothing is
        downloaded; else native).
    P : bool
        Also return the joint photon-number probabilities ``P(n_cw, n_ccw)``.
    tolerance : float, optional
        Relative accuracy asked of the native engine per photon-number level (default
        :data:`pyspb.backends.native.DEFAULT_TOLERANCE`): the estimated remaining error of the
        level sweeps, or the graded residual of the Krylov solver; ignored by Julia (direct
        solve).
    chunk_size : int
        Points per backend call.
    progress : bool, optional
        Show a progress bar (default: only for grids larger than one chunk).
    checkpoint : path-like, optional
        File recording finished chunks (see :mod:`pyspb.checkpoint`).  If it exists and was
        written by the same call (same inputs, cutoff, backend, tolerance), only the missing
        points are computed; a checkpoint of another call is refused with a ValueError.
        Not available for dask inputs (their chunks are the unit of work).

    Notes
    -----
    Dask-backed inputs (``inputs.chunk(...)``) give lazy results, computed block by block
    with :func:`xarray.apply_ufunc` (``dask="parallelized"``); with a ``dask.distributed``
    Client the blocks run on the cluster.

    Returns
    -------
    xarray.Dataset
        ``N_cw, N_ccw, g2_cw, g3_cw, g4_cw, g2_ccw, g3_ccw, g4_ccw``, the zero-delay cross
        correlation ``g2_cross = <n_cw n_ccw> / (N_cw N_ccw)``, ``truncation_error`` (and
        ``P``) over the inputs' dims and coords, with ``units``/``long_name`` attrs and
        provenance attrs (pyspb version, backend, cutoff, tolerance).
    """
    if isinstance(cutoff, str) and cutoff == "auto":
        return _solve_auto(inputs, backend, P=P, tolerance=tolerance, chunk_size=chunk_size, progress=progress)
    cutoff = check_cutoff(cutoff)
    engine = get_backend(backend)
    if not isinstance(chunk_size, numbers.Integral) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    options = {}
    if engine.NAME == "native":
        from .backends import native

        tolerance = native.DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
        if not 0 < tolerance < 1e-3:
            raise ValueError(f"tolerance must be in (0, 1e-3), got {tolerance}")
        options["tolerance"] = tolerance
    else:
        tolerance = None
    attrs = provenance(engine, cutoff, tolerance)
    if is_lazy(inputs):
        if checkpoint is not None:
            raise ValueError("checkpoint is not available for dask inputs: compute chunk by chunk instead")
        return _assemble(_lazy_populations(inputs, engine, cutoff, options), P, attrs)
    template, flat = flatten_inputs(inputs)
    npts = template.size
    populations = np.empty((npts, cutoff + 1, cutoff + 1))
    todo = np.arange(npts)
    store = None
    if checkpoint is not None:
        store = Checkpoint(checkpoint, fingerprint(flat, cutoff, engine.NAME, tolerance), npts, cutoff)
        populations[store.done] = store.populations[store.done]
        todo = np.flatnonzero(~store.done)
        attrs["checkpoint"] = str(checkpoint)
    bar = progress_bar(npts, progress, f"pyspb.solve ({engine.NAME}, cutoff {cutoff})", DEFAULT_CHUNK)
    try:
        if bar is not None:
            bar.update(npts - todo.size)
        for start in range(0, todo.size, chunk_size):
            chunk = todo[start : start + chunk_size]
            populations[chunk] = np.clip(
                engine.steady_state_populations(*(flat[name][chunk] for name in POINT_ORDER), cutoff=cutoff, **options),
                0.0,  # rounding noise can leave populations of order -1e-20
                1.0,
            )
            if store is not None:
                store.record(chunk, populations[chunk])
            if bar is not None:
                bar.update(chunk.size)
    finally:
        if bar is not None:
            bar.close()
    levels = np.arange(cutoff + 1)
    P_array = xr.DataArray(
        populations.reshape(template.shape + (cutoff + 1, cutoff + 1)),
        dims=template.dims + ("n_cw", "n_ccw"),
        coords={**template.coords, "n_cw": levels, "n_ccw": levels},
    )
    return _assemble(P_array, P, attrs)


def _solve_auto(inputs: xr.Dataset, backend: str, **options) -> xr.Dataset:
    """``solve`` with the smallest cutoff of AUTO_CUTOFFS at which the observables settle."""
    previous = None
    for cutoff in AUTO_CUTOFFS:
        out = solve(inputs, cutoff, backend, **options)
        if previous is not None:
            change = max(
                float(np.nanmax(np.abs(out[name] / previous[name] - 1).values, initial=0.0)) for name in OBSERVABLES
            )
            if change < AUTO_TOLERANCE:
                out.attrs["cutoff_selection"] = (
                    f"auto: N, g2, g3, g4 changed by {change:.1e} (< {AUTO_TOLERANCE:g}) "
                    f"from cutoff {cutoff - 2} to {cutoff}"
                )
                return out
        previous = out
    raise ValueError(
        f"cutoff='auto' found no cutoff up to {AUTO_CUTOFFS[-1]} at which g2..g4 settle to "
        f"{AUTO_TOLERANCE:g}: the drive is too strong for a truncated model; give cutoff explicitly"
    )


def _lazy_populations(inputs: xr.Dataset, engine, cutoff: int, options: dict) -> xr.DataArray:
    """P over the inputs' dims and (n_cw, n_ccw), one backend call per dask block."""

    def block(*arrays: np.ndarray) -> np.ndarray:
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        flat = [np.broadcast_to(a, shape).ravel() for a in arrays]
        P = engine.steady_state_populations(*flat, cutoff=cutoff, **options)
        return np.clip(P, 0.0, 1.0).reshape(shape + (cutoff + 1, cutoff + 1))

    arrays = xr.broadcast(*check_inputs(inputs).values())
    P = xr.apply_ufunc(
        block,
        *arrays,
        output_core_dims=[["n_cw", "n_ccw"]],
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {"n_cw": cutoff + 1, "n_ccw": cutoff + 1}},
    )
    levels = np.arange(cutoff + 1)
    return P.assign_coords(n_cw=levels, n_ccw=levels)


def _observables(P: np.ndarray) -> tuple[np.ndarray, ...]:
    """OBSERVABLES and truncation_error from P of shape (..., levels, levels)."""
    shape = P.shape[:-2]
    flat = P.reshape((-1,) + P.shape[-2:])
    values = correlations(flat)
    return tuple(values[name].reshape(shape) for name in OBSERVABLES) + (truncation_error(flat).reshape(shape),)


def _assemble(P: xr.DataArray, with_P: bool, attrs: dict) -> xr.Dataset:
    """Labelled Dataset of the observables from P (numpy or dask), shared by every backend."""
    cutoff = P.sizes["n_cw"] - 1
    results = xr.apply_ufunc(
        _observables,
        P,
        input_core_dims=[["n_cw", "n_ccw"]],
        output_core_dims=[[]] * (len(OBSERVABLES) + 1),
        dask="parallelized",
        output_dtypes=[float] * (len(OBSERVABLES) + 1),
    )
    out = xr.Dataset(dict(zip(OBSERVABLES + ("truncation_error",), results, strict=False)))
    for mode in ("cw", "ccw"):
        for order in range(2, MAX_ORDER + 1):
            notes = [
                f"NaN where the {mode} mode is empty to numerical precision "
                f"(N_{mode} below {RESOLUTION:g} of the total photon number): 0/0",
                f"NaN where <a^dagger^{order} a^{order}> of the {mode} mode is below {RESOLUTION:g} "
                f"of the same moment of the total photon number: not resolved by the solver "
                f"(e.g. g3, g4 of the nearly empty ccw mode when J is small)",
            ]
            if order > cutoff:
                notes.append(f"NaN everywhere: cutoff {cutoff} < {order} cannot hold {order} photons")
            out[f"g{order}_{mode}"].attrs["comment"] = "; ".join(notes)
    out["g2_cross"].attrs["comment"] = (
        f"<n_cw n_ccw> / (N_cw N_ccw); NaN where either mode is empty (N below {RESOLUTION:g} of the total "
        f"photon number: 0/0) or 2 <n_cw n_ccw> is below {RESOLUTION:g} of <n (n - 1)> of the total photon "
        "number (not resolved)"
    )
    out["truncation_error"].attrs["comment"] = "raise cutoff if this is not negligible against the populations you need"
    if with_P:
        out["P"] = P
    else:
        out = out.drop_vars(["n_cw", "n_ccw"], errors="ignore")
    out.attrs.update(attrs)
    return annotate(out)
