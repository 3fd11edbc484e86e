"""Running a backend function over the flat points of a grid, a chunk at a time.

Shared by the entry points that call a backend point by point (:func:`pyspb.g2_tau`,
:func:`pyspb.spectrum`): one loop, one progress bar, results preallocated so that a grid of
no points gives empty arrays of the right shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from .grid import POINT_ORDER
from .reporting import progress_bar

__all__ = ["over_points"]


def over_points(
    compute: Callable[..., Mapping[str, np.ndarray]],
    flat: Mapping[str, np.ndarray],
    shapes: Mapping[str, tuple[int, ...]],
    chunk: int,
    progress: bool | None,
    description: str,
) -> dict[str, np.ndarray]:
    """``compute(Delta, J, chi, xi, gamma)`` on every chunk of the flat points, stacked.

    Parameters
    ----------
    compute : callable
        Takes the model inputs of a chunk of points (:data:`pyspb.grid.POINT_ORDER`) and
        returns a mapping name -> array with the chunk's points first.
    flat : mapping
        The flat model inputs (:func:`pyspb.grid.flatten_inputs`).
    shapes : mapping
        Name -> shape per point of every result kept (e.g. ``(ntau,)`` or ``()``).
    chunk : int
        Points per call (the progress bar advances per call).
    progress : bool or None
        As for :func:`pyspb.reporting.progress_bar` (None: only for more than one chunk).
    description : str
        The progress bar's label.

    Returns
    -------
    dict
        Name -> array of shape ``(npts,) + shapes[name]`` (NaN where nothing was computed).
    """
    npts = flat["xi"].size
    values = {name: np.full((npts,) + tuple(shape), np.nan) for name, shape in shapes.items()}
    bar = progress_bar(npts, progress, description, chunk)
    try:
        for start in range(0, npts, chunk):
            part = slice(start, start + chunk)
            result = compute(*(flat[name][part] for name in POINT_ORDER))
            for name in values:
                values[name][part] = result[name]
            if bar is not None:
                bar.update(min(chunk, npts - start))
    finally:
        if bar is not None:
            bar.close()
    return values
