import numpy as np
import pytest
import xarray as xr

import pyspb


def test_solve_result_round_trips_through_netcdf(tmp_path):
    out = pyspb.solve(pyspb.Device().rates(phi=np.linspace(0.2, 0.3, 3)), cutoff=4, P=True)
    path = pyspb.save(out, tmp_path / "result.nc")
    xr.testing.assert_identical(pyspb.load(path), out)


def test_complex_variables_are_split_and_joined(tmp_path):
    ds = xr.Dataset({"J": ("x", np.array([0.1 + 0.2j, -0.3j]), {"units": "1e6 s-1"})}, coords={"x": [0, 1]})
    path = pyspb.save(ds, tmp_path / "c.nc")
    raw = xr.load_dataset(path, engine="netcdf4")
    assert "J_re" in raw and "J_im" in raw and "J" not in raw
    xr.testing.assert_identical(pyspb.load(path), ds)


def test_device_rates_round_trip(tmp_path):
    ds = pyspb.Device().rates(r=[0.3, 0.35], J0_over_gamma1=[0.0, 1.8])
    xr.testing.assert_identical(pyspb.load(pyspb.save(ds, tmp_path / "rates.nc")), ds)


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.nc"
    old = xr.Dataset({"a": ("x", [1.0, 2.0])})
    pyspb.save(old, path)

    def explode(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_netcdf", explode)
    with pytest.raises(KeyboardInterrupt):
        pyspb.save(xr.Dataset({"a": ("x", [3.0])}), path)
    monkeypatch.undo()
    xr.testing.assert_identical(pyspb.load(path), old)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.nc"]  # no temporary left behind


def test_check_writable_says_why_a_path_cannot_be_written(tmp_path):
    from pyspb.io import check_writable

    blocker = tmp_path / "file"
    blocker.write_text("")  # root ignores permissions; nobody can create a path under a file
    with pytest.raises(OSError, match="cannot write .*out.nc .*choose a writable location"):
        check_writable(blocker / "out.nc")
    with pytest.raises(OSError, match="Is a directory"):
        check_writable(tmp_path)
    assert check_writable(tmp_path / "new" / "out.nc") == tmp_path / "new" / "out.nc"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["file", "new"]  # nothing left behind
