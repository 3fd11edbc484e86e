"""Sweep configurations: a user's grid described in a TOML file, solved into one NetCDF file.

A configuration has exactly one grid table, ``[device]`` (fields of :class:`pyspb.Device`)
or ``[rates]`` (the model inputs of ``docs/model.md`` in one rate unit, ``J_im`` optional),
an optional ``[solve]`` table (keyword arguments of :func:`pyspb.solve`) and an optional
``[correlations]`` table: ``tau`` (delays, adds :func:`pyspb.g2_tau`'s g2_cw_tau, g2_ccw_tau,
g2_cross_tau) and/or ``omega`` (frequencies, adds :func:`pyspb.spectrum`'s S_cw, S_ccw), each
a list or a ``{start, stop, num}`` table.  In a grid
table a number overrides a default, a list of numbers or a ``{start, stop, num}`` table
(``numpy.linspace``) makes a dimension of that name.  :data:`SWEEP_EXAMPLE` shows both
levels; ``pyspb sweep CONFIG.toml --out FILE.nc`` runs :func:`run_sweep`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .backends import BACKENDS
from .grid import MODEL_INPUTS

__all__ = ["SWEEP_EXAMPLE", "SweepConfigError", "load_sweep_config", "run_sweep", "sweep_inputs"]

#: grid tables of a configuration: device parameters or rates
LEVELS = ("device", "rates")
#: rate-level keys of a sweep's [rates] table (docs/model.md); J_im defaults to 0
RATE_KEYS = MODEL_INPUTS
#: rate-level keys that may be left out, and their defaults
RATE_DEFAULTS = {"J_im": 0.0}
#: device-level keys that take true or false
DEVICE_FLAGS = ("tip",)
#: keys of a sweep's [solve] table
SOLVE_KEYS = ("cutoff", "backend", "P", "tolerance", "chunk_size")
#: keys of a sweep's [correlations] table: delays (g2_tau) and frequencies (spectrum)
CORRELATION_KEYS = ("tau", "omega")
#: what a grid value may be
GRID_VALUE = "a number, a list of numbers or {start, stop, num}"

SWEEP_EXAMPLE = """\
example CONFIG.toml (device level; keys are pyspb.Device fields):

  [device]
  r = {start = 0.2, stop = 0.6, num = 41}   # a table {start, stop, num}: linspace, a dim
  phi = [0.21, 0.27, 0.33]                  # a list: a dim with these values
  J0_over_gamma1 = 1.8                      # a number: overrides the default
  tip = true

  [solve]                                   # optional; --cutoff/--backend override it
  cutoff = 6
  backend = "native"
  P = false

  [correlations]                            # optional: g2(tau) and/or spectra on the same grid
  tau = {start = 0.0, stop = 30.0, num = 61}  # delays in 1e-6 s: g2_cw_tau, g2_ccw_tau, g2_cross_tau
  omega = {start = -2.0, stop = 2.0, num = 201}  # detunings in 1e6 s-1: S_cw, S_ccw

or rate level (rates in one unit, e.g. 1e6 s-1; J_im defaults to 0):

  [rates]
  Delta = {start = -1.0, stop = 1.0, num = 21}
  J_re = 0.4375
  chi = 1.583
  xi = 0.0616
  gamma = 0.243
"""


class SweepConfigError(ValueError):
    """A sweep configuration (TOML file or its values) that cannot be used; says why."""


# --------------------------------------------------------------------------- reading


def _toml():
    """The TOML reader: :mod:`tomllib` (Python >= 3.11) or the ``tomli`` package."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError as error:
            raise SweepConfigError("reading TOML on Python 3.10 needs the tomli package: pip install tomli") from error
    return tomllib


def _read_text(path: Path) -> str:
    """The file's text; TOML files are UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise SweepConfigError(f"cannot read the sweep configuration {str(path)!r}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        byte = error.object[error.start : error.start + 1]
        line = error.object[: error.start].count(b"\n") + 1
        raise SweepConfigError(
            f"{path}: not UTF-8 text (byte {byte!r} on line {line}); TOML files are UTF-8: save it as UTF-8"
        ) from error


def _parse(path: Path, text: str) -> dict[str, Any]:
    tomllib = _toml()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SweepConfigError(f"{path}: not valid TOML: {error}") from error


def _level(path: Path, config: dict[str, Any]) -> str:
    """The one grid table of ``config``: "device" or "rates"."""
    unknown = sorted(set(config) - {*LEVELS, "solve", "correlations"})
    if unknown:
        raise SweepConfigError(
            f"{path}: unknown table(s) or key(s) {', '.join(unknown)}; use [device] or [rates], [solve] "
            "and [correlations]"
        )
    levels = [level for level in LEVELS if level in config]
    if len(levels) != 1:
        raise SweepConfigError(
            f"{path}: give exactly one of a [device] table (device parameters) or a [rates] table "
            f"(Delta, J_re, J_im, chi, xi, gamma), got {len(levels)}"
        )
    return levels[0]


def load_sweep_config(path: str | os.PathLike) -> dict:
    """Read and check a sweep configuration (see ``pyspb sweep --help``).

    Returns
    -------
    dict
        ``{"level": "device" or "rates", "grid": {name: value}, "solve": {...}, "text": str}``.

    Raises
    ------
    SweepConfigError
        If the file is missing, not UTF-8 or not TOML, has neither or both of ``[device]``
        and ``[rates]``, unknown tables or keys, grid values that are not numbers, lists of
        numbers or ``{start, stop, num}`` tables, a ``tip`` or ``P`` that is not a TOML
        boolean, or ``[solve]`` values of the wrong type.
    """
    path = Path(path)
    text = _read_text(path)
    config = _parse(path, text)
    level = _level(path, config)
    grid = _grid(path, level, config[level])
    options = _solve_options(path, config.get("solve", {}))
    correlations = _correlation_options(path, config.get("correlations", {}))
    return {"level": level, "grid": grid, "solve": options, "correlations": correlations, "text": text}


def _correlation_options(path: Path, table: Any) -> dict[str, np.ndarray]:
    """The ``[correlations]`` table: ``tau`` and/or ``omega`` as 1-d arrays."""
    if not isinstance(table, dict):
        raise SweepConfigError(f"{path}: [correlations] must be a table with tau and/or omega")
    bad = sorted(set(table) - set(CORRELATION_KEYS))
    if bad:
        raise SweepConfigError(
            f"{path}: unknown key(s) {', '.join(bad)} in [correlations]; known: tau (delays in 1e-6 s, "
            "for g2_tau) and omega (frequencies in 1e6 s-1, for spectrum)"
        )
    values: dict[str, np.ndarray] = {}
    for key, value in table.items():
        where = f"{path}: [correlations] {key}"
        if not isinstance(value, (list, dict)):
            raise SweepConfigError(f"{where} must be a list of numbers or {{start, stop, num}}, got {value!r}")
        values[key] = np.atleast_1d(_grid_value(where, value))
    if "tau" in values:
        from .correlations import check_delays  # g2_tau's own check, before any work

        try:
            check_delays(values["tau"])
        except ValueError as error:
            raise SweepConfigError(f"{path}: [correlations] {error}") from error
    return values


# --------------------------------------------------------------------------- grid tables


def _grid(path: Path, level: str, table: Any) -> dict[str, Any]:
    """The checked values of the ``[device]`` or ``[rates]`` table."""
    if not isinstance(table, dict) or not table:
        raise SweepConfigError(f"{path}: [{level}] must be a table with at least one key")
    if level == "rates":
        _check_rate_keys(path, table)
    values = {}
    for name, value in table.items():
        where = f"{path}: [{level}] {name}"
        is_flag = level == "device" and name in DEVICE_FLAGS
        values[name] = _flag(where, value) if is_flag else _grid_value(where, value)
    return {**RATE_DEFAULTS, **values} if level == "rates" else values


def _check_rate_keys(path: Path, table: dict[str, Any]) -> None:
    bad = sorted(set(table) - set(RATE_KEYS))
    if bad:
        raise SweepConfigError(f"{path}: unknown rate(s) {', '.join(bad)} in [rates]; known: {', '.join(RATE_KEYS)}")
    missing = [name for name in RATE_KEYS if name not in RATE_DEFAULTS and name not in table]
    if missing:
        raise SweepConfigError(f"{path}: [rates] lacks {', '.join(missing)} (J_im is optional, default 0)")


def _is_number(value: Any) -> bool:
    """A TOML integer or float (TOML booleans are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    """A TOML integer >= 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _flag(where: str, value: Any) -> bool:
    """A TOML boolean, nothing else (the string "false" is not false)."""
    if not isinstance(value, bool):
        raise SweepConfigError(f"{where} must be true or false (a TOML boolean, unquoted), got {value!r}")
    return value


def _grid_value(where: str, value: Any) -> float | np.ndarray:
    """A float for a number, a 1-d array for a list or a {start, stop, num} table."""
    if isinstance(value, list):
        return _number_list(where, value)
    if isinstance(value, dict):
        return _linspace(where, value)
    if not _is_number(value):
        raise SweepConfigError(f"{where} must be {GRID_VALUE}, got {value!r}")
    return float(value)


def _number_list(where: str, value: list) -> np.ndarray:
    if not value or not all(_is_number(v) for v in value):
        raise SweepConfigError(f"{where}: a list must hold one or more numbers, got {value!r}")
    return np.asarray(value, dtype=float)


def _linspace(where: str, table: dict[str, Any]) -> np.ndarray:
    if set(table) != {"start", "stop", "num"}:
        raise SweepConfigError(f"{where}: a table must have exactly the keys start, stop, num, got {sorted(table)}")
    for key in ("start", "stop"):
        if not _is_number(table[key]):
            raise SweepConfigError(f"{where}: {key} must be a number, got {table[key]!r}")
    num = table["num"]
    if not _is_count(num):
        raise SweepConfigError(f"{where}: num must be an integer >= 1, got {num!r}")
    return np.linspace(float(table["start"]), float(table["stop"]), num)


# --------------------------------------------------------------------------- [solve]


def _solve_options(path: Path, table: Any) -> dict[str, Any]:
    """The ``[solve]`` table, each value checked for its type (the tolerance range: by the backend)."""
    if not isinstance(table, dict):
        raise SweepConfigError(f"{path}: [solve] must be a table")
    bad = sorted(set(table) - set(SOLVE_KEYS))
    if bad:
        raise SweepConfigError(f"{path}: unknown key(s) {', '.join(bad)} in [solve]; known: {', '.join(SOLVE_KEYS)}")
    for key, value in table.items():
        problem = _SOLVE_CHECKS[key](value)
        if problem:
            raise SweepConfigError(f"{path}: [solve] {key} must be {problem}, got {value!r}")
    return dict(table)


def _cutoff_problem(value: Any) -> str | None:
    if value == "auto" or _is_count(value):
        return None
    return 'an integer >= 1 (the largest photon number kept per mode) or "auto"'


def _backend_problem(value: Any) -> str | None:
    return None if value in BACKENDS else f"one of {', '.join(map(repr, BACKENDS))}"


def _P_problem(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false (a TOML boolean, unquoted)"


def _tolerance_problem(value: Any) -> str | None:
    return None if _is_number(value) else "a number (the relative accuracy asked of the native engine, e.g. 1e-12)"


def _chunk_size_problem(value: Any) -> str | None:
    return None if _is_count(value) else "an integer >= 1 (points per backend call)"


#: per [solve] key: what is wrong with a value (None if nothing)
_SOLVE_CHECKS = {
    "cutoff": _cutoff_problem,
    "backend": _backend_problem,
    "P": _P_problem,
    "tolerance": _tolerance_problem,
    "chunk_size": _chunk_size_problem,
}


# --------------------------------------------------------------------------- running


def sweep_inputs(config: dict) -> xr.Dataset:
    """The model inputs of a checked configuration (:func:`load_sweep_config`).

    Device level: ``pyspb.Device().rates(**grid)``; rate level: ``pyspb.rate_grid(**grid)``.
    Every list or ``{start, stop, num}`` value is a dim of that name.

    Raises
    ------
    SweepConfigError
        If the device or the rates refuse the values (the message says which).
    """
    from .device import Device
    from .grid import rate_grid

    try:
        if config["level"] == "device":
            return Device().rates(**config["grid"])
        return rate_grid(**config["grid"])
    except (TypeError, ValueError) as error:
        raise SweepConfigError(f"[{config['level']}]: {error}") from error


def _options(config: dict, cutoff: int | str | None, backend: str | None, checkpoint) -> dict[str, Any]:
    """Keyword arguments of :func:`pyspb.solve`: [solve], then the overrides, then defaults."""
    options: dict[str, Any] = {"cutoff": 6, "backend": "native", **config["solve"]}
    overrides = {"cutoff": cutoff, "backend": backend, "checkpoint": checkpoint}
    options.update({key: value for key, value in overrides.items() if value is not None})
    return options


def _solve_only(options: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in options.items() if key != "backend"}


def _check_correlations(table: dict, inputs: xr.Dataset, checkpoint) -> None:
    """Refuse, before any work, a [correlations] table the grid cannot serve; warn that it is not checkpointed."""
    if not table:
        return
    if bool((inputs["xi"] == 0).any()):
        raise SweepConfigError(
            "[correlations]: xi = 0 at some grid points: g2(tau) is 0/0 and nothing is emitted there; "
            "leave those points out of the grid or drop [correlations]"
        )
    if checkpoint is not None:
        warnings.warn(
            "pyspb sweep: --checkpoint records the steady states only; the g2(tau) and spectra of "
            "[correlations] are computed after them and are lost if the run stops before the file is written",
            UserWarning,
            stacklevel=3,
        )


def _add_correlations(
    result: xr.Dataset, inputs: xr.Dataset, table: dict[str, np.ndarray], backend: str, progress
) -> xr.Dataset:
    """``result`` with g2(tau) (``tau``) and spectra (``omega``) of the same grid and cutoff."""
    from .correlations import g2_tau
    from .spectrum import spectrum

    cutoff = int(result.attrs["cutoff"])
    try:
        if "tau" in table:
            extra = g2_tau(inputs, table["tau"], cutoff, backend, progress=progress)
            result = result.assign({name: extra[name] for name in extra.data_vars})
            result.attrs["method_tau"] = extra.attrs.get("method_tau", "")
        if "omega" in table:
            extra = spectrum(inputs, table["omega"], cutoff, backend, progress=progress)
            result = result.assign({name: extra[name] for name in extra.data_vars})
            result.attrs["method_spectrum"] = extra.attrs.get("method_spectrum", "")
    except (TypeError, ValueError) as error:
        raise SweepConfigError(f"[correlations]: {error}") from error
    return result


def run_sweep(
    config_path: str | os.PathLike,
    out: str | os.PathLike,
    cutoff: int | str | None = None,
    backend: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    progress: bool | None = True,
) -> Path:
    """Solve the grid of a TOML configuration and save it as NetCDF.

    Parameters
    ----------
    config_path : path-like
        The TOML file (see ``pyspb sweep --help``).
    out : path-like
        The NetCDF file to write (:func:`pyspb.save`).
    cutoff, backend : optional
        Override ``[solve]`` cutoff and backend (defaults 6 and "native").
    checkpoint : path-like, optional
        Passed to :func:`pyspb.solve` to record finished chunks and resume.
    progress : bool, optional
        Progress bar of :func:`pyspb.solve`.

    Returns
    -------
    pathlib.Path
        The file written: the observables of :func:`pyspb.solve`, the inputs (and the
        derived rates at device level), attrs ``sweep_level`` and ``sweep_config`` (the TOML).

    Raises
    ------
    SweepConfigError
        If the configuration cannot be used, ``out`` cannot be written (checked before any
        work) or :func:`pyspb.solve` refuses it.
    """
    from .io import check_writable, save
    from .solve import solve

    config = load_sweep_config(config_path)
    inputs = sweep_inputs(config)
    options = _options(config, cutoff, backend, checkpoint)
    try:
        check_writable(out)  # before any work
    except OSError as error:
        raise SweepConfigError(f"--out: {error.strerror}") from error
    _check_correlations(config["correlations"], inputs, checkpoint)  # before any work too
    try:
        result = solve(inputs, options.pop("cutoff"), options["backend"], progress=progress, **_solve_only(options))
    except (TypeError, ValueError) as error:
        raise SweepConfigError(f"solve refused the sweep: {error}") from error
    result = _add_correlations(result, inputs, config["correlations"], options["backend"], progress)
    extra = {name: inputs[name] for name in inputs.data_vars if name not in result}
    result = result.assign(extra)
    result.attrs.update({k: v for k, v in inputs.attrs.items() if k not in result.attrs})
    result.attrs["sweep_level"] = config["level"]
    result.attrs["sweep_config"] = config["text"]
    return save(result, out)
