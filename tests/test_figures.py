import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import pyspb  # noqa: E402
from pyspb import figures, paper  # noqa: E402


def test_reproduce_writes_netcdf_and_png(tmp_path, quick_panels):
    written = figures.reproduce("fig3b", tmp_path, quick=True)
    nc, png = written["fig3b"]
    assert nc == tmp_path / "fig3b.nc" and png.exists() and png.stat().st_size > 1000
    again = pyspb.load(nc)
    xr.testing.assert_allclose(again["J_abs_sq"], quick_panels["fig3b"]["J_abs_sq"])
    assert again.attrs["quick"] == 1 and again["J_abs_sq"].attrs["units"] == "1e12 s-2"


def test_write_panel_saves_the_given_dataset(tmp_path, quick_panels):
    nc, png = figures.write_panel("fig4b", quick_panels["fig4b"], tmp_path / "new")
    xr.testing.assert_allclose(pyspb.load(nc)["R"], quick_panels["fig4b"]["R"])
    assert png.stat().st_size > 1000


def test_reproduce_refuses_a_bad_cutoff_for_any_panel(tmp_path):
    with pytest.raises(ValueError, match="cutoff"):
        figures.reproduce("fig3b", tmp_path, quick=True, cutoff=1)
    assert not list(tmp_path.iterdir())


def test_figures_is_a_lazy_attribute_of_the_package():
    import importlib

    assert pyspb.figures is importlib.import_module("pyspb.figures")
    assert paper.panels("fig3") == ["fig3b", "fig3c", "fig3d"]
    code = "import sys, pyspb; sys.exit('pyspb.figures' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
