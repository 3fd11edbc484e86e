"""Backends: engines that work on flat arrays of grid points.

A backend is a module with

* ``NAME``: its name; ``METHOD``: one line on how it solves (recorded in the attrs);
* ``steady_state_populations(Delta, J, chi, xi, gamma, *, cutoff) -> P`` with 1-d inputs of
  length npts (``J`` complex) and ``P`` of shape (npts, cutoff + 1, cutoff + 1);
* ``g2_tau_cw(Delta, J, chi, xi, gamma, tau, *, cutoff) -> g2`` of shape (npts, ntau);
* ``version_info() -> dict`` for the provenance attributes.

Everything else (checks, observables, labels) is shared code in :mod:`pyspb.solve`.
``native`` (NumPy/SciPy) always works; ``julia`` (QuantumOptics.jl through juliacall) is
imported lazily and only when asked for.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["BACKENDS", "get_backend"]

#: accepted backend names
BACKENDS = ("native", "julia", "auto")


def get_backend(name: str) -> ModuleType:
    """The backend module for ``name`` ("native", "julia" or "auto").

    "auto" picks Julia only when a Julia executable is already present and juliapkg has
    already installed pyspb's Julia packages (so it never starts a download), else the
    native engine.
    """
    if not isinstance(name, str) or name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(map(repr, BACKENDS))}")
    if name == "auto":
        julia = importlib.import_module(".julia", __name__)
        return julia if julia.ready() else importlib.import_module(".native", __name__)
    return importlib.import_module(f".{name}", __name__)
