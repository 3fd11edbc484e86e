"""``pyspb.solve``: the labelled layer around the backends (steady states and g^(n)(0))."""

from __future__ import annotations

import datetime as _dt
import numbers

import numpy as np
import xarray as xr

from .attributes import annotate
from .backends import get_backend
from .grid import flatten_inputs
from .observables import EMPTY_MODE_THRESHOLD, MAX_ORDER, correlations, truncation_error

__all__ = ["solve", "check_cutoff"]

#: points sent to a backend at a time (progress is reported per chunk)
DEFAULT_CHUNK = 2048

OBSERVABLES = ("N_cw", "N_ccw", "g2_cw", "g3_cw", "g4_cw", "g2_ccw", "g3_ccw", "g4_ccw")


def check_cutoff(cutoff) -> int:
    """Return ``cutoff`` as an int >= 1, or raise a ValueError/TypeError saying why not."""
    if isinstance(cutoff, bool) or not isinstance(cutoff, numbers.Integral):
        raise TypeError(
            f"cutoff must be an integer (the largest photon number kept per mode), got {cutoff!r}"
        )
    if cutoff < 1:
        raise ValueError(f"cutoff must be >= 1, got {cutoff}; g4 needs cutoff >= 4")
    return int(cutoff)


def _provenance(backend, cutoff: int, tolerance: float | None) -> dict:
    from . import __version__

    attrs = {
        "pyspb_version": __version__,
        "backend": backend.NAME,
        "cutoff": cutoff,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": "two-mode Kerr resonator with backscattering, SPEC section 1",
    }
    if tolerance is not None:
        attrs["tolerance"] = tolerance
    for key, value in backend.version_info().items():
        attrs[f"{backend.NAME}_{key}"] = str(value)
    return attrs


def _progress_bar(total: int, enabled: bool | None, description: str):
    """A tqdm progress bar, or None when disabled or tqdm is missing."""
    if enabled is False or (enabled is None and total <= DEFAULT_CHUNK):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=description, unit="pt")


def solve(
    inputs: xr.Dataset,
    cutoff: int = 6,
    backend: str = "native",
    *,
    P: bool = False,
    tolerance: float | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool | None = None,
) -> xr.Dataset:
    """Exact steady state of the truncated model at every grid point, and its observables.

    Parameters
    ----------
    inputs : xarray.Dataset
        Variables ``Delta``, ``chi``, ``xi``, ``gamma`` (real) and ``J`` (complex) or
        ``J_re``/``J_im``, in one rate unit, as scalars or arrays over any shared dims
        (:meth:`pyspb.Device.rates` builds one).
    cutoff : int
        Largest photon number kept per mode (Fock states 0..cutoff); g^(n) needs
        ``cutoff >= n`` and is NaN otherwise.  Check ``truncation_error`` in the result.
    backend : {"native", "julia", "auto"}
        "native" (NumPy/SciPy), "julia" (QuantumOptics.jl via juliacall) or "auto" (Julia
        if a Julia executable is already installed, else native).
    P : bool
        Also return the joint photon-number probabilities ``P(n_cw, n_ccw)``.
    tolerance : float, optional
        Relative residual for the native engine (default
        :data:`pyspb.backends.native.DEFAULT_TOLERANCE`); ignored by Julia (direct solve).
    chunk_size : int
        Points per backend call.
    progress : bool, optional
        Show a progress bar (default: only for grids larger than one chunk).

    Returns
    -------
    xarray.Dataset
        ``N_cw, N_ccw, g2_cw, g3_cw, g4_cw, g2_ccw, g3_ccw, g4_ccw, truncation_error``
        (and ``P``) over the inputs' dims and coords, with ``units``/``long_name`` attrs
        and provenance attrs (pyspb version, backend, cutoff, tolerance).
    """
    cutoff = check_cutoff(cutoff)
    engine = get_backend(backend)
    template, flat = flatten_inputs(inputs)
    if not isinstance(chunk_size, numbers.Integral) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    npts = template.size
    options = {}
    if engine.NAME == "native":
        from .backends import native

        tolerance = native.DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
        if not 0 < tolerance < 1e-3:
            raise ValueError(f"tolerance must be in (0, 1e-3), got {tolerance}")
        options["tolerance"] = tolerance
    else:
        tolerance = None
    populations = np.empty((npts, cutoff + 1, cutoff + 1))
    bar = _progress_bar(npts, progress, f"pyspb.solve ({engine.NAME}, cutoff {cutoff})")
    try:
        for start in range(0, npts, chunk_size):
            part = slice(start, start + chunk_size)
            populations[part] = engine.steady_state_populations(
                *(flat[name][part] for name in ("Delta", "J", "chi", "xi", "gamma")),
                cutoff=cutoff,
                **options,
            )
            if bar is not None:
                bar.update(populations[part].shape[0])
    finally:
        if bar is not None:
            bar.close()
    # rounding noise can leave populations of order -1e-20: probabilities are >= 0
    populations = np.clip(populations, 0.0, 1.0)
    return _assemble(template, populations, P, _provenance(engine, cutoff, tolerance))


def _assemble(template: xr.DataArray, populations: np.ndarray, with_P: bool, attrs: dict) -> xr.Dataset:
    """Labelled Dataset of the observables (shared by every backend)."""
    dims, shape = template.dims, template.shape
    cutoff = populations.shape[-1] - 1
    out = xr.Dataset(coords=template.coords)
    for name, values in correlations(populations).items():
        out[name] = (dims, values.reshape(shape))
    for mode in ("cw", "ccw"):
        for order in range(2, MAX_ORDER + 1):
            notes = [
                f"NaN where the {mode} mode is empty to numerical precision "
                f"(N_{mode} below {EMPTY_MODE_THRESHOLD:g} of the total photon number): 0/0"
            ]
            if order > cutoff:
                notes.append(f"NaN everywhere: cutoff {cutoff} < {order} cannot hold {order} photons")
            out[f"g{order}_{mode}"].attrs["comment"] = "; ".join(notes)
    out["truncation_error"] = (dims, truncation_error(populations).reshape(shape))
    out["truncation_error"].attrs["comment"] = (
        "raise cutoff if this is not negligible against the populations you need"
    )
    if with_P:
        levels = np.arange(cutoff + 1)
        out["P"] = (dims + ("n_cw", "n_ccw"), populations.reshape(shape + (cutoff + 1, cutoff + 1)))
        out = out.assign_coords(n_cw=levels, n_ccw=levels)
    out.attrs.update(attrs)
    return annotate(out)
