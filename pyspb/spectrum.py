"""``pyspb.spectrum``: the incoherent emission spectrum of each mode (what a spectrometer sees).

Normalisation (the same as QuTiP's ``spectrum`` of ``a^dagger, a`` with the coherent part
removed)::

    S_m(omega) = int_{-inf}^{inf} dtau exp(-i omega tau) <delta a_m^dag(tau) delta a_m(0)>,
    delta a_m = a_m - <a_m>,

with ``omega`` the angular-frequency detuning of the emitted light from the drive (rate
units; positive = blue of the drive).  Then ``int S_m d omega / (2 pi) = <a_m^dag a_m> -
|<a_m>|^2``: the incoherent photon number.  The coherent part, a delta peak
``2 pi |<a_m>|^2 delta(omega)``, is not in ``S_m``; its weight is returned as
``coherent_cw``/``coherent_ccw``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .attributes import annotate
from .backends import get_backend
from .batching import over_points
from .grid import flatten_inputs
from .observables import RESOLUTION, TRUNCATION_LIMIT, empty_mode
from .reporting import provenance
from .solve import check_cutoff, check_truncation, warn_if_truncated

__all__ = ["spectrum"]

#: points sent to the backend at a time (progress is reported per chunk)
CHUNK = 16


def spectrum(
    inputs: xr.Dataset, omega, cutoff: int = 6, backend: str = "native", progress: bool | None = None
) -> xr.Dataset:
    """Incoherent emission spectra ``S_cw``, ``S_ccw`` at every grid point and frequency.

    Parameters
    ----------
    inputs : xarray.Dataset
        Model inputs, as for :func:`pyspb.solve`.
    omega : array_like of float
        Detunings of the emitted light from the drive, in the rate unit (1e6 s^-1).
    cutoff : int
        Largest photon number per mode.
    backend : {"native", "julia", "auto"}
        "native": per point, a reduced model of the resolvent ``(L - i omega)^-1`` built from a few
        GMRES solves and certified at every frequency by its true residual
        (:mod:`pyspb.backends.native.spectrum`); "julia": QuantumOptics.jl.
    progress : bool, optional
        Show a progress bar (default: for more than :data:`CHUNK` points).

    Returns
    -------
    xarray.Dataset
        ``S_cw``, ``S_ccw`` over the inputs' dims and a new dim ``omega`` (units 1e-6 s:
        ``int S d omega / 2 pi`` is the incoherent photon number ``<a^dag a> - |<a>|^2``, see
        the module docstring), and ``coherent_cw``, ``coherent_ccw`` (``|<a>|^2``, the weight of
        the coherent delta peak at omega = 0).
    """
    cutoff = check_cutoff(cutoff)
    engine = get_backend(backend)
    template, flat = flatten_inputs(inputs)
    omega = np.asarray(omega, dtype=float)
    if omega.ndim != 1 or omega.size == 0:
        raise ValueError(f"omega must be a non-empty 1-d array of frequencies, got shape {omega.shape}")
    if not np.all(np.isfinite(omega)):
        raise ValueError("omega must be finite")
    if np.any(flat["xi"] == 0):
        raise ValueError(
            "spectrum: xi = 0 at some points: the steady state is the vacuum and emits nothing (S = 0); "
            "leave those points out"
        )
    engine.check_memory(cutoff)  # a clear error now, not an allocation failure later
    names = ("S_cw", "S_ccw", "coherent_cw", "coherent_ccw")
    shapes = {name: (omega.size,) if name.startswith("S_") else () for name in names}

    def compute(*points):
        result = engine.spectra(*points, omega, cutoff=cutoff)
        if "truncation_error" not in result:  # a backend that does not report it: solved below
            result = {**result, "truncation_error": np.full(points[0].shape, np.nan)}
        return result

    values = over_points(
        compute,
        flat,
        {**shapes, "truncation_error": (), "N_cw": (), "N_ccw": ()},
        CHUNK,
        progress,
        f"pyspb.spectrum ({engine.NAME}, cutoff {cutoff})",
    )
    error = values.pop("truncation_error")
    if np.isnan(error).any():  # the steady states once more, as solve computes them
        gross = check_truncation(inputs, cutoff, backend, "pyspb.spectrum")
    else:  # the backend's own steady states (no second solve): warn as solve does
        warn_if_truncated(xr.DataArray(error), cutoff, "pyspb.spectrum", stacklevel=2)
        gross = error > TRUNCATION_LIMIT
    N = {mode: values.pop(f"N_{mode}") for mode in ("cw", "ccw")}
    for value in values.values():  # as solve: the truncated model's numbers are not the resonator's
        value[gross] = np.nan
    for mode in ("cw", "ccw"):  # as g2_tau: an empty mode's light is rounding noise (it can be < 0)
        values[f"S_{mode}"][empty_mode(N[mode], N["cw"] + N["ccw"])] = np.nan
    out = xr.Dataset(coords=template.coords)
    for name in names:
        extra = ("omega",) if name.startswith("S_") else ()
        out[name] = (template.dims + extra, values[name].reshape(template.shape + values[name].shape[1:]))
    out = out.assign_coords(omega=omega)
    for mode in ("cw", "ccw"):
        out[f"S_{mode}"].attrs["comment"] = (
            f"S(omega) = int dtau exp(-i omega tau) <da^dag(tau) da(0)>, da = a - <a> ({mode} mode); "
            "int S domega / 2pi = <a^dag a> - |<a>|^2; the coherent delta peak at omega = 0 is left out "
            f"(its weight is coherent_{mode}); NaN where the {mode} mode is empty to numerical precision "
            f"(N below {RESOLUTION:g} of the total photon number: S would be rounding noise); NaN where "
            f"truncation_error of the steady state exceeds {TRUNCATION_LIMIT:g} (raise cutoff)"
        )
    out.attrs.update(provenance(engine, cutoff, None))
    out.attrs["method_spectrum"] = getattr(engine, "METHOD_SPECTRUM", engine.METHOD)
    return annotate(out)
