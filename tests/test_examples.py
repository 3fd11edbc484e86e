"""The example scripts and notebooks run at quick size."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = {
    "fig1.py": ("fig1b", "fig1c"),
    "fig2.py": ("fig2a", "fig2b"),
    "fig3.py": ("fig3b", "fig3c", "fig3d"),
    "fig4.py": ("fig4a", "fig4b"),
}


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_example_script_runs_quick(script, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick", "--out", str(tmp_path / "out")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for panel in SCRIPTS[script]:
        assert (tmp_path / "out" / f"{panel}.nc").exists()
        assert (tmp_path / "out" / f"{panel}.png").stat().st_size > 1000


def _execute(name, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    nbformat.validate(notebook)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    for cell in notebook.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = "QUICK = True"  # injected: the test always runs at quick size
    monkeypatch.setenv("PYSPB_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    return notebook


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    _execute("quickstart.ipynb", tmp_path, monkeypatch)
    assert (tmp_path / "quickstart_phi_scan.nc").exists()


def test_paper_figures_notebook_runs_quick(tmp_path, monkeypatch):
    notebook = _execute("paper_figures.ipynb", tmp_path, monkeypatch)
    assert notebook.cells[1].source == "QUICK = True"
    assert len(list((tmp_path / "paper_figures").glob("*.nc"))) == 9
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if cell.cell_type == "code"
    )
    assert "max R = 99.7 %" in printed


def _run_example(script, args, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_large_sweep_example_resumes_from_its_checkpoint(tmp_path):
    import xarray as xr

    import pyspb

    args = ["--size", "6", "--cutoff", "3", "--checkpoint", "run.ckpt"]
    first = _run_example("large_sweep.py", [*args, "--out", "first.nc"], tmp_path)
    assert "pyspb.solve (native, cutoff 3)" in first.stderr  # the progress bar
    chunks = tmp_path / "run.ckpt" / "chunks"
    written = {p.name: p.stat().st_mtime_ns for p in chunks.iterdir()}
    again = _run_example("large_sweep.py", [*args, "--out", "again.nc"], tmp_path)
    assert "36/36" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in chunks.iterdir()} == written  # nothing left to compute
    a, b = pyspb.load(tmp_path / "first.nc"), pyspb.load(tmp_path / "again.nc")
    xr.testing.assert_identical(a.R, b.R)
    assert a.R.attrs["units"] == "1" and float(a.R.max()) > 0.5


@pytest.mark.slow
def test_large_sweep_example_on_a_dask_cluster_equals_the_serial_run(tmp_path):
    pytest.importorskip("dask.distributed")
    import xarray as xr

    import pyspb

    _run_example("large_sweep.py", ["--size", "6", "--cutoff", "3", "--out", "serial.nc"], tmp_path)
    _run_example("large_sweep.py", ["--size", "6", "--cutoff", "3", "--workers", "2", "--out", "dask.nc"], tmp_path)
    serial, dask = pyspb.load(tmp_path / "serial.nc"), pyspb.load(tmp_path / "dask.nc")
    xr.testing.assert_allclose(serial.R.drop_attrs(), dask.R.drop_attrs(), rtol=1e-10)


def test_fit_and_tolerance_notebook_runs_quick(tmp_path, monkeypatch):
    notebook = _execute("fit_and_tolerance.ipynb", tmp_path, monkeypatch)
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    assert "Q: truth 1.25e+10, fit 1.2" in printed and "best tip: r = 0.3" in printed
    assert "5th percentile 99." in printed
    assert (tmp_path / "fit_and_tolerance_mc.nc").exists()
