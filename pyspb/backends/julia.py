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
import hashlib
import importlib.metadata
import importlib.util
import itertools
import json
import math
import operator
import os
import re
import shutil
import sys
import threading
import warnings
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import numpy as np

__all__ = [
    "NAME",
    "PROJECT_ENV",
    "available_memory",
    "concurrent_factorisations",
    "executable_present",
    "factorisation_memory",
    "g2_tau_cw",
    "julia_package_dir",
    "julia_ready",
    "packages_installed",
    "ready",
    "solver_options",
    "steady_state_populations",
    "version_info",
]

NAME = "julia"
#: what solves the steady states (recorded in the results' attrs)
METHOD = "sparse LU (UMFPACK) of the vacuum-fixed Liouvillian built with QuantumOptics.jl"
#: juliacall must be called from Python's main thread (PythonCall.jl issue #578)
MAIN_THREAD_ONLY = True

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
#
# What juliacall does at import, by version (read in juliacall's ``__init__.py``):
#   * 0.9.22-0.9.27: no PYTHON_JULIACALL_EXE/PROJECT options; juliapkg always resolves and
#     provides the executable and project; PYTHON_JULIACALL_BINDIR only goes to jl_init.
#   * 0.9.28-0.9.34: EXE and PROJECT together skip juliapkg (Julia runs that project as it
#     is: pyspb's juliapkg.json is never installed); only one of them raises "must be set
#     together"; BINDIR still only goes to jl_init.
#   * 0.9.35 on (read in 0.9.37): BINDIR without EXE is taken as EXE = BINDIR/julia, so
#     BINDIR without PROJECT raises "must be set together" too.
# pyspb cannot tell which of these will happen for BINDIR, so BINDIR never counts as a Julia.

#: the oldest juliacall pyspb accepts: thread-safe from PythonCall/juliacall 0.9.22 (its FAQ)
JULIACALL_MIN_VERSION = (0, 9, 22)
#: juliacall reads PYTHON_JULIACALL_EXE and PYTHON_JULIACALL_PROJECT from this version on
JULIACALL_EXE_OPTION_SINCE = (0, 9, 28)
#: juliapkg meta.json formats whose skip-resolve rules :func:`julia_ready` mirrors
#: (``meta_version`` 8: juliapkg 0.1.28, ``deps.can_skip_resolve`` and ``deps.deps_files``)
MIRRORED_META_VERSIONS = (8,)
#: UUIDs Julia records in a project's Manifest.toml
PYSPBJULIA_UUID = "cf34218d-32c3-42cf-ad1e-310559cdb88c"
PYTHONCALL_UUID = "6099a3de-0909-46bc-b1f4-468b9a2dfc0d"


def _option(xkey: str, envkey: str) -> str | None:
    """A juliacall/juliapkg option as they read it: ``-X xkey=...`` first, then ``envkey``."""
    value = getattr(sys, "_xoptions", {}).get(xkey)
    if isinstance(value, str) and value:
        return value
    value = os.environ.get(envkey)
    return value or None


def _raw_option(xkey: str, envkey: str) -> str | bool | None:
    """An option exactly as juliapkg's ``state.get_config`` returns it (``""`` and flags kept)."""
    value = getattr(sys, "_xoptions", {}).get(xkey)
    if value is not None:
        return value
    return os.environ.get(envkey)


def _is_executable(path: str | os.PathLike | None) -> bool:
    return path is not None and os.path.isfile(path) and os.access(path, os.X_OK)


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True if two paths name one file: real paths compared (symbolic links followed on both sides)."""
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _installed_version(distribution: str) -> tuple[int, ...] | None:
    """The leading numbers of an installed distribution's version, without importing it."""
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    numbers = []
    for part in version.split("."):
        digits = "".join(itertools.takewhile(str.isdigit, part))
        if not digits:
            break
        numbers.append(int(digits))
    return tuple(numbers)


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


def _juliacall_running() -> bool:
    return bool(getattr(sys.modules.get("juliacall"), "CONFIG", {}).get("inited"))


def _juliacall_exe_and_project() -> tuple[str | None, str | None]:
    """``PYTHON_JULIACALL_EXE`` (looked up on PATH as juliacall does) and ``PYTHON_JULIACALL_PROJECT``."""
    exe = _option("juliacall-exe", "PYTHON_JULIACALL_EXE")
    project = _option("juliacall-project", "PYTHON_JULIACALL_PROJECT")
    if exe is not None:
        exe = shutil.which(exe) or exe
    return exe, project


def _find_executable() -> str | None:
    """Path of a Julia executable that juliacall would use without downloading, or None."""
    module = sys.modules.get("juliacall")
    if _juliacall_running():
        return getattr(module, "CONFIG", {}).get("exepath") or "julia (already running)"
    # PYTHON_JULIACALL_EXE counts only together with PYTHON_JULIACALL_PROJECT (else juliacall
    # refuses to start); PYTHON_JULIACALL_BINDIR never (see the version notes above)
    exe, project = _juliacall_exe_and_project()
    if exe is not None or project is not None:
        return exe if exe is not None and project is not None and _is_executable(exe) else None
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


def _juliapkg_meta_path() -> str:
    return os.path.join(_juliapkg_project(), "pyjuliapkg", "meta.json")


def _juliapkg_meta() -> dict:
    """Juliapkg's record of its last resolve (``<project>/pyjuliapkg/meta.json``), or {}."""
    try:
        with open(_juliapkg_meta_path()) as file:
            meta = json.load(file)
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _manifest_uuids(project: str) -> set[str] | None:
    """UUIDs of the packages in every manifest Julia might read for ``project``, or None.

    A project is a directory or its ``Project.toml``; Julia reads ``JuliaManifest.toml``,
    ``Manifest.toml`` or (Julia >= 1.10.8) a versioned ``Manifest-vX.Y.toml``.  Without
    starting Julia pyspb cannot tell which, so it keeps the packages present in all of them.
    """
    directory = project if os.path.isdir(project) else os.path.dirname(project)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return None
    manifests = [n for n in names if re.fullmatch(r"(Julia)?Manifest(-v\d+\.\d+)?\.toml", n)]
    found: set[str] | None = None
    for name in manifests:
        try:
            with open(os.path.join(directory, name), "rb") as file:
                manifest = tomllib.load(file)
        except (OSError, ValueError):
            return None
        # format 2.0 (Julia >= 1.7): [[deps.Name]] tables; format 1: [[Name]] at the top level
        entries = manifest.get("deps", manifest) if manifest.get("manifest_format") else manifest
        uuids = {
            str(entry["uuid"])
            for versions in entries.values()
            if isinstance(versions, list)
            for entry in versions
            if isinstance(entry, dict) and "uuid" in entry
        }
        found = uuids if found is None else found & uuids
    return found


def _juliapkg_source() -> Path | None:
    """The directory of the installed juliapkg package, found without importing it."""
    spec = importlib.util.find_spec("juliapkg")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent


def _juliapkg_meta_version(source: Path) -> int | None:
    """``META_VERSION`` of the installed juliapkg, read from its ``deps.py`` (not imported)."""
    try:
        text = (source / "deps.py").read_text()
    except OSError:
        return None
    match = re.search(r"^META_VERSION\s*=\s*(\d+)", text, re.M)
    return int(match.group(1)) if match else None


def _juliapkg_deps_files(project: str) -> set[str]:
    """The juliapkg.json files juliapkg 0.1.28 would collect now (``deps.deps_files``).

    Its own deps file in the project, ``juliapkg.json`` in each ``sys.path`` directory and in
    each of their subdirectories (the first of each subdirectory name only), and those of
    setuptools editable installs; normalised as juliapkg does (``normcase(normpath(abspath))``,
    symbolic links not followed).
    """
    candidates = [os.path.join(project, "pyjuliapkg", "juliapkg.json")]
    seen: set[str] = set()
    for entry in sys.path:
        path = entry or os.getcwd()
        if not os.path.isdir(path):
            continue
        candidates.append(os.path.join(path, "juliapkg.json"))
        for subdir in os.listdir(path):
            name = os.path.join(path, subdir, "juliapkg.json")
            if subdir not in seen and os.path.isfile(name):
                seen.add(subdir)
                candidates.append(name)
    for finder in sys.meta_path:
        module_name = getattr(finder, "__module__", "") or ""
        if module_name.startswith("__editable___") and module_name.endswith("_finder"):
            mapping = getattr(sys.modules.get(module_name), "MAPPING", {})
            for path in mapping.values():
                if os.path.isdir(path):
                    candidates.append(os.path.join(path, "juliapkg.json"))
                    candidates.extend(os.path.join(path, sub, "juliapkg.json") for sub in os.listdir(path))
    return {os.path.normcase(os.path.normpath(os.path.abspath(c))) for c in candidates if os.path.isfile(c)}


def _changed_after(path: str, when: float) -> bool:
    """True if ``path`` (or the file it links to) was written or replaced after ``when``."""
    try:
        link, target = os.lstat(path), os.stat(path)
    except OSError:
        return True
    return max(link.st_mtime, link.st_ctime, target.st_mtime, target.st_ctime) > when


def _sha256(path: str) -> str:
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def _juliapkg_would_resolve() -> str | None:
    """Why juliapkg would resolve again (download) when juliacall starts, or None if it would not.

    Mirrors ``can_skip_resolve`` of juliapkg 0.1.28 (meta.json format 8), check by check,
    except one it cannot do without starting Julia: juliapkg runs ``julia --version`` on the
    recorded executable and resolves if the version changed.  In its place pyspb requires
    (a heuristic, conservative) that the recorded executable, the file it links to and the
    recorded libjulia were not written or replaced after meta.json was, and that the
    executable is not juliaup's launcher (whose version follows juliaup's default channel).
    """
    meta_path = _juliapkg_meta_path()
    meta = _juliapkg_meta()
    if not meta:
        return f"juliapkg has not resolved in this environment yet (no readable {meta_path})"
    source = _juliapkg_source()
    if source is None:
        return "juliapkg is not installed"
    installed = _juliapkg_meta_version(source)
    if installed not in MIRRORED_META_VERSIONS:
        return (
            f"the installed juliapkg writes meta.json format {installed}; pyspb mirrors the "
            f"skip-resolve rules of format(s) {MIRRORED_META_VERSIONS} only"
        )
    if meta.get("meta_version") != installed:
        return f"{meta_path} is of format {meta.get('meta_version')}, juliapkg reads only format {installed}"
    override = _raw_option("juliapkg-exe", "PYTHON_JULIAPKG_EXE")
    if override != meta.get("override_executable"):
        return f"PYTHON_JULIAPKG_EXE is {override!r} now, {meta.get('override_executable')!r} at the last resolve"
    exe = meta.get("executable")
    if not isinstance(exe, str) or not _is_executable(exe):
        return f"the Julia executable of the last resolve ({exe!r}) is gone"
    if _is_executable(os.path.join(os.path.dirname(exe), "juliaup" + (".exe" if os.name == "nt" else ""))):
        return f"{exe} is juliaup's launcher: its Julia version cannot be checked without running it"
    meta_time = os.path.getmtime(meta_path)
    for name in (exe, meta.get("libjulia")):
        if isinstance(name, str) and _changed_after(name, meta_time):
            return f"{name} changed after the last resolve (the Julia version may have changed)"
    offline = _raw_option("juliapkg-offline", "PYTHON_JULIAPKG_OFFLINE") in ("yes", True)
    if meta.get("offline") and not offline:
        return "the last resolve was offline and PYTHON_JULIAPKG_OFFLINE is not yes now"
    dev = (source.parent.parent / "pyproject.toml").exists()
    if meta.get("dev") != dev:
        return "juliapkg changed between a development and a regular install"
    recorded = meta.get("deps_files")
    if not isinstance(recorded, dict):
        return f"{meta_path} records no deps files"
    current = _juliapkg_deps_files(_juliapkg_project())
    if set(recorded) != current:
        added, removed = sorted(current - set(recorded)), sorted(set(recorded) - current)
        return f"the juliapkg.json files changed since the last resolve (new: {added}, gone: {removed})"
    for name, info in recorded.items():
        if not os.path.isfile(name):
            return f"{name} is gone"
        changed = not isinstance(info, dict) or os.path.getmtime(name) > info.get("timestamp", -math.inf)
        if changed and (not isinstance(info, dict) or _sha256(name) != info.get("hash_sha256")):
            return f"{name} changed since the last resolve"
    if not any(_same_file(name, JULIAPKG_JSON) for name in recorded):
        return f"pyspb's {JULIAPKG_JSON} was not among the files of the last resolve"
    return None


def packages_installed() -> bool:
    """True if pyspb's Julia packages are installed where juliacall will look for them.

    With ``PYTHON_JULIACALL_EXE`` and ``PYTHON_JULIACALL_PROJECT`` set (juliacall >= 0.9.28
    then skips juliapkg), that project's manifest must hold PySPBJulia and PythonCall.
    Otherwise juliapkg's meta.json must list pyspb's ``juliapkg.json`` among the files of its
    last resolve (real paths compared, so a symbolically linked install path matches).
    Never imports juliacall or juliapkg.
    """
    if _juliacall_running():
        return True
    exe, project = _juliacall_exe_and_project()
    if exe is not None or project is not None:
        uuids = _manifest_uuids(project) if project is not None else None
        return uuids is not None and {PYSPBJULIA_UUID, PYTHONCALL_UUID} <= uuids
    recorded = _juliapkg_meta().get("deps_files")
    if not isinstance(recorded, dict):
        return False
    return any(_same_file(name, JULIAPKG_JSON) for name in recorded)


def julia_ready() -> str | None:
    """Why ``backend="auto"`` would not use Julia, or None if it will.

    "auto" uses Julia only if juliacall can start it with pyspb's Julia packages without
    downloading anything (no juliapkg resolve); when pyspb cannot tell, it says no.  The rule:

    1. Julia already runs in this process (juliacall started), or else:
    2. juliacall >= 0.9.22 is installed, and
    3. if ``PYTHON_JULIACALL_EXE`` or ``PYTHON_JULIACALL_PROJECT`` is set: juliacall >= 0.9.28,
       both are set, the executable exists, and the project's manifest(s) hold PySPBJulia and
       PythonCall; else ``PYTHON_JULIACALL_BINDIR`` is unset and juliapkg would skip its
       resolve (:func:`_juliapkg_would_resolve`: juliapkg 0.1.28's checks, the Julia version
       one replaced by a file-time heuristic) and its last resolve included pyspb's
       ``juliapkg.json``.

    Never imports juliacall or juliapkg and never starts Julia.
    """
    if _juliacall_running():
        return None
    version = _installed_version("juliacall")
    if version is None:
        return "juliacall is not installed"
    if version < JULIACALL_MIN_VERSION:
        return f"juliacall {'.'.join(map(str, version))} is older than {'.'.join(map(str, JULIACALL_MIN_VERSION))}"
    exe, project = _juliacall_exe_and_project()
    if exe is not None or project is not None:
        if version < JULIACALL_EXE_OPTION_SINCE:
            return "PYTHON_JULIACALL_EXE/PROJECT are set but this juliacall predates them (0.9.28)"
        if exe is None or project is None:
            return (
                "PYTHON_JULIACALL_EXE and PYTHON_JULIACALL_PROJECT must be set together (juliacall refuses one alone)"
            )
        if not _is_executable(exe):
            return f"PYTHON_JULIACALL_EXE={exe} is not an executable"
        if not packages_installed():
            return f"the manifest of PYTHON_JULIACALL_PROJECT={project} lacks PySPBJulia or PythonCall"
        return None
    if _option("juliacall-home", "PYTHON_JULIACALL_BINDIR") is not None:
        return "PYTHON_JULIACALL_BINDIR is set without PYTHON_JULIACALL_EXE/PROJECT (juliacall >= 0.9.35 refuses it)"
    return _juliapkg_would_resolve()


def ready() -> bool:
    """True if ``backend="julia"`` can run without downloading anything (used by "auto"; see :func:`julia_ready`)."""
    return julia_ready() is None


def executable_present() -> bool:
    """True if a Julia executable already exists that juliacall would use.

    Looks at juliacall's settings (``PYTHON_JULIACALL_EXE``, only together with
    ``PYTHON_JULIACALL_PROJECT``; ``PYTHON_JULIACALL_BINDIR`` is never taken as a Julia), at
    juliapkg's (``PYTHON_JULIAPKG_EXE``), at the Julia juliapkg recorded or installed in its
    project (``<project>/pyjuliapkg/meta.json`` and ``<project>/pyjuliapkg/install/bin/julia``;
    the project is ``PYTHON_JULIAPKG_PROJECT`` or ``<virtual env>/julia_env``), and for
    ``julia`` on PATH.  Never imports juliacall or juliapkg and never starts Julia (so the
    Julia version is not checked, and Julia packages may still need to be installed on first
    use: :func:`ready` tells whether nothing needs downloading).
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


def available_memory() -> int | None:
    """Bytes of memory available to this process now, or None if unknown.

    Linux: ``MemAvailable`` of /proc/meminfo, lowered to the room left under a cgroup limit
    (v2 ``memory.max`` less ``memory.current``, or v1 ``memory.limit_in_bytes`` less
    ``memory.usage_in_bytes``).  Elsewhere half the physical memory (``os.sysconf``).
    """
    found: list[int] = []
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            with open(limit) as a, open(usage) as b:
                room = int(a.read().strip()) - int(b.read().strip())
        except (OSError, ValueError):  # absent, or "max" (no limit)
            continue
        found.append(max(room, 0))
    if found:
        return min(found)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, OSError, ValueError):
        return None


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
    module = _julia()
    return _to_numpy(module.g2_tau_cw(*points, tau, cutoff=cutoff, ntasks=_ntasks(module, cutoff)))


def version_info() -> dict:
    """Julia and QuantumOptics.jl versions and Julia's thread count (starts Julia if needed)."""
    julia_version, quantumoptics_version, threads = _julia().versions()
    return {
        "julia_version": str(julia_version),
        "quantumoptics_version": str(quantumoptics_version),
        "julia_threads": int(threads),
    }
