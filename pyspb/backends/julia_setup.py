"""Where Julia and pyspb's Julia packages are, and whether ``backend="auto"`` may use them.

Nothing here starts Julia, imports juliacall or downloads anything: it reads juliacall's and
juliapkg's settings and the files juliapkg left behind (its ``meta.json``, the project's
manifests), mirroring juliapkg's own skip-resolve checks, so that "auto" picks Julia only
when juliacall could start it without a resolve.  :mod:`pyspb.backends.julia` uses Julia.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import itertools
import json
import math
import os
import re
import shutil
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

__all__ = [
    "DEFAULT_PACKAGE_DIR",
    "JULIAPKG_JSON",
    "PROJECT_ENV",
    "HOW_TO_GET_JULIA",
    "executable_present",
    "julia_ready",
    "packages_installed",
    "option",
    "ready",
]

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

HOW_TO_GET_JULIA = (
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


def option(xkey: str, envkey: str) -> str | None:
    """A juliacall/juliapkg option as they read it: ``-X xkey=...`` first, then ``envkey``."""
    value = getattr(sys, "_xoptions", {}).get(xkey)
    if isinstance(value, str) and value:
        return value
    value = os.environ.get(envkey)
    return value or None


def _rawoption(xkey: str, envkey: str) -> str | bool | None:
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
    project = option("juliapkg-project", "PYTHON_JULIAPKG_PROJECT")
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
    exe = option("juliacall-exe", "PYTHON_JULIACALL_EXE")
    project = option("juliacall-project", "PYTHON_JULIACALL_PROJECT")
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
    exe = option("juliapkg-exe", "PYTHON_JULIAPKG_EXE")
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
    return (
        _format_or_options_changed(meta, meta_path, source)
        or _executable_changed(meta, meta_path)
        or _deps_files_changed(meta, meta_path)
    )


def _format_or_options_changed(meta: dict, meta_path: str, source: Path) -> str | None:
    """The checks juliapkg makes of the meta.json format and of its options (exe override, offline, dev)."""
    installed = _juliapkg_meta_version(source)
    if installed not in MIRRORED_META_VERSIONS:
        return (
            f"the installed juliapkg writes meta.json format {installed}; pyspb mirrors the "
            f"skip-resolve rules of format(s) {MIRRORED_META_VERSIONS} only"
        )
    if meta.get("meta_version") != installed:
        return f"{meta_path} is of format {meta.get('meta_version')}, juliapkg reads only format {installed}"
    override = _rawoption("juliapkg-exe", "PYTHON_JULIAPKG_EXE")
    if override != meta.get("override_executable"):
        return f"PYTHON_JULIAPKG_EXE is {override!r} now, {meta.get('override_executable')!r} at the last resolve"
    offline = _rawoption("juliapkg-offline", "PYTHON_JULIAPKG_OFFLINE") in ("yes", True)
    if meta.get("offline") and not offline:
        return "the last resolve was offline and PYTHON_JULIAPKG_OFFLINE is not yes now"
    dev = (source.parent.parent / "pyproject.toml").exists()
    if meta.get("dev") != dev:
        return "juliapkg changed between a development and a regular install"
    return None


def _executable_changed(meta: dict, meta_path: str) -> str | None:
    """In place of juliapkg's ``julia --version`` check: the recorded Julia is unchanged on disk."""
    exe = meta.get("executable")
    if not isinstance(exe, str) or not _is_executable(exe):
        return f"the Julia executable of the last resolve ({exe!r}) is gone"
    if _is_executable(os.path.join(os.path.dirname(exe), "juliaup" + (".exe" if os.name == "nt" else ""))):
        return f"{exe} is juliaup's launcher: its Julia version cannot be checked without running it"
    meta_time = os.path.getmtime(meta_path)
    for name in (exe, meta.get("libjulia")):
        if isinstance(name, str) and _changed_after(name, meta_time):
            return f"{name} changed after the last resolve (the Julia version may have changed)"
    return None


def _deps_files_changed(meta: dict, meta_path: str) -> str | None:
    """The check juliapkg makes of the juliapkg.json files it collected (the set, their times and hashes)."""
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
    if option("juliacall-home", "PYTHON_JULIACALL_BINDIR") is not None:
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
