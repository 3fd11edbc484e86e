"""The backend seam: what every backend provides, and solve asking the backend for its options."""

import types

import numpy as np
import pytest

import pyspb
from pyspb.backends import BACKENDS, Backend, get_backend, julia, native


@pytest.mark.parametrize("module", [native, julia], ids=["native", "julia"])
def test_every_backend_provides_the_protocol(module):
    assert isinstance(module, Backend)
    assert module.NAME in BACKENDS and isinstance(module.METHOD, str) and module.METHOD


def test_a_module_without_solver_options_is_not_a_backend():
    partial = types.ModuleType("partial")
    provided = ("NAME", "METHOD", "MAIN_THREAD_ONLY", "PATHS", "check_memory", "steady_state_populations")
    for name in provided + ("version_info", "tau_correlations", "spectra"):
        setattr(partial, name, getattr(native, name))
    assert not isinstance(partial, Backend)
    partial.solver_options = native.solver_options
    assert isinstance(partial, Backend)


def test_get_backend_names_the_choices():
    assert get_backend("native") is native
    with pytest.raises(ValueError, match="choose one of 'native', 'julia', 'auto'"):
        get_backend("fortran")


def test_solve_takes_its_options_from_the_backend(monkeypatch):
    asked = []

    def solver_options(tolerance=None):
        asked.append(tolerance)
        return {"tolerance": 3e-9}

    monkeypatch.setattr(native, "solver_options", solver_options)
    out = pyspb.solve(pyspb.Device().rates(), cutoff=3, tolerance=5e-10)
    assert asked == [5e-10] and out.attrs["tolerance"] == 3e-9


def test_a_backend_without_options_records_no_tolerance(monkeypatch):
    monkeypatch.setattr(native, "solver_options", lambda tolerance=None: {})
    monkeypatch.setattr(native, "PATHS", ())  # nor counts of points per solver (then solve passes paths={})
    calls = []

    def populations(*points, cutoff, **options):
        calls.append(options)
        P = np.zeros((len(points[0]), cutoff + 1, cutoff + 1))
        P[:, 0, 0] = 1.0
        return P

    monkeypatch.setattr(native, "steady_state_populations", populations)
    out = pyspb.solve(pyspb.Device().rates(), cutoff=3, tolerance=1e-9)
    assert calls == [{}] and "tolerance" not in out.attrs


@pytest.mark.parametrize("tolerance", ["tight", "1e-10", True, [1e-10]])
def test_solve_refuses_a_tolerance_that_is_not_a_number(tolerance):
    with pytest.raises(TypeError, match=r"tolerance must be a number in \(0, 1e-3\)"):
        pyspb.solve(pyspb.Device().rates(), cutoff=3, tolerance=tolerance)
