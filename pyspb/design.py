"""Device design: the best tip position (:func:`optimize_tip`) and fabrication tolerance (:func:`tolerance`).

Both evaluate many devices in few batched :func:`pyspb.solve` calls: every stage of the tip
search, and every block of Monte Carlo samples, is one call over all its points.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .analytic import efficiency, weak_drive
from .attributes import annotate
from .device import Device
from .fitting import (
    DEVICE_FIELDS,
    FITTABLE_FIELDS,
    device_from_assignments,
    field_value,
    flatten_like,
    parse_assignment,
)
from .grid import MODEL_INPUTS
from .observables import TruncationWarning
from .solve import OBSERVABLES, solve, warn_if_truncated

__all__ = ["optimize_tip", "tolerance", "summarize", "OBJECTIVES", "TIP_FIELDS", "tolerance_file"]

#: objective -> sense ("min" or "max"); "R" is maximised through g2_cw (Eq. 8 at a fixed ideal cavity),
#: "g2_cw_weak" is the weak-drive Eq. (7) (no steady state is solved)
OBJECTIVES: dict[str, str] = {
    **{name: "min" for name in OBSERVABLES if name.startswith("g")},
    "R": "max",
    "N_cw": "max",
    "g2_cw_weak": "min",
}
#: Device fields that change only the tip's coupling and loss (not the ideal cavity's chi, xi, Delta)
TIP_FIELDS = ("r", "phi", "a_t", "decay_t", "a_gamma", "decay_gamma", "theta", "theta_t", "n0", "J0", "J0_over_gamma1")
#: default radial range of the tip search (um), as the paper's Fig. 4(b)
R_RANGE = (0.1, 1.2)
_POINT = "point"


# --------------------------------------------------------------------------- evaluation


def _ideal_g2(device: Device, over: Mapping[str, np.ndarray], cutoff: int, backend: str) -> xr.DataArray:
    """g2_cw of the ideal cavity (J0 = 0, no tip) with the same chi, xi, Delta, over ``over``'s grid."""
    cavity = {name: values for name, values in over.items() if name not in TIP_FIELDS}
    rates = device.rates(**cavity, J0=0.0, tip=False)
    with warnings.catch_warnings():  # optimize_tip warns about truncation once, for all its solves
        warnings.simplefilter("ignore", TruncationWarning)
        out = solve(rates[list(MODEL_INPUTS)], cutoff, backend, progress=False)
    return out["g2_cw"].drop_attrs()


class _Evaluator:
    """Observables at flat arrays of device points, one solve call per batch; counts calls and points."""

    def __init__(self, device: Device, objective: str, cutoff: int, backend: str, constraints: dict) -> None:
        self.device = device
        self.objective = objective
        self.cutoff = cutoff
        self.backend = backend
        self.constraints = constraints
        self.calls = 0
        self.points = 0
        self.attrs: dict[str, Any] = {}

    def __call__(self, fields: dict[str, np.ndarray], g2_ideal: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(penalised objective to minimise, all values) at the points given by flat field arrays."""
        rates = self.device.rates(**{name: xr.DataArray(values, dims=_POINT) for name, values in fields.items()})
        values: dict[str, np.ndarray] = {}
        if self.objective == "g2_cw_weak":
            weak = weak_drive(rates[list(MODEL_INPUTS)])
            values = {str(name): np.broadcast_to(weak[name].values, g2_ideal.shape) for name in weak.data_vars}
        else:
            with warnings.catch_warnings():  # warned once, at the optimum (see optimize_tip)
                warnings.simplefilter("ignore", TruncationWarning)
                out = solve(rates[list(MODEL_INPUTS)], self.cutoff, self.backend, progress=False)
            self.attrs = dict(out.attrs)
            values = {str(name): np.broadcast_to(out[name].values, g2_ideal.shape) for name in out.data_vars}
            values["R"] = efficiency(values["g2_cw"], g2_ideal)
            values["g2_cw_ideal"] = g2_ideal
        values["J_abs"] = np.broadcast_to(rates["J_abs"].values, g2_ideal.shape)
        self.calls += 1
        self.points += g2_ideal.size
        if self.objective == "R":  # R = max(0, (1 - g2) / (1 - g2_ideal)): the largest R is the smallest g2
            score = np.array(values["g2_cw"], dtype=float)
        else:
            score = np.array(values[self.objective], dtype=float)
            if OBJECTIVES[self.objective] == "max":
                score = -score
        feasible = np.isfinite(score)
        for name, (low, high) in self.constraints.items():
            value = values[name]
            if low is not None:
                feasible &= value >= low
            if high is not None:
                feasible &= value <= high
        return np.where(feasible, score, np.inf), values


# --------------------------------------------------------------------------- optimize_tip


def optimize_tip(
    device: Device | None = None,
    objective: str = "g2_cw",
    cutoff: int = 5,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    constraints: Mapping[str, tuple[float | None, float | None]] | None = None,
    *,
    backend: str = "native",
    over: Mapping[str, Any] | None = None,
    grid: tuple[int, int] = (24, 24),
    candidates: int = 3,
    xtol: float = 1e-4,
    max_stages: int = 40,
) -> xr.Dataset:
    """The tip position (r, phi) that minimises g2_cw (or another objective) of a device.

    The (r, phi) landscape has a minimum per period of the coupling phase and more near the
    |J| = gamma interference points, so a local optimiser alone finds whichever is nearest.
    The search is instead: (1) a coarse ``grid`` over the bounds, solved in one batched call;
    (2) the best ``candidates`` local minima of that grid are refined together by a pattern
    search: every stage solves a 5 x 5 stencil of +-step around each candidate in one call,
    moves each candidate to its stencil's best point, and halves its step unless that point
    is on the stencil's edge (the minimum may lie further out), until the step is below
    ``xtol`` (as a fraction of the bounds).  Each stage costs one
    solver call of ``25 x candidates`` points, so the search costs a few percent of a dense grid
    at far finer resolution.

    Parameters
    ----------
    device : Device, optional
        Every other field (default: the paper's device).
    objective : str
        "g2_cw" (default), "g3_cw", "g4_cw", "g2_ccw", ... (minimised), "R" (Eq. 8 against
        the ideal cavity, maximised, i.e. g2_cw minimised), "N_cw" (maximised), or
        "g2_cw_weak" (the weak-drive Eq. (7), minimised; no steady state is solved).
    cutoff : int
        Largest photon number kept per mode.
    bounds : mapping, optional
        ``{"r": (low, high), "phi": (low, high)}`` in um.  Default r in (0.1, 1.2) um and phi
        over one period pi / k_opt of the coupling phase (J is periodic in phi: the search
        wraps around, and the result is reported within [0, pi / k_opt)).
    constraints : mapping, optional
        Observable -> ``(low, high)`` (either None for no limit), e.g. ``{"N_cw": (0.1, None)}``
        for N_cw >= 0.1; any variable of the result (``N_cw``, ``g2_ccw``, ``R``, ``J_abs``,
        ...) can be constrained.
    backend : str
        As :func:`pyspb.solve`.
    over : mapping, optional
        Other ``Device`` fields as 1-d arrays (e.g. ``{"J0_over_gamma1": np.linspace(0, 3.6,
        21)}``): one optimisation per point of their grid, all batched in the same solve calls.
        The result has these dims.
    grid : (int, int)
        Coarse grid size (r, phi).
    candidates : int
        Local minima of the coarse grid refined.
    xtol : float
        Final step of the pattern search, as a fraction of the bounds' widths.
    max_stages : int
        Largest number of refinement stages.

    Returns
    -------
    xarray.Dataset
        ``r``, ``phi`` of the optimum, the objective there and every observable
        (``N_cw, ..., g4_ccw, truncation_error``, ``R``, ``g2_cw_ideal``, ``J_abs``; the
        weak-drive quantities for "g2_cw_weak"), over the dims of ``over``.  Attrs:
        ``objective``, ``sense``, bounds, constraints, a description of the ``search``,
        ``solve_calls``, ``points_solved``, ``seconds`` and the solves' provenance.
        Where no point satisfies the constraints the values are NaN (with a warning).
    """
    started = time.perf_counter()
    device = Device() if device is None else device
    if not device.tip:
        raise ValueError(
            "optimize_tip needs a device with a tip (tip=True): without it every tip position is the same cavity"
        )
    over_arrays, checked, n_r, n_phi = _check_tip_arguments(objective, over, constraints, grid, candidates)
    domain = _tip_domain(device, over_arrays, bounds)
    evaluate = _Evaluator(device, objective, cutoff, backend, checked)
    g2_ideal = (
        np.zeros(domain.n_over)
        if objective == "g2_cw_weak"
        else flatten_like(_ideal_g2(device, domain.over, cutoff, backend), domain.template)
    )

    def at(which: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Objective at over-points ``which`` and normalised positions (u, v) in [0, 1]."""
        return evaluate(domain.fields(which, u, v), g2_ideal[which])

    # (1) coarse grid, (2) pattern search from its best local minima, all in one call per stage
    search = _coarse_grid(at, domain, n_r, n_phi, candidates)
    stages = _pattern_search(at, search, domain.periodic, xtol, max_stages)
    # the best candidate of every over-point, evaluated once more for all its observables
    chosen = search.best_of_each(domain.n_over)
    found = np.isfinite(search.best[chosen])
    _, values = at(np.arange(domain.n_over), search.u[chosen], search.v[chosen])
    out = _tip_dataset(domain, search.u[chosen], search.v[chosen], values, found)
    _warn_about_tip(out, found, checked, cutoff)
    out.attrs.update({k: v for k, v in evaluate.attrs.items() if k != "created"})
    out.attrs.update(
        {
            "objective": objective,
            "sense": "maximised" if OBJECTIVES[objective] == "max" else "minimised",
            "r_bounds": [domain.r_low, domain.r_high],
            "phi_bounds": (
                "one period pi / k_opt (wrapped)"
                if domain.periodic
                else [float(domain.phi_low[0]), float(domain.phi_width[0])]
            ),
            "constraints": "; ".join(f"{lo} <= {name} <= {hi}" for name, (lo, hi) in checked.items()) or "none",
            "search": (
                f"{n_r} x {n_phi} grid, then a 5 x 5 pattern search from the best {candidates} local minima "
                f"({stages} stages, final step < {xtol:g} of the bounds)"
            ),
            "solve_calls": evaluate.calls,
            "points_solved": evaluate.points,
            "seconds": round(time.perf_counter() - started, 3),
        }
    )
    return annotate(out)


def _check_tip_arguments(
    objective: str,
    over: Mapping[str, Any] | None,
    constraints: Mapping[str, tuple[float | None, float | None]] | None,
    grid: tuple[int, int],
    candidates: int,
) -> tuple[dict[str, np.ndarray], dict[str, tuple[float | None, float | None]], int, int]:
    """(over as 1-d float arrays, checked constraints, n_r, n_phi) of optimize_tip's arguments, checked."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    arrays = {name: np.atleast_1d(np.asarray(values, dtype=float)) for name, values in (over or {}).items()}
    for name, values in arrays.items():
        if name not in FITTABLE_FIELDS or name in ("r", "phi"):
            raise ValueError(f"over: {name!r} is not a Device field other than r and phi")
        if values.ndim != 1:
            raise ValueError(f"over: {name} must be a 1-d array")
    checked = _check_constraints(constraints, objective)
    n_r, n_phi = (int(n) for n in grid)
    if n_r < 3 or n_phi < 3 or candidates < 1:
        raise ValueError(f"grid must be at least 3 x 3 and candidates >= 1, got grid={grid}, candidates={candidates}")
    return arrays, checked, n_r, n_phi


@dataclasses.dataclass
class _TipDomain:
    """Where the tip is searched: the grid of other fields flattened to points, and (r, phi) bounds at each.

    Positions are normalised: u in [0, 1] spans the r bounds, v in [0, 1] the phi bounds
    (one period pi / k_opt of each point where ``periodic``).
    """

    over: dict[str, np.ndarray]  #: the other fields' 1-d arrays (the result's dims)
    flat_over: dict[str, np.ndarray]  #: their values at every point of their grid (C order)
    template: xr.DataArray  #: zeros over the grid of ``over``
    r_low: float
    r_high: float
    periodic: bool
    period: np.ndarray  #: pi / k_opt at each point (um)
    phi_low: np.ndarray
    phi_width: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.over.values())

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(self.over)

    @property
    def n_over(self) -> int:
        return int(np.prod(self.shape))

    def fields(self, which: np.ndarray, u: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
        """Device fields (flat arrays) at over-points ``which`` and normalised positions (u, v)."""
        r = self.r_low + u * (self.r_high - self.r_low)
        phi = self.phi_low[which] + v * self.phi_width[which]
        return {"r": r, "phi": phi, **{name: values[which] for name, values in self.flat_over.items()}}


def _tip_domain(device: Device, over: dict[str, np.ndarray], bounds: Mapping[str, tuple[float, float]] | None):
    """The search domain over the grid of ``over``, its bounds checked."""
    base = device.rates(**over, tip=False)
    shape = tuple(len(v) for v in over.values())
    dims = tuple(over)
    flat_over = {
        name: np.broadcast_to(values.reshape([-1 if d == name else 1 for d in dims]), shape).ravel()
        for name, values in over.items()
    }
    n_over = int(np.prod(shape))
    template = xr.DataArray(np.zeros(shape), dims=dims, coords=over)
    period = flatten_like(np.pi / base["k_opt"], template)
    r_low, r_high = _bounds(bounds, "r", R_RANGE)
    periodic = not (bounds and "phi" in bounds)
    if periodic:
        phi_low, phi_width = np.zeros(n_over), period
    else:
        low, high = _bounds(bounds, "phi", (0.0, 1.0))
        phi_low, phi_width = np.full(n_over, low), np.full(n_over, high - low)
    if r_low < 0:
        raise ValueError(f"bounds of r must be >= 0 (a tip distance), got ({r_low}, {r_high})")
    return _TipDomain(over, flat_over, template, r_low, r_high, periodic, period, phi_low, phi_width)


@dataclasses.dataclass
class _Candidates:
    """Points refined by the pattern search: over-point, normalised position, best score, steps."""

    owner: np.ndarray  #: index of the over-point each candidate belongs to
    u: np.ndarray
    v: np.ndarray
    best: np.ndarray  #: the penalised objective at (u, v)
    du: np.ndarray
    dv: np.ndarray

    def best_of_each(self, n_over: int) -> np.ndarray:
        """Index of the best candidate of every over-point."""
        return np.array([np.flatnonzero(self.owner == i)[np.argmin(self.best[self.owner == i])] for i in range(n_over)])


_At = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, dict[str, np.ndarray]]]


def _coarse_grid(at: _At, domain: _TipDomain, n_r: int, n_phi: int, candidates: int) -> _Candidates:
    """The objective on an n_r x n_phi grid at every over-point (one call): its best local minima."""
    n_over, periodic = domain.n_over, domain.periodic
    u_grid = np.linspace(0.0, 1.0, n_r)
    v_grid = np.linspace(0.0, 1.0, n_phi, endpoint=not periodic)
    uu, vv = np.meshgrid(u_grid, v_grid, indexing="ij")
    which = np.repeat(np.arange(n_over), n_r * n_phi)
    score, _ = at(which, np.tile(uu.ravel(), n_over), np.tile(vv.ravel(), n_over))
    score = score.reshape(n_over, n_r, n_phi)
    starts = [_local_minima(score[i], periodic, candidates) for i in range(n_over)]
    u = np.array([u_grid[a] for picks in starts for a, _ in picks], dtype=float)
    return _Candidates(
        owner=np.array([i for i, picks in enumerate(starts) for _ in picks], dtype=int),
        u=u,
        v=np.array([v_grid[b] for picks in starts for _, b in picks], dtype=float),
        best=np.array([score[i, a, b] for i, picks in enumerate(starts) for a, b in picks], dtype=float),
        du=np.full(u.size, u_grid[1] - u_grid[0]),
        dv=np.full(u.size, v_grid[1] - v_grid[0]),
    )


def _pattern_search(at: _At, search: _Candidates, periodic: bool, xtol: float, max_stages: int) -> int:
    """Refine all candidates together (in place), one solve call per stage; the number of stages."""
    offsets = np.linspace(-1.0, 1.0, 5)
    ou, ov = (a.ravel() for a in np.meshgrid(offsets, offsets, indexing="ij"))
    stages = 0
    active = np.isfinite(search.best)
    while active.any() and stages < max_stages:
        stages += 1
        _pattern_stage(at, search, np.flatnonzero(active), ou, ov, periodic)
        active = np.isfinite(search.best) & (np.maximum(search.du, search.dv) > xtol)
    return stages


def _pattern_stage(at: _At, search: _Candidates, idx: np.ndarray, ou: np.ndarray, ov: np.ndarray, periodic: bool):
    """One stage: a stencil of offsets (ou, ov) steps around candidates ``idx``; move each to its best point."""
    centre = int(np.flatnonzero((ou == 0) & (ov == 0))[0])
    su = np.clip(search.u[idx, None] + search.du[idx, None] * ou, 0.0, 1.0)
    sv = search.v[idx, None] + search.dv[idx, None] * ov
    sv = np.mod(sv, 1.0) if periodic else np.clip(sv, 0.0, 1.0)
    s, _ = at(np.repeat(search.owner[idx], ou.size), su.ravel(), sv.ravel())
    s = s.reshape(idx.size, ou.size)
    s[:, centre] = np.minimum(s[:, centre], search.best[idx])  # the centre is known; ties keep it
    pick = s.argmin(axis=1)
    rows = np.arange(idx.size)
    moved = s[rows, pick] < search.best[idx]
    new_u, new_v = su[rows, pick], sv[rows, pick]
    # the best point on the stencil's edge (not clipped by a bound): the minimum may lie
    # further out, keep the step; else halve it (the next stencil spans this one's neighbours)
    edge = moved & (
        ((np.abs(ou[pick]) == 1) & (new_u > 0) & (new_u < 1))
        | ((np.abs(ov[pick]) == 1) & (periodic | ((new_v > 0) & (new_v < 1))))
    )
    search.best[idx] = np.where(moved, s[rows, pick], search.best[idx])
    search.u[idx] = np.where(moved, new_u, search.u[idx])
    search.v[idx] = np.where(moved, new_v, search.v[idx])
    search.du[idx] = np.where(edge, search.du[idx], search.du[idx] / 2)
    search.dv[idx] = np.where(edge, search.dv[idx], search.dv[idx] / 2)


def _tip_dataset(
    domain: _TipDomain, u: np.ndarray, v: np.ndarray, values: dict[str, np.ndarray], found: np.ndarray
) -> xr.Dataset:
    """r, phi and the values at the optimum (u, v) of every over-point, NaN where none was ``found``."""
    r_opt = domain.r_low + u * (domain.r_high - domain.r_low)
    phi_opt = domain.phi_low + v * domain.phi_width
    if domain.periodic:
        phi_opt = np.mod(phi_opt, domain.period)
    out = xr.Dataset(coords={name: values_ for name, values_ in domain.over.items()})

    def put(name: str, flat: np.ndarray) -> None:
        array = np.where(found, np.asarray(flat, dtype=float), np.nan).reshape(domain.shape)
        out[name] = xr.DataArray(array, dims=domain.dims)

    put("r", r_opt)
    put("phi", phi_opt)
    for name, flat in values.items():
        put(name, flat)
    return out


def _warn_about_tip(out: xr.Dataset, found: np.ndarray, checked: dict, cutoff: int) -> None:
    """Warn (at optimize_tip's caller) of points without a feasible optimum and of truncation."""
    if not found.all():
        warnings.warn(
            f"optimize_tip: no tip position within the bounds satisfies the constraints {checked} at "
            f"{int((~found).sum())} of {found.size} point(s): NaN there",
            RuntimeWarning,
            stacklevel=3,
        )
        for variable in out.data_vars.values():
            variable.attrs["comment"] = "NaN where no tip position satisfies the constraints"
    if "truncation_error" in out:
        warn_if_truncated(out["truncation_error"].fillna(0.0), cutoff, "pyspb.optimize_tip", stacklevel=3)


def _bounds(bounds: Mapping[str, tuple[float, float]] | None, name: str, default: tuple[float, float]):
    if bounds:
        unknown = sorted(set(bounds) - {"r", "phi"})
        if unknown:
            raise ValueError(f"bounds take r and phi only, got {', '.join(unknown)}")
    low, high = (bounds or {}).get(name, default)
    low, high = float(low), float(high)
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"bounds of {name} must be finite with low < high, got ({low}, {high})")
    return low, high


def _check_constraints(constraints, objective: str) -> dict[str, tuple[float | None, float | None]]:
    checked: dict[str, tuple[float | None, float | None]] = {}
    known = (
        ("C20_re", "C20_im", "P10_cw", "P01_ccw", "g2_cw_weak", "J_abs")
        if objective == "g2_cw_weak"
        else (*OBSERVABLES, "truncation_error", "R", "g2_cw_ideal", "J_abs")
    )
    for name, limits in (constraints or {}).items():
        if name not in known:
            raise ValueError(f"constraint on {name!r}: constrain one of {', '.join(known)}")
        try:
            low, high = limits
        except (TypeError, ValueError):
            raise ValueError(f"constraint on {name} must be (low, high), either None, got {limits!r}") from None
        if low is None and high is None:
            raise ValueError(f"constraint on {name} has neither a low nor a high limit")
        checked[name] = (None if low is None else float(low), None if high is None else float(high))
    return checked


def _local_minima(score: np.ndarray, periodic: bool, count: int) -> list[tuple[int, int]]:
    """Up to ``count`` grid points (i, j) that are local minima (8 neighbours), best first."""
    padded = np.pad(score, 1, mode="constant", constant_values=np.inf)
    if periodic:
        padded[1:-1, 0] = score[:, -1]
        padded[1:-1, -1] = score[:, 0]
    centre = padded[1:-1, 1:-1]
    is_min = np.isfinite(centre)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                is_min &= centre <= padded[1 + di : padded.shape[0] - 1 + di, 1 + dj : padded.shape[1] - 1 + dj]
    flat = np.flatnonzero(is_min)
    if flat.size == 0:  # no feasible point: keep the (infinite) best so that the result is NaN
        flat = np.array([int(np.argmin(score))])
    order = flat[np.argsort(score.ravel()[flat], kind="stable")][:count]
    return [tuple(int(k) for k in np.unravel_index(i, score.shape)) for i in order]  # type: ignore[misc]


# --------------------------------------------------------------------------- tolerance


def tolerance(
    device: Device | None = None,
    spread: Mapping[str, float] | None = None,
    samples: int = 256,
    cutoff: int = 5,
    seed: int | None = None,
    distribution: str = "normal",
    *,
    backend: str = "native",
    chunks: int | None = None,
    quantiles: Sequence[float] = (0.05, 0.5, 0.95),
) -> xr.Dataset:
    """Monte Carlo over fabrication and alignment errors of any ``Device`` fields.

    Parameters
    ----------
    device : Device, optional
        The nominal device (default: the paper's, tip at r = 0.35, phi = 0.27 um).
    spread : mapping
        Field -> spread in the field's units (default ``{"r": 0.005, "phi": 0.003}`` um, 5 and
        3 nm): the standard deviation for ``distribution="normal"``, the half-width for
        ``"uniform"``.
    samples : int
        Number of sampled devices.
    cutoff : int
        Largest photon number kept per mode.
    seed : int, optional
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same samples
        (fields are drawn in sorted name order, so the order of ``spread`` does not matter).
    distribution : {"normal", "uniform"}
    backend : str
        As :func:`pyspb.solve`.
    chunks : int, optional
        Samples per dask block: the solves run block by block with dask (in parallel, or on
        a ``dask.distributed`` cluster) instead of in this process.
    quantiles : sequence of float
        Quantiles of the summary (see :func:`summarize`).

    Returns
    -------
    xarray.Dataset
        Over dim ``sample``: the sampled fields, ``N_cw, ..., g4_ccw, truncation_error``,
        ``g2_cw_ideal`` (the ideal cavity, J0 = 0 and no tip, with the sample's chi, xi,
        Delta) and ``R`` (Eq. 8).  Attrs: the nominal value, spread and distribution of each
        field, the seed, and the summary quantiles of ``R``, ``g2_cw`` and ``N_cw``
        (``R_quantiles`` at ``quantiles``, ...); :func:`summarize` gives them as a Dataset.
        Sampled values that are not valid device parameters (e.g. r < 0) raise a
        ValueError: choose a smaller spread or ``"uniform"``.
    """
    device = Device() if device is None else device
    spread = _check_spread(spread, samples, distribution)
    nominal = {name: field_value(device, name) for name in spread}
    fields = _sample_fields(nominal, spread, samples, seed, distribution, chunks)
    out, ideal = _solve_samples(device, fields, cutoff, backend)
    mc = out.drop_vars([c for c in out.coords if c not in spread])
    mc.attrs = {}
    mc["g2_cw_ideal"] = ideal["g2_cw"].drop_vars([c for c in ideal.coords], errors="ignore").drop_attrs()
    mc["R"] = efficiency(mc["g2_cw"], mc["g2_cw_ideal"])
    mc = mc.assign_coords(sample=np.arange(samples))
    if chunks is not None:
        mc = mc.compute()
    mc.attrs.update({k: v for k, v in out.attrs.items() if k != "created"})
    mc.attrs.update({"distribution": distribution, "samples": int(samples), "seed": "none" if seed is None else seed})
    for name in spread:
        mc.attrs[f"{name}_nominal"] = nominal[name]
        mc.attrs[f"{name}_spread"] = float(spread[name])
    warn_if_truncated(mc["truncation_error"], cutoff, "pyspb.tolerance")
    summary = summarize(mc, quantiles)
    mc.attrs["quantiles"] = [float(q) for q in quantiles]
    for name in ("R", "g2_cw", "N_cw"):
        mc.attrs[f"{name}_quantiles"] = [float(x) for x in summary[name].values]
    return annotate(mc)


def _check_spread(spread: Mapping[str, float] | None, samples: int, distribution: str) -> dict[str, float]:
    """The spread of each sampled field (default r and phi), checked with tolerance's other arguments."""
    spread = {"r": 0.005, "phi": 0.003} if spread is None else dict(spread)
    if not spread:
        raise ValueError("spread names no field: give e.g. {'r': 0.005}")
    for name, width in spread.items():
        if name not in FITTABLE_FIELDS:
            raise ValueError(f"spread: {name!r} is not a numeric pyspb.Device field ({', '.join(FITTABLE_FIELDS)})")
        if not (np.isfinite(width) and width >= 0):
            raise ValueError(f"spread of {name} must be finite and >= 0, got {width}")
    if distribution not in ("normal", "uniform"):
        raise ValueError(f"distribution must be 'normal' or 'uniform', got {distribution!r}")
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    return spread


def _sample_fields(
    nominal: dict[str, float],
    spread: dict[str, float],
    samples: int,
    seed: int | None,
    distribution: str,
    chunks: int | None,
) -> dict[str, xr.DataArray]:
    """The sampled fields over dim ``sample`` (drawn in sorted name order), dask-chunked if ``chunks``."""
    rng = np.random.default_rng(seed)
    drawn: dict[str, np.ndarray] = {}
    for name in sorted(spread):
        noise = rng.standard_normal(samples) if distribution == "normal" else rng.uniform(-1.0, 1.0, samples)
        drawn[name] = nominal[name] + spread[name] * noise
    fields = {name: xr.DataArray(drawn[name], dims="sample") for name in spread}
    if chunks is not None:
        fields = {name: array.chunk({"sample": int(chunks)}) for name, array in fields.items()}
    return fields


def _solve_samples(
    device: Device, fields: dict[str, xr.DataArray], cutoff: int, backend: str
) -> tuple[xr.Dataset, xr.Dataset]:
    """The steady states of the sampled devices and of their ideal cavities (J0 = 0, no tip)."""
    try:
        rates = device.rates(**fields)
    except ValueError as error:
        raise ValueError(f"a sampled device is not valid ({error}): choose a smaller spread or 'uniform'") from None
    cavity = {name: array for name, array in fields.items() if name not in TIP_FIELDS}
    with warnings.catch_warnings():  # warned once, by tolerance, naming pyspb.tolerance
        warnings.simplefilter("ignore", TruncationWarning)
        out = solve(rates[list(MODEL_INPUTS)], cutoff, backend, progress=False)
        ideal = solve(device.rates(**cavity, J0=0.0, tip=False)[list(MODEL_INPUTS)], cutoff, backend, progress=False)
    return out, ideal


def summarize(mc: xr.Dataset, quantiles: Sequence[float] = (0.05, 0.5, 0.95)) -> xr.Dataset:
    """Quantiles over ``sample`` of every variable of a :func:`tolerance` result (dim ``quantile``).

    NaN samples (an undefined g^(n)) are skipped.
    """
    numeric = [name for name in mc.data_vars if "sample" in mc[name].dims]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)  # e.g. g4_ccw: NaN (unresolved) throughout
        summary = mc[numeric].quantile(list(quantiles), dim="sample", skipna=True)
    for name in numeric:
        summary[name].attrs = dict(mc[name].attrs)
    summary["quantile"].attrs = {"long_name": "quantile over the Monte Carlo samples", "units": "1"}
    return summary


# --------------------------------------------------------------------------- command line


def parse_spread(text: str) -> tuple[str, float]:
    """``"r=0.005"`` -> ``("r", 0.005)``."""
    name, value = parse_assignment(text)
    try:
        return name, float(value)
    except ValueError:
        raise ValueError(f"--spread {text}: expected NAME=WIDTH, e.g. r=0.005") from None


def tolerance_file(
    out: str,
    spread: Sequence[str],
    *,
    device: Sequence[str] = (),
    samples: int = 256,
    cutoff: int = 5,
    seed: int | None = None,
    distribution: str = "normal",
    backend: str = "native",
) -> xr.Dataset:
    """``pyspb tolerance``: run :func:`tolerance` and write the result (the target checked first)."""
    from pathlib import Path

    from .io import save

    widths = dict(parse_spread(text) for text in spread) if spread else None
    target = Path(out)
    if not target.parent.exists():
        raise ValueError(f"cannot write {out}: the directory {target.parent} does not exist")
    for name in widths or {}:
        if name not in DEVICE_FIELDS:
            raise ValueError(f"--spread {name}: not a pyspb.Device field ({', '.join(DEVICE_FIELDS)})")
    mc = tolerance(
        device_from_assignments(device),
        widths,
        samples,
        cutoff,
        seed,
        distribution,
        backend=backend,
    )
    save(mc, target)
    return mc
