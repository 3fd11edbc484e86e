"""Julia backend: QuantumOptics.jl through juliacall, loaded lazily and only when asked for.

The computation lives in the Julia package ``PySPBJulia`` (``julia/PySPBJulia`` at the top
of the repository): exact steady states by a sparse LU solve of the Liouvillian with the
vacuum population fixed, grid points spread over Julia's threads, and g2(tau) by
``timeevolution.master``.  This module only moves arrays in and out.

Nothing here imports juliacall until a computation (or :func:`version_info`) is requested;
:func:`executable_present` never starts Julia and never downloads anything.

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
    or asked for a single thread.  With ``yes``, Ctrl-C does not raise KeyboardInterrupt
    while Julia runs.
``PYTHON_JULIAPKG_EXE``
    an existing ``julia`` executable for juliapkg to use instead of downloading one.
``PYSPB_JULIA_PROJECT``
    a ``PySPBJulia`` package directory to load instead of the installed one.
"""

from __future__ import annotations

import functools
import json
import operator
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np

__all__ = [
    "NAME",
    "PROJECT_ENV",
    "executable_present",
    "g2_tau_cw",
    "julia_package_dir",
    "packages_installed",
    "ready",
    "spectra",
    "steady_state_populations",
    "tau_correlations",
    "version_info",
]

NAME = "julia"
#: what solves the steady states (recorded in the results' attrs)
METHOD = "sparse LU (UMFPACK) of the vacuum-fixed Liouvillian built with QuantumOptics.jl"

#: environment variable naming a PySPBJulia package directory to load instead
PROJECT_ENV = "PYSPB_JULIA_PROJECT"

#: the juliapkg declaration of the Julia dependencies (QuantumOptics.jl and PySPBJulia)
JULIAPKG_JSON = Path(__file__).resolve().parents[1] / "juliapkg.json"


def _declared_package_dir() -> Path:
    """The ``"path"`` of PySPBJulia in ``juliapkg.json``, relative to that file as juliapkg reads it."""
    declared = json.loads(JULIAPKG_JSON.read_text())["packages"]["PySPBJulia"]["path"]
    return JULIAPKG_JSON.parent / declared


#: the Julia package shipped with pyspb (the one juliapkg installs)
DEFAULT_PACKAGE_DIR = _declared_package_dir()

_EXE_NAME = "julia.exe" if os.name == "nt" else "julia"

_HOW_TO_GET_JULIA = (
    "On first use juliacall (through juliapkg) needs internet access to download Julia and "
    "QuantumOptics.jl, then precompiles them (several minutes, once); to use a Julia you "
    "already have, set PYTHON_JULIAPKG_EXE to its julia executable (Julia >= 1.10). "
    'backend="native" computes the same results without Julia.'
)


# --- finding Julia without starting it -------------------------------------------------


def _option(xkey: str, envkey: str) -> str | None:
    """A juliacall/juliapkg option as they read it: ``-X xkey=...`` first, then ``envkey``."""
    value = getattr(sys, "_xoptions", {}).get(xkey)
    if isinstance(value, str) and value:
        return value
    value = os.environ.get(envkey)
    return value or None


def _is_executable(path: str | os.PathLike | None) -> bool:
    return path is not None and os.path.isfile(path) and os.access(path, os.X_OK)


def _juliapkg_project() -> str:
    """The Julia project juliapkg would use (the rules of juliapkg's ``state.py``)."""
    project = _option("juliapkg-project", "PYTHON_JULIAPKG_PROJECT")
    if project:
        return project
    prefix = sys.prefix if sys.prefix != sys.base_prefix else os.environ.get("CONDA_PREFIX")
    if prefix is None:
        depot_path = os.environ.get("JULIA_DEPOT_PATH")
        if depot_path:
            depot = os.path.abspath(depot_path.split(";" if os.name == "nt" else ":")[0])
        else:
            depot = os.path.join(os.path.expanduser("~"), ".julia")
        return os.path.join(depot, "environments", "pyjuliapkg")
    return os.path.abspath(os.path.join(prefix, "julia_env"))


def _find_executable() -> str | None:
    """Path of a Julia executable that juliacall would use without downloading, or None."""
    module = sys.modules.get("juliacall")
    config = getattr(module, "CONFIG", {})
    if config.get("inited"):
        return config.get("exepath") or "julia (already running)"
    # explicit choices are decisive: if one is set but wrong, Julia will not start
    exe = _option("juliacall-exe", "PYTHON_JULIACALL_EXE")
    if exe:
        found = shutil.which(exe) or exe
        return found if _is_executable(found) else None
    bindir = _option("juliacall-home", "PYTHON_JULIACALL_BINDIR")
    if bindir:
        found = os.path.join(bindir, _EXE_NAME)
        return found if _is_executable(found) else None
    exe = _option("juliapkg-exe", "PYTHON_JULIAPKG_EXE")
    if exe:
        found = shutil.which(exe) or exe
        return found if _is_executable(found) else None
    # what juliapkg resolved or installed before (its meta.json, its own install directory)
    prefix = os.path.join(_juliapkg_project(), "pyjuliapkg")
    recorded = _juliapkg_meta().get("executable")
    recorded = recorded if isinstance(recorded, str) else None
    candidates = [recorded, os.path.join(prefix, "install", "bin", _EXE_NAME), shutil.which("julia")]
    return next((c for c in candidates if _is_executable(c)), None)


def _juliapkg_meta() -> dict:
    """Juliapkg's record of its last resolve (``<project>/pyjuliapkg/meta.json``), or {}."""
    try:
        with open(os.path.join(_juliapkg_project(), "pyjuliapkg", "meta.json")) as file:
            meta = json.load(file)
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def packages_installed() -> bool:
    """True if juliapkg has already resolved (installed) pyspb's Julia dependencies.

    juliapkg records in ``meta.json`` every ``juliapkg.json`` it installed the packages of;
    pyspb's must be among them (QuantumOptics.jl and PySPBJulia are then in juliapkg's Julia
    environment).  Never imports juliacall or juliapkg.
    """
    if getattr(sys.modules.get("juliacall"), "CONFIG", {}).get("inited"):
        return True
    recorded = _juliapkg_meta().get("deps_files")
    if not isinstance(recorded, dict):
        return False
    ours = os.path.normcase(os.path.normpath(os.path.abspath(JULIAPKG_JSON)))
    return any(os.path.normcase(os.path.normpath(os.path.abspath(name))) == ours for name in recorded)


def ready() -> bool:
    """True if ``backend="julia"`` can run without downloading anything (used by "auto")."""
    return executable_present() and packages_installed()


def executable_present() -> bool:
    """True if a Julia executable already exists, so that using Julia starts no download.

    Looks at juliacall's and juliapkg's settings (``PYTHON_JULIACALL_EXE``,
    ``PYTHON_JULIACALL_BINDIR``, ``PYTHON_JULIAPKG_EXE``), at the Julia juliapkg recorded or
    installed in its project (``<project>/pyjuliapkg/meta.json`` and
    ``<project>/pyjuliapkg/install/bin/julia``; the project is ``PYTHON_JULIAPKG_PROJECT`` or
    ``<virtual env>/julia_env``), and for ``julia`` on PATH.  Never imports juliacall or
    juliapkg and never starts Julia (so the Julia version is not checked, and Julia
    packages may still need to be installed on first use).
    """
    return _find_executable() is not None


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
    threads = _option("juliacall-threads", "PYTHON_JULIACALL_THREADS")
    if threads is None and "JULIA_NUM_THREADS" not in os.environ:
        os.environ["PYTHON_JULIACALL_THREADS"] = threads = "auto"
    threads = threads or os.environ.get("JULIA_NUM_THREADS", "1")
    if _option("juliacall-handle-signals", "PYTHON_JULIACALL_HANDLE_SIGNALS") is None and threads.strip() != "1":
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
            + _HOW_TO_GET_JULIA
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
            f"from {package} ({type(error).__name__}: {error}). " + _HOW_TO_GET_JULIA
        ) from error


_LOAD_LOCK = threading.Lock()


def _julia():
    with _LOAD_LOCK:
        return _load()


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
    return _to_numpy(_julia().steady_state_populations(*points, cutoff=cutoff))


def g2_tau_cw(Delta, J, chi, xi, gamma, tau, *, cutoff: int) -> np.ndarray:
    """g2(tau) of the cw mode by the quantum regression theorem, shape (npts, ntau).

    ``g2(tau) = Tr[a1^dagger a1 exp(L tau)(a1 rho a1^dagger)] / N_cw^2``, propagated by
    QuantumOptics.jl's ``timeevolution.master`` from the normalised ``a1 rho a1^dagger``.
    ``tau``: delays >= 0 in the inverse rate unit.
    """
    points = _points(Delta, J, chi, xi, gamma)
    cutoff = _cutoff(cutoff)
    tau = np.ascontiguousarray(np.asarray(tau, dtype=np.float64).reshape(-1))
    if not np.all(np.isfinite(tau)) or np.any(tau < 0):
        raise ValueError("tau must be finite and >= 0")
    if points[0].size == 0 or tau.size == 0:
        return np.empty((points[0].size, tau.size))
    return _to_numpy(_julia().g2_tau_cw(*points, tau, cutoff=cutoff))


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

    The same dict as :func:`pyspb.backends.native_dynamics.tau_correlations`: ``N_cw``,
    ``N_ccw`` (npts,) and ``G_cw_cw``, ``G_cw_ccw``, ``G_ccw_ccw``, ``photons_cw``,
    ``photons_ccw`` (npts, ntau), propagated by ``timeevolution.master``.
    """
    points = _points(Delta, J, chi, xi, gamma)
    cutoff = _cutoff(cutoff)
    tau = np.ascontiguousarray(np.asarray(tau, dtype=np.float64).reshape(-1))
    if not np.all(np.isfinite(tau)) or np.any(tau < 0):
        raise ValueError("tau must be finite and >= 0")
    result = _julia().tau_correlations(*points, tau, cutoff=cutoff)
    names = ("N_cw", "N_ccw", "G_cw_cw", "G_cw_ccw", "G_ccw_ccw", "photons_cw", "photons_ccw")
    return {name: _to_numpy(getattr(result, name)) for name in names}


def spectra(Delta, J, chi, xi, gamma, omega, *, cutoff: int) -> dict[str, np.ndarray]:
    """Incoherent emission spectra per point and frequency, computed in Julia.

    The same dict as :func:`pyspb.backends.native_spectrum.spectra`: ``S_cw``, ``S_ccw``
    (npts, nomega), ``coherent_cw``, ``coherent_ccw``, ``N_cw``, ``N_ccw`` (npts,).
    """
    points = _points(Delta, J, chi, xi, gamma)
    cutoff = _cutoff(cutoff)
    omega = np.ascontiguousarray(np.asarray(omega, dtype=np.float64).reshape(-1))
    result = _julia().spectra(*points, omega, cutoff=cutoff)
    names = ("S_cw", "S_ccw", "coherent_cw", "coherent_ccw", "N_cw", "N_ccw")
    return {name: _to_numpy(getattr(result, name)) for name in names}
