"""``pyspb.solve``: the labelled layer around the backends (steady states and g^(n)(0))."""

from __future__ import annotations

import contextlib
import functools
import numbers
import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from .attributes import annotate
from .backends import get_backend
from .checkpoint import (
    Checkpoint,
    CheckpointError,
    discard_chunk,
    fingerprint,
    inputs_digest,
    interrupted,
    read_chunk,
    read_marker,
    write_chunk,
)
from .grid import INPUT_NAMES, POINT_ORDER, check_inputs, flatten_inputs, is_lazy
from .observables import (
    DETUNING_SCALE,
    G_TRUNCATION_WARNING,
    MAX_ORDER,
    RESOLUTION,
    TRUNCATION_LIMIT,
    TRUNCATION_WARNING,
    TruncationWarning,
    correlations,
    g_truncation_estimate,
    resolution,
    truncation_error,
)
from .reporting import progress_bar, provenance

__all__ = ["solve", "check_cutoff", "warn_if_truncated", "warn_if_correlations_truncated", "check_truncation"]

#: points sent to a backend at a time (progress is reported per chunk)
DEFAULT_CHUNK = 2048

OBSERVABLES = ("N_cw", "N_ccw", "g2_cw", "g3_cw", "g4_cw", "g2_ccw", "g3_ccw", "g4_ccw", "g2_cross")


def check_cutoff(cutoff) -> int:
    """Return ``cutoff`` as an int >= 1, or raise a ValueError/TypeError saying why not."""
    if isinstance(cutoff, bool) or not isinstance(cutoff, numbers.Integral):
        raise TypeError(f"cutoff must be an integer (the largest photon number kept per mode), got {cutoff!r}")
    if cutoff < 1:
        raise ValueError(f"cutoff must be >= 1, got {cutoff}; g4 needs cutoff >= 4")
    return int(cutoff)


#: cutoffs tried by ``cutoff="auto"`` (the last is its ceiling: cutoff 20 per mode, 194481
#: density-matrix elements per point; README, "Memory"), and the relative change it accepts
AUTO_CUTOFFS = tuple(range(4, 21, 2))
AUTO_TOLERANCE = 1e-6


def solve(
    inputs: xr.Dataset,
    cutoff: int | str = 6,
    backend: str = "native",
    *,
    P: bool = False,
    tolerance: float | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> xr.Dataset:
    """Exact steady state of the truncated model at every grid point, and its observables.

    Parameters
    ----------
    inputs : xarray.Dataset
        Variables ``Delta``, ``chi``, ``xi``, ``gamma`` (real) and ``J`` (complex) or
        ``J_re``/``J_im``, in one rate unit, as scalars or arrays over any shared dims
        (:meth:`pyspb.Device.rates` builds one).
    cutoff : int or "auto"
        Largest photon number kept per mode (Fock states 0..cutoff); g^(n) needs
        ``cutoff >= n`` and is NaN otherwise.  Check ``truncation_error`` in the result.
        "auto" raises the cutoff (4, 6, 8, ..., 20: :data:`AUTO_CUTOFFS`) until N, g2, g3 and
        g4 of both modes change by less than :data:`AUTO_TOLERANCE` (relative) at every point;
        the attrs record the cutoff used.  A progress bar names the cutoff tried (after 2 s);
        past the ceiling it raises a ValueError, and a MemoryError before a cutoff whose memory
        does not fit.  Any cutoff is checked against the memory available before any work
        (:func:`pyspb.backends.native.memory_estimate`): MemoryError naming what it needs.
    backend : {"native", "julia", "auto"}
        "native" (NumPy/SciPy), "julia" (QuantumOptics.jl via juliacall) or "auto" (Julia
        if Julia and pyspb's Julia packages are already installed, so that nothing is
        downloaded; else native).
    P : bool
        Also return the joint photon-number probabilities ``P(n_cw, n_ccw)``.
    tolerance : float, optional
        Relative accuracy asked of the native engine per photon-number level (default
        :data:`pyspb.backends.native.DEFAULT_TOLERANCE`): the estimated remaining error of the
        level sweeps, or the graded residual of the Krylov solver; ignored by Julia (direct
        solve), with a warning.  Each backend checks it (``solver_options``).
    chunk_size : int
        Points per backend call.
    progress : bool, optional
        Show a progress bar (default: only for grids larger than one chunk).
    checkpoint : path-like, optional
        Directory recording every finished chunk (see :mod:`pyspb.checkpoint`).  If it exists
        and was written by the same call (same inputs, cutoff, backend, tolerance; for dask
        inputs also the same chunks), only the missing chunks are computed; a checkpoint of
        another call, of an older pyspb, or in use by another run is refused with a
        :class:`pyspb.checkpoint.CheckpointError` (a ValueError), and a location that cannot
        be written fails before any work.  With dask inputs every block is computed (and
        written by the worker that computed it) before ``solve`` returns; the result then
        reads the blocks lazily from the checkpoint.  Ctrl-C raises
        :class:`pyspb.checkpoint.CheckpointInterrupted` saying what was saved.
        :func:`pyspb.checkpoint.to_dataset` turns a complete checkpoint into this result.

    Notes
    -----
    Dask-backed inputs (``inputs.chunk(...)``) give lazy results, computed block by block
    with :func:`xarray.apply_ufunc` (``dask="parallelized"``); with a ``dask.distributed``
    Client the blocks run on the cluster.  With ``backend="julia"`` the blocks are computed
    when ``solve`` is called, one after another in the calling thread (which must be the main
    thread: juliacall can hang in others), and the results keep the inputs' chunks.

    Returns
    -------
    xarray.Dataset
        ``N_cw, N_ccw, g2_cw, g3_cw, g4_cw, g2_ccw, g3_ccw, g4_ccw``, the zero-delay cross
        correlation ``g2_cross = <n_cw n_ccw> / (N_cw N_ccw)``, ``truncation_error`` (and
        ``P``) over the inputs' dims and coords, with ``units``/``long_name`` attrs and
        provenance attrs (pyspb version, backend, cutoff, tolerance).  The model inputs
        that are not coords of the result (``Delta``, ``chi``, ``xi``, ``gamma``, ``J`` or
        ``J_re``/``J_im``, scalars or arrays, as given) are recorded as data variables, so
        ``solve(result, result.attrs["cutoff"])`` reproduces a saved result.

    Warns
    -----
    TruncationWarning
        Where ``truncation_error`` exceeds :data:`~pyspb.observables.TRUNCATION_WARNING`
        (1e-6): the message gives the worst value, how many points, and what to do.  Where it
        exceeds :data:`~pyspb.observables.TRUNCATION_LIMIT` (1e-2), N and g^(n) are NaN (the
        ``comment`` attrs say why).  Not issued for dask inputs (nothing is computed yet; the
        NaN rule holds).
    """
    if isinstance(cutoff, str) and cutoff == "auto":
        out = _solve_auto(inputs, backend, P=P, tolerance=tolerance, chunk_size=chunk_size, progress=progress)
    else:
        out = _solve_cutoff(inputs, cutoff, backend, P, tolerance, chunk_size, progress, checkpoint)
    if isinstance(out.variables["truncation_error"].data, np.ndarray):  # computed (not dask)
        warn_if_truncated(out["truncation_error"], out.attrs["cutoff"], "pyspb.solve", stacklevel=2)
        warn_if_correlations_truncated(out, "pyspb.solve", stacklevel=2)
    return out


def _solve_cutoff(
    inputs: xr.Dataset,
    cutoff,
    backend: str = "native",
    P: bool = False,
    tolerance: float | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> xr.Dataset:
    """:func:`solve` at one cutoff, without the truncation warning."""
    cutoff = check_cutoff(cutoff)
    engine = get_backend(backend)
    engine.check_memory(cutoff)  # a clear error now, not an allocation failure later
    if not isinstance(chunk_size, numbers.Integral) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    options = engine.solver_options(tolerance)  # the backend checks its options
    tolerance = options.get("tolerance")
    attrs = provenance(engine, cutoff, tolerance)
    if is_lazy(inputs):
        return _solve_lazy(inputs, engine, cutoff, options, P, attrs, checkpoint)
    template, flat = flatten_inputs(inputs)
    populations = np.empty((template.size, cutoff + 1, cutoff + 1))
    store = None
    if checkpoint is not None:
        store = _open_checkpoint(checkpoint, inputs, template, flat, engine, cutoff, tolerance, attrs, populations)
        attrs = {**attrs, "checkpoint": str(checkpoint)}
    paths: dict[str, int] = {}
    if engine.PATHS:  # a backend with several solvers counts the points each finished
        options["paths"] = paths
    try:
        with store if store is not None else contextlib.nullcontext():
            _fill_populations(populations, flat, engine, cutoff, options, chunk_size, progress, store)
    except KeyboardInterrupt:
        if checkpoint is None:
            raise
        raise interrupted(checkpoint) from None
    # how many of the points computed in this call each solver finished (level sweeps, Krylov, LU)
    attrs.update({f"points_{key}": value for key, value in paths.items()})
    return _eager_result(populations, template, flat, inputs, P, attrs)


def _solve_lazy(inputs: xr.Dataset, engine, cutoff: int, options: dict, P: bool, attrs: dict, checkpoint) -> xr.Dataset:
    """:func:`solve` of dask-backed inputs: lazy results, one backend call per block."""
    points = dict(zip(POINT_ORDER, xr.broadcast(*check_inputs(inputs).values()), strict=True))
    if checkpoint is not None:
        tolerance = options.get("tolerance")
        populations = _checkpointed_lazy_populations(inputs, engine, cutoff, tolerance, options, checkpoint, attrs)
        attrs = {**attrs, "checkpoint": str(checkpoint)}
    else:
        populations = _lazy_populations(inputs, engine, cutoff, options)
        if engine.MAIN_THREAD_ONLY:
            populations = _in_calling_thread(populations)
    return _record_inputs(_assemble(populations, P, attrs, points), inputs)


def _open_checkpoint(
    checkpoint, inputs, template, flat, engine, cutoff: int, tolerance, attrs: dict, populations: np.ndarray
) -> Checkpoint:
    """The checkpoint store of an eager grid (created, or checked against this call and reopened)."""
    manifest = {
        "key": fingerprint(flat, cutoff, engine.NAME, tolerance),
        "layout": "points",
        "dims": list(template.dims),
        "shape": list(template.shape),
        "chunks": None,
        "cutoff": cutoff,
        "backend": engine.NAME,
        "tolerance": tolerance,
        "attrs": attrs,
    }
    return Checkpoint.open(checkpoint, manifest, model_inputs(inputs), nbytes=populations.nbytes)


def _fill_populations(
    populations: np.ndarray, flat: dict, engine, cutoff: int, options: dict, chunk_size: int, progress, store
) -> None:
    """Solve every point not yet in ``store`` (all without one), a chunk at a time, recording each chunk."""
    npts = populations.shape[0]
    todo = np.arange(npts) if store is None else np.flatnonzero(~store.load_points(populations))
    bar = progress_bar(npts, progress, f"pyspb.solve ({engine.NAME}, cutoff {cutoff})", DEFAULT_CHUNK)
    try:
        if bar is not None:
            bar.update(npts - todo.size)
        for start, stop in _runs(todo, chunk_size):
            points = (flat[name][start:stop] for name in POINT_ORDER)
            # clipped: rounding noise can leave populations of order -1e-20
            populations[start:stop] = np.clip(engine.steady_state_populations(*points, cutoff=cutoff, **options), 0, 1)
            if store is not None:
                store.write_points(start, stop, populations[start:stop])
            if bar is not None:
                bar.update(stop - start)
    finally:
        if bar is not None:
            bar.close()


def _eager_result(
    populations: np.ndarray, template: xr.DataArray, flat: dict, inputs: xr.Dataset, with_P: bool, attrs: dict
) -> xr.Dataset:
    """The result of :func:`solve` from the populations (points, levels, levels) of a flattened grid.

    NumPy throughout, then one Dataset constructor: xarray's arithmetic and assignments cost
    ~2 ms per call, more than a single point's solve.
    """
    dims, shape = template.dims, template.shape
    levels = populations.shape[-1]
    names = OBSERVABLES + ("truncation_error",)
    observed = _observables(populations, resolution(flat["Delta"], flat["gamma"], flat["chi"]), flat["J"] == 0)
    values = dict(zip(names, observed, strict=True))
    comments = _comments(levels - 1)
    marked = _truncated_correlations(populations, values)
    variables = {}
    for name in names:
        var_attrs: dict = {"comment": comments[name]}
        if name in marked:
            var_attrs["comment"] += (
                f"; estimated relative error from the truncation up to {marked[name]:.1g} "
                "(populations beyond the cutoff, extrapolated): raise cutoff"
            )
            var_attrs["truncation_estimate_max"] = marked[name]
        variables[name] = xr.Variable(dims, values[name].reshape(shape), var_attrs)
    coords = dict(template.coords)
    if with_P:
        variables["P"] = xr.Variable(dims + ("n_cw", "n_ccw"), populations.reshape(shape + (levels, levels)))
        coords.update(n_cw=np.arange(levels), n_ccw=np.arange(levels))
    # the model inputs as given (their attrs too), so that the result reproduces itself
    given = {name: inputs.variables[name] for name in INPUT_NAMES if name in inputs.data_vars}
    return annotate(xr.Dataset({**variables, **given}, coords=coords, attrs=attrs), exclude=given)


def _truncated_correlations(populations: np.ndarray, values: dict[str, np.ndarray]) -> dict[str, float]:
    """The g^(n) whose estimated truncation error exceeds G_TRUNCATION_WARNING at a reported
    point (finite in ``values``), with the largest estimate (recorded as their attr
    ``truncation_estimate_max``; see :func:`~pyspb.observables.g_truncation_estimate`).
    """
    marked = {}
    for name, estimate in g_truncation_estimate(populations).items():
        reported = np.isfinite(values[name].ravel())
        worst = float(estimate[reported].max(initial=0.0))
        if worst > G_TRUNCATION_WARNING:
            marked[name] = worst
    return marked


def warn_if_correlations_truncated(out: xr.Dataset, caller: str, stacklevel: int = 2) -> None:
    """Warn (:class:`~pyspb.observables.TruncationWarning`) about the g^(n) that
    :func:`_truncated_correlations` marked (attr ``truncation_estimate_max``): ``truncation_error``
    can be negligible while the top orders are not (their moments weigh the top levels by n!).
    """
    marked = {
        name: var.attrs["truncation_estimate_max"]
        for name, var in out.variables.items()
        if "truncation_estimate_max" in var.attrs
    }
    if marked:
        which = ", ".join(f"{name} (up to {value:.1g})" for name, value in marked.items())
        warnings.warn(
            f"{caller}: at cutoff {out.attrs['cutoff']} the truncation changes {which} by more than "
            f"{G_TRUNCATION_WARNING:g} (relative; estimated from the populations beyond the cutoff): "
            "raise cutoff (or use cutoff='auto')",
            TruncationWarning,
            stacklevel=stacklevel + 1,
        )


def model_inputs(inputs: xr.Dataset) -> xr.Dataset:
    """The model inputs of ``inputs`` (as given, with the coords): what a result records."""
    return inputs.drop_vars([name for name in inputs.data_vars if name not in INPUT_NAMES])


def _record_inputs(out: xr.Dataset, inputs: xr.Dataset) -> xr.Dataset:
    """The model inputs that are not coords of ``out``, as data variables (as given)."""
    given = [name for name in INPUT_NAMES if name in inputs.data_vars and name not in out.coords]
    return out.assign({name: inputs[name].variable for name in given})  # the result's coords (and their attrs) stay


def warn_if_truncated(error: xr.DataArray, cutoff: int, caller: str, stacklevel: int = 2) -> None:
    """Warn (:class:`~pyspb.observables.TruncationWarning`) where the truncation is not negligible.

    Parameters
    ----------
    error : DataArray
        ``truncation_error`` of a result (population of the top Fock level, per point).
    cutoff : int
        The cutoff used (named in the message).
    caller : str
        The entry point named in the message (e.g. "pyspb.solve").
    stacklevel : int
        As for :func:`warnings.warn`, counted from the function calling this one (2: its caller).
    """
    values = np.asarray(error, dtype=float)
    over = values > TRUNCATION_WARNING
    if not over.any():
        return
    gross = int((values > TRUNCATION_LIMIT).sum())
    nan_note = f"; at {gross} point(s) it exceeds {TRUNCATION_LIMIT:g} and the results are NaN there" if gross else ""
    warnings.warn(
        f"{caller}: truncation error (population of the top Fock level) up to {float(values.max()):.2g} "
        f"at cutoff {cutoff}, above {TRUNCATION_WARNING:g} at {int(over.sum())} of {values.size} point(s): "
        f"the results there are those of the truncated model, not of the resonator{nan_note}. "
        f"Raise cutoff (or use cutoff='auto')",
        TruncationWarning,
        stacklevel=stacklevel + 1,
    )


def check_truncation(
    inputs: xr.Dataset, cutoff: int, backend: str = "native", caller: str = "pyspb.solve"
) -> np.ndarray:
    """Solve the steady states of ``inputs`` at ``cutoff``, warn as :func:`solve` does, and
    return where the truncation is gross.

    For entry points whose backend does not return the steady states' populations (the Julia
    backend's ``tau_correlations`` and ``spectra``; the native ones do, and :func:`pyspb.g2_tau`
    and :func:`pyspb.spectrum` then take ``truncation_error`` from them instead).

    Returns
    -------
    numpy.ndarray of bool
        Per point, in the order of :func:`pyspb.grid.flatten_inputs`: True where the
        truncation error exceeds :data:`~pyspb.observables.TRUNCATION_LIMIT`, so that the
        caller reports NaN there as :func:`solve` does.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)
        out = _solve_cutoff(inputs, cutoff, backend, progress=False)
    warn_if_truncated(out.truncation_error, out.attrs["cutoff"], caller, stacklevel=3)
    return np.asarray(out.truncation_error, dtype=float).ravel() > TRUNCATION_LIMIT


def _runs(todo: np.ndarray, size: int) -> list[tuple[int, int]]:
    """``todo`` (sorted point indices) as ranges (start, stop) of consecutive points, at most ``size`` long."""
    ranges = []
    if todo.size:
        for run in np.split(todo, np.flatnonzero(np.diff(todo) != 1) + 1):
            for first in range(0, run.size, size):
                ranges.append((int(run[first]), int(run[min(first + size, run.size) - 1]) + 1))
    return ranges


def _solve_auto(inputs: xr.Dataset, backend: str, *, progress: bool | None = None, **options) -> xr.Dataset:
    """``solve`` with the smallest cutoff of AUTO_CUTOFFS at which the observables settle.

    A progress bar names the cutoff being tried (it appears after 2 s unless ``progress`` is
    False).  Before each cutoff the backend's memory estimate is checked, so that a
    cutoff that cannot fit stops the climb with an error naming it and the memory it needs.
    """
    engine = get_backend(backend)
    previous, change = None, float("nan")
    bar = progress_bar(
        len(AUTO_CUTOFFS), progress, "pyspb.solve cutoff='auto'", 0, delay=0 if progress else 2, unit="cutoff"
    )
    try:
        for cutoff in AUTO_CUTOFFS:
            if bar is not None:
                bar.set_postfix_str(f"trying cutoff {cutoff}")
            try:
                engine.check_memory(cutoff)
            except MemoryError as error:
                raise MemoryError(
                    f"cutoff='auto' stopped before cutoff {cutoff}: N, g2, g3, g4 had not settled "
                    f"up to cutoff {cutoff - 2}. {error}"
                ) from None
            out = _solve_cutoff(inputs, cutoff, backend, progress=progress, **options)
            if bar is not None:
                bar.update(1)
            # where either cutoff truncates grossly, N and g are NaN (not compared): not settled
            if previous is not None and max(_worst(out), _worst(previous)) <= TRUNCATION_LIMIT:
                change = max(
                    float(np.nanmax(np.abs(out[name] / previous[name] - 1).values, initial=0.0)) for name in OBSERVABLES
                )
                if change < AUTO_TOLERANCE:
                    out.attrs["cutoff_selection"] = (
                        f"auto: N, g2, g3, g4 changed by {change:.1e} (< {AUTO_TOLERANCE:g}) "
                        f"from cutoff {cutoff - 2} to {cutoff}"
                    )
                    return out
            previous = out
    finally:
        if bar is not None:
            bar.close()
    assert previous is not None
    last = (
        f"last change {change:.1e}"
        if np.isfinite(change)
        else f"never compared: truncation_error above {TRUNCATION_LIMIT:g} at every cutoff"
    )
    raise ValueError(
        f"cutoff='auto' found no cutoff up to its ceiling {AUTO_CUTOFFS[-1]} at which N, g2, g3, g4 settle to "
        f"{AUTO_TOLERANCE:g} ({last}; truncation_error up to {_worst(previous):.1e} at cutoff "
        f"{AUTO_CUTOFFS[-1]}): the drive is too strong for this truncation; give a larger cutoff explicitly "
        "(see the README's memory table) or use a weaker drive"
    )


def _worst(out: xr.Dataset) -> float:
    return float(out.truncation_error.max())


def _lazy_populations(inputs: xr.Dataset, engine, cutoff: int, options: dict) -> xr.DataArray:
    """P over the inputs' dims and (n_cw, n_ccw), one backend call per dask block."""

    def block(*arrays: np.ndarray) -> np.ndarray:
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        flat = [np.broadcast_to(a, shape).ravel() for a in arrays]
        P = engine.steady_state_populations(*flat, cutoff=cutoff, **options)
        return np.clip(P, 0.0, 1.0).reshape(shape + (cutoff + 1, cutoff + 1))

    arrays = xr.broadcast(*check_inputs(inputs).values())
    P = xr.apply_ufunc(
        block,
        *arrays,
        output_core_dims=[["n_cw", "n_ccw"]],
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {"n_cw": cutoff + 1, "n_ccw": cutoff + 1}},
    )
    levels = np.arange(cutoff + 1)
    return P.assign_coords(n_cw=levels, n_ccw=levels)


def _in_calling_thread(P: xr.DataArray) -> xr.DataArray:
    """Lazy ``P`` computed now, block by block in the calling thread, chunked as before.

    For the Julia engine: juliacall must run in Python's main thread (PythonCall.jl issue
    #578: Julia's garbage collection hangs when Julia is called from another Python thread),
    but dask runs blocks in worker threads (threaded scheduler, dask.distributed workers).
    The synchronous scheduler, named explicitly so that it also wins over a distributed
    Client, runs them in this thread; Julia spreads each block's points over its own threads.
    """
    chunks = dict(zip(P.dims, P.chunks or (), strict=True))
    return P.compute(scheduler="synchronous").chunk(chunks)


def _checkpointed_lazy_populations(
    inputs: xr.Dataset,
    engine,
    cutoff: int,
    tolerance: float | None,
    options: dict,
    path: str | os.PathLike,
    attrs: dict,
) -> xr.DataArray:
    """P of dask inputs, each block computed and written to the checkpoint by the worker that solves it.

    Computes every block not yet in the checkpoint (the workers write their own chunks; only a
    count per block comes back), then returns P read lazily, block by block, from the checkpoint.
    Engines that must run in the main thread (Julia) compute the blocks one after another in
    the calling thread (dask's synchronous scheduler).
    """
    import dask.array as da

    path = Path(path)
    checked = check_inputs(inputs)
    arrays = xr.broadcast(*checked.values())
    dims = arrays[0].dims
    grid = xr.Dataset(dict(zip(checked, arrays, strict=True))).unify_chunks()
    chunk_map = {dim: tuple(grid.chunks.get(dim, (grid.sizes[dim],))) for dim in dims}
    grid = grid.chunk(chunk_map)
    coords = xr.Dataset(
        coords={name: coord for name, coord in inputs.coords.items() if set(coord.dims) <= set(dims)}
    ).compute()
    levels = cutoff + 1
    manifest = {
        "key": "blocks",  # blocks are checked against their inputs by the workers (inputs_sha256)
        "layout": "blocks",
        "dims": list(dims),
        "shape": [grid.sizes[dim] for dim in dims],
        "chunks": [list(map(int, chunk_map[dim])) for dim in dims],
        "cutoff": cutoff,
        "backend": engine.NAME,
        "tolerance": tolerance,
        "attrs": attrs,
    }
    nbytes = int(np.prod(manifest["shape"], dtype=np.int64)) * levels**2 * 8
    solve_block = functools.partial(_solve_block, path=str(path), backend=engine.NAME, cutoff=cutoff, options=options)
    counts = da.map_blocks(
        solve_block,
        *(grid[name].data for name in checked),
        chunks=tuple((1,) * len(chunk_map[dim]) for dim in dims),
        dtype=np.int64,
    )
    with Checkpoint.open(path, manifest, model_inputs(inputs).compute(), nbytes=nbytes):
        try:
            counts.compute(scheduler="synchronous") if engine.MAIN_THREAD_ONLY else counts.compute()
        except KeyboardInterrupt:
            raise interrupted(path) from None
    index = da.zeros(tuple(manifest["shape"]), chunks=tuple(chunk_map[dim] for dim in dims), dtype=np.int8)
    P = da.map_blocks(
        functools.partial(_read_block, path=str(path)),
        index,
        new_axis=[len(dims), len(dims) + 1],
        chunks=index.chunks + ((levels,), (levels,)),
        dtype=float,
    )
    return xr.DataArray(
        P,
        dims=dims + ("n_cw", "n_ccw"),
        coords={**coords.coords, "n_cw": np.arange(levels), "n_ccw": np.arange(levels)},
    )


def _block_name(block_info: dict) -> str:
    return "block-" + "-".join(str(int(i)) for i in block_info[0]["chunk-location"])


def _solve_block(*blocks: np.ndarray, block_info=None, path: str, backend: str, cutoff: int, options: dict):
    """Solve one dask block unless the checkpoint holds it; write it there; return the points computed."""
    name = _block_name(block_info)
    shape = np.broadcast_shapes(*(b.shape for b in blocks))
    flat = [np.broadcast_to(b, shape).ravel() for b in blocks]
    digest = inputs_digest(flat)
    computed = np.zeros((1,) * len(shape), dtype=np.int64)
    marker = read_marker(path, name)
    if marker is not None:
        if marker.get("inputs_sha256") != digest:
            raise CheckpointError(
                f"checkpoint {path} was written for other inputs, cutoff, backend or tolerance (block {name} had "
                "other input values); refusing to mix results. Delete it, or pass another checkpoint path"
            )
        try:
            read_chunk(path, name, marker)
            return computed
        except CheckpointError as err:
            discard_chunk(path, name, str(err))
    P = get_backend(backend).steady_state_populations(*flat, cutoff=cutoff, **options)
    P = np.clip(P, 0.0, 1.0).reshape(shape + (cutoff + 1, cutoff + 1))
    write_chunk(path, name, P, {"block": [int(i) for i in block_info[0]["chunk-location"]], "inputs_sha256": digest})
    computed[...] = np.prod(shape)
    return computed


def _read_block(index: np.ndarray, block_info=None, path: str = "") -> np.ndarray:
    """The populations of one dask block, read from the checkpoint (checksum and range checked)."""
    name = _block_name(block_info)
    marker = read_marker(path, name)
    if marker is None:
        raise CheckpointError(f"checkpoint {path} lost chunk {name}; rerun the same pyspb.solve call")
    return read_chunk(path, name, marker)


def _observables(P: np.ndarray, point_resolution: np.ndarray, decoupled: np.ndarray) -> tuple[np.ndarray, ...]:
    """OBSERVABLES and truncation_error from P of shape (..., levels, levels).

    ``point_resolution`` (:func:`~pyspb.observables.resolution`) and ``decoupled`` (J = 0)
    have P's leading shape.
    """
    shape = P.shape[:-2]
    flat = P.reshape((-1,) + P.shape[-2:])
    values = correlations(flat, np.broadcast_to(point_resolution, shape).ravel())
    values["N_ccw"][np.broadcast_to(decoupled, shape).ravel()] = 0.0  # J = 0: the ccw mode is exactly empty
    error = truncation_error(flat)
    for name in OBSERVABLES:
        values[name][error > TRUNCATION_LIMIT] = np.nan
    return tuple(values[name].reshape(shape) for name in OBSERVABLES) + (error.reshape(shape),)


def _assemble(P: xr.DataArray, with_P: bool, attrs: dict, points: dict[str, xr.DataArray]) -> xr.Dataset:
    """Labelled Dataset of the observables from dask-backed P (the eager path: :func:`_eager_result`).

    ``points`` holds ``Delta``, ``J``, ``gamma`` (and the other inputs) over P's grid dims.
    """
    names = OBSERVABLES + ("truncation_error",)
    results = xr.apply_ufunc(
        _observables,
        P,
        resolution(points["Delta"], points["gamma"], points["chi"]),
        points["J"] == 0,
        input_core_dims=[["n_cw", "n_ccw"], [], []],
        output_core_dims=[[]] * len(names),
        dask="parallelized",
        output_dtypes=[float] * len(names),
    )
    out = xr.Dataset(dict(zip(names, results, strict=True)))
    for name, comment in _comments(P.sizes["n_cw"] - 1).items():
        out[name].attrs["comment"] = comment
    if with_P:
        out["P"] = P
    else:
        out = out.drop_vars(["n_cw", "n_ccw"], errors="ignore")
    out.attrs.update(attrs)
    return annotate(out)


def _comments(cutoff: int) -> dict[str, str]:
    """The ``comment`` attr of every observable and of ``truncation_error`` at ``cutoff``: when each is NaN, and why."""
    comments = {}
    scaled = f"{RESOLUTION:g} x max(1, |Delta| / ({DETUNING_SCALE:g} gamma))"
    truncated = f"NaN where truncation_error > {TRUNCATION_LIMIT:g}: the cutoff is far too small there (raise cutoff)"
    for mode in ("cw", "ccw"):
        notes = [
            f"NaN where N_{mode} is below {scaled} of the total photon number: not resolved by the "
            f"solver (rounding noise; e.g. the ccw mode at small |J| and large |Delta|)",
            truncated,
        ]
        if mode == "ccw":
            notes.insert(0, "exactly 0 where J = 0 (the ccw mode is not coupled)")
        comments[f"N_{mode}"] = "; ".join(notes)
        for order in range(2, MAX_ORDER + 1):
            notes = [
                f"NaN where the {mode} mode is empty to numerical precision "
                f"(N_{mode} below {scaled} of the total photon number): 0/0",
                f"NaN where <a^dagger^{order} a^{order}> of the {mode} mode is below {scaled} "
                f"of the same moment of the total photon number: not resolved by the solver "
                f"(e.g. g3, g4 of the nearly empty ccw mode when J is small)",
                truncated,
            ]
            if order > cutoff:
                notes.append(f"NaN everywhere: cutoff {cutoff} < {order} cannot hold {order} photons")
            comments[f"g{order}_{mode}"] = "; ".join(notes)
    comments["g2_cross"] = "; ".join(
        [
            "<n_cw n_ccw> / (N_cw N_ccw)",
            f"NaN where either mode is empty (N below {scaled} of the total photon number): 0/0",
            f"NaN where 2 <n_cw n_ccw> is below {scaled} of <n (n - 1)> of the total photon number: not resolved",
            truncated,
        ]
    )
    comments["truncation_error"] = (
        f"a TruncationWarning is issued above {TRUNCATION_WARNING:g}; N and g^(n) are NaN above "
        f"{TRUNCATION_LIMIT:g}; raise cutoff if this is not negligible against the populations you need"
    )
    return comments
