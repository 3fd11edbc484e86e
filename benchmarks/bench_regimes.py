"""Time per point in every regime and call size: pyspb native vs QuTiP 5, same run, same points.

Run:  python benchmarks/bench_regimes.py [--cutoffs 7 10] [--points 32] [--qutip-points 2] [--rows calls] [--repeats 3]

Regimes (rates in units of gamma, J = |J| e^{i arg J}):

* paper drive: the paper's device, tip scanned along phi (the level sweeps' home ground);
* power scan to saturation: Delta = 0, chi = 2, J = 0.6 + 0.2i, xi = 0.3 ... 5;
* detuning scan through the two- and three-photon resonances Delta = -chi, -2 chi:
  chi = 2, xi = 0.8, J = 0.6 + 0.2i, Delta = -5 ... 1;
* strong backscattering: |J| = 1 ... 10 (arg J = 0.3), chi = 2, xi = 0.8, Delta = 0;
* Kerr bistable side: chi = 0.4, Delta = -2 (red detuned, N ~ |Delta| / 2 chi on the upper
  branch), J = 0.3, xi = 0.5 ... 1.5.

pyspb solves all points of a regime in one ``pyspb.solve`` call (both cores; the median of
``--repeats`` calls, 3 by default: single calls scattered by up to 1.6x on the shared machine),
after a warm-up call per cutoff (operators cached per cutoff, numba's compiled Krylov kernels loaded); QuTiP 5
``steadystate(method="direct")`` (CSR operators, H built per point as a user loop does) solves
``--qutip-points`` of them, spread over the scan, with one BLAS thread (pyspb uses both cores,
one BLAS thread per worker).  Accuracy: the largest relative difference
of N and g2 of both modes between the two on those points (QuTiP's own error included).  The
call-size rows time one ``pyspb.solve`` call on a single point (the paper's device) and on 12
diverse random points, against QuTiP on the same points (medians of repeated calls).
Points where the cutoff truncates (the power scan's top, the bistable side) are compared as
the same truncated model in both; the TruncationWarning is silenced here.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

import pyspb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference import qutip_model  # noqa: E402  (the tests' QuTiP model)

OBSERVED = ("N_cw", "N_ccw", "g2_cw", "g2_ccw")


def regime(name: str, n: int) -> xr.Dataset:
    """The inputs of one regime, n points along its scan (gamma = 1)."""
    one = np.ones(n)
    if name == "paper drive":
        dev = pyspb.Device().rates(phi=np.linspace(0.0, 1.1, n))
        _, values = pyspb.grid.flatten_inputs(dev[["Delta", "J_re", "J_im", "chi", "xi", "gamma"]])
        return xr.Dataset({key: ("point", value) for key, value in values.items()})
    if name == "power":
        values = dict(Delta=0 * one, J=(0.6 + 0.2j) * one, chi=2 * one, xi=np.geomspace(0.3, 5, n))
    elif name == "detuning":
        values = dict(Delta=np.linspace(-5, 1, n), J=(0.6 + 0.2j) * one, chi=2 * one, xi=0.8 * one)
    elif name == "strong |J|":
        values = dict(Delta=0 * one, J=np.geomspace(1, 10, n) * np.exp(0.3j), chi=2 * one, xi=0.8 * one)
    elif name == "Kerr bistable":
        values = dict(Delta=-2 * one, J=(0.3 + 0j) * one, chi=0.4 * one, xi=np.linspace(0.5, 1.5, n))
    else:
        raise ValueError(name)
    values["gamma"] = one
    return xr.Dataset({key: ("point", value) for key, value in values.items()})


def random_inputs(n: int, seed: int = 0) -> xr.Dataset:
    """n diverse points: Delta, |J|, chi, xi each spread over a decade (gamma = 1)."""
    rng = np.random.default_rng(seed)
    values = {
        "Delta": rng.choice([-1, 1], n) * 10 ** rng.uniform(-1, 0, n),
        "J": 10 ** rng.uniform(-1, 0, n) * np.exp(2j * np.pi * rng.uniform(size=n)),
        "chi": 10 ** rng.uniform(-0.5, 0.5, n),
        "xi": 10 ** rng.uniform(-1.3, -0.3, n),
        "gamma": np.ones(n),
    }
    return xr.Dataset({key: ("point", value) for key, value in values.items()})


def flat(inputs: xr.Dataset) -> list[np.ndarray]:
    return [v for v in pyspb.grid.flatten_inputs(inputs)[1].values()]


def qutip_point(Delta, J, chi, xi, gamma, cutoff) -> tuple[float, dict]:
    """Seconds for QuTiP's steady state of one point (model built per point), and N, g2."""
    import qutip
    from threadpoolctl import threadpool_limits

    # one BLAS thread: SuperLU's dense kernels with two threads on a busy 2-core machine took
    # 18-52 s instead of 0.7 s per point (cutoff 6), which would flatter pyspb
    with threadpool_limits(limits=1, user_api="blas"):
        start = time.perf_counter()
        H, c_ops, a1, a2 = qutip_model(Delta, J, chi, xi, gamma, cutoff)
        rho = qutip.steadystate(H, c_ops, method="direct")
        seconds = time.perf_counter() - start
    values = {}
    for mode, a in (("cw", a1), ("ccw", a2)):
        N = qutip.expect(a.dag() * a, rho)
        values[f"N_{mode}"] = N
        values[f"g2_{mode}"] = qutip.expect(a.dag() * a.dag() * a * a, rho) / N**2
    return seconds, values


def compare(
    inputs: xr.Dataset, cutoff: int, sample: np.ndarray, repeats: int = 1, ours_repeats: int | None = None
) -> tuple[float, float, float, dict]:
    """(pyspb s/pt, QuTiP s/pt, max rel. diff., paths) for one set of points.

    With ``repeats`` > 1 both are timed that many times and the medians taken (small calls,
    whose single timings scatter on a shared machine); ``ours_repeats`` (default ``repeats``)
    sets pyspb's alone.
    """
    pyspb.solve(regime("paper drive", 2), cutoff=cutoff)  # warm the per-cutoff caches
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pyspb.TruncationWarning)
        # and the Krylov solver's compiled kernels (numba's import and disk cache, ~0.5-1.5 s
        # once per process, the price of a first strong-drive point in a session)
        pyspb.solve(regime("power", 2), cutoff=cutoff)
    ours_runs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pyspb.TruncationWarning)  # the same truncated model for both
        for _ in range(repeats if ours_repeats is None else ours_repeats):
            start = time.perf_counter()
            out = pyspb.solve(inputs, cutoff=cutoff)
            ours_runs.append((time.perf_counter() - start) / inputs.sizes["point"])
    ours = float(np.median(ours_runs))
    points = flat(inputs)
    times, worst = [], 0.0
    for k in sample:
        runs = [qutip_point(*(p[k] for p in points), cutoff) for _ in range(repeats)]
        seconds, values = float(np.median([r[0] for r in runs])), runs[0][1]
        times.append(seconds)
        for name in OBSERVED:
            ref, mine = values[name], float(out[name].values[k])
            if abs(ref) > 1e-12 and np.isfinite(mine):
                worst = max(worst, abs(mine / ref - 1))
    return ours, float(np.mean(times)), worst, {k: v for k, v in out.attrs.items() if k.startswith("points_")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cutoffs", type=int, nargs="+", default=[7, 10])
    parser.add_argument("--points", type=int, default=32, help="points per regime for pyspb")
    parser.add_argument("--qutip-points", type=int, default=2, help="points per regime for QuTiP")
    parser.add_argument(
        "--rows",
        choices=("all", "regimes", "calls"),
        default="all",
        help="only the regime rows, or only the call-size rows",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="pyspb calls per regime row, median taken (QuTiP: one per point)"
    )
    args = parser.parse_args()

    print(
        f"{'regime':<16s} {'cutoff':>6s} {'pyspb ms/pt':>12s} {'QuTiP ms/pt':>12s} {'ratio':>8s} "
        f"{'max rel diff':>13s}  paths"
    )
    names = ("paper drive", "power", "detuning", "strong |J|", "Kerr bistable")
    for cutoff in args.cutoffs if args.rows != "calls" else ():
        for name in names:
            inputs = regime(name, args.points)
            sample = np.linspace(0, args.points - 1, args.qutip_points).round().astype(int)
            ours, theirs, worst, paths = compare(inputs, cutoff, sample, ours_repeats=args.repeats)
            print(
                f"{name:<16s} {cutoff:6d} {1e3 * ours:12.2f} {1e3 * theirs:12.1f} {theirs / ours:7.0f}x "
                f"{worst:13.1e}  {paths}",
                flush=True,
            )
    if args.rows == "regimes":
        return
    for cutoff in (5, 7):
        _, values = pyspb.grid.flatten_inputs(pyspb.Device().rates())  # the paper's device, tip at r*, phi*
        inputs = xr.Dataset({key: ("point", value) for key, value in values.items()})
        ours, theirs, worst, paths = compare(inputs, cutoff, np.array([0]), repeats=5)
        print(
            f"{'1 point call':<16s} {cutoff:6d} {1e3 * ours:12.2f} {1e3 * theirs:12.1f} {theirs / ours:7.0f}x "
            f"{worst:13.1e}  {paths}",
            flush=True,
        )
    inputs = random_inputs(12)
    ours, theirs, worst, paths = compare(inputs, 7, np.array([0, 5, 11]), repeats=3)
    print(
        f"{'12 points call':<16s} {7:6d} {1e3 * ours:12.2f} {1e3 * theirs:12.1f} {theirs / ours:7.0f}x "
        f"{worst:13.1e}  {paths}",
        flush=True,
    )


if __name__ == "__main__":
    main()
