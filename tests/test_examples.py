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
        output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []) if cell.cell_type == "code"
    )
    assert "max R = 99.7 %" in printed
