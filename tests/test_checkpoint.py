import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import pyspb
from pyspb import checkpoint as ckpt
from pyspb.backends import native
from pyspb.checkpoint import CheckpointError, CheckpointInterrupted

UNPATCHED = native.steady_state_populations


def grid(n=24):
    return pyspb.rate_grid(Delta=np.linspace(-0.5, 0.5, n), J_re=0.3, J_im=0.1, chi=1.0, xi=0.1, gamma=0.4)


def count_points(monkeypatch, fail_at=None, error=KeyboardInterrupt):
    """Count the points the native backend is asked to solve (raise ``error`` on call ``fail_at``)."""
    calls = []
    original = UNPATCHED

    def counting(*args, **kwargs):
        if fail_at is not None and len(calls) + 1 == fail_at:
            raise error()
        calls.append(len(args[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(native, "steady_state_populations", counting)
    return calls


def markers(path):
    """{chunk name: (marker text, mtime)} of the complete chunks."""
    return {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in (path / "chunks").glob("*.json")}


def leftovers(path):
    return sorted(p.name for p in path.rglob("*") if p.name.endswith(".tmp") or p.name == "lock")


def test_checkpoint_run_equals_plain_run_and_a_rerun_computes_nothing(tmp_path, monkeypatch):
    plain = pyspb.solve(grid(), cutoff=3, P=True)
    path = tmp_path / "run.ckpt"
    first = pyspb.solve(grid(), cutoff=3, checkpoint=path, chunk_size=5, P=True)
    xr.testing.assert_allclose(first.drop_attrs(), plain.drop_attrs(), rtol=1e-10)
    # one data file and one marker per chunk, written once; no lock or temporaries left
    assert len(markers(path)) == 5 and leftovers(path) == []
    assert ckpt.status(path) == {"points_done": 24, "points": 24, "chunks_done": 5, "complete": True}
    calls = count_points(monkeypatch)
    again = pyspb.solve(grid(), cutoff=3, checkpoint=path, chunk_size=5, P=True)
    assert calls == []
    xr.testing.assert_identical(again.drop_attrs(), first.drop_attrs())
    # the checkpoint turns into the result solve returned, attrs included, and saves as NetCDF
    # (except the counts of points per solver, which describe the call that computed them)
    result = ckpt.to_dataset(path, P=True)
    per_call = {key: value for key, value in first.attrs.items() if not key.startswith("points_")}
    expected = first.copy()
    expected.attrs = {**per_call, "created": result.attrs["created"]}
    xr.testing.assert_identical(result, expected)
    pyspb.save(result, tmp_path / "run.nc")
    xr.testing.assert_identical(pyspb.load(tmp_path / "run.nc").drop_attrs(), first.drop_attrs())


def test_every_checkpoint_file_is_flushed_to_disk_before_its_rename(tmp_path, fsync_log):
    pyspb.solve(grid(), cutoff=3, checkpoint=tmp_path / "run", chunk_size=5)
    renamed = [path for kind, path in fsync_log if kind == "replace"]
    flushed = {path for kind, path in fsync_log if kind == "fsync"}
    assert len([path for path in renamed if path.endswith(".tmp")]) >= 10  # 5 chunks and their markers
    assert set(renamed) <= flushed


def test_checkpoint_of_another_call_is_refused(tmp_path):
    path = tmp_path / "run.ckpt"
    pyspb.solve(grid(), cutoff=3, checkpoint=path)
    for inputs, options, what in [
        (grid().assign(chi=1.1), {}, "input values differ"),
        (grid(), {"cutoff": 4}, "cutoff"),
        (grid(), {"tolerance": 1e-9}, "tolerance"),
        (grid(25), {}, "grid shape"),
        (grid().assign_coords(run=("Delta", np.arange(24))), {}, "grid coords"),
    ]:
        with pytest.raises(CheckpointError, match=f"other inputs, cutoff.*{what}"):
            pyspb.solve(inputs, **{"cutoff": 3, **options}, checkpoint=path)


def test_checkpoint_of_an_older_pyspb_or_another_file_is_refused(tmp_path):
    old = tmp_path / "old.nc"  # what pyspb 0.1 wrote: one NetCDF file
    pyspb.save(
        xr.Dataset({"P_flat": (("point", "n_cw", "n_ccw"), np.zeros((3, 4, 4)))}, attrs={"pyspb_checkpoint": "abc"}),
        old,
    )
    with pytest.raises(CheckpointError, match="older pyspb"):
        pyspb.solve(grid(3), cutoff=3, checkpoint=old)
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(CheckpointError, match="is a file, not a pyspb checkpoint"):
        pyspb.solve(grid(3), cutoff=3, checkpoint=other)
    path = tmp_path / "run.ckpt"
    pyspb.solve(grid(3), cutoff=3, checkpoint=path)
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(CheckpointError, match="format version 99"):
        pyspb.solve(grid(3), cutoff=3, checkpoint=path)
    assert other.read_text() == "hello"
    folder = tmp_path / "results"  # someone's directory: never written into
    folder.mkdir()
    (folder / "data.csv").write_text("1,2")
    with pytest.raises(CheckpointError, match="not a pyspb checkpoint"):
        pyspb.solve(grid(3), cutoff=3, checkpoint=folder)
    assert sorted(p.name for p in folder.iterdir()) == ["data.csv"]
    empty = tmp_path / "empty"  # an empty directory is fine
    empty.mkdir()
    pyspb.solve(grid(3), cutoff=3, checkpoint=empty)
    assert ckpt.status(empty)["complete"]


def test_an_unwritable_checkpoint_fails_before_any_work(tmp_path, monkeypatch):
    # root ignores permissions: a path under a regular file cannot be created by anyone
    blocker = tmp_path / "file"
    blocker.write_text("")
    calls = count_points(monkeypatch)
    with pytest.raises(CheckpointError, match="cannot write checkpoint .* choose a writable location"):
        pyspb.solve(grid(), cutoff=3, checkpoint=blocker / "run.ckpt")
    assert calls == []


READ_ONLY = """
import os, sys
import netCDF4  # imported before dropping privileges
import numpy as np
import pyspb
from pyspb.backends import native
calls = []
native.steady_state_populations = lambda *args, **kwargs: calls.append(1)
inputs = pyspb.rate_grid(Delta=np.linspace(-0.5, 0.5, 4), J_re=0.3, J_im=0.1, chi=1.0, xi=0.1, gamma=0.4)
if os.geteuid() == 0:  # root ignores permissions: act as nobody
    os.setgid(65534)
    os.setuid(65534)
for target in sys.argv[1:]:
    try:
        pyspb.solve(inputs, cutoff=3, checkpoint=target)
    except pyspb.checkpoint.CheckpointError as error:
        print(error)
try:
    pyspb.io.check_writable(os.path.join(sys.argv[1], "..", "out.nc"))
except OSError as error:
    print(error)
print("backend calls:", len(calls))
"""


def test_a_read_only_directory_fails_before_any_work():
    top = Path(tempfile.mkdtemp(prefix="pyspb-test-"))  # under /tmp: every user can reach it
    top.chmod(0o755)
    folder = top / "read-only"
    existing = folder / "old.ckpt"
    pyspb.solve(grid(4), cutoff=3, checkpoint=existing)  # a finished checkpoint, then the directory made read-only
    for path in (existing, existing / "chunks", folder):
        path.chmod(0o555)
    try:
        result = subprocess.run(
            [sys.executable, "-c", READ_ONLY, str(folder / "new.ckpt"), str(existing)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        for path in (folder, existing, existing / "chunks"):
            path.chmod(0o755)
        shutil.rmtree(top)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"cannot write checkpoint {folder / 'new.ckpt'} (Permission denied); choose a writable location"
    assert lines[1] == f"cannot write checkpoint {existing} (Permission denied); choose a writable location"
    assert lines[2].startswith("[Errno 13] cannot write") and "choose a writable location" in lines[2]
    assert lines[3] == "backend calls: 0"


def test_a_disk_too_small_fails_before_any_work(tmp_path, monkeypatch):
    calls = count_points(monkeypatch)
    monkeypatch.setattr(ckpt.shutil, "disk_usage", lambda path: type("usage", (), {"free": 1000})())
    with pytest.raises(CheckpointError, match="needs about .* MB .* free"):
        pyspb.solve(grid(), cutoff=3, checkpoint=tmp_path / "run.ckpt")
    assert calls == [] and leftovers(tmp_path / "run.ckpt") == []


def test_a_disk_that_fills_up_keeps_the_finished_chunks_and_resumes(tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    original = ckpt._write_file
    writes = []

    def full_disk(target, payload):
        writes.append(target)
        if len(writes) == 6:  # data of the third chunk (the manifest, then two files per chunk)
            with open(target, "xb") as handle:
                handle.write(payload[: len(payload) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(target, payload)

    monkeypatch.setattr(ckpt, "_write_file", full_disk)
    with pytest.raises(CheckpointError, match="No space left on device.*rerun the same call to resume"):
        pyspb.solve(grid(), cutoff=3, checkpoint=path, chunk_size=4)
    assert ckpt.status(path)["points_done"] == 8 and leftovers(path) == []
    monkeypatch.setattr(ckpt, "_write_file", original)
    calls = count_points(monkeypatch)
    resumed = pyspb.solve(grid(), cutoff=3, checkpoint=path, chunk_size=4)
    assert sum(calls) == 16
    xr.testing.assert_allclose(resumed.drop_attrs(), pyspb.solve(grid(), cutoff=3).drop_attrs(), rtol=1e-10)


@pytest.mark.parametrize("damage", ["bytes", "range"])
def test_damaged_chunks_are_detected_and_computed_again(tmp_path, monkeypatch, damage):
    path = tmp_path / "run.ckpt"
    plain = pyspb.solve(grid(), cutoff=3, checkpoint=path, chunk_size=8)
    data = path / "chunks" / "points-8-16.npy"
    if damage == "bytes":  # random bytes in the array: the checksum no longer matches
        raw = bytearray(data.read_bytes())
        raw[-40:] = np.random.default_rng(1).bytes(40)
        data.write_bytes(bytes(raw))
        reason = "checksum"
    else:  # values out of range with a matching checksum (e.g. written by a broken run)
        marker_path = path / "chunks" / "points-8-16.json"
        P = np.load(data)
        P[3, 0, 0] = -1e301
        data.unlink()
        with open(data, "wb") as handle:
            np.save(handle, P)
        marker = json.loads(marker_path.read_text())
        marker["sha256"] = __import__("hashlib").sha256(data.read_bytes()).hexdigest()
        marker_path.write_text(json.dumps(marker))
        reason = "not probabilities"
    with pytest.raises(CheckpointError, match=reason):
        ckpt.to_dataset(path)
    calls = count_points(monkeypatch)
    with pytest.warns(RuntimeWarning, match=f"points-8-16: .*{reason}.*computing that chunk again"):
        again = pyspb.solve(grid(), cutoff=3, checkpoint=path, chunk_size=8)
    assert calls == [8]
    xr.testing.assert_identical(again.drop_attrs(), plain.drop_attrs())
    xr.testing.assert_identical(ckpt.to_dataset(path).drop_attrs(), plain.drop_attrs())


def test_a_checkpoint_in_use_is_refused_and_a_stale_lock_taken_over(tmp_path):
    path = tmp_path / "run.ckpt"
    pyspb.solve(grid(4), cutoff=3, checkpoint=path)
    lock = path / "lock"
    host = socket.gethostname()
    with subprocess.Popen(["sleep", "30"]) as alive:
        lock.write_text(json.dumps({"pid": alive.pid, "host": host, "started": "now"}))
        with pytest.raises(CheckpointError, match=f"in use by process {alive.pid} on host {host}"):
            pyspb.solve(grid(4), cutoff=3, checkpoint=path)
        alive.kill()
    lock.write_text(json.dumps({"pid": 123456, "host": "elsewhere", "started": "now"}))
    with pytest.raises(CheckpointError, match="in use by process 123456 on host elsewhere.*delete"):
        pyspb.solve(grid(4), cutoff=3, checkpoint=path)
    lock.write_text(json.dumps({"pid": alive.pid, "host": host, "started": "now"}))  # that process is gone
    with pytest.warns(RuntimeWarning, match=f"taking over the lock of process {alive.pid}"):
        pyspb.solve(grid(4), cutoff=3, checkpoint=path)
    assert not lock.exists()


SLOW_SWEEP = """
import sys, time
import numpy as np
import pyspb
from pyspb import checkpoint
from pyspb.backends import native
original = native.steady_state_populations
def slow(*args, **kwargs):
    time.sleep({sleep})
    return original(*args, **kwargs)
native.steady_state_populations = slow
{patch}
inputs = pyspb.rate_grid(Delta=np.linspace(-0.5, 0.5, 24), J_re=0.3, J_im=0.1, chi=1.0, xi=0.1, gamma=0.4)
pyspb.solve(inputs, cutoff=3, checkpoint=sys.argv[1], chunk_size=4)
"""


def wait_for(condition, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_sigkilled_sweep_resumes_and_a_second_run_meanwhile_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "killed.ckpt"
    process = subprocess.Popen([sys.executable, "-c", SLOW_SWEEP.format(patch="", sleep=0.3), str(path)])
    try:
        assert wait_for(lambda: len(markers(path)) >= 2), "the sweep did not get going"
        # two runs at once: the second is refused, not interleaved
        with pytest.raises(CheckpointError, match=f"in use by process {process.pid}"):
            pyspb.solve(grid(), cutoff=3, checkpoint=path, chunk_size=4)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    saved = ckpt.status(path)["points_done"]
    assert 8 <= saved < 24, "the sweep was not killed midway"
    calls = count_points(monkeypatch)
    with pytest.warns(RuntimeWarning, match="taking over the lock"):
        resumed = pyspb.solve(grid(), cutoff=3, checkpoint=path, chunk_size=4)
    assert sum(calls) == 24 - saved  # only the missing points are computed
    plain = pyspb.solve(grid(), cutoff=3)
    xr.testing.assert_allclose(resumed.drop_attrs(), plain.drop_attrs(), rtol=1e-10)


@pytest.mark.parametrize("moment", ["mid-data", "before-marker"])
def test_a_write_interrupted_by_sigkill_is_never_trusted(tmp_path, monkeypatch, moment):
    # the third chunk's write is cut off: half of its data written, or its data complete but
    # no completion marker yet; the process dies there (SIGKILL, no clean-up)
    patch = textwrap.dedent(
        f"""
        import os, signal
        original_write = checkpoint._write_file
        count = [0]
        def dying_write(target, payload):
            count[0] += 1
            if count[0] == {6 if moment == "mid-data" else 7}:  # the manifest, two files per chunk
                with open(target, "xb") as handle:
                    handle.write(payload[: len(payload) // 2])
                    handle.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            original_write(target, payload)
        checkpoint._write_file = dying_write
        """
    )
    result = subprocess.run([sys.executable, "-c", SLOW_SWEEP.format(patch=patch, sleep=0), str(tmp_path / "run.ckpt")])
    assert result.returncode == -signal.SIGKILL
    path = tmp_path / "run.ckpt"
    stale = [p for p in (path / "chunks").iterdir() if p.name.endswith(".tmp")]
    assert len(stale) == 1 and 0 < stale[0].stat().st_size  # the interrupted write
    if moment == "before-marker":
        assert (path / "chunks" / "points-8-12.npy").exists()  # data complete, marker missing
    assert ckpt.status(path)["points_done"] == 8  # the third chunk is not trusted
    calls = count_points(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the stale lock is taken over
        resumed = pyspb.solve(grid(), cutoff=3, checkpoint=path, chunk_size=4)
    assert sum(calls) == 16
    assert leftovers(path) == []  # the stale temporary file was removed
    xr.testing.assert_allclose(resumed.drop_attrs(), pyspb.solve(grid(), cutoff=3).drop_attrs(), rtol=1e-10)


def test_ctrl_c_says_what_was_saved_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    count_points(monkeypatch, fail_at=3)
    with pytest.raises(CheckpointInterrupted, match=r"8 of 24 points are saved in checkpoint .*run the same call"):
        pyspb.solve(grid(), cutoff=3, checkpoint=path, chunk_size=4)
    assert leftovers(path) == []
    # Ctrl-C in the middle of writing a chunk's data
    original = ckpt._write_file

    def interrupted_write(target, payload):
        with open(target, "xb") as handle:
            handle.write(payload[: len(payload) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "_write_file", interrupted_write)
    calls = count_points(monkeypatch)
    with pytest.raises(CheckpointInterrupted, match="8 of 24 points are saved"):
        pyspb.solve(grid(), cutoff=3, checkpoint=path, chunk_size=4)
    assert calls == [4] and leftovers(path) == []
    monkeypatch.setattr(ckpt, "_write_file", original)
    xr.testing.assert_allclose(
        pyspb.solve(grid(), cutoff=3, checkpoint=path, chunk_size=4).drop_attrs(),
        pyspb.solve(grid(), cutoff=3).drop_attrs(),
        rtol=1e-10,
    )


def test_dask_inputs_write_their_blocks_and_resume(tmp_path, monkeypatch):
    dask = pytest.importorskip("dask")
    inputs = pyspb.Device().rates(phi=np.linspace(0.1, 0.9, 6), r=[0.3, 0.35])
    eager = pyspb.solve(inputs, cutoff=3)
    path = tmp_path / "blocks.ckpt"
    calls = count_points(monkeypatch, fail_at=3)
    with dask.config.set(scheduler="synchronous"):  # Ctrl-C in the third block
        with pytest.raises(CheckpointInterrupted, match="8 of 12 points are saved"):
            pyspb.solve(inputs.chunk({"phi": 2}), cutoff=3, checkpoint=path)
    assert len(markers(path)) == 2 and leftovers(path) == []
    calls = count_points(monkeypatch)
    lazy = pyspb.solve(inputs.chunk({"phi": 2}), cutoff=3, checkpoint=path)
    assert calls == [4]  # only the missing block
    assert lazy.g2_cw.chunks is not None
    xr.testing.assert_allclose(lazy.compute().drop_attrs(), eager.drop_attrs(), rtol=1e-10)
    xr.testing.assert_allclose(ckpt.to_dataset(path).drop_attrs(), eager.drop_attrs(), rtol=1e-10)
    with pytest.raises(CheckpointError, match="dask chunks"):
        pyspb.solve(inputs.chunk({"phi": 3}), cutoff=3, checkpoint=path)
    with pytest.raises(CheckpointError, match="kind of inputs"):
        pyspb.solve(inputs, cutoff=3, checkpoint=path)
    with pytest.raises(CheckpointError, match="other input values"):
        pyspb.solve(inputs.assign(chi=inputs.chi * 1.01).chunk({"phi": 2}), cutoff=3, checkpoint=path)


CLUSTER_SWEEP = """
import sys, time
import numpy as np
import pyspb
from dask.distributed import Client, LocalCluster

def slow_down():
    import time
    from pyspb.backends import native
    original = native.steady_state_populations
    def slow(*args, **kwargs):
        time.sleep(0.8)
        return original(*args, **kwargs)
    native.steady_state_populations = slow

if __name__ == "__main__":
    # thread workers start at once; the process is SIGKILLed with its scheduler and workers
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        client = Client(cluster)  # noqa: F841 - dask computes on it
        slow_down()  # the workers are threads of this process
        inputs = pyspb.Device().rates(phi=np.linspace(0.1, 0.9, 24), r=[0.3, 0.35])
        pyspb.solve(inputs.chunk({"phi": 2}), cutoff=3, checkpoint=sys.argv[1])
"""


def kill_worker_mid_chunk(flag):
    """Installed on the workers: the first worker to write a chunk's data dies halfway through."""
    from pyspb import checkpoint

    original = checkpoint._write_file

    def dying_write(target, payload):
        if target.name.startswith(".block-") and ".npy." in target.name:
            try:
                os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return original(target, payload)
            with open(target, "xb") as handle:
                handle.write(payload[: len(payload) // 2])
            with open(flag, "w") as handle:
                handle.write(str(target))
            os.kill(os.getpid(), signal.SIGKILL)
        return original(target, payload)

    checkpoint._write_file = dying_write


@pytest.mark.slow
def test_local_cluster_sweep_killed_and_rerun_equals_the_serial_result(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    path = tmp_path / "cluster.ckpt"
    script = tmp_path / "sweep.py"
    script.write_text(CLUSTER_SWEEP)
    # the client (with its scheduler and two worker processes) is SIGKILLed midway
    process = subprocess.Popen([sys.executable, str(script), str(path)], start_new_session=True)
    try:
        assert wait_for(lambda: len(markers(path)) >= 3, timeout=120), "the sweep did not get going"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    before = markers(path)
    assert 3 <= len(before) < 12, "the sweep was not killed midway"
    inputs = pyspb.Device().rates(phi=np.linspace(0.1, 0.9, 24), r=[0.3, 0.35])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            # and in the rerun a worker dies in the middle of writing a chunk
            flag = tmp_path / "killed-worker"
            client.run(kill_worker_mid_chunk, str(flag))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # the stale lock is taken over
                lazy = pyspb.solve(inputs.chunk({"phi": 2}), cutoff=3, checkpoint=path)
            resumed = client.compute(lazy).result()
    half_written = flag.read_text()
    assert "/.block-" in half_written and not os.path.exists(half_written)  # the worker died there; cleaned up
    after = markers(path)
    assert len(after) == 12 and leftovers(path) == []
    assert all(after[name] == before[name] for name in before)  # finished blocks were not computed again
    serial = pyspb.solve(inputs, cutoff=3)
    xr.testing.assert_allclose(resumed.drop_attrs(), serial.drop_attrs(), rtol=1e-10)
    np.testing.assert_allclose(resumed.g2_cw.values, serial.g2_cw.values, rtol=1e-10, atol=0)
