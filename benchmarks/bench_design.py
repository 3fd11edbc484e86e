"""Fitting and design: pyspb.fit, pyspb.optimize_tip and pyspb.tolerance against their targets.

Run:  python benchmarks/bench_design.py [--cutoff 5] [--grid 201] [--qutip-points 20]

1. Fit: Q and J0 / gamma1 of the cavity without tip from 150 noisy points (g2_cw and N_cw
   at 25 detunings x 3 input powers, 2 % Gaussian noise, seeded) at cutoff 5.  Targets: under
   60 s; each parameter within 3 standard errors and 5 % of the truth.  The fit's solver
   points are also priced with QuTiP 5 ``steadystate("direct")``, timed on a sample of
   points in the same run (a fit built on per-point QuTiP solves would need that many).
2. optimize_tip against a dense grid search over the same bounds (r in 0.1..1.2 um, phi over
   one period): target, the grid's minimum g2 or lower in under a fifth of the grid's time.
3. tolerance: R of the paper's device (tip at r = 0.35, phi = 0.27 um) under a 5 nm normal
   spread of r (and of r and phi together), 256 samples: its 5th percentile.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import pyspb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_steady_state import qutip_g2, qutip_operators  # noqa: E402


def qutip_seconds_per_point(inputs, cutoff: int, points: int) -> float:
    a1, a2 = qutip_operators(cutoff)
    flat = pyspb.grid.flatten_inputs(inputs[list(pyspb.grid.MODEL_INPUTS)])[1]
    rng = np.random.default_rng(0)
    sample = rng.choice(flat["Delta"].size, size=min(points, flat["Delta"].size), replace=False)
    qutip_g2(a1, a2, *(flat[name][0] for name in pyspb.grid.POINT_ORDER))  # warm up (imports)
    start = time.perf_counter()
    for k in sample:
        qutip_g2(a1, a2, *(flat[name][k] for name in pyspb.grid.POINT_ORDER))
    return (time.perf_counter() - start) / sample.size


def bench_fit(cutoff: int, qutip_points: int) -> bool:
    truth = pyspb.Device(Q=1.25e10, J0_over_gamma1=2.2, tip=False)
    rates = truth.rates(Delta=np.linspace(-0.6, 0.6, 25), Pin=np.array([2e-15, 4e-15, 8e-15]))
    clean = pyspb.solve(rates, cutoff)
    rng = np.random.default_rng(2024)
    data = clean[["g2_cw", "N_cw"]].copy()
    for name in ("g2_cw", "N_cw"):
        data[name] = clean[name] * (1 + 0.02 * rng.standard_normal(clean[name].shape))
        data[f"{name}_sigma"] = 0.02 * clean[name]
    start = time.perf_counter()
    result = pyspb.fit(data, pyspb.Device(tip=False), {"Q": (1e9, 1e11), "J0_over_gamma1": (0.5, 5)}, cutoff=cutoff)
    seconds = time.perf_counter() - start
    per_point = qutip_seconds_per_point(rates, cutoff, qutip_points)
    points = result.attrs["points_solved"]
    print(
        f"fit: {data.g2_cw.size + data.N_cw.size} data, cutoff {cutoff}, {seconds:.2f} s "
        f"({result.attrs['evaluations']} evaluations, {result.attrs['solve_calls']} solve calls, "
        f"{points} points; QuTiP would take {points * per_point:.1f} s for these points, "
        f"{points * per_point / seconds:.0f} x longer)"
    )
    print(f"  chi2_reduced = {float(result.chi2_reduced):.3f}")
    ok = seconds < 60
    for name in ("Q", "J0_over_gamma1"):
        value, error, true = float(result[name]), float(result[f"{name}_stderr"]), getattr(truth, name)
        pull, relative = (value - true) / error, abs(value / true - 1)
        ok &= abs(pull) < 3 and relative < 0.05
        print(f"  {name:15s} truth {true:.5g}  fit {value:.5g} +- {error:.2g}  ({pull:+.2f} stderr, {relative:.2%})")
    print(f"  target (< 60 s, < 3 stderr, < 5 %): {'met' if ok else 'MISSED'}")
    return ok


def bench_optimize_tip(cutoff: int, size: int) -> bool:
    device = pyspb.Device()
    pyspb.solve(device.rates(), cutoff)  # warm up
    k_opt = float(device.rates()["k_opt"])
    start = time.perf_counter()
    best = pyspb.optimize_tip(device, cutoff=cutoff)
    t_opt = time.perf_counter() - start
    start = time.perf_counter()
    grid = pyspb.solve(
        device.rates(r=np.linspace(0.1, 1.2, size), phi=np.linspace(0.0, np.pi / k_opt, size, endpoint=False)),
        cutoff,
        progress=False,
    )
    t_grid = time.perf_counter() - start
    g_grid = float(grid.g2_cw.min())
    at = grid.g2_cw.argmin(...)
    ok = float(best.g2_cw) <= g_grid and t_opt < t_grid / 5
    print(
        f"optimize_tip: g2 = {float(best.g2_cw):.7g} at r = {float(best.r):.5f}, phi = {float(best.phi):.5f} um "
        f"in {t_opt:.2f} s ({best.attrs['solve_calls']} solve calls, {best.attrs['points_solved']} points)"
    )
    print(
        f"  {size} x {size} grid: g2 = {g_grid:.7g} at r = {float(grid.r[at['r']]):.5f}, "
        f"phi = {float(grid.phi[at['phi']]):.5f} um in {t_grid:.2f} s ({size * size} points)"
    )
    print(
        f"  time ratio grid / optimize_tip = {t_grid / t_opt:.1f}; target (g2 <= grid's, ratio > 5): "
        f"{'met' if ok else 'MISSED'}"
    )
    return ok


def bench_tolerance(cutoff: int) -> None:
    for spread in ({"r": 0.005}, {"r": 0.005, "phi": 0.003}):
        start = time.perf_counter()
        mc = pyspb.tolerance(pyspb.Device(), spread=spread, samples=256, cutoff=cutoff, seed=1)
        seconds = time.perf_counter() - start
        q05, q50, q95 = mc.attrs["R_quantiles"]
        nominal = float(pyspb.tolerance(pyspb.Device(), spread={"r": 0.0}, samples=1, cutoff=cutoff).R[0])
        print(
            f"tolerance {spread} (normal, 256 samples, {seconds:.2f} s): R nominal {nominal:.2%}, "
            f"5th percentile {q05:.2%}, median {q50:.2%}, 95th {q95:.2%}; "
            f"g2 95th percentile {mc.attrs['g2_cw_quantiles'][2]:.4g}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cutoff", type=int, default=5)
    parser.add_argument("--grid", type=int, default=201, help="size of the dense grid optimize_tip is timed against")
    parser.add_argument("--qutip-points", type=int, default=20, help="points timed with QuTiP to price the fit")
    args = parser.parse_args()
    bench_fit(args.cutoff, args.qutip_points)
    bench_optimize_tip(args.cutoff, args.grid)
    bench_tolerance(args.cutoff)


if __name__ == "__main__":
    main()
