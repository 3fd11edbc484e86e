"""Correlations in time: g2(tau) of the cw mode (quantum regression theorem)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .attributes import annotate
from .backends import get_backend
from .grid import POINT_ORDER, flatten_inputs
from .reporting import progress_bar, provenance
from .solve import check_cutoff, check_truncation

__all__ = ["g2_tau"]

#: points sent to the backend at a time (progress is reported per chunk)
CHUNK = 16


def g2_tau(
    inputs: xr.Dataset, tau, cutoff: int = 6, backend: str = "native", progress: bool | None = None
) -> xr.Dataset:
    """g2(tau) of the cw mode at every grid point.

    ``g2(tau) = Tr[a1^dagger a1 exp(L tau)(a1 rho a1^dagger)] / N_cw^2`` with the exact
    steady state ``rho`` of the truncated model.

    Parameters
    ----------
    inputs : xarray.Dataset
        Model inputs, as for :func:`pyspb.solve`.
    tau : array_like of float
        Delays >= 0 in the inverse rate unit (1e-6 s for rates in 1e6 s^-1, i.e. µs).
    cutoff : int
        Largest photon number per mode.
    backend : {"native", "julia", "auto"}
    progress : bool, optional
        Show a progress bar (default: for more than :data:`CHUNK` points; each point takes
        ~0.1-1 s at cutoff 5).

    Returns
    -------
    xarray.Dataset
        ``g2_cw_tau`` over the inputs' dims and a new dim ``tau``.
    """
    cutoff = check_cutoff(cutoff)
    engine = get_backend(backend)
    template, flat = flatten_inputs(inputs)
    tau = np.asarray(tau, dtype=float)
    if tau.ndim != 1 or tau.size == 0:
        raise ValueError(f"tau must be a non-empty 1-d array of delays, got shape {tau.shape}")
    if not np.all(np.isfinite(tau)) or np.any(tau < 0):
        raise ValueError("tau must be finite and >= 0 (g2(tau) is symmetric in tau)")
    if np.any(flat["xi"] == 0):
        raise ValueError("g2(tau) is undefined (0/0) where xi = 0: the steady state is the vacuum")
    check_truncation(inputs, cutoff, backend, "pyspb.g2_tau")  # warns as solve does (TruncationWarning)
    npts = flat["xi"].size
    values = np.empty((npts, tau.size))
    bar = progress_bar(npts, progress, f"pyspb.g2_tau ({engine.NAME}, cutoff {cutoff})", CHUNK)
    try:
        for start in range(0, npts, CHUNK):
            chunk = slice(start, start + CHUNK)
            points = (flat[name][chunk] for name in POINT_ORDER)
            values[chunk] = engine.g2_tau_cw(*points, tau, cutoff=cutoff)
            if bar is not None:
                bar.update(values[chunk].shape[0])
    finally:
        if bar is not None:
            bar.close()
    out = xr.Dataset(coords=template.coords)
    out["g2_cw_tau"] = (template.dims + ("tau",), values.reshape(template.shape + (tau.size,)))
    out = out.assign_coords(tau=tau)
    out.attrs.update(provenance(engine, cutoff, None))
    return annotate(out)
