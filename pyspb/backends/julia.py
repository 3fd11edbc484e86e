"""Julia backend: QuantumOptics.jl through juliacall, loaded lazily and only when asked for.

The computation lives in the Julia package ``PySPBJulia`` (``julia/PySPBJulia`` at the top
of the repository): exact steady states by a sparse LU solve of the Liouvillian with the
vacuum population fixed, grid points spread over Julia's threads, and g2(tau) by
``timeevolution.master``.  This module only moves arrays in and out.

Nothing here imports juliacall until a computation (or :func:`version_info`) is requested.
Whether Julia and pyspb's Julia packages are present (:func:`executable_present`,
:func:`julia_ready`, used by ``backend="auto"``) is :mod:`pyspb.backends.julia_setup`'s
question; it never starts Julia and never downloads anything.

Where the Julia code comes from
-------------------------------
``pyspb/juliapkg.json`` declares QuantumOptics.jl and ``PySPBJulia`` (developed from the
path ``julia/PySPBJulia`` relative to that file), so juliapkg installs both into its
Julia environment when juliacall starts.  In the repository ``pyspb/julia`` is a symbolic
link to the top-level ``julia/`` directory; wheels and sdists carry the Julia sources there
as package data, so the same relative path holds in every kind of install.  Setting ``PYSPB_JULIA_PROJECT`` to another
``PySPBJulia`` package directory loads that directory's source instead (for work on the
Julia code).

Configuration (environment variables)
-------------------------------------
``PYTHON_JULIACALL_THREADS``
    Julia threads; set to ``auto`` before juliacall starts unless you (or
    ``JULIA_NUM_THREADS``) chose a number.
``PYTHON_JULIACALL_HANDLE_SIGNALS``
    set to ``yes`` (juliacall's advice for multi-threaded Julia) unless you chose otherwise
    or asked for a single thread.  With ``yes`` Julia installs its own signal handlers when
    juliacall starts, in place of Python's, for the rest of the Python session: from the
    first Julia call on, Ctrl-C (and Jupyter's interrupt, a SIGINT) no longer raises
    KeyboardInterrupt, in Julia or in Python code (juliacall's documentation); only a restart
    gives it back.  Choose ``PYTHON_JULIACALL_THREADS=1`` or ``..._HANDLE_SIGNALS=no`` (then
    multi-threaded Julia may crash, juliacall warns) to keep Python's handling.
``PYTHON_JULIAPKG_EXE``
    an existing ``julia`` executable for juliapkg to use instead of downloading one.
``PYTHON_JULIACALL_EXE`` with ``PYTHON_JULIACALL_PROJECT``
    (juliacall >= 0.9.28) a Julia and a project to use as they are, without juliapkg: the
    project must already hold PySPBJulia and PythonCall.
``PYSPB_JULIA_PROJECT``
    a ``PySPBJulia`` package directory to load instead of the installed one.

Threads and memory
------------------
Julia is called only from Python's main thread (:func:`_require_main_thread`; dask inputs
are computed block by block in the calling thread by :func:`pyspb.solve`).  Inside Julia the
points of a call are spread over at most :func:`concurrent_factorisations` tasks, Julia's
threads bounded by the estimated memory of one sparse LU factorisation
(:func:`factorisation_memory`) against the available memory.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from .julia_setup import (
    DEFAULT_PACKAGE_DIR,
    HOW_TO_GET_JULIA,
    PROJECT_ENV,
    executable_present,
    julia_ready,
    option,
    packages_installed,
    ready,
)
from .memory import available_memory

__all__ = [
    "NAME",
    "PROJECT_ENV",
    "available_memory",
    "check_memory",
    "concurrent_factorisations",
    "executable_present",
    "factorisation_memory",
    "julia_package_dir",
    "julia_ready",
    "packages_installed",
    "ready",
    "solver_options",
    "spectra",
    "steady_state_populations",
    "tau_correlations",
    "version_info",
]

NAME = "julia"
#: what solves the steady states (recorded in the results' attrs)
METHOD = "sparse LU (UMFPACK) of the vacuum-fixed Liouvillian built with QuantumOptics.jl"
#: juliacall must be called from Python's main thread (PythonCall.jl issue #578)
MAIN_THREAD_ONLY = True
#: one solver (sparse LU) for every point: no counts per path
PATHS: tuple[str, ...] = ()

# --- loading the Julia package ---------------------------------------------------------


def julia_package_dir() -> Path:
    """The PySPBJulia package directory to use: ``$PYSPB_JULIA_PROJECT``, else the default.

    Raises RuntimeError if that directory holds no PySPBJulia package.
    """
    value = os.environ.get(PROJECT_ENV)
    path = Path(value).expanduser() if value else DEFAULT_PACKAGE_DIR
    if (path / "Project.toml").is_file() and (path / "src" / "PySPBJulia.jl").is_file():
        return path
    where = f"{PROJECT_ENV}={value!r}" if value else f"{path} (next to the pyspb package)"
    raise RuntimeError(
        f"backend='julia': no PySPBJulia package (Project.toml and src/PySPBJulia.jl) at {where}. "
        f"Set {PROJECT_ENV} to the julia/PySPBJulia directory of a pyspb checkout. "
        'backend="native" computes the same results without Julia.'
    )


def _configure_juliacall() -> None:
    """Thread and signal defaults for juliacall, set only where the user chose nothing."""
    threads = option("juliacall-threads", "PYTHON_JULIACALL_THREADS")
    if threads is None and "JULIA_NUM_THREADS" not in os.environ:
        os.environ["PYTHON_JULIACALL_THREADS"] = threads = "auto"
    threads = threads or os.environ.get("JULIA_NUM_THREADS", "1")
    if option("juliacall-handle-signals", "PYTHON_JULIACALL_HANDLE_SIGNALS") is None and threads.strip() != "1":
        # juliacall's advice for Julia with several threads (see PythonCall.jl's docs)
        os.environ["PYTHON_JULIACALL_HANDLE_SIGNALS"] = "yes"


@functools.lru_cache(maxsize=1)
def _load():
    """Start Julia (once per process) and return the PySPBJulia module."""
    package = julia_package_dir()
    _configure_juliacall()
    try:
        import juliacall
    except Exception as error:  # ImportError, or juliapkg failing to find/install Julia
        raise RuntimeError(
            f"backend='julia': could not start Julia through juliacall ({type(error).__name__}: {error}). "
            + HOW_TO_GET_JULIA
        ) from error
    try:
        module = juliacall.newmodule("PySPB")
        if os.environ.get(PROJECT_ENV):
            module.include(str(package / "src" / "PySPBJulia.jl"))
        else:
            module.seval("using PySPBJulia")
        return module.PySPBJulia
    except Exception as error:
        raise RuntimeError(
            f"backend='julia': Julia started but the Julia package PySPBJulia could not be loaded "
            f"from {package} ({type(error).__name__}: {error}). " + HOW_TO_GET_JULIA
        ) from error


_LOAD_LOCK = threading.Lock()


def _require_main_thread() -> None:
    """Raise unless called from Python's main thread (juliacall may hang elsewhere).

    PythonCall.jl issue #578 (open; juliacall 0.9.x): Julia code called from a Python thread
    other than the main one hangs in ``jl_gc_wait_for_the_world`` as soon as it triggers a
    garbage collection, even with ``PYTHON_JULIACALL_HANDLE_SIGNALS=yes``.  The LU solves and
    the ODE runs allocate, so a collection is near-certain: refuse instead of hanging.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            f"backend='julia' was called from the Python thread {threading.current_thread().name!r}, "
            "not the main thread: juliacall can hang there when Julia collects garbage (PythonCall.jl "
            "issue #578). Call it from the main thread (pyspb.solve computes dask inputs for Julia "
            "block by block in the calling thread; do not wrap it in threads, dask.delayed or a "
            'dask.distributed worker), or use backend="native", which is thread-safe.'
        )


def _julia():
    _require_main_thread()
    with _LOAD_LOCK:
        return _load()


# --- memory: how many factorisations at once ---------------------------------------------

_MIB = 2**20

#: peak memory of one UMFPACK factorisation (symbolic + numeric, ComplexF64) of the reduced
#: system at the paper's point, (cutoff, bytes): cutoffs 6, 8, 10 measured for pyspb issue 10
#: with UMFPACK 5.7.9 (SuiteSparse 5.12, default control, Info[UMFPACK_PEAK_MEMORY]) on the
#: matrix of ``pyspb.model.liouvillian``; cutoff 14 as quoted in issue 10 (not measured here)
UMFPACK_MEASURED = ((6, 15.5 * _MIB), (8, 102 * _MIB), (10, 372 * _MIB), (14, 2.9e9))
#: safety factor on the interpolated measurement (UMFPACK version, value-dependent pivoting)
FACTORISATION_MARGIN = 1.5
#: share of the available memory the Julia tasks may fill with factorisations together
MEMORY_SHARE = 0.75


def _unknowns(cutoff: int) -> int:
    """Size of the reduced system: (cutoff + 1)^4 density-matrix entries less the vacuum one."""
    return (cutoff + 1) ** 4 - 1


def factorisation_memory(cutoff: int) -> float:
    """Estimated bytes one Julia task needs for one point at ``cutoff`` (its LU and buffers).

    The UMFPACK factors: a piecewise power law in the number of unknowns
    ``n = (cutoff + 1)^4 - 1`` through :data:`UMFPACK_MEASURED` (log-log interpolation; below
    cutoff 6 the slope of the first pair, above 14 the steepest slope measured, n^1.87,
    to err on the large side), times :data:`FACTORISATION_MARGIN`; plus the task's own arrays:
    the matrix values and UMFPACK's copy of the matrix (at most 11 stored entries per row:
    1 diagonal, 4 from the hopping, 4 from the drive, 2 from the jumps; measured 8 to 10;
    16 + 16 + 8 + 8 bytes each), right-hand side, solution and UMFPACK's workspace (about
    10 complex numbers per unknown).
    """
    n = _unknowns(cutoff)
    points = [(math.log(_unknowns(c)), math.log(b)) for c, b in UMFPACK_MEASURED]
    slopes = [(y1 - y0) / (x1 - x0) for (x0, y0), (x1, y1) in itertools.pairwise(points)]
    x = math.log(n)
    if x <= points[0][0]:
        y = points[0][1] + slopes[0] * (x - points[0][0])
    elif x >= points[-1][0]:
        y = points[-1][1] + max(slopes) * (x - points[-1][0])
    else:
        k = next(k for k in range(len(slopes)) if x <= points[k + 1][0])
        y = points[k][1] + slopes[k] * (x - points[k][0])
    buffers = 11 * n * (16 + 16 + 8 + 8) + 10 * n * 16
    return FACTORISATION_MARGIN * math.exp(y) + buffers


def concurrent_factorisations(cutoff: int, threads: int, available: int | None) -> int:
    """How many points Julia may factorise at once: its threads, bounded by memory.

    ``min(threads, MEMORY_SHARE * available // factorisation_memory(cutoff))``, at least 1;
    ``threads`` alone if ``available`` is None (unknown).  Raises MemoryError if even one
    factorisation is estimated (without the margin) to exceed ``available``: the process
    would be killed (and a Jupyter kernel with it) instead of getting an error.
    """
    threads = max(1, int(threads))
    if available is None:
        return threads
    need = factorisation_memory(cutoff)
    if need / FACTORISATION_MARGIN > available:
        raise MemoryError(
            f"backend='julia' at cutoff {cutoff}: one sparse LU factorisation needs an estimated "
            f"{need / FACTORISATION_MARGIN / 2**30:.1f} GiB but {available / 2**30:.1f} GiB are available. "
            "Use a smaller cutoff (check truncation_error) or backend='native', which does not factorise "
            "the full Liouvillian."
        )
    return max(1, min(threads, int(MEMORY_SHARE * available // need)))


def check_memory(cutoff: int) -> None:
    """Raise a MemoryError (before any work) if one factorisation at ``cutoff`` cannot fit.

    See :func:`concurrent_factorisations`; nothing here starts Julia.
    """
    concurrent_factorisations(cutoff, 1, available_memory())


def _ntasks(module, cutoff: int) -> int:
    """Concurrent Julia tasks for one call: Julia's threads bounded by the memory estimate."""
    threads = int(module.versions()[2])
    return concurrent_factorisations(cutoff, threads, available_memory())


# --- the backend seam ------------------------------------------------------------------


def _points(Delta, J, chi, xi, gamma) -> tuple[np.ndarray, ...]:
    """1-d contiguous float64 (complex128 for J) arrays of one length; no copy if already so."""
    real = [np.ascontiguousarray(np.asarray(v, dtype=np.float64).reshape(-1)) for v in (Delta, chi, xi, gamma)]
    J = np.ascontiguousarray(np.asarray(J, dtype=np.complex128).reshape(-1))
    sizes = {v.size for v in real} | {J.size}
    if len(sizes) != 1:
        raise ValueError(f"Delta, J, chi, xi, gamma must have one length, got {sorted(sizes)}")
    Delta, chi, xi, gamma = real
    return Delta, J, chi, xi, gamma


def _cutoff(cutoff) -> int:
    cutoff = operator.index(cutoff)
    if cutoff < 1:
        raise ValueError(f"cutoff must be >= 1, got {cutoff}")
    return cutoff


def _to_numpy(array) -> np.ndarray:
    # a Julia Array arrives as juliacall.ArrayValue; numpy.asarray gives a view with the same
    # index order (Fortran strides), copied here into a C-ordered array owned by NumPy
    return np.array(np.asarray(array), dtype=np.float64, order="C", copy=True)


def solver_options(tolerance: float | None = None) -> dict:
    """Keyword arguments of :func:`steady_state_populations`: none.

    The sparse LU solve is direct, so a ``tolerance`` has nothing to set: it is ignored,
    with a :class:`UserWarning` saying so when one is given.
    """
    if tolerance is not None:
        warnings.warn(
            f"the julia backend solves directly (sparse LU) and ignores tolerance={tolerance!r}",
            UserWarning,
            stacklevel=3,
        )
    return {}


def steady_state_populations(Delta, J, chi, xi, gamma, *, cutoff: int) -> np.ndarray:
    """Joint photon-number probabilities of the steady state, computed in Julia.

    Parameters
    ----------
    Delta, chi, xi, gamma : array_like of float, shape (npts,)
    J : array_like of complex, shape (npts,)
    cutoff : int
        Largest photon number kept per mode.

    Returns
    -------
    ndarray, shape (npts, cutoff + 1, cutoff + 1)
        ``P[k, n_cw, n_ccw] = <n_cw, n_ccw| rho_ss |n_cw, n_ccw>`` of point k.
    """
    points = _points(Delta, J, chi, xi, gamma)
    cutoff = _cutoff(cutoff)
    if points[0].size == 0:
        return np.empty((0, cutoff + 1, cutoff + 1))
    module = _julia()
    return _to_numpy(module.steady_state_populations(*points, cutoff=cutoff, ntasks=_ntasks(module, cutoff)))


def version_info() -> dict:
    """Julia and QuantumOptics.jl versions and Julia's thread count (starts Julia if needed)."""
    julia_version, quantumoptics_version, threads = _julia().versions()
    return {
        "julia_version": str(julia_version),
        "quantumoptics_version": str(quantumoptics_version),
        "julia_threads": int(threads),
    }


# --- two-time correlations and emission spectra (pyspb.g2_tau, pyspb.spectrum) ----------

#: what computes two-time correlations (recorded by pyspb.g2_tau)
METHOD_TAU = "steady state by sparse LU, then timeevolution.master of a rho a^dagger (QuantumOptics.jl)"
#: what computes emission spectra (recorded by pyspb.spectrum)
METHOD_SPECTRUM = "steady state by sparse LU, then one sparse LU of L - i omega + |rho><1| per frequency"


def tau_correlations(Delta, J, chi, xi, gamma, tau, *, cutoff: int) -> dict[str, np.ndarray]:
    """Two-time correlation functions per point and delay, computed in Julia.

    The same dict as :func:`pyspb.backends.native.dynamics.tau_correlations`: ``N_cw``,
    ``N_ccw`` (npts,) and ``G_cw_cw``, ``G_cw_ccw``, ``G_ccw_ccw``, ``photons_cw``,
    ``photons_ccw`` (npts, ntau), propagated by ``timeevolution.master``.
    """
    points = _points(Delta, J, chi, xi, gamma)
    cutoff = _cutoff(cutoff)
    tau = np.ascontiguousarray(np.asarray(tau, dtype=np.float64).reshape(-1))
    if not np.all(np.isfinite(tau)) or np.any(tau < 0):
        raise ValueError("tau must be finite and >= 0")
    module = _julia()
    result = module.tau_correlations(*points, tau, cutoff=cutoff, ntasks=_ntasks(module, cutoff))
    names = ("N_cw", "N_ccw", "G_cw_cw", "G_cw_ccw", "G_ccw_ccw", "photons_cw", "photons_ccw")
    return {name: _to_numpy(getattr(result, name)) for name in names}


def spectra(Delta, J, chi, xi, gamma, omega, *, cutoff: int) -> dict[str, np.ndarray]:
    """Incoherent emission spectra per point and frequency, computed in Julia.

    The same dict as :func:`pyspb.backends.native.spectrum.spectra`: ``S_cw``, ``S_ccw``
    (npts, nomega), ``coherent_cw``, ``coherent_ccw``, ``N_cw``, ``N_ccw`` (npts,).
    """
    points = _points(Delta, J, chi, xi, gamma)
    cutoff = _cutoff(cutoff)
    omega = np.ascontiguousarray(np.asarray(omega, dtype=np.float64).reshape(-1))
    module = _julia()
    result = module.spectra(*points, omega, cutoff=cutoff, ntasks=_ntasks(module, cutoff))
    names = ("S_cw", "S_ccw", "coherent_cw", "coherent_ccw", "N_cw", "N_ccw")
    return {name: _to_numpy(getattr(result, name)) for name in names}
