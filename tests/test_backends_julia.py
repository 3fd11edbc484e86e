"""The Julia backend (QuantumOptics.jl through juliacall).

Two kinds of tests:

* Julia-free tests (always run): the Julia package and ``pyspb/juliapkg.json`` agree, the
  Python seam matches the Julia entry points, Julia is never started or downloaded unless
  asked for, and a missing Julia gives a clear error.
* Tests marked ``julia`` that need a Julia executable (skipped where none is found): the
  Julia results against the native engine and the paper's numbers.  Where Julia exists but
  QuantumOptics.jl is not installed yet, the first of them installs it (needs internet).
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from reference import random_points

import pyspb
from pyspb.backends import julia, julia_setup

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
JULIAPKG_JSON = ROOT / "pyspb" / "juliapkg.json"
PACKAGE_DIR = ROOT / "julia" / "PySPBJulia"
SOURCE = PACKAGE_DIR / "src" / "PySPBJulia.jl"

QUANTUMOPTICS_UUID = "6e0679c1-51ea-5a7c-ac74-d61b76210b0c"
STDLIB_UUIDS = {
    "LinearAlgebra": "37e2e46d-f89d-539d-b4ee-838fcccc9c8e",
    "SparseArrays": "2f01184e-e22b-5df5-ae63-d93ebab69eaf",
}

#: environment variables that tell juliacall/juliapkg where Julia is
JULIA_LOCATION_VARS = (
    "PYTHON_JULIAPKG_EXE",
    "PYTHON_JULIAPKG_PROJECT",
    "PYTHON_JULIACALL_EXE",
    "PYTHON_JULIACALL_BINDIR",
    "PYTHON_JULIACALL_PROJECT",
    "JULIA_DEPOT_PATH",
    "JULIAUP_DEPOT_PATH",
    "CONDA_PREFIX",
    julia.PROJECT_ENV,
)

requires_julia = pytest.mark.skipif(not julia.executable_present(), reason="no Julia executable found")


def juliapkg_json():
    return json.loads(JULIAPKG_JSON.read_text())


def project_toml():
    return tomllib.loads((PACKAGE_DIR / "Project.toml").read_text())


def unset(monkeypatch, *names):
    """Remove environment variables for one test (restored afterwards even if absent before)."""
    for name in names:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def no_julia_anywhere(monkeypatch, tmp_path):
    """An environment in which no Julia can be found: empty PATH, empty juliapkg project."""
    unset(monkeypatch, *JULIA_LOCATION_VARS)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHON_JULIAPKG_PROJECT", str(tmp_path / "julia_env"))
    monkeypatch.setattr(sys, "_xoptions", {})
    monkeypatch.delitem(sys.modules, "juliacall", raising=False)


def fake_julia(path: Path, executable: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\necho 'julia version 1.11.0'\n")
    path.chmod(0o755 if executable else 0o644)
    return path


def paper_point():
    """Flat inputs of the paper's tip position (r = 0.35 um, phi = 0.27 um)."""
    inputs = pyspb.Device().rates(r=0.35, phi=0.27)
    J = complex(inputs.J_re.values + 1j * inputs.J_im.values)
    return tuple(
        np.atleast_1d(v) for v in (float(inputs.Delta), J, float(inputs.chi), float(inputs.xi), float(inputs.gamma))
    )


def assert_populations_close(P, reference):
    """Relative 1e-8 on populations above 1e-10, 1e-6 on those in (1e-12, 1e-10].

    A direct LU solve resolves a population to ~1e-16 of the largest one (the vacuum), so
    populations near 1e-12 carry relative errors up to ~1e-7 in either engine.
    """
    assert P.shape == reference.shape
    big = reference > 1e-10
    small = (reference > 1e-12) & ~big
    np.testing.assert_allclose(P[big], reference[big], rtol=1e-8, atol=0)
    np.testing.assert_allclose(P[small], reference[small], rtol=1e-6, atol=0)


# --- Julia-free: the Julia package and its declaration ---------------------------------


def test_juliapkg_json_and_project_toml_agree():
    spec = juliapkg_json()
    project = project_toml()
    packages = spec["packages"]
    assert set(packages) == {"QuantumOptics", "PySPBJulia"}
    assert project["name"] == "PySPBJulia"
    assert packages["PySPBJulia"]["uuid"] == project["uuid"]
    assert uuid.UUID(project["uuid"]).version == 4
    assert packages["QuantumOptics"]["uuid"] == project["deps"]["QuantumOptics"] == QUANTUMOPTICS_UUID
    assert packages["QuantumOptics"]["version"] == project["compat"]["QuantumOptics"]
    assert spec["julia"] == project["compat"]["julia"]


def test_juliapkg_json_points_to_the_julia_package_as_a_dev_dependency():
    entry = juliapkg_json()["packages"]["PySPBJulia"]
    assert entry["dev"] is True
    # juliapkg resolves "path" relative to the directory holding juliapkg.json
    target = (JULIAPKG_JSON.parent / entry["path"]).resolve()
    assert target == PACKAGE_DIR.resolve()
    assert (target / "Project.toml").is_file() and (target / "src" / "PySPBJulia.jl").is_file()
    assert julia.DEFAULT_PACKAGE_DIR.resolve() == target  # where the Python side looks


@pytest.mark.slow
def test_the_wheel_carries_the_julia_package_where_juliapkg_json_points(tmp_path):
    """A non-editable install must find PySPBJulia at the "path" of its juliapkg.json."""
    import zipfile

    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if build.returncode != 0:
        pytest.skip(f"pip could not build the wheel here (no build backend reachable?): {build.stderr[-300:]}")
    (wheel,) = tmp_path.glob("pyspb-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    declared = Path("pyspb") / juliapkg_json()["packages"]["PySPBJulia"]["path"]
    for relative in ("Project.toml", "src/PySPBJulia.jl"):
        assert (declared / relative).as_posix() in names, relative
    assert "pyspb/juliapkg.json" in names


def test_juliapkg_understands_the_declaration():
    """juliapkg's own parser accepts the compat strings and finds the package path."""
    compat = pytest.importorskip("juliapkg.compat")
    spec = juliapkg_json()
    assert compat.Compat.parse(spec["julia"]) == compat.Compat.parse("1.10")
    assert compat.Compat.parse(spec["packages"]["QuantumOptics"]["version"])
    script = (
        "import json, juliapkg.deps as d\n"
        "_, pkgs = d.find_requirements()\n"
        "print(json.dumps({p.name: p.dict() for p in pkgs}))\n"
    )
    env = {**os.environ, "PYTHON_JULIAPKG_OFFLINE": "yes"}
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=120
    )
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["PySPBJulia"]["dev"] is True
    assert Path(found["PySPBJulia"]["path"]).resolve() == PACKAGE_DIR.resolve()
    assert found["QuantumOptics"]["uuid"] == QUANTUMOPTICS_UUID


def test_project_toml_is_a_complete_julia_package():
    project = project_toml()
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    deps = project["deps"]
    assert deps == {"QuantumOptics": QUANTUMOPTICS_UUID, **STDLIB_UUIDS}
    assert set(project["compat"]) == set(deps) | {"julia"}  # every dependency has a compat bound
    assert project["compat"]["julia"] == "1.10"


def test_julia_source_defines_the_entry_points_the_python_side_calls():
    source = SOURCE.read_text()
    assert re.search(r"^module PySPBJulia\b", source, re.M)
    assert re.search(r"^end # module PySPBJulia", source, re.M)
    exported = re.search(r"^export (.+)$", source, re.M).group(1)
    for name in ("steady_state_populations", "tau_correlations", "spectra", "versions"):
        assert re.search(rf"^function {name}\(", source, re.M), name
        assert name in exported, name
    # the entry points take the cutoff as a keyword, as the Python side passes it
    for name in ("steady_state_populations", "tau_correlations", "spectra"):
        signature = re.search(rf"^function {name}\((.*?)^\s*\)$", source, re.M | re.S).group(1)
        assert re.search(r";\s*cutoff::Integer", signature), name
    # every package the source uses is declared in Project.toml
    used = set(re.findall(r"^using (\w+)", source, re.M))
    assert used <= set(project_toml()["deps"])
    # no iterative steady-state solver (seed-dependent for Kerr oscillators)
    assert "steadystate.iterative(" not in source


def test_python_seam_matches_the_native_backend():
    from pyspb.backends import native

    assert julia.NAME == "julia"
    for name in ("steady_state_populations", "tau_correlations", "spectra", "version_info"):
        assert callable(getattr(julia, name)) and callable(getattr(native, name))


# --- Julia-free: finding Julia never starts or downloads it ----------------------------


def test_executable_present_is_false_without_any_julia(monkeypatch, tmp_path):
    no_julia_anywhere(monkeypatch, tmp_path)
    assert julia.executable_present() is False


def test_executable_present_finds_julia_on_path(monkeypatch, tmp_path):
    no_julia_anywhere(monkeypatch, tmp_path)
    bindir = fake_julia(tmp_path / "bin" / "julia").parent
    monkeypatch.setenv("PATH", str(bindir))
    assert julia.executable_present() is True


def test_executable_present_follows_python_juliapkg_exe(monkeypatch, tmp_path):
    no_julia_anywhere(monkeypatch, tmp_path)
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(fake_julia(tmp_path / "opt" / "julia")))
    assert julia.executable_present() is True
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(tmp_path / "missing" / "julia"))
    assert julia.executable_present() is False
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(fake_julia(tmp_path / "noexec" / "julia", executable=False)))
    assert julia.executable_present() is False


def test_executable_present_finds_julia_installed_by_juliapkg(monkeypatch, tmp_path):
    no_julia_anywhere(monkeypatch, tmp_path)
    project = tmp_path / "julia_env"
    fake_julia(project / "pyjuliapkg" / "install" / "bin" / "julia")
    assert julia.executable_present() is True


def test_executable_present_reads_juliapkgs_record_of_the_last_resolve(monkeypatch, tmp_path):
    no_julia_anywhere(monkeypatch, tmp_path)
    exe = fake_julia(tmp_path / "elsewhere" / "julia")
    meta = tmp_path / "julia_env" / "pyjuliapkg" / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"executable": str(exe)}))
    assert julia.executable_present() is True
    exe.unlink()
    assert julia.executable_present() is False


def write_meta(tmp_path, deps_files, executable=None):
    meta = tmp_path / "julia_env" / "pyjuliapkg" / "meta.json"
    meta.parent.mkdir(parents=True, exist_ok=True)
    record = {"deps_files": {str(name): {} for name in deps_files}}
    if executable is not None:
        record["executable"] = str(executable)
    meta.write_text(json.dumps(record))


def test_packages_installed_needs_juliapkgs_record_of_pyspbs_declaration(monkeypatch, tmp_path):
    no_julia_anywhere(monkeypatch, tmp_path)
    assert julia.packages_installed() is False  # no meta.json
    write_meta(tmp_path, [tmp_path / "other" / "juliapkg.json"])
    assert julia.packages_installed() is False  # another package's dependencies only
    write_meta(tmp_path, [tmp_path / "other" / "juliapkg.json", julia_setup.JULIAPKG_JSON])
    assert julia.packages_installed() is True


def write_resolved_state(tmp_path, exe, **changes):
    """A meta.json as juliapkg 0.1.28 (format 8) writes it after resolving, newer than the executable.

    Records the juliapkg.json files juliapkg would collect now (pyspb's among them) with
    their times and hashes; ``changes`` overrides fields.
    """
    project = tmp_path / "julia_env"
    files = julia_setup._juliapkg_deps_files(str(project))
    libjulia = exe.parent.parent / "lib" / "libjulia.so"
    libjulia.parent.mkdir(parents=True, exist_ok=True)
    libjulia.write_text("")
    record = {
        "meta_version": 8,
        "dev": False,
        "version": "1.11.0",
        "executable": str(exe),
        "libjulia": str(libjulia),
        "bindir": str(exe.parent),
        "deps_files": {
            name: {
                "timestamp": os.path.getmtime(name),
                "hash_sha256": hashlib.sha256(Path(name).read_bytes()).hexdigest(),
            }
            for name in files
        },
        "pkgs": [],
        "offline": False,
        "override_executable": None,
        **changes,
    }
    meta = project / "pyjuliapkg" / "meta.json"
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps(record))
    later = time.time() + 5  # written after the executable (its ctime is now)
    os.utime(meta, (later, later))
    return meta


@pytest.fixture
def resolved(monkeypatch, tmp_path):
    """No Julia anywhere but a fake one that juliapkg resolved with pyspb's juliapkg.json."""
    no_julia_anywhere(monkeypatch, tmp_path)
    monkeypatch.setattr(julia_setup, "_installed_version", lambda name: {"juliacall": (0, 9, 37)}.get(name))
    monkeypatch.setattr(julia_setup, "_juliapkg_meta_version", lambda source: 8)
    exe = fake_julia(tmp_path / "julia-1.11.0" / "bin" / "julia")
    meta = write_resolved_state(tmp_path, exe)
    assert julia.julia_ready() is None, julia.julia_ready()
    return exe, meta


def test_auto_uses_julia_only_when_nothing_needs_downloading(resolved, monkeypatch, tmp_path):
    from pyspb.backends import get_backend

    exe, meta = resolved
    assert get_backend("auto").NAME == "julia"
    write_resolved_state(tmp_path, exe, deps_files={})  # packages not installed
    assert get_backend("auto").NAME == "native"
    write_resolved_state(tmp_path, exe)
    exe.unlink()
    assert get_backend("auto").NAME == "native"  # packages recorded, Julia gone
    assert "juliacall" not in sys.modules


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"meta_version": 7}, "format 7"),  # juliapkg's load_meta ignores another format
        ({"override_executable": "/opt/julia"}, "PYTHON_JULIAPKG_EXE"),
        ({"offline": True}, "offline"),
        ({"dev": True}, "development"),
    ],
)
def test_auto_says_native_where_juliapkg_would_resolve_again(resolved, tmp_path, change, reason):
    exe, _ = resolved
    write_resolved_state(tmp_path, exe, **change)
    assert reason in julia.julia_ready()
    assert julia.ready() is False


def test_auto_says_native_when_the_deps_files_changed(resolved, monkeypatch, tmp_path):
    exe, _ = resolved
    other = tmp_path / "site" / "otherpkg" / "juliapkg.json"
    other.parent.mkdir(parents=True)
    other.write_text('{"packages": {}}')
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert "juliapkg.json files changed" in julia.julia_ready()  # a new one
    write_resolved_state(tmp_path, exe)
    assert julia.julia_ready() is None
    other.write_text('{"packages": {"X": {}}}')  # same name, new content and time
    os.utime(other, (time.time() + 10, time.time() + 10))
    assert "changed since the last resolve" in julia.julia_ready()


def test_auto_says_native_when_julia_may_have_changed(resolved, tmp_path):
    """The heuristic replacing juliapkg's `julia --version`: executable written after meta.json."""
    exe, meta = resolved
    os.utime(meta, (time.time() - 100, time.time() - 100))  # meta.json older than the executable
    assert "changed after the last resolve" in julia.julia_ready()
    write_resolved_state(tmp_path, exe)
    fake_julia(exe.parent / "juliaup")  # the recorded julia is juliaup's launcher
    assert "juliaup" in julia.julia_ready()


def test_auto_needs_juliacall_0_9_22(resolved, monkeypatch):
    monkeypatch.setattr(julia_setup, "_installed_version", lambda name: {"juliacall": (0, 9, 21)}.get(name))
    assert "older than 0.9.22" in julia.julia_ready()
    monkeypatch.setattr(julia_setup, "_installed_version", lambda name: None)
    assert "not installed" in julia.julia_ready()


def write_manifest(project: Path, uuids) -> None:
    project.mkdir(parents=True, exist_ok=True)
    entries = "".join(f'[[deps.P{k}]]\nuuid = "{u}"\nversion = "1.0.0"\n\n' for k, u in enumerate(uuids))
    (project / "Manifest.toml").write_text(f'julia_version = "1.11.0"\nmanifest_format = "2.0"\n\n{entries}')


def test_juliacall_exe_counts_only_with_a_project_holding_pyspbjulia(resolved, monkeypatch, tmp_path):
    exe = fake_julia(tmp_path / "own" / "bin" / "julia")
    project = tmp_path / "own-project"
    monkeypatch.setenv("PYTHON_JULIACALL_EXE", str(exe))
    # EXE alone: juliacall >= 0.9.28 refuses to start ("must be set together")
    assert julia.executable_present() is False
    assert "set together" in julia.julia_ready()
    write_manifest(project, [julia_setup.PYTHONCALL_UUID])
    monkeypatch.setenv("PYTHON_JULIACALL_PROJECT", str(project))
    assert julia.executable_present() is True
    assert julia.packages_installed() is False  # juliapkg is skipped: pyspb's packages are not there
    assert "lacks PySPBJulia" in julia.julia_ready()
    write_manifest(project, [julia_setup.PYTHONCALL_UUID, julia_setup.PYSPBJULIA_UUID, QUANTUMOPTICS_UUID])
    assert julia.packages_installed() is True
    assert julia.julia_ready() is None
    # a versioned manifest without PySPBJulia may be the one Julia reads: not sure, so no
    (project / "Manifest-v1.11.toml").write_text('manifest_format = "2.0"\n')
    assert julia.julia_ready() is not None
    (project / "Manifest-v1.11.toml").unlink()
    # before 0.9.28 juliacall ignores both and resolves with juliapkg
    monkeypatch.setattr(julia_setup, "_installed_version", lambda name: {"juliacall": (0, 9, 27)}.get(name))
    assert "predates" in julia.julia_ready()
    monkeypatch.setattr(julia_setup, "_installed_version", lambda name: {"juliacall": (0, 9, 37)}.get(name))
    exe.chmod(0o644)
    assert "not an executable" in julia.julia_ready()


def test_juliacall_bindir_never_counts_as_julia(resolved, monkeypatch, tmp_path):
    exe = fake_julia(tmp_path / "own" / "bin" / "julia")
    unset(monkeypatch, "PATH")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("PYTHON_JULIACALL_BINDIR", str(exe.parent))
    assert "PYTHON_JULIACALL_BINDIR" in julia.julia_ready()
    (tmp_path / "julia_env" / "pyjuliapkg" / "meta.json").unlink()
    resolved[0].unlink()
    assert julia.executable_present() is False


def test_packages_installed_through_a_symlinked_install_path(monkeypatch, tmp_path):
    """juliapkg records abspath()s (links kept); pyspb's own path is resolved: compare real paths."""
    no_julia_anywhere(monkeypatch, tmp_path)
    link = tmp_path / "linked-site"
    link.symlink_to(julia_setup.JULIAPKG_JSON.parent.parent, target_is_directory=True)
    through_link = link / "pyspb" / "juliapkg.json"
    assert through_link.is_file() and str(through_link) != str(julia_setup.JULIAPKG_JSON)
    write_meta(tmp_path, [through_link])
    assert julia.packages_installed() is True
    write_meta(tmp_path, [link / "other" / "juliapkg.json"])
    assert julia.packages_installed() is False


JULIAPKG_CROSS_CHECK = r"""
import json, os, sys, time
from pathlib import Path
import juliapkg.deps as deps, juliapkg.state as state
from pyspb.backends import julia, julia_setup

tmp = Path(sys.argv[1])
exe = tmp / "julia-1.11.0" / "bin" / "julia"
results = {}

def write(**changes):
    state.reset_state()
    record = {"meta_version": deps.META_VERSION, "dev": state.STATE["dev"], "version": "1.11.0",
              "executable": str(exe), "libjulia": str(exe), "bindir": str(exe.parent),
              "deps_files": {f: {"timestamp": os.path.getmtime(f), "hash_sha256": deps._get_hash(f)}
                             for f in deps.deps_files()},
              "pkgs": [], "offline": False, "override_executable": None, **changes}
    meta = Path(state.STATE["meta"])
    meta.parent.mkdir(parents=True, exist_ok=True)
    time.sleep(0.05)  # file times: the executable before meta.json, meta.json before what follows
    meta.write_text(json.dumps(record))
    time.sleep(0.05)

def check(name):
    state.reset_state()
    results[name] = [bool(deps.can_skip_resolve()), julia_setup._juliapkg_would_resolve()]

def fake(version):
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text("#!/bin/sh\necho 'julia version " + version + "'\n")
    exe.chmod(0o755)

fake("1.11.0")
write(); check("resolved")
write(meta_version=deps.META_VERSION - 1); check("old format")
write(offline=True); check("was offline")
write(override_executable=str(exe)); check("other override")
write(); os.environ["PYTHON_JULIAPKG_EXE"] = str(exe); check("override set"); del os.environ["PYTHON_JULIAPKG_EXE"]
extra = tmp / "site" / "extra" / "juliapkg.json"
extra.parent.mkdir(parents=True); extra.write_text("{}")
write(); sys.path.append(str(tmp / "site")); check("new deps file")
write(); extra.write_text('{"julia": "1"}'); os.utime(extra, (time.time() + 9,) * 2); check("deps file edited")
write(); fake("1.12.0"); check("julia upgraded")
fake("1.11.0"); write(); os.utime(state.STATE["meta"], (time.time() - 100,) * 2); check("julia touched")
print(json.dumps(results))
"""


@pytest.mark.skipif(os.name == "nt", reason="fake julia is a shell script")
def test_skip_resolve_mirror_agrees_with_juliapkg_itself(tmp_path):
    """juliapkg's own can_skip_resolve (run on a fake `julia --version`) against pyspb's mirror."""
    deps = pytest.importorskip("juliapkg.deps")
    if deps.META_VERSION not in julia_setup.MIRRORED_META_VERSIONS:
        pytest.skip(f"installed juliapkg writes meta format {deps.META_VERSION}, not mirrored")
    env = {k: v for k, v in os.environ.items() if k not in JULIA_LOCATION_VARS and not k.startswith("PYTHON_JULIAPKG")}
    env["PYTHON_JULIAPKG_PROJECT"] = str(tmp_path / "julia_env")
    script = tmp_path / "cross_check.py"
    script.write_text(JULIAPKG_CROSS_CHECK)
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout.strip().splitlines()[-1])
    for name, (juliapkg_skips, our_reason) in results.items():
        if name == "julia touched":
            # the heuristic errs on the safe side: same version, but pyspb cannot tell
            assert juliapkg_skips and our_reason is not None
        elif name == "resolved":
            assert juliapkg_skips and our_reason is None, our_reason
        else:
            assert not juliapkg_skips and our_reason is not None, name


def test_native_solve_and_auto_without_julia_never_import_juliacall(tmp_path):
    """Importing pyspb, solving natively and asking whether Julia exists load no juliacall."""
    script = (
        "import sys, pyspb\n"
        "from pyspb.backends import get_backend, julia\n"
        "inputs = pyspb.Device().rates()\n"
        "out = pyspb.solve(inputs, cutoff=3)\n"
        "julia.executable_present()\n"
        "auto = pyspb.solve(inputs, cutoff=3, backend='auto')\n"
        "assert auto.attrs['backend'] == 'native', auto.attrs['backend']\n"
        "assert 'juliacall' not in sys.modules and 'juliapkg' not in sys.modules\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in JULIA_LOCATION_VARS}
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env.update(PATH=str(empty), HOME=str(tmp_path), PYTHON_JULIAPKG_PROJECT=str(tmp_path / "julia_env"))
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("ok")


# --- Julia-free: errors --------------------------------------------------------------


@pytest.fixture
def juliacall_unavailable(monkeypatch):
    """Make ``import juliacall`` fail and forget any loaded Julia for the test."""
    unset(monkeypatch, julia.PROJECT_ENV, "PYTHON_JULIACALL_THREADS", "PYTHON_JULIACALL_HANDLE_SIGNALS")
    monkeypatch.setitem(sys.modules, "juliacall", None)
    julia._load.cache_clear()
    yield
    julia._load.cache_clear()


def test_julia_backend_without_julia_raises_a_clear_error(juliacall_unavailable):
    with pytest.raises(RuntimeError) as info:
        pyspb.solve(pyspb.Device().rates(), cutoff=3, backend="julia")
    message = str(info.value)
    assert 'backend="native"' in message
    assert "juliacall" in message and "PYTHON_JULIAPKG_EXE" in message
    with pytest.raises(RuntimeError, match='backend="native"'):
        julia.steady_state_populations(*paper_point(), cutoff=3)


def test_loading_sets_thread_and_signal_defaults_only_where_unset(juliacall_unavailable, monkeypatch):
    unset(monkeypatch, "JULIA_NUM_THREADS")
    with pytest.raises(RuntimeError):
        julia.version_info()
    assert os.environ["PYTHON_JULIACALL_THREADS"] == "auto"
    assert os.environ["PYTHON_JULIACALL_HANDLE_SIGNALS"] == "yes"
    # the user's choices stay
    julia._load.cache_clear()
    monkeypatch.setenv("PYTHON_JULIACALL_THREADS", "1")
    monkeypatch.setenv("PYTHON_JULIACALL_HANDLE_SIGNALS", "no")
    with pytest.raises(RuntimeError):
        julia.version_info()
    assert os.environ["PYTHON_JULIACALL_THREADS"] == "1"
    assert os.environ["PYTHON_JULIACALL_HANDLE_SIGNALS"] == "no"


def test_julia_num_threads_is_respected(juliacall_unavailable, monkeypatch):
    monkeypatch.setenv("JULIA_NUM_THREADS", "1")
    with pytest.raises(RuntimeError):
        julia.version_info()
    assert "PYTHON_JULIACALL_THREADS" not in os.environ
    assert "PYTHON_JULIACALL_HANDLE_SIGNALS" not in os.environ  # one thread: Ctrl-C keeps working


def test_project_override_must_name_a_julia_package(juliacall_unavailable, monkeypatch, tmp_path):
    monkeypatch.setenv(julia.PROJECT_ENV, str(tmp_path))
    with pytest.raises(RuntimeError, match=julia.PROJECT_ENV):
        julia.julia_package_dir()
    # checked before juliacall is imported
    with pytest.raises(RuntimeError, match="no PySPBJulia package"):
        julia.version_info()
    monkeypatch.setenv(julia.PROJECT_ENV, str(PACKAGE_DIR))
    assert julia.julia_package_dir() == PACKAGE_DIR


def test_inputs_are_checked_before_julia_starts(juliacall_unavailable):
    Delta, J, chi, xi, gamma = paper_point()
    with pytest.raises(ValueError, match="one length"):
        julia.steady_state_populations(np.zeros(2), J, chi, xi, gamma, cutoff=3)
    with pytest.raises(ValueError, match="cutoff"):
        julia.steady_state_populations(Delta, J, chi, xi, gamma, cutoff=0)
    with pytest.raises(ValueError, match="tau"):
        julia.tau_correlations(Delta, J, chi, xi, gamma, [-1.0], cutoff=3)
    empty = julia.steady_state_populations(*(np.zeros(0) for _ in range(5)), cutoff=3)
    assert empty.shape == (0, 4, 4)


# --- with Julia: results -----------------------------------------------------------


@pytest.mark.julia
@requires_julia
def test_populations_match_native_on_random_points():
    from pyspb.backends import native

    points = random_points(5, seed=7)
    P = julia.steady_state_populations(*points, cutoff=4)
    assert P.shape == (5, 5, 5) and P.dtype == np.float64 and P.flags.c_contiguous
    np.testing.assert_allclose(P.sum(axis=(1, 2)), 1.0, rtol=1e-12)
    assert_populations_close(P, native.steady_state_populations(*points, cutoff=4))


@pytest.mark.julia
@requires_julia
def test_index_order_is_point_cw_ccw():
    """J = 0: the ccw mode stays empty, so all population sits at n_ccw = 0."""
    Delta, J, chi, xi, gamma = paper_point()
    P = julia.steady_state_populations(Delta, np.zeros(1, complex), chi, xi, gamma, cutoff=4)[0]
    assert P[1, 0] > 1e-3 and P[:, 1:].sum() < 1e-15 * P[1:, :].sum()


@pytest.mark.julia
@requires_julia
def test_each_point_is_independent_of_the_others():
    points = random_points(9, seed=3)
    together = julia.steady_state_populations(*points, cutoff=3)
    for k in (0, 4, 8):
        alone = julia.steady_state_populations(*(np.atleast_1d(p[k]) for p in points), cutoff=3)[0]
        np.testing.assert_allclose(together[k], alone, rtol=1e-12, atol=1e-300)


@pytest.mark.julia
@requires_julia
def test_paper_numbers_with_julia():
    from pyspb.backends import native

    P = julia.steady_state_populations(*paper_point(), cutoff=6)
    assert_populations_close(P, native.steady_state_populations(*paper_point(), cutoff=6))
    out = pyspb.solve(pyspb.Device().rates(r=0.35, phi=0.27), cutoff=6, backend="julia")
    assert out.attrs["backend"] == "julia"
    assert out.attrs["quantumoptics_version"] and out.attrs["julia_version"]
    assert float(out.g2_cw) == pytest.approx(0.012, rel=0.02)
    assert float(out.g3_cw) == pytest.approx(3.6e-5, rel=0.03)
    assert float(out.g4_cw) == pytest.approx(4.8e-8, rel=0.03)
    reference = pyspb.solve(pyspb.Device().rates(r=0.35, phi=0.27), cutoff=6, backend="native")
    for name in ("N_cw", "g2_cw", "g3_cw", "g4_cw", "N_ccw", "g2_ccw"):
        assert float(out[name]) == pytest.approx(float(reference[name]), rel=1e-8), name


@pytest.mark.julia
@requires_julia
def test_version_info():
    info = julia.version_info()
    assert info["julia_version"].startswith("1.")
    assert re.fullmatch(r"1\.\d+\.\d+.*", info["quantumoptics_version"])
    assert info["julia_threads"] >= 1


# --- Julia-free: threads (a fake Julia module stands in for PySPBJulia) ------------------


class FakePySPBJulia:
    """Stands in for the Julia module: native results; records the Python thread and ntasks of each call."""

    threads = 4

    def __init__(self):
        self.calls = []

    def steady_state_populations(self, *points, cutoff, ntasks):
        from pyspb.backends import native

        self.calls.append((threading.current_thread(), ntasks))
        return native.steady_state_populations(*points, cutoff=cutoff)

    def versions(self):
        return ("1.11.0", "1.2.8", self.threads)


@pytest.fixture
def fake_julia_module(monkeypatch):
    fake = FakePySPBJulia()
    monkeypatch.setattr(julia, "_load", lambda: fake)
    return fake


def test_julia_refuses_to_run_off_the_main_thread(fake_julia_module):
    """PythonCall.jl #578: Julia called from a non-main Python thread hangs at its next GC."""
    errors = []

    def worker():
        try:
            julia.steady_state_populations(*paper_point(), cutoff=3)
        except RuntimeError as error:
            errors.append(str(error))

    thread = threading.Thread(target=worker, name="not-main")
    thread.start()
    thread.join(timeout=60)
    assert len(errors) == 1 and "'not-main'" in errors[0] and "#578" in errors[0]
    assert 'backend="native"' in errors[0]
    assert fake_julia_module.calls == []  # Julia was never entered
    julia.steady_state_populations(*paper_point(), cutoff=3)  # the main thread may
    assert fake_julia_module.calls[0][0] is threading.main_thread()


def test_dask_inputs_run_the_julia_engine_in_the_calling_thread(fake_julia_module):
    pytest.importorskip("dask")
    inputs = pyspb.Device().rates(phi=np.linspace(0.1, 0.9, 5), r=[0.3, 0.35])
    out = pyspb.solve(inputs.chunk({"phi": 2}), cutoff=3, backend="julia", P=True)
    calls = len(fake_julia_module.calls)
    assert calls == 3  # one per block (phi: 2 + 2 + 1), computed inside solve
    assert out.g2_cw.chunks == inputs.chunk({"phi": 2}).J_re.broadcast_like(out.g2_cw).chunks
    computed = out.compute()  # dask's default (threaded) scheduler: no Julia call left to make
    assert len(fake_julia_module.calls) == calls
    assert all(thread is threading.main_thread() for thread, _ in fake_julia_module.calls)
    eager = pyspb.solve(inputs, cutoff=3, backend="native", P=True)
    xr.testing.assert_allclose(computed.P.drop_attrs(), eager.P.transpose(*computed.P.dims).drop_attrs(), rtol=1e-12)


@pytest.mark.slow
def test_dask_distributed_client_does_not_move_julia_off_the_calling_thread(fake_julia_module):
    distributed = pytest.importorskip("dask.distributed")
    inputs = pyspb.Device().rates(phi=np.linspace(0.1, 0.9, 4), r=[0.3, 0.35])
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"):
        out = pyspb.solve(inputs.chunk({"phi": 2}), cutoff=3, backend="julia").compute()
    assert fake_julia_module.calls and all(t is threading.main_thread() for t, _ in fake_julia_module.calls)
    assert np.isfinite(out.g2_cw.values).all()


# --- Julia-free: memory bound on concurrent factorisations --------------------------------


def test_factorisation_memory_reproduces_the_measured_umfpack_sizes():
    for cutoff, measured in julia.UMFPACK_MEASURED:
        margin = julia.FACTORISATION_MARGIN * measured
        assert margin <= julia.factorisation_memory(cutoff) <= 1.1 * margin, cutoff  # buffers: <= 7 %
    sizes = [julia.factorisation_memory(c) for c in range(1, 31)]
    assert all(a < b for a, b in zip(sizes, sizes[1:], strict=False))
    # extrapolated with the steepest measured slope (n^1.87, cutoffs 6 to 8): cutoff 20 near 36 GB
    assert 30e9 < julia.factorisation_memory(20) / julia.FACTORISATION_MARGIN < 40e9
    # interpolated between the measurements: cutoff 12 lies between cutoffs 10 and 14
    assert 372 * 2**20 < julia.factorisation_memory(12) / julia.FACTORISATION_MARGIN < 2.9e9


def test_concurrent_factorisations_bound_threads_by_memory():
    GiB = 2**30
    # cutoff 6: ~25 MiB each, 16 threads all fit in 8 GiB
    assert julia.concurrent_factorisations(6, threads=16, available=8 * GiB) == 16
    # cutoff 14: ~4.4 GB each with the margin; 0.75 * 16 GiB holds 2 of them, not 16
    assert julia.concurrent_factorisations(14, threads=16, available=16 * GiB) == 2
    # one always runs if it fits at all (the margin is not held against it)
    assert julia.concurrent_factorisations(14, threads=16, available=3.5 * GiB) == 1
    assert julia.concurrent_factorisations(10, threads=0, available=64 * GiB) == 1
    # unknown memory: Julia's threads
    assert julia.concurrent_factorisations(14, threads=8, available=None) == 8
    with pytest.raises(MemoryError, match="cutoff 20.*smaller cutoff.*native"):
        julia.concurrent_factorisations(20, threads=8, available=16 * GiB)


def test_available_memory_is_positive_where_known():
    available = julia.available_memory()
    assert available is None or 0 < available < 2**50


def test_the_julia_call_gets_the_memory_bound(fake_julia_module, monkeypatch):
    monkeypatch.setattr(julia, "available_memory", lambda: 16 * 2**30)
    fake_julia_module.threads = 16
    julia.steady_state_populations(*paper_point(), cutoff=6)
    assert fake_julia_module.calls[-1][1] == 16
    # cutoff 14 is too slow for a fake native engine: check the number handed over only
    assert julia._ntasks(fake_julia_module, 14) == 2


def test_julia_source_bounds_tasks_and_reuses_the_symbolic_factorisation():
    source = SOURCE.read_text()
    for name in ("steady_state_populations", "tau_correlations", "spectra"):
        signature = re.search(rf"^function {name}\((.*?)^\s*\)$", source, re.M | re.S).group(1)
        assert re.search(r"ntasks::Integer = Threads\.nthreads\(\)", signature), name
    assert re.search(r"lu!\(factorisation, A; check = false\)", source)  # values only, symbolic reused
    assert "finalize(factorisation.numeric)" in source  # C memory freed now, not at the next GC
    assert re.search(r"min\(npts, ntasks, Threads\.nthreads\(\)\)", source)


# --- Julia-free: options ----------------------------------------------------------------


def test_solver_options_say_that_tolerance_is_ignored():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert julia.solver_options() == {}
    with pytest.warns(UserWarning, match=r"ignores tolerance=1e-08"):
        assert julia.solver_options(1e-8) == {}
