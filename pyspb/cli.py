"""Command line: ``pyspb table``, ``pyspb reproduce`` and ``pyspb sweep``.

* ``pyspb table`` prints the paper's headline numbers, computed afresh.
* ``pyspb reproduce fig1|fig2|fig3|fig4|all --out DIR`` writes one NetCDF file and one PNG
  per panel of the paper's figures (:func:`pyspb.paper.reproduce`).
* ``pyspb sweep CONFIG.toml --out FILE.nc`` solves a user's grid described in a TOML file
  (:func:`run_sweep`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from .grid import MODEL_INPUTS

__all__ = ["main", "paper_table", "SweepConfigError", "load_sweep_config", "sweep_inputs", "run_sweep"]

#: rate-level keys of a sweep's [rates] table (docs/model.md); J_im defaults to 0
RATE_KEYS = MODEL_INPUTS
#: keys of a sweep's [solve] table
SOLVE_KEYS = ("cutoff", "backend", "P", "tolerance", "chunk_size")

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


# --------------------------------------------------------------------------- table


def paper_table(cutoff: int = 8, backend: str = "native") -> list[dict]:
    """N, g2, g3, g4 of the cw mode and R for the ideal cavity, no tip and the tip at (0.35, 0.27) um."""
    from . import Device, solve
    from .analytic import efficiency

    device = Device()
    cases = {
        "ideal cavity (J0 = 0, no tip)": device.rates(J0=0.0, tip=False),
        "cavity without tip (J0 = 1.8 gamma1)": device.rates(tip=False),
        "cavity with tip at r = 0.35, phi = 0.27 um": device.rates(),
    }
    rows = []
    for label, inputs in cases.items():
        out = solve(inputs, cutoff=cutoff, backend=backend)
        rows.append(
            {
                "case": label,
                **{k: float(out[k]) for k in ("N_cw", "g2_cw", "g3_cw", "g4_cw")},
                "backend": out.attrs["backend"],
            }
        )
    g2_ideal = rows[0]["g2_cw"]
    for row in rows:
        row["R"] = float(efficiency(row["g2_cw"], g2_ideal))
    return rows


def _print_table(rows: list[dict]) -> None:
    header = f"{'case':44s} {'N_cw':>10s} {'g2_cw':>10s} {'g3_cw':>10s} {'g4_cw':>10s} {'R':>8s}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['case']:44s} {row['N_cw']:10.4g} {row['g2_cw']:10.4g} {row['g3_cw']:10.3g} "
            f"{row['g4_cw']:10.3g} {100 * row['R']:7.1f}%"
        )
    print(
        f"(backend: {rows[0]['backend']}; paper: g2 ~ 0.009 ideal, with tip g2 ~ 0.012, "
        "g3 ~ 3.6e-5, g4 ~ 4.8e-8, R ~ 99.7 %, without tip R = 0)"
    )


# --------------------------------------------------------------------------- sweep


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


def load_sweep_config(path: str | os.PathLike) -> dict:
    """Read and check a sweep configuration (see ``pyspb sweep --help``).

    Returns
    -------
    dict
        ``{"level": "device" or "rates", "grid": {name: value}, "solve": {...}, "text": str}``.

    Raises
    ------
    SweepConfigError
        If the file is missing or not TOML, has neither or both of ``[device]`` and
        ``[rates]``, unknown tables or keys, or values that are not numbers, lists of numbers
        or ``{start, stop, num}`` tables.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SweepConfigError(f"cannot read the sweep configuration {str(path)!r}: {error.strerror}") from error
    tomllib = _toml()
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SweepConfigError(f"{path}: not valid TOML: {error}") from error
    unknown = sorted(set(config) - {"device", "rates", "solve"})
    if unknown:
        raise SweepConfigError(
            f"{path}: unknown table(s) or key(s) {', '.join(unknown)}; use [device] or [rates], and [solve]"
        )
    levels = [level for level in ("device", "rates") if level in config]
    if len(levels) != 1:
        raise SweepConfigError(
            f"{path}: give exactly one of a [device] table (device parameters) or a [rates] table "
            f"(Delta, J_re, J_im, chi, xi, gamma), got {len(levels)}"
        )
    level = levels[0]
    grid = config[level]
    if not isinstance(grid, dict) or not grid:
        raise SweepConfigError(f"{path}: [{level}] must be a table with at least one key")
    if level == "rates":
        bad = sorted(set(grid) - set(RATE_KEYS))
        if bad:
            raise SweepConfigError(
                f"{path}: unknown rate(s) {', '.join(bad)} in [rates]; known: {', '.join(RATE_KEYS)}"
            )
        missing = [name for name in RATE_KEYS if name != "J_im" and name not in grid]
        if missing:
            raise SweepConfigError(f"{path}: [rates] lacks {', '.join(missing)} (J_im is optional, default 0)")
    values = {name: _grid_value(path, level, name, value) for name, value in grid.items()}
    if level == "rates":
        values.setdefault("J_im", 0.0)
    solve_options = config.get("solve", {})
    if not isinstance(solve_options, dict):
        raise SweepConfigError(f"{path}: [solve] must be a table")
    bad = sorted(set(solve_options) - set(SOLVE_KEYS))
    if bad:
        raise SweepConfigError(f"{path}: unknown key(s) {', '.join(bad)} in [solve]; known: {', '.join(SOLVE_KEYS)}")
    return {"level": level, "grid": values, "solve": dict(solve_options), "text": text}


def _grid_value(path: Path, level: str, name: str, value):
    """A scalar, or a 1-d array for a list or a {start, stop, num} table."""
    where = f"{path}: [{level}] {name}"
    if level == "device" and name == "tip":
        if not isinstance(value, bool):
            raise SweepConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool):
        raise SweepConfigError(f"{where} must be a number, a list of numbers or {{start, stop, num}}, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list):
        if not value or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise SweepConfigError(f"{where}: a list must hold one or more numbers, got {value!r}")
        return np.asarray(value, dtype=float)
    if isinstance(value, dict):
        if set(value) != {"start", "stop", "num"}:
            raise SweepConfigError(f"{where}: a table must have exactly the keys start, stop, num, got {sorted(value)}")
        start, stop, num = value["start"], value["stop"], value["num"]
        for key, item in (("start", start), ("stop", stop)):
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise SweepConfigError(f"{where}: {key} must be a number, got {item!r}")
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise SweepConfigError(f"{where}: num must be an integer >= 1, got {num!r}")
        return np.linspace(float(start), float(stop), num)
    raise SweepConfigError(f"{where} must be a number, a list of numbers or {{start, stop, num}}, got {value!r}")


def sweep_inputs(config: dict):
    """The model inputs of a checked configuration (:func:`load_sweep_config`).

    Device level: ``pyspb.Device().rates(**grid)``; rate level: ``pyspb.rate_grid(**grid)``.
    Every list or ``{start, stop, num}`` value is a dim of that name.

    Raises
    ------
    SweepConfigError
        If the device or the rates refuse the values (the message says which).
    """
    from . import Device, rate_grid

    try:
        if config["level"] == "device":
            return Device().rates(**config["grid"])
        return rate_grid(**config["grid"])
    except (TypeError, ValueError) as error:
        raise SweepConfigError(f"[{config['level']}]: {error}") from error


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
    """
    from . import save, solve

    config = load_sweep_config(config_path)
    inputs = sweep_inputs(config)
    options = dict(config["solve"])
    if cutoff is not None:
        options["cutoff"] = cutoff
    if backend is not None:
        options["backend"] = backend
    options.setdefault("cutoff", 6)
    options.setdefault("backend", "native")
    if checkpoint is not None:
        options["checkpoint"] = checkpoint
    try:
        result = solve(inputs, options.pop("cutoff"), options.pop("backend"), progress=progress, **options)
    except (TypeError, ValueError) as error:
        raise SweepConfigError(f"solve refused the sweep: {error}") from error
    extra = {name: inputs[name] for name in inputs.data_vars if name not in result}
    result = result.assign(extra)
    result.attrs.update({k: v for k, v in inputs.attrs.items() if k not in result.attrs})
    result.attrs["sweep_level"] = config["level"]
    result.attrs["sweep_config"] = config["text"]
    return save(result, out)


# --------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyspb",
        description=(
            "Single-photon blockade in a Kerr resonator with backscattering and a nanotip.\n\n"
            "verbs:\n"
            "  table      print N, g2, g3, g4 and R for the paper's three cavities\n"
            "  reproduce  compute the paper's figures: one NetCDF file and one PNG per panel\n"
            "             (pyspb reproduce fig1 fig4 --out DIR [--quick])\n"
            "  sweep      solve your own grid from a TOML file into one NetCDF file\n"
            "             (pyspb sweep CONFIG.toml --out FILE.nc; see pyspb sweep --help)\n"
            "  fit        fit Device parameters to measured data\n"
            "             (pyspb fit DATA.nc --param Q=1e9:1e11 --out fit.nc)\n"
            "  tolerance  Monte Carlo of fabrication errors (pyspb tolerance --spread r=0.005 --out mc.nc)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{table,reproduce,sweep,fit,tolerance}")
    backends = ["native", "julia", "auto"]

    table = sub.add_parser("table", help="print N, g2, g3, g4 and R for the paper's three cavities")
    table.add_argument("--cutoff", type=int, default=8, help="largest photon number per mode (default 8)")
    table.add_argument("--backend", default="native", choices=backends)

    reproduce = sub.add_parser(
        "reproduce",
        help="compute the paper's figures: one .nc and one .png per panel",
        description=(
            "Compute the panels of the paper's figures and write <panel>.nc (NetCDF, labelled, with "
            "units) and <panel>.png into --out.  FIGURE is fig1 (panels b, c), fig2 (a, b), fig3 "
            "(b, c, d), fig4 (a, b), all, or a single panel such as fig4a.  The full size (all panels) takes"
            " about 40 s on two cores; --quick takes seconds (coarse grids, cutoff 5)."
        ),
    )
    reproduce.add_argument(
        "figures", nargs="+", metavar="FIGURE", help="fig1, fig2, fig3, fig4, all or a panel (fig1b, ...)"
    )
    reproduce.add_argument("--out", required=True, type=Path, help="output directory (created if missing)")
    reproduce.add_argument("--quick", action="store_true", help="coarse grids and cutoff 5: seconds instead of minutes")
    reproduce.add_argument(
        "--cutoff", type=int, default=None, help="largest photon number per mode (default 6, or 5 with --quick)"
    )
    reproduce.add_argument("--backend", default="native", choices=backends)

    sweep = sub.add_parser(
        "sweep",
        help="solve a grid described in a TOML file and save it as NetCDF",
        description=(
            "Solve the grid of CONFIG.toml: a [device] table (device parameters, pyspb.Device fields) "
            "or a [rates] table (Delta, J_re, J_im, chi, xi, gamma); a list or a {start, stop, num} "
            "table makes a dimension, a number overrides a default.  An optional [solve] table sets "
            "cutoff, backend, P, tolerance, chunk_size."
        ),
        epilog=SWEEP_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("config", type=Path, metavar="CONFIG.toml")
    sweep.add_argument("--out", required=True, type=Path, help="NetCDF file to write")
    sweep.add_argument("--cutoff", type=int, default=None, help="largest photon number per mode (overrides [solve])")
    sweep.add_argument("--backend", default=None, choices=backends, help="overrides [solve] (default native)")
    sweep.add_argument("--checkpoint", type=Path, default=None, help="record finished chunks here; rerun to resume")

    # fit and tolerance (issue 14): parsing only; the work is in pyspb.fitting and pyspb.design
    fit = sub.add_parser(
        "fit",
        help="fit Device parameters to measured data (NetCDF) and write the fit",
        description="Least-squares fit of Device fields to DATA.nc (pyspb outputs over Device-field coords, "
        "optional <name>_sigma); see pyspb.fit.",
    )
    fit.add_argument("data", metavar="DATA.nc")
    fit.add_argument("--param", action="append", required=True, metavar="NAME=LOW:HIGH", help="a fitted field")
    fit.add_argument("--start", action="append", default=[], metavar="NAME=VALUE", help="start of a fitted field")
    fit.add_argument("--device", action="append", default=[], metavar="NAME=VALUE", help="a fixed Device field")
    fit.add_argument("--variables", nargs="+", default=None, help="data variables to fit (default: all)")
    fit.add_argument("--out", required=True, type=Path, help="NetCDF file to write")
    fit.add_argument("--cutoff", type=int, default=5)
    fit.add_argument("--backend", default="native", choices=backends)
    tolerance = sub.add_parser(
        "tolerance",
        help="Monte Carlo of fabrication errors: observables and R of sampled devices",
        description="Sample Device fields around the device (--spread NAME=WIDTH, default r=0.005 phi=0.003 um) "
        "and write observables and R per sample; see pyspb.tolerance.",
    )
    tolerance.add_argument("--spread", action="append", default=[], metavar="NAME=WIDTH")
    tolerance.add_argument("--device", action="append", default=[], metavar="NAME=VALUE", help="a nominal field")
    tolerance.add_argument("--samples", type=int, default=256)
    tolerance.add_argument("--seed", type=int, default=None)
    tolerance.add_argument("--distribution", default="normal", choices=["normal", "uniform"])
    tolerance.add_argument("--out", required=True, type=Path, help="NetCDF file to write")
    tolerance.add_argument("--cutoff", type=int, default=5)
    tolerance.add_argument("--backend", default="native", choices=backends)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 on success, 2 for bad input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "table":
        np.set_printoptions(precision=4)
        _print_table(paper_table(args.cutoff, args.backend))
        return 0
    if args.command == "reproduce":
        import matplotlib

        matplotlib.use("Agg")
        from .paper import panels, reproduce

        try:
            selected = panels(args.figures)
        except ValueError as error:
            parser.error(str(error))
        written = reproduce(
            selected, args.out, quick=args.quick, cutoff=args.cutoff, backend=args.backend, progress=True
        )
        for nc, png in written.values():
            print(nc)
            print(png)
        return 0
    if args.command in ("fit", "tolerance"):
        return _design_command(args)
    try:
        path = run_sweep(args.config, args.out, cutoff=args.cutoff, backend=args.backend, checkpoint=args.checkpoint)
    except SweepConfigError as error:
        print(f"pyspb sweep: error: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _design_command(args: argparse.Namespace) -> int:
    """Dispatch ``pyspb fit`` and ``pyspb tolerance``; bad input -> message and status 2."""
    from .design import tolerance_file
    from .fitting import fit_file

    try:
        if args.command == "fit":
            result = fit_file(
                args.data,
                args.out,
                args.param,
                device=args.device,
                start=args.start,
                variables=args.variables,
                cutoff=args.cutoff,
                backend=args.backend,
            )
            for name in result["param"].values:
                print(f"{name} = {float(result[name]):.6g} +- {float(result[f'{name}_stderr']):.2g}")
            print(f"chi2_reduced = {float(result['chi2_reduced']):.4g}")
        else:
            result = tolerance_file(
                args.out,
                args.spread,
                device=args.device,
                samples=args.samples,
                cutoff=args.cutoff,
                seed=args.seed,
                distribution=args.distribution,
                backend=args.backend,
            )
            quantiles = ", ".join(
                f"{q:g}: {r:.4%}" for q, r in zip(result.attrs["quantiles"], result.attrs["R_quantiles"], strict=True)
            )
            print(f"R quantiles {quantiles}")
    except (ValueError, TypeError, OSError) as error:
        print(f"pyspb {args.command}: error: {error}", file=sys.stderr)
        return 2
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
