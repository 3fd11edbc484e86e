"""Correlations in time: g2(tau) of each mode and the cw-ccw cross correlation (quantum regression).

With the exact steady state ``rho`` of the truncated model and ``x_m(tau) = exp(L tau)(a_m rho
a_m^dagger)``:

* ``g2_cw_tau = Tr[n_cw x_cw(tau)] / N_cw^2``,
* ``g2_ccw_tau = Tr[n_ccw x_ccw(tau)] / N_ccw^2``,
* ``g2_cross_tau = Tr[n_ccw x_cw(tau)] / (N_cw N_ccw)``
  (``<a_cw^dag(0) a_ccw^dag(tau) a_ccw(tau) a_cw(0)> / (N_cw N_ccw)``: a cw photon first, then
  a ccw photon after tau).

NaN, with the reason in the variable's ``comment``, where a mode is empty (N below
:data:`pyspb.observables.RESOLUTION` of the total photon number: 0/0) and where the numerator
is below that resolution of the photon number of the same conditional state (the rule of
docs/model.md, section 3, applied at every delay); NaN, as in :func:`pyspb.solve`, where the
steady state's truncation error exceeds :data:`pyspb.observables.TRUNCATION_LIMIT`, and
everywhere for cutoff < 2.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .attributes import annotate
from .backends import get_backend
from .batching import over_points
from .grid import flatten_inputs
from .observables import DARK_MODE, RESOLUTION, TRUNCATION_LIMIT, empty_mode, truncation_error
from .reporting import provenance
from .solve import check_cutoff, check_truncation, warn_if_truncated

__all__ = ["g2_tau", "check_delays"]

#: points sent to the backend at a time (progress is reported per chunk)
CHUNK = 128

#: (variable, conditional state (first photon), numerator, observed mode (second photon))
CORRELATIONS = (
    ("g2_cw_tau", "cw", "G_cw_cw", "cw"),
    ("g2_ccw_tau", "ccw", "G_ccw_ccw", "ccw"),
    ("g2_cross_tau", "cw", "G_cw_ccw", "ccw"),
)


def check_delays(tau, name: str = "tau") -> np.ndarray:
    """``tau`` as a 1-d float array of finite delays >= 0, or a ValueError saying what is wrong."""
    tau = np.asarray(tau, dtype=float)
    if tau.ndim != 1 or tau.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d array of delays, got shape {tau.shape}")
    if not np.all(np.isfinite(tau)) or np.any(tau < 0):
        raise ValueError(f"{name} must be finite and >= 0 (g2(tau) is symmetric in tau)")
    return tau


def normalise(values: dict[str, np.ndarray], resolution: float = RESOLUTION) -> dict[str, np.ndarray]:
    """g2_cw_tau, g2_ccw_tau, g2_cross_tau from a backend's correlation functions.

    ``values`` holds ``N_cw, N_ccw`` (npts,) and ``G_cw_cw, G_cw_ccw, G_ccw_ccw,
    photons_cw, photons_ccw`` (npts, ntau) as returned by a backend's ``tau_correlations``.
    """
    N = {"cw": values["N_cw"], "ccw": values["N_ccw"]}
    total = N["cw"] + N["ccw"]
    empty = {mode: empty_mode(n, total, resolution) for mode, n in N.items()}
    other = {"cw": "ccw", "ccw": "cw"}
    # a mode with fewer than DARK_MODE of the other's photons: not controlled by the integrator
    dark = {mode: ~(n >= DARK_MODE * N[other[mode]]) for mode, n in N.items()}
    out = {}
    for name, first, numerator, second in CORRELATIONS:
        G = values[numerator]
        with np.errstate(divide="ignore", invalid="ignore"):
            g = G / (N[first] * N[second])[:, None]
        unresolved = ~(G >= resolution * values[f"photons_{first}"])
        g[unresolved | (empty[first] | empty[second] | dark[first] | dark[second])[:, None]] = np.nan
        out[name] = g
    return out


def _correlations(engine, points, tau: np.ndarray, cutoff: int) -> dict[str, np.ndarray]:
    """The normalised correlations of a chunk of points and, where the backend returns the
    steady states' populations, their truncation error (NaN otherwise).
    """
    values = engine.tau_correlations(*points, tau, cutoff=cutoff)
    out = normalise(values)
    populations = values.get("populations")
    npts = points[0].size
    out["truncation_error"] = truncation_error(populations) if populations is not None else np.full(npts, np.nan)
    return out


def _comment(name: str, first: str, second: str, cutoff: int) -> str:
    modes = sorted({first, second})
    notes = [
        f"NaN where the {' or '.join(modes)} mode is empty to numerical precision (N below {RESOLUTION:g} "
        "of the total photon number): 0/0",
        f"NaN at delays where Tr[n_{second} x_{first}(tau)] is below {RESOLUTION:g} of the photon number of the "
        f"conditional state x_{first}(tau) = exp(L tau)(a_{first} rho a_{first}^dagger): not resolved",
        f"NaN where the {' or '.join(modes)} mode holds fewer than {DARK_MODE:g} of the other mode's photons: "
        "the time integration holds each correlation to ~1e-6 of its own size only down to that ratio",
        f"NaN where truncation_error of the steady state exceeds {TRUNCATION_LIMIT:g} (raise cutoff)",
    ]
    if cutoff < 2:
        notes.append(f"NaN everywhere: cutoff {cutoff} < 2 cannot hold the two photons g2 counts")
    return "; ".join(notes)


def g2_tau(
    inputs: xr.Dataset, tau, cutoff: int = 6, backend: str = "native", progress: bool | None = None
) -> xr.Dataset:
    """g2(tau) of both modes and the cw-ccw cross correlation at every grid point.

    ``g2_cw_tau = Tr[n1 exp(L tau)(a1 rho a1^dagger)] / N_cw^2``, ``g2_ccw_tau`` likewise for
    the ccw mode, ``g2_cross_tau = Tr[n2 exp(L tau)(a1 rho a1^dagger)] / (N_cw N_ccw)``, with the
    exact steady state ``rho`` of the truncated model (quantum regression theorem).

    Parameters
    ----------
    inputs : xarray.Dataset
        Model inputs, as for :func:`pyspb.solve`.
    tau : array_like of float
        Delays >= 0 in the inverse rate unit (1e-6 s for rates in 1e6 s^-1, i.e. µs).
    cutoff : int
        Largest photon number per mode.
    backend : {"native", "julia", "auto"}
        "native": exponential integrator (:mod:`pyspb.backends.native.dynamics`); "julia":
        QuantumOptics.jl ``timeevolution.master``.
    progress : bool, optional
        Show a progress bar (default: for more than :data:`CHUNK` points).

    Returns
    -------
    xarray.Dataset
        ``g2_cw_tau``, ``g2_ccw_tau``, ``g2_cross_tau`` over the inputs' dims and a new dim
        ``tau``; NaN with a reason (``comment`` attr) where a mode is empty or a value is not
        resolved (module docstring).
    """
    cutoff = check_cutoff(cutoff)
    engine = get_backend(backend)
    template, flat = flatten_inputs(inputs)
    tau = check_delays(tau)
    if np.any(flat["xi"] == 0):
        raise ValueError("g2(tau) is undefined (0/0) where xi = 0: the steady state is the vacuum")
    values = over_points(
        lambda *points: _correlations(engine, points, tau, cutoff),
        flat,
        {**{name: (tau.size,) for name, *_ in CORRELATIONS}, "truncation_error": ()},
        CHUNK,
        progress,
        f"pyspb.g2_tau ({engine.NAME}, cutoff {cutoff})",
    )
    error = values.pop("truncation_error")
    if np.all(np.isfinite(error)):  # from the steady states the backend propagated: warn as solve does
        warn_if_truncated(xr.DataArray(error), cutoff, "pyspb.g2_tau")
        gross = error > TRUNCATION_LIMIT
    else:  # a backend that does not return its steady states: solve them
        gross = check_truncation(inputs, cutoff, backend, "pyspb.g2_tau")
    for g in values.values():  # as solve: the truncated model's numbers are not the resonator's
        g[gross] = np.nan
        if cutoff < 2:
            g[:] = np.nan
    out = xr.Dataset(coords=template.coords)
    for name, first, _, second in CORRELATIONS:
        out[name] = (template.dims + ("tau",), values[name].reshape(template.shape + (tau.size,)))
        out[name].attrs["comment"] = _comment(name, first, second, cutoff)
    out = out.assign_coords(tau=tau)
    out.attrs.update(provenance(engine, cutoff, None))
    out.attrs["method_tau"] = getattr(engine, "METHOD_TAU", engine.METHOD)
    return annotate(out)
