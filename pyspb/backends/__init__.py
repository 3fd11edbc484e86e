"""Backends: engines that work on flat arrays of grid points.

A backend is a module that provides what :class:`Backend` declares:

* ``NAME``: its name; ``METHOD``: one line on how it solves (recorded in the attrs);
  ``MAIN_THREAD_ONLY``: whether it may only run in Python's main thread; ``PATHS``: its
  solvers, if it counts the points each finished;
* ``check_memory(cutoff)``: a MemoryError before any work if the cutoff cannot fit;
* ``solver_options(tolerance) -> dict``: the backend checks the options it is given (and
  says which it ignores) and returns the keyword arguments of its solvers;
* ``steady_state_populations(Delta, J, chi, xi, gamma, *, cutoff, **options) -> P`` with
  1-d inputs of length npts (``J`` complex) and ``P`` of shape (npts, cutoff + 1, cutoff + 1);
* ``tau_correlations(..., tau, *, cutoff) -> dict`` and ``spectra(..., omega, *, cutoff)
  -> dict`` for :func:`pyspb.g2_tau` and :func:`pyspb.spectrum`;
* ``version_info() -> dict`` for the provenance attributes.

Everything else (checks, observables, labels) is shared code in :mod:`pyspb.solve`.
``native`` (NumPy/SciPy) always works; ``julia`` (QuantumOptics.jl through juliacall) is
imported lazily and only when asked for.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np

__all__ = ["BACKENDS", "Backend", "get_backend"]

#: accepted backend names
BACKENDS = ("native", "julia", "auto")


@runtime_checkable
class Backend(Protocol):
    """What :func:`pyspb.solve` and :func:`pyspb.g2_tau` ask of a backend (a module).

    Rates are in one unit (that of the inputs), ``tau`` in its inverse.
    """

    #: the backend's name ("native", "julia"), recorded in the results' attrs
    NAME: str
    #: one line on how it solves, recorded in the results' attrs
    METHOD: str
    #: True if it may only be called from Python's main thread (then dask blocks are
    #: computed in the calling thread, never in worker threads)
    MAIN_THREAD_ONLY: bool
    #: names of its solvers, if it has several: ``steady_state_populations`` then takes a
    #: ``paths`` dict and counts in it the points each finished (recorded as ``points_<path>``)
    PATHS: tuple[str, ...]

    def check_memory(self, cutoff: int) -> None:
        """Raise a MemoryError naming ``cutoff`` and the memory it needs if it cannot fit (before any work)."""
        ...

    def solver_options(self, tolerance: float | None = None) -> dict[str, Any]:
        """Keyword arguments of :meth:`steady_state_populations` for the options asked.

        Each backend checks the options itself: ``tolerance`` (relative accuracy; None
        for the backend's default) is validated and returned by a backend that uses it,
        refused or reported as ignored by one that does not.  The returned ``tolerance``
        (if any) is recorded in the results' attrs.
        """
        ...

    def steady_state_populations(self, Delta, J, chi, xi, gamma, *, cutoff: int, **options: Any) -> np.ndarray:
        """Joint photon-number probabilities, shape (npts, cutoff + 1, cutoff + 1)."""
        ...

    def tau_correlations(self, *arrays: Any, cutoff: int) -> dict[str, np.ndarray]:
        """Two-time correlation functions for ``arrays = (Delta, J, chi, xi, gamma, tau)``.

        ``N_cw``, ``N_ccw`` (npts,) and ``G_cw_cw``, ``G_cw_ccw``, ``G_ccw_ccw``,
        ``photons_cw``, ``photons_ccw`` (npts, ntau); see
        :func:`pyspb.backends.native.dynamics.tau_correlations`.  A backend may add the
        ``populations`` (npts, cutoff + 1, cutoff + 1) of the steady states it propagated:
        :func:`pyspb.g2_tau` then takes their truncation error instead of solving them again.
        """
        ...

    def spectra(self, *arrays: Any, cutoff: int) -> dict[str, np.ndarray]:
        """Emission spectra for ``arrays = (Delta, J, chi, xi, gamma, omega)``.

        ``S_cw``, ``S_ccw`` (npts, nomega), ``coherent_cw``, ``coherent_ccw``, ``N_cw``,
        ``N_ccw`` (npts,); see :func:`pyspb.backends.native.spectrum.spectra`.  A backend may
        add the ``truncation_error`` (npts,) of the steady states it used: :func:`pyspb.spectrum`
        then does not solve them a second time to check the truncation.
        """
        ...

    def version_info(self) -> dict[str, Any]:
        """Versions (and settings) of what computes, for the provenance attributes."""
        ...


def get_backend(name: str) -> Backend:
    """The backend module for ``name`` ("native", "julia" or "auto").

    "auto" picks Julia only when juliacall could start it with pyspb's Julia packages without
    downloading or resolving anything, else the native engine; the exact rule, and why it says
    no, is :func:`pyspb.backends.julia.julia_ready`.
    """
    if not isinstance(name, str) or name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(map(repr, BACKENDS))}")
    if name == "auto":
        julia = importlib.import_module(".julia", __name__)
        name = "julia" if julia.ready() else "native"
    return cast(Backend, importlib.import_module(f".{name}", __name__))
