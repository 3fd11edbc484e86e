"""Checkpoints of long sweeps: every finished chunk on disk once, so an interrupted solve resumes.

A checkpoint is a directory (no dependency beyond NumPy and xarray)::

    run.ckpt/
        manifest.json        what was asked: format version, fingerprint, cutoff, backend,
                             tolerance, grid dims/shape, chunk layout, provenance attrs
        inputs.nc            the model inputs as given, with the grid's coords (the result
                             records them)
        lock                 while a run uses the store: its pid, host and start time
        chunks/<name>.npy    the joint photon-number probabilities of one chunk
        chunks/<name>.json   its completion marker: sha256 of the .npy file, the points or
                             dask block it holds (and, for dask blocks, sha256 of their inputs)

Each chunk is written once, to a temporary file renamed into place, and its marker is
written last (also by rename): a chunk without a marker, or whose data no longer match the
marker's checksum or are not probabilities (finite, in [0, 1], summing to 1), is never
trusted and is computed again (with a warning for a damaged one).  Each file is flushed to
disk (fsync) before its rename, so a power cut does not leave an empty chunk behind a marker;
a chunk that fails its checksum anyway is computed again.  Writing costs
one file per chunk, proportional to the chunk, whatever the size of the sweep.

Eager inputs are cut into chunks of consecutive points (``points-<start>-<stop>``); dask
inputs into their dask blocks (``block-<i>-<j>...``), written by the workers that computed
them, so nothing is gathered through the client (the directory must be reachable by every
worker: on a cluster, a shared filesystem).  A run holds ``lock`` (created exclusively)
while it works; a second run on the same store is refused, a lock whose process is gone
(same host) is taken over.  Temporary files left by a killed process are removed by the
next run.  :func:`to_dataset` turns a complete checkpoint into the Dataset that
:func:`pyspb.solve` returns (save it with :func:`pyspb.save`); :func:`status` tells how far
a checkpoint is.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import shutil
import socket
import uuid
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ._version import __version__
from .io import load, save

__all__ = [
    "CheckpointError",
    "CheckpointInterrupted",
    "Checkpoint",
    "fingerprint",
    "status",
    "to_dataset",
]

#: ``format`` and ``version`` of the manifest this pyspb writes and reads
FORMAT = "pyspb-checkpoint"
VERSION = 2

#: largest |sum of P - 1| of a stored point that is accepted as a probability distribution
SUM_TOLERANCE = 1e-8


class CheckpointError(ValueError):
    """A checkpoint cannot be used: another call's, an older format, in use, damaged, not writable."""


class CheckpointInterrupted(KeyboardInterrupt):
    """Ctrl-C during a checkpointed solve; the message says what was saved and how to resume."""


def fingerprint(flat: dict[str, np.ndarray], cutoff: int, backend: str, tolerance: float | None) -> str:
    """SHA-256 of the flat inputs (values and order), cutoff, backend and tolerance."""
    digest = hashlib.sha256()
    for name in sorted(flat):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(flat[name]).tobytes())
    digest.update(f"cutoff={cutoff};backend={backend};tolerance={tolerance!r}".encode())
    return digest.hexdigest()


def inputs_digest(arrays: Iterable[np.ndarray]) -> str:
    """SHA-256 of a block's input arrays (shape and values), recorded in its marker."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(str(array.tolist()).encode() if array.dtype == object else array.tobytes())
    return digest.hexdigest()


def coords_digest(grid: xr.Dataset) -> str:
    """SHA-256 of the names and values of a grid's coords (the labels of the result)."""
    names = sorted(str(name) for name in grid.coords)
    return inputs_digest([np.array(names, dtype=object)] + [np.asarray(grid.coords[name].values) for name in names])


# --------------------------------------------------------------------------- files


def _tmp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _write_file(path: Path, payload: bytes) -> None:
    """Write ``payload`` to a new file (the step a crash can interrupt)."""
    with open(path, "xb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())


def _write_atomic(target: Path, payload: bytes) -> None:
    """Write ``payload`` to ``target`` by a temporary file renamed into place."""
    tmp = _tmp_name(target)
    try:
        _write_file(tmp, payload)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _chunks_dir(path: Path) -> Path:
    return path / "chunks"


def check_populations(P: np.ndarray, where: str) -> None:
    """Raise a CheckpointError unless ``P`` (..., levels, levels) holds probability distributions."""
    if not np.all(np.isfinite(P)) or P.min(initial=0.0) < 0.0 or P.max(initial=0.0) > 1.0:
        raise CheckpointError(f"{where}: stored populations are not probabilities in [0, 1]")
    sums = P.sum(axis=(-2, -1))
    if sums.size and np.max(np.abs(sums - 1.0)) > SUM_TOLERANCE:
        raise CheckpointError(f"{where}: stored populations do not sum to 1")


def write_chunk(path: str | os.PathLike, name: str, P: np.ndarray, info: dict[str, Any]) -> None:
    """Write one finished chunk: its data, then its completion marker (sha256 of the data).

    Parameters
    ----------
    path : path-like
        The checkpoint directory.
    name : str
        The chunk's name (``points-<start>-<stop>`` or ``block-<i>-<j>...``).
    P : numpy.ndarray
        Populations of the chunk's points, shape (..., cutoff + 1, cutoff + 1).
    info : dict
        What the chunk holds (JSON-serialisable), stored in the marker.
    """
    chunks = _chunks_dir(Path(path))
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(P, dtype=np.float64), allow_pickle=False)
    payload = buffer.getvalue()
    marker = {
        **info,
        "shape": list(P.shape),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
    }
    try:
        _write_atomic(chunks / f"{name}.npy", payload)
        _write_atomic(chunks / f"{name}.json", json.dumps(marker).encode())
    except OSError as err:
        raise CheckpointError(
            f"checkpoint {path}: could not write chunk {name} ({err.strerror or err}); the chunks written "
            "before are intact. Free space or fix the location, then rerun the same call to resume"
        ) from err


def read_marker(path: str | os.PathLike, name: str) -> dict[str, Any] | None:
    """The completion marker of chunk ``name``, or None if the chunk is not complete."""
    try:
        text = (_chunks_dir(Path(path)) / f"{name}.json").read_bytes()
    except FileNotFoundError:
        return None
    try:
        marker = json.loads(text)
    except ValueError as err:
        raise CheckpointError(f"checkpoint {path}: marker of chunk {name} is damaged ({err})") from err
    if not isinstance(marker, dict) or "sha256" not in marker or "shape" not in marker:
        raise CheckpointError(f"checkpoint {path}: marker of chunk {name} is damaged (fields missing)")
    return marker


def read_chunk(path: str | os.PathLike, name: str, marker: dict[str, Any]) -> np.ndarray:
    """The populations of a complete chunk, checked against its marker's sha256, shape and range.

    Raises
    ------
    CheckpointError
        If the data are missing or damaged (checksum, shape or range).
    """
    where = f"checkpoint {path}, chunk {name}"
    try:
        payload = (_chunks_dir(Path(path)) / f"{name}.npy").read_bytes()
    except FileNotFoundError as err:
        raise CheckpointError(f"{where}: data file missing") from err
    if hashlib.sha256(payload).hexdigest() != marker["sha256"]:
        raise CheckpointError(f"{where}: data do not match their checksum (damaged on disk)")
    try:
        P = np.load(io.BytesIO(payload), allow_pickle=False)
    except ValueError as err:
        raise CheckpointError(f"{where}: data unreadable ({err})") from err
    if list(P.shape) != list(marker["shape"]):
        raise CheckpointError(f"{where}: data have shape {P.shape}, marker says {marker['shape']}")
    check_populations(P, where)
    return P


def discard_chunk(path: str | os.PathLike, name: str, reason: str) -> None:
    """Warn that chunk ``name`` is damaged and remove its marker, so that it is computed again."""
    warnings.warn(f"{reason}; computing that chunk again", RuntimeWarning, stacklevel=3)
    (_chunks_dir(Path(path)) / f"{name}.json").unlink(missing_ok=True)


def complete_chunks(path: str | os.PathLike) -> list[str]:
    """Names of the chunks whose completion marker exists (sorted)."""
    chunks = _chunks_dir(Path(path))
    return sorted(p.name[: -len(".json")] for p in chunks.glob("*.json") if not p.name.startswith("."))


# --------------------------------------------------------------------------- manifest and lock


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the checkpoint at ``path``, or a CheckpointError saying why there is none."""
    if path.is_file():
        try:
            old = load(path)
        except Exception:  # noqa: BLE001 - any unreadable file: not a checkpoint of ours
            old = None
        if old is not None and "pyspb_checkpoint" in old.attrs:
            raise CheckpointError(
                f"{path} is a checkpoint of an older pyspb (one NetCDF file); this pyspb stores checkpoints as a "
                "directory of chunks. Finish that sweep with the pyspb that started it, or delete the file (or "
                "pass another checkpoint path) to start afresh"
            )
        raise CheckpointError(f"{path} is a file, not a pyspb checkpoint directory; pass another checkpoint path")
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except FileNotFoundError as err:
        raise CheckpointError(f"{path} is not a pyspb checkpoint (no manifest.json)") from err
    except ValueError as err:
        raise CheckpointError(f"{path}/manifest.json is damaged ({err}); delete {path} to start afresh") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a pyspb checkpoint (manifest format {manifest.get('format')!r})")
    if manifest.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {manifest.get('version')}, this pyspb ({__version__}) reads "
            f"version {VERSION}; finish it with the pyspb that wrote it ({manifest.get('pyspb_version')}) or delete it"
        )
    return manifest


def _is_blank(path: Path) -> bool:
    """True for an empty directory, or one a run left before writing its manifest."""
    if not path.is_dir() or (path / "manifest.json").exists():
        return False
    skeleton = all(p.name in ("chunks", "lock", "inputs.nc") or p.name.endswith(".tmp") for p in path.iterdir())
    return skeleton and not any(_chunks_dir(path).glob("*.json"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _acquire_lock(path: Path) -> Path:
    """Create ``path/lock`` exclusively; take over a stale lock (its process gone, same host)."""
    lock = path / "lock"
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(lock.read_text())
            except FileNotFoundError:
                continue  # released meanwhile
            except ValueError:
                owner = {}
            pid, host = owner.get("pid"), owner.get("host")
            if host == me["host"] and isinstance(pid, int) and not _pid_alive(pid):
                warnings.warn(
                    f"checkpoint {path}: taking over the lock of process {pid}, which no longer runs",
                    RuntimeWarning,
                    stacklevel=4,
                )
                lock.unlink(missing_ok=True)
                continue
            raise CheckpointError(
                f"checkpoint {path} is in use by process {pid} on host {host} (since {owner.get('started')}); "
                "two runs must not write one checkpoint. Wait for it, or pass another checkpoint path; if that "
                f"run is gone, delete {lock}"
            ) from None
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        return lock
    raise CheckpointError(f"checkpoint {path}: could not take the lock {lock}; try again")


def _remove_temporaries(path: Path) -> None:
    for folder in (path, _chunks_dir(path)):
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the store


class Checkpoint:
    """A checkpoint directory opened (and locked) by one call of :func:`pyspb.solve`.

    Use :meth:`open`; close it (or use it as a context manager) to release the lock.

    Attributes
    ----------
    path : pathlib.Path
        The checkpoint directory.
    manifest : dict
        What the checkpoint was written for.
    """

    def __init__(self, path: Path, manifest: dict[str, Any], lock: Path):
        self.path = path
        self.manifest = manifest
        self._lock: Path | None = lock

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        manifest: dict[str, Any],
        grid: xr.Dataset,
        nbytes: int,
    ) -> Checkpoint:
        """Create the checkpoint ``path`` or check that it was written for the same call; lock it.

        Parameters
        ----------
        path : path-like
            The checkpoint directory (created with its parents if missing).
        manifest : dict
            ``key`` (the call's fingerprint), ``layout``, ``dims``, ``shape``, ``cutoff``,
            ``backend``, ``tolerance``, ``attrs`` (and ``chunks`` for dask blocks).
        grid : xarray.Dataset
            The model inputs as given, with the grid's coords (stored for :func:`to_dataset`).
        nbytes : int
            Bytes the chunks of the whole grid take; what is not written yet is checked
            against the free space of the disk.

        Raises
        ------
        CheckpointError
            If the location cannot be written, the disk has not space for the chunks, the
            checkpoint belongs to another call or an older pyspb, or another run holds it.
        """
        path = Path(path)
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "pyspb_version": __version__,
            "coords": coords_digest(grid),
            **manifest,
        }
        try:
            if path.exists() and not _is_blank(path):
                _check_same_call(path, _read_manifest(path), manifest)  # a clear error before touching anything
            _chunks_dir(path).mkdir(parents=True, exist_ok=True)
            lock = _acquire_lock(path)
        except OSError as err:
            raise CheckpointError(
                f"cannot write checkpoint {path} ({err.strerror or err}); choose a writable location"
            ) from err
        store = cls(path, manifest, lock)
        try:
            _remove_temporaries(path)
            if (path / "manifest.json").exists():  # again under the lock: another run may have created it
                store.manifest = _read_manifest(path)
                _check_same_call(path, store.manifest, manifest)
            else:
                save(grid, path / "inputs.nc")
                _write_atomic(path / "manifest.json", json.dumps(manifest, indent=1, default=str).encode())
            written = sum(p.stat().st_size for p in _chunks_dir(path).glob("*.npy"))
            needed = max(0, nbytes - written)
            free = shutil.disk_usage(path).free
            if needed > free:
                raise CheckpointError(
                    f"checkpoint {path} needs about {needed / 1e6:.0f} MB for the chunks still to compute, "
                    f"but only {free / 1e6:.0f} MB are free there; free space or choose another location"
                )
        except OSError as err:
            store.close()
            raise CheckpointError(
                f"cannot write checkpoint {path} ({err.strerror or err}); choose a writable location"
            ) from err
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Remove temporaries of this run and release the lock."""
        if self._lock is not None:
            try:
                _remove_temporaries(self.path)
            finally:
                self._lock.unlink(missing_ok=True)
                self._lock = None

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def load_points(self, populations: np.ndarray) -> np.ndarray:
        """Fill ``populations`` (npts, levels, levels) from the complete chunks; return the done mask.

        A damaged chunk (checksum, shape or range) is reported with a warning and left to be
        computed again.
        """
        done = np.zeros(populations.shape[0], dtype=bool)
        for name in complete_chunks(self.path):
            try:
                marker = read_marker(self.path, name)
                if marker is None:
                    continue
                start, stop = int(marker["start"]), int(marker["stop"])
                if not 0 <= start < stop <= populations.shape[0]:
                    raise CheckpointError(f"checkpoint {self.path}, chunk {name}: points {start}..{stop} off the grid")
                P = read_chunk(self.path, name, marker)
                if P.shape != (stop - start,) + populations.shape[1:]:
                    raise CheckpointError(f"checkpoint {self.path}, chunk {name}: data do not fit the grid")
            except CheckpointError as err:
                discard_chunk(self.path, name, str(err))
                continue
            populations[start:stop] = P
            done[start:stop] = True
        return done

    def write_points(self, start: int, stop: int, P: np.ndarray) -> None:
        """Record the finished points ``start..stop-1`` (populations ``P``)."""
        write_chunk(self.path, f"points-{start}-{stop}", P, {"start": start, "stop": stop})


def _check_same_call(path: Path, stored: dict[str, Any], asked: dict[str, Any]) -> None:
    for field, what in (
        ("layout", "kind of inputs (eager arrays or dask blocks)"),
        ("cutoff", "cutoff"),
        ("backend", "backend"),
        ("tolerance", "tolerance"),
        ("dims", "grid dims"),
        ("shape", "grid shape"),
        ("chunks", "dask chunks"),
        ("coords", "grid coords (labels)"),
    ):
        if stored.get(field) != asked.get(field):
            raise CheckpointError(
                f"checkpoint {path} was written for other inputs, cutoff, backend or tolerance: its {what} is "
                f"{stored.get(field)!r}, this call's is {asked.get(field)!r}; refusing to mix results. Delete it, "
                "or pass another checkpoint path"
            )
    if stored.get("key") != asked.get("key"):
        raise CheckpointError(
            f"checkpoint {path} was written for other inputs, cutoff, backend or tolerance (the input values "
            "differ); refusing to mix results. Delete it, or pass another checkpoint path"
        )


def _layout_chunks(manifest: dict[str, Any]) -> list[str]:
    """Every chunk name of a dask-block checkpoint."""
    counts = [len(c) for c in manifest["chunks"]]
    return ["block-" + "-".join(str(i) for i in index) for index in np.ndindex(*counts)]


def status(path: str | os.PathLike) -> dict[str, Any]:
    """How far a checkpoint is: points and chunks complete, out of the grid's.

    Returns
    -------
    dict
        ``points_done``, ``points`` (the grid's), ``chunks_done`` and ``complete`` (bool),
        as the completion markers say (data are checked by :func:`to_dataset`).
    """
    path = Path(path)
    manifest = _read_manifest(path)
    npts = int(np.prod(manifest["shape"], dtype=np.int64))
    names = complete_chunks(path)
    if manifest["layout"] == "points":
        done = np.zeros(npts, dtype=bool)
        for name in names:
            _, start, stop = name.split("-")
            done[int(start) : int(stop)] = True
        points_done = int(done.sum())
    else:
        expected = set(_layout_chunks(manifest))
        sizes = {}
        for name in names:
            if name in expected:
                index = [int(i) for i in name.split("-")[1:]]
                sizes[name] = int(np.prod([c[i] for c, i in zip(manifest["chunks"], index, strict=True)]))
        points_done = sum(sizes.values())
    return {"points_done": points_done, "points": npts, "chunks_done": len(names), "complete": points_done == npts}


def to_dataset(path: str | os.PathLike, P: bool = False) -> xr.Dataset:
    """The result of the checkpointed :func:`pyspb.solve` call, read from its checkpoint.

    Parameters
    ----------
    path : path-like
        A complete checkpoint directory.
    P : bool
        Also return the joint photon-number probabilities.

    Returns
    -------
    xarray.Dataset
        What :func:`pyspb.solve` returned for that call (observables over the grid's dims
        and coords, provenance attrs), ready for :func:`pyspb.save`.

    Raises
    ------
    CheckpointError
        If chunks are missing (rerun the call to finish it) or damaged.
    """
    from .grid import flatten_inputs
    from .solve import _eager_result, warn_if_correlations_truncated, warn_if_truncated

    path = Path(path)
    manifest = _read_manifest(path)
    state = status(path)
    if not state["complete"]:
        raise CheckpointError(
            f"checkpoint {path} holds {state['points_done']} of {state['points']} points; rerun the same "
            "pyspb.solve call to compute the rest"
        )
    inputs = load(path / "inputs.nc")
    template, flat = flatten_inputs(inputs)
    if list(template.dims) != manifest["dims"] or list(template.shape) != manifest["shape"]:
        raise CheckpointError(f"checkpoint {path}: inputs.nc does not fit the manifest (damaged)")
    levels = manifest["cutoff"] + 1
    populations = np.empty((template.size, levels, levels))
    if manifest["layout"] == "points":
        for name in complete_chunks(path):
            marker = read_marker(path, name)
            assert marker is not None
            populations[int(marker["start"]) : int(marker["stop"])] = read_chunk(path, name, marker)
    else:
        grid = populations.reshape(template.shape + (levels, levels))
        bounds = [np.cumsum((0,) + tuple(c)) for c in manifest["chunks"]]
        for name in _layout_chunks(manifest):
            marker = read_marker(path, name)
            assert marker is not None
            index = [int(i) for i in name.split("-")[1:]]
            grid[tuple(slice(b[i], b[i + 1]) for b, i in zip(bounds, index, strict=True))] = read_chunk(
                path, name, marker
            )
    attrs = {**manifest["attrs"], "checkpoint": str(path)}
    out = _eager_result(populations, template, flat, inputs, P, attrs)
    warn_if_truncated(out.truncation_error, manifest["cutoff"], "pyspb.checkpoint.to_dataset")
    warn_if_correlations_truncated(out, "pyspb.checkpoint.to_dataset")
    return out


def interrupted(path: str | os.PathLike) -> CheckpointInterrupted:
    """The exception that reports a Ctrl-C: what the checkpoint holds and how to resume."""
    try:
        state = status(path)
        saved = f"{state['points_done']} of {state['points']} points are saved"
    except CheckpointError:
        saved = "nothing is saved yet"
    return CheckpointInterrupted(
        f"interrupted: {saved} in checkpoint {path}; run the same call (same inputs, cutoff, backend, tolerance "
        "and checkpoint) again to compute only the rest"
    )
