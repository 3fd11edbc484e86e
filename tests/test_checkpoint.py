import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import xarray as xr

import pyspb
from pyspb.backends import native


def grid(n=24):
    return pyspb.rate_grid(Delta=np.linspace(-0.5, 0.5, n), J_re=0.3, J_im=0.1, chi=1.0, xi=0.1, gamma=0.4)


def count_points(monkeypatch):
    """Count the points the native backend is asked to solve."""
    calls = []
    original = native.steady_state_populations

    def counting(*args, **kwargs):
        calls.append(len(args[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(native, "steady_state_populations", counting)
    return calls


def test_checkpoint_run_equals_plain_run_and_a_rerun_computes_nothing(tmp_path, monkeypatch):
    plain = pyspb.solve(grid(), cutoff=3)
    path = tmp_path / "run.nc"
    first = pyspb.solve(grid(), cutoff=3, checkpoint=path, chunk_size=5)
    xr.testing.assert_allclose(first.drop_attrs(), plain.drop_attrs(), rtol=1e-10)
    calls = count_points(monkeypatch)
    again = pyspb.solve(grid(), cutoff=3, checkpoint=path, chunk_size=5)
    assert calls == []
    xr.testing.assert_identical(again.drop_attrs(), first.drop_attrs())


def test_checkpoint_of_other_inputs_is_refused(tmp_path):
    path = tmp_path / "run.nc"
    pyspb.solve(grid(), cutoff=3, checkpoint=path)
    with pytest.raises(ValueError, match="other inputs, cutoff"):
        pyspb.solve(grid().assign(chi=1.1), cutoff=3, checkpoint=path)
    with pytest.raises(ValueError, match="other inputs, cutoff"):
        pyspb.solve(grid(), cutoff=4, checkpoint=path)


def test_sigkilled_sweep_resumes_and_loses_at_most_one_chunk(tmp_path, monkeypatch):
    path = tmp_path / "killed.nc"
    chunk = 4
    script = textwrap.dedent(
        f"""
        import time
        import numpy as np
        import pyspb
        from pyspb.backends import native
        original = native.steady_state_populations
        def slow(*args, **kwargs):
            time.sleep(0.3)
            return original(*args, **kwargs)
        native.steady_state_populations = slow
        inputs = pyspb.rate_grid(Delta=np.linspace(-0.5, 0.5, 24), J_re=0.3, J_im=0.1, chi=1.0, xi=0.1, gamma=0.4)
        pyspb.solve(inputs, cutoff=3, checkpoint={str(path)!r}, chunk_size={chunk})
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    done = 0
    while time.time() < deadline and done < 2 * chunk:
        time.sleep(0.05)
        if path.exists():
            done = int(pyspb.load(path).done.sum())
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert done >= 2 * chunk, "the sweep did not get going"
    saved = int(pyspb.load(path).done.sum())
    assert saved < 24, "the sweep finished before it was killed"
    assert saved >= done  # what was recorded before the kill is still there, readable
    calls = count_points(monkeypatch)
    resumed = pyspb.solve(grid(), cutoff=3, checkpoint=path, chunk_size=chunk)
    assert sum(calls) == 24 - saved  # only the missing points are computed
    plain = pyspb.solve(grid(), cutoff=3)
    xr.testing.assert_allclose(resumed.drop_attrs(), plain.drop_attrs(), rtol=1e-10)


def test_checkpoint_is_never_half_written(tmp_path):
    path = tmp_path / "run.nc"
    pyspb.solve(grid(8), cutoff=3, checkpoint=path, chunk_size=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.nc"]
