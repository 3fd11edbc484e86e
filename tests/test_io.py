import os
import stat

import netCDF4
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


def test_each_part_of_a_split_complex_variable_says_which_part_it_is(tmp_path):
    # issue 9, item 5: J_re and J_im in the files kept the complex J's long_name
    J = xr.DataArray([0.1 + 0.2j], dims="x", attrs={"long_name": "backscattering coupling J", "units": "1e6 s-1"})
    path = pyspb.save(xr.Dataset({"J": J}), tmp_path / "c.nc")
    with netCDF4.Dataset(path) as raw:
        assert raw["J_re"].long_name == "real part of backscattering coupling J"
        assert raw["J_im"].long_name == "imaginary part of backscattering coupling J"
    assert pyspb.load(path)["J"].attrs["long_name"] == "backscattering coupling J"


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


def test_save_flushes_the_data_before_the_rename_and_the_directory_after(tmp_path, fsync_log):
    path = tmp_path / "durable.nc"
    events = fsync_log
    pyspb.save(xr.Dataset({"a": ("x", [1.0])}), path)
    kinds = [kind for kind, _ in events]
    rename = kinds.index("replace")
    flushed_before = [target for kind, target in events[:rename] if kind == "fsync"]
    assert any(os.path.basename(target).startswith(".durable.nc.") for target in flushed_before)
    assert ("fsync", str(tmp_path)) in events[rename:]


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


def test_new_files_get_the_umask_mode_and_replaced_files_keep_theirs(tmp_path):
    ds = xr.Dataset({"a": ("x", [1.0, 2.0])})
    old = os.umask(0o027)
    try:
        path = pyspb.save(ds, tmp_path / "new.nc")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0o666 less the umask, not tempfile's 0o600
    path.chmod(0o664)
    pyspb.save(ds, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o664


def test_saving_over_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "run.nc"
    pyspb.save(xr.Dataset({"a": ("x", [1.0])}), target)
    link = tmp_path / "latest.nc"
    link.symlink_to(target)
    new = xr.Dataset({"a": ("x", [5.0, 6.0])})
    pyspb.save(new, link)
    assert link.is_symlink() and link.resolve() == target
    xr.testing.assert_identical(pyspb.load(target), new)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["run.nc"]  # no temporary left


def test_a_named_dataarray_is_saved_and_an_unnamed_one_refused(tmp_path):
    out = pyspb.solve(pyspb.Device().rates(phi=[0.2, 0.3]), cutoff=3)
    path = pyspb.save(out.g2_cw, tmp_path / "g2.nc")
    xr.testing.assert_identical(pyspb.load(path).g2_cw, out.g2_cw)
    with pytest.raises(TypeError, match="named DataArray.*rename"):
        pyspb.save(out.g2_cw.rename(None), tmp_path / "x.nc")
    with pytest.raises(TypeError, match="got dict"):
        pyspb.save({"a": 1}, tmp_path / "x.nc")


def test_files_follow_cf_habits(tmp_path):
    ds = xr.concat([pyspb.Device().rates(J0=0.0, tip=False), pyspb.Device().rates()], dim="case")
    ds = ds.assign_coords(case=["ideal", "with tip"])
    out = pyspb.solve(ds.assign_coords(phi_grid=("case", [0.1, 0.27])), cutoff=3)
    assert "units" not in out.case.attrs and out.case.attrs["long_name"].startswith("cavity")
    path = pyspb.save(pyspb.attributes.annotate(out), tmp_path / "cf.nc")
    with netCDF4.Dataset(path) as raw:
        assert raw.getncattr("Conventions") == "CF-1.10"
        for name in ("case", "phi_grid"):  # coordinates: no fill value
            assert "_FillValue" not in raw.variables[name].ncattrs(), name
        assert "units" not in raw.variables["case"].ncattrs()  # a string coordinate has no units
        assert raw.variables["case"].getncattr("long_name").startswith("cavity")
    xr.testing.assert_identical(pyspb.load(path), pyspb.attributes.annotate(out))
