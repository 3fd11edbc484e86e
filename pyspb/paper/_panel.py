"""The recipe every panel shares, and the registry the panels fill by declaring themselves.

A panel is written as a *body* ``body(run) -> (Dataset, caption)`` and declared with
:func:`panel`.  The decorator owns the steps every panel repeats: it checks the common
arguments (``quick``, ``cutoff``, ``device``), hands the body a :class:`Run` whose
:meth:`Run.solve` records every steady state solved (its truncation error and provenance),
warns when the truncation error exceeds :data:`TRUNCATION_WARNING`, sets the attrs and the
``long_name``/``units`` of every variable, and adds the panel to :data:`FIGURES` and
:data:`GROUPS` (its figure is its name without the last letter: ``fig4b`` -> ``fig4``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from .._version import __version__
from ..attributes import annotate
from ..device import Device
from ..grid import MODEL_INPUTS
from ..observables import TRUNCATION_WARNING, TruncationWarning
from ..solve import check_cutoff, solve

#: default cutoffs: full-size and quick runs
FULL_CUTOFF = 6
QUICK_CUTOFF = 5

#: notable positions of the paper (um): r of the J = 0 point; phi of J = 0 (0.27, 0.82) and
#: of |J| = gamma (0.21, 0.33)
PAPER_R = 0.35
PAPER_PHI = (0.21, 0.27, 0.33, 0.82)

#: panel name -> function returning its Dataset, in the paper's order (filled by :func:`panel`)
FIGURES: dict[str, Callable[..., xr.Dataset]] = {}

#: figure name -> its panels (filled by :func:`panel`; Fig. 1(a) and 3(a) are sketches, not data)
GROUPS: dict[str, tuple[str, ...]] = {}

#: panels that solve no steady state (they take neither ``cutoff``, ``backend`` nor ``progress``)
RATES_ONLY: set[str] = set()


@dataclass
class Run:
    """The settings of one panel's computation, and what its steady states reported.

    Attributes
    ----------
    name : str
        Panel name ("fig1b", ...).
    quick : bool
        Coarse grids (see :meth:`size`).
    cutoff : int
        Largest photon number per mode.
    backend : str
        Backend of :func:`pyspb.solve`.
    device : pyspb.Device
        The device (default: the paper's).
    progress : bool or None
        Progress bar of :func:`pyspb.solve`.
    provenance : dict
        Attrs of the first steady state solved (backend, method, versions).
    truncation_errors : list of float
        Largest truncation error of each steady state solved.
    """

    name: str
    quick: bool
    cutoff: int
    backend: str
    device: Device
    progress: bool | None
    provenance: dict[str, Any] = field(default_factory=dict)
    truncation_errors: list[float] = field(default_factory=list)

    def size(self, quick: int, full: int) -> int:
        """The grid size of a quick run or of a full-size one."""
        return quick if self.quick else full

    def solve(self, inputs: xr.Dataset, *, P: bool = False, progress: bool | None = None) -> xr.Dataset:
        """:func:`pyspb.solve` with this run's cutoff and backend; records truncation and provenance.

        ``progress`` overrides the run's (e.g. ``False`` for a single point).
        """
        with warnings.catch_warnings():  # the panel warns once, for all its solves (see finish)
            warnings.simplefilter("ignore", TruncationWarning)
            progress = self.progress if progress is None else progress
            out = solve(inputs, self.cutoff, self.backend, P=P, progress=progress)
        if not self.provenance:
            self.provenance = dict(out.attrs)
        self.truncation_errors.append(float(np.nanmax(np.asarray(out["truncation_error"], dtype=float))))
        return out

    def truncation(self) -> float | None:
        """The largest truncation error of all steady states solved so far (None if none)."""
        return max(self.truncation_errors) if self.truncation_errors else None

    def finish(self, ds: xr.Dataset, caption: str) -> xr.Dataset:
        """Warn about truncation; set attrs (panel, caption, cutoff, quick, provenance, device), labels."""
        truncation = self.truncation()
        if truncation is not None and truncation > TRUNCATION_WARNING:
            warnings.warn(
                f"{self.name}: truncation error {truncation:.1e} at cutoff {self.cutoff} (population of "
                "the top Fock level); raise cutoff",
                TruncationWarning,
                stacklevel=3,
            )
        attrs: dict[str, object] = {"pyspb_version": __version__}
        provenance = self.provenance or {"backend": "none (rates only)"}
        attrs.update({k: v for k, v in provenance.items() if k not in ("cutoff", "checkpoint")})
        attrs.update({"panel": self.name, "title": f"Tang et al., Fig. {self.name[3:]}", "caption": caption})
        if self.name not in RATES_ONLY:
            attrs["cutoff"] = int(self.cutoff)
        attrs["quick"] = int(bool(self.quick))
        if truncation is not None:
            attrs["truncation_error_max"] = truncation
        for name, value in vars(self.device).items():
            if value is not None:
                attrs[f"device_{name}"] = int(value) if isinstance(value, bool) else value
        ds.attrs = {**attrs, **ds.attrs}
        return annotate(ds)


def _settings(name: str, quick: bool, cutoff: int | None, device: Device | None) -> tuple[int, Device]:
    """Check the common arguments; return the cutoff and the device to use."""
    if not isinstance(quick, (bool, np.bool_)):
        raise TypeError(f"{name}: quick must be True or False, got {quick!r}")
    if cutoff is None:
        cutoff = QUICK_CUTOFF if quick else FULL_CUTOFF
    cutoff = check_cutoff(cutoff)
    if cutoff < 2:
        raise ValueError(f"{name}: cutoff must be >= 2 for g2(0) (2 photons per mode), got {cutoff}")
    if device is None:
        device = Device()
    elif not isinstance(device, Device):
        raise TypeError(f"{name}: device must be a pyspb.Device or None, got {type(device).__name__}")
    return cutoff, device


Body = Callable[[Run], tuple[xr.Dataset, str]]


def _register(name: str, function: Callable[..., xr.Dataset], body: Body) -> None:
    if name in FIGURES:
        raise ValueError(f"panel {name!r} is declared twice")
    function.__name__ = function.__qualname__ = name
    function.__doc__ = body.__doc__
    function.__module__ = body.__module__
    FIGURES[name] = function
    figure = name[:-1]
    GROUPS[figure] = (*GROUPS.get(figure, ()), name)


def panel(body: Body) -> Callable[..., xr.Dataset]:
    """Declare a panel that solves steady states: ``name(quick, cutoff, backend, *, device, progress)``.

    ``body(run)`` builds the panel's Dataset with ``run.solve`` and returns it with its caption.
    """
    name = body.__name__

    def solving_panel(
        quick: bool = False,
        cutoff: int | None = None,
        backend: str = "native",
        *,
        device: Device | None = None,
        progress: bool | None = None,
    ) -> xr.Dataset:
        checked_cutoff, checked_device = _settings(name, quick, cutoff, device)
        run = Run(name, bool(quick), checked_cutoff, backend, checked_device, progress)
        ds, caption = body(run)
        return run.finish(ds, caption)

    _register(name, solving_panel, body)
    return solving_panel


def rates_panel(body: Body) -> Callable[..., xr.Dataset]:
    """Declare a panel computed from :meth:`pyspb.Device.rates` alone: ``name(quick, *, device)``."""
    name = body.__name__

    def rates_only_panel(quick: bool = False, *, device: Device | None = None) -> xr.Dataset:
        cutoff, checked_device = _settings(name, quick, None, device)
        run = Run(name, bool(quick), cutoff, "none", checked_device, False)
        ds, caption = body(run)
        return run.finish(ds, caption)

    RATES_ONLY.add(name)
    _register(name, rates_only_panel, body)
    return rates_only_panel


def panels(figures: str | Iterable[str] = "all") -> list[str]:
    """Panel names from figure names ("fig1".."fig4"), panel names ("fig1b", ...) or "all".

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    """
    names = [figures] if isinstance(figures, str) else list(figures)
    if not names:
        raise ValueError("give at least one figure: fig1, fig2, fig3, fig4, all or a panel such as fig4a")
    out: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"figure names must be strings, got {name!r}")
        key = name.lower()
        if key == "all":
            selected = list(FIGURES)
        elif key in GROUPS:
            selected = list(GROUPS[key])
        elif key in FIGURES:
            selected = [key]
        else:
            known = ", ".join(["all", *GROUPS, *FIGURES])
            raise ValueError(f"unknown figure {name!r}; known: {known}")
        out.extend(panel for panel in selected if panel not in out)
    return out


def compute(
    name: str,
    quick: bool = False,
    cutoff: int | None = None,
    backend: str = "native",
    *,
    device: Device | None = None,
    progress: bool | None = None,
) -> xr.Dataset:
    """The Dataset of panel ``name``; ``cutoff``, ``backend``, ``progress`` go to panels that solve.

    ``cutoff`` is checked for every panel (a bad value fails whichever panel comes first).

    Raises
    ------
    ValueError
        For an unknown panel name or a bad cutoff.
    """
    if name not in FIGURES:
        raise ValueError(f"unknown panel {name!r}; known: {', '.join(FIGURES)}")
    _settings(name, quick, cutoff, device)
    if name in RATES_ONLY:
        return FIGURES[name](quick=quick, device=device)
    return FIGURES[name](quick=quick, cutoff=cutoff, backend=backend, device=device, progress=progress)


# --------------------------------------------------------------------------- grid helpers


def grid(start: float, stop: float, num: int, extra: Iterable[float] = ()) -> np.ndarray:
    """``linspace(start, stop, num)`` and the ``extra`` points inside [start, stop], sorted.

    Values are rounded to 12 decimals so that round numbers (0.27, 1.8) select exactly.
    """
    values = np.linspace(start, stop, num)
    inside = [x for x in extra if start <= x <= stop]
    return np.unique(np.round(np.concatenate([values, inside]), 12))


def bare(array: xr.DataArray) -> xr.DataArray:
    """A copy without attrs (so that :func:`annotate` sets the new variable's own)."""
    out = array.copy()
    out.attrs = {}
    return out


def model(rates: xr.Dataset) -> xr.Dataset:
    """The model inputs of :func:`pyspb.solve` from a :meth:`pyspb.Device.rates` Dataset."""
    return rates[list(MODEL_INPUTS)]
