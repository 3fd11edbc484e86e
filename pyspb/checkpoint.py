"""Checkpoints of long sweeps: finished chunks on disk, so an interrupted solve resumes.

A checkpoint is a NetCDF file holding the joint photon-number probabilities of every grid
point solved so far (``P_flat`` over ``point, n_cw, n_ccw``), a ``done`` flag per point, and
a fingerprint of what was asked (the flat inputs, cutoff, backend and tolerance).  It is
rewritten atomically after each chunk (:func:`pyspb.save`), so a crash, Ctrl-C or SIGKILL
loses at most the chunk being computed; a checkpoint written for other inputs is refused.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import xarray as xr

from .io import load, save

__all__ = ["Checkpoint", "fingerprint"]


def fingerprint(flat: dict[str, np.ndarray], cutoff: int, backend: str, tolerance: float | None) -> str:
    """SHA-256 of the flat inputs (values and order), cutoff, backend and tolerance."""
    digest = hashlib.sha256()
    for name in sorted(flat):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(flat[name]).tobytes())
    digest.update(f"cutoff={cutoff};backend={backend};tolerance={tolerance!r}".encode())
    return digest.hexdigest()


class Checkpoint:
    """The populations solved so far for one call of :func:`pyspb.solve`.

    Parameters
    ----------
    path : path-like
        The checkpoint file; created on the first :meth:`record`.
    key : str
        :func:`fingerprint` of the call.
    npts, cutoff : int
        Number of grid points and the cutoff.
    """

    def __init__(self, path: str | os.PathLike, key: str, npts: int, cutoff: int):
        self.path = Path(path)
        self.key = key
        self.populations = np.zeros((npts, cutoff + 1, cutoff + 1))
        self.done = np.zeros(npts, dtype=bool)
        if self.path.exists():
            self._resume(npts, cutoff)

    def _resume(self, npts: int, cutoff: int) -> None:
        try:
            stored = load(self.path)
        except (OSError, ValueError) as err:
            raise ValueError(f"checkpoint {self.path} cannot be read ({err}); delete it to start afresh") from err
        if stored.attrs.get("pyspb_checkpoint") != self.key:
            raise ValueError(
                f"checkpoint {self.path} was written for other inputs, cutoff, backend or "
                "tolerance; refusing to mix results. Delete it, or pass another checkpoint path"
            )
        if stored.sizes.get("point") != npts or stored.sizes.get("n_cw") != cutoff + 1:
            raise ValueError(f"checkpoint {self.path} does not fit this grid; delete it to start afresh")
        self.populations[:] = stored["P_flat"].values
        self.done[:] = stored["done"].values.astype(bool)

    def record(self, indices: np.ndarray, populations: np.ndarray) -> None:
        """Store finished points and rewrite the file atomically."""
        self.populations[indices] = populations
        self.done[indices] = True
        ds = xr.Dataset(
            {
                "P_flat": (("point", "n_cw", "n_ccw"), self.populations),
                "done": (("point",), self.done.astype(np.int8)),
            },
            attrs={
                "pyspb_checkpoint": self.key,
                "comment": "partial pyspb.solve results; rerun the same call to resume",
            },
        )
        save(ds, self.path)
