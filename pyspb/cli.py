"""Command line: ``pyspb table``, ``pyspb reproduce``, ``pyspb sweep``, ``pyspb fit``, ``pyspb tolerance``.

* ``pyspb table`` prints the paper's headline numbers, computed afresh
  (:func:`pyspb.paper.paper_table`).
* ``pyspb reproduce fig1|fig2|fig3|fig4|all --out DIR`` writes one NetCDF file and one PNG
  per panel of the paper's figures (:func:`pyspb.figures.reproduce`).
* ``pyspb sweep CONFIG.toml --out FILE.nc`` solves a user's grid described in a TOML file
  (:func:`pyspb.sweep.run_sweep`).
* ``pyspb fit DATA.nc --param Q=1e9:1e11 --out fit.nc`` and ``pyspb tolerance --spread r=0.005
  --out mc.nc`` run :func:`pyspb.fitting.fit_file` and :func:`pyspb.design.tolerance_file`.

This module parses arguments and dispatches; the work is done by the library.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from .backends import BACKENDS

__all__ = ["main"]

DESCRIPTION = (
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
)


# --------------------------------------------------------------------------- argument types


def _cutoff(text: str) -> int:
    """``--cutoff``: an integer >= 1."""
    try:
        cutoff = int(text)
    except ValueError:
        cutoff = 0
    if cutoff < 1:
        raise argparse.ArgumentTypeError(
            f"must be an integer >= 1 (the largest photon number kept per mode), got {text!r}; e.g. --cutoff 6"
        )
    return cutoff


def _directory(text: str) -> Path:
    """``--out`` of reproduce: a directory, existing or to be created."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text!r} is a file, not a directory; reproduce writes <panel>.nc and <panel>.png into a "
            "directory: give a new or existing directory"
        )
    return path


def _output_file(text: str) -> Path:
    """``--out`` of sweep: a file to write (replaced if it exists), not a directory."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text!r} is a directory; give the NetCDF file to write, e.g. {text}/sweep.nc"
        )
    return path


# --------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (what was wrong, where to read more)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_table(sub) -> None:
    table = sub.add_parser("table", help="print N, g2, g3, g4 and R for the paper's three cavities")
    table.add_argument("--cutoff", type=_cutoff, default=8, help="largest photon number per mode (default 8)")
    table.add_argument("--backend", default="native", choices=BACKENDS)


def _add_reproduce(sub) -> None:
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
    reproduce.add_argument("--out", required=True, type=_directory, help="output directory (created if missing)")
    reproduce.add_argument("--quick", action="store_true", help="coarse grids and cutoff 5: seconds instead of minutes")
    reproduce.add_argument(
        "--cutoff", type=_cutoff, default=None, help="largest photon number per mode (default 6, or 5 with --quick)"
    )
    reproduce.add_argument("--backend", default="native", choices=BACKENDS)


def _add_sweep(sub) -> None:
    from .sweep import SWEEP_EXAMPLE

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
    sweep.add_argument("--out", required=True, type=_output_file, help="NetCDF file to write")
    sweep.add_argument(
        "--cutoff", type=_cutoff, default=None, help="largest photon number per mode (overrides [solve])"
    )
    sweep.add_argument("--backend", default=None, choices=BACKENDS, help="overrides [solve] (default native)")
    sweep.add_argument(
        "--checkpoint", type=Path, default=None, help="directory recording finished chunks; rerun to resume"
    )


def _add_fit(sub) -> None:
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
    fit.add_argument("--out", required=True, type=_output_file, help="NetCDF file to write")
    fit.add_argument("--cutoff", type=_cutoff, default=5)
    fit.add_argument("--backend", default="native", choices=BACKENDS)


def _add_tolerance(sub) -> None:
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
    tolerance.add_argument("--out", required=True, type=_output_file, help="NetCDF file to write")
    tolerance.add_argument("--cutoff", type=_cutoff, default=5)
    tolerance.add_argument("--backend", default="native", choices=BACKENDS)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pyspb", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{table,reproduce,sweep,fit,tolerance}")
    _add_table(sub)
    _add_reproduce(sub)
    _add_sweep(sub)
    _add_fit(sub)
    _add_tolerance(sub)
    return parser


# --------------------------------------------------------------------------- verbs


def _table(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .paper import format_table, paper_table

    print(format_table(paper_table(args.cutoff, args.backend)))
    return 0


def _reproduce(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from .figures import reproduce
    from .paper import panels

    try:
        selected = panels(args.figures)
    except ValueError as error:
        parser.error(str(error))
    written = reproduce(selected, args.out, quick=args.quick, cutoff=args.cutoff, backend=args.backend, progress=True)
    for nc, png in written.values():
        print(nc)
        print(png)
    return 0


def _sweep(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .sweep import SweepConfigError, run_sweep

    try:
        path = run_sweep(args.config, args.out, cutoff=args.cutoff, backend=args.backend, checkpoint=args.checkpoint)
    except SweepConfigError as error:
        print(f"pyspb sweep: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:  # a checkpointed solve says what it saved
        print(
            f"pyspb sweep: {str(error) or 'interrupted; nothing saved (use --checkpoint DIR to resume)'}",
            file=sys.stderr,
        )
        return 130
    print(path)
    return 0


def _library_call(verb: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, int]:
    """``(function(*args, **kwargs), 0)``, or ``(None, 2)`` after a one-line error where the
    library refuses the input (ValueError, TypeError) or a file (OSError).
    """
    try:
        return function(*args, **kwargs), 0
    except (ValueError, TypeError, OSError) as error:
        print(f"pyspb {verb}: error: {error}", file=sys.stderr)
        return None, 2


def _fit(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .fitting import fit_file

    result, status = _library_call(
        "fit",
        fit_file,
        args.data,
        args.out,
        args.param,
        device=args.device,
        start=args.start,
        variables=args.variables,
        cutoff=args.cutoff,
        backend=args.backend,
    )
    if status:
        return status
    for name in result["param"].values:
        print(f"{name} = {float(result[name]):.6g} +- {float(result[f'{name}_stderr']):.2g}")
    print(f"chi2_reduced = {float(result['chi2_reduced']):.4g}")
    print(args.out)
    return 0


def _tolerance(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .design import tolerance_file

    result, status = _library_call(
        "tolerance",
        tolerance_file,
        args.out,
        args.spread,
        device=args.device,
        samples=args.samples,
        cutoff=args.cutoff,
        seed=args.seed,
        distribution=args.distribution,
        backend=args.backend,
    )
    if status:
        return status
    pairs = zip(result.attrs["quantiles"], result.attrs["R_quantiles"], strict=True)
    print("R quantiles " + ", ".join(f"{q:g}: {r:.4%}" for q, r in pairs))
    print(args.out)
    return 0


#: verb -> what runs it
VERBS = {"table": _table, "reproduce": _reproduce, "sweep": _sweep, "fit": _fit, "tolerance": _tolerance}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 on success, 2 for bad input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    return VERBS[args.command](args, parser)


if __name__ == "__main__":
    sys.exit(main())
