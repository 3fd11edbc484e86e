"""Time per point of g2(tau) and S(omega): pyspb native vs QuTiP 5, same points, same run.

Run:  python benchmarks/bench_correlations.py [--points 41] [--qutip-points 3]
                                              [--spectrum-points 8] [--qutip-spectrum-points 1]
                                              [--spectrum-cutoffs 5 6] [--map 41]

The paper's device with the tip at r = 0.35 um over phi = 0.20 .. 0.34 um, cutoff 5:

* g2(tau) at 61 delays 0 .. 30 us: ``pyspb.g2_tau`` (all three correlations, both modes) on
  ``--points`` points against QuTiP's ``coherence_function_g2`` (cw mode only, tight ODE
  tolerances: atol 1e-12, rtol 1e-10, 1e6 steps; one BLAS thread) on ``--qutip-points`` of them; the largest
  relative difference of g2_cw between the two is printed.
* S(omega) at 201 frequencies over +-5 gamma, at each of ``--spectrum-cutoffs``:
  ``pyspb.spectrum`` (both modes) on ``--spectrum-points`` points against QuTiP's
  ``spectrum`` (default solver "es", cw mode only, one BLAS thread as in bench_regimes.py) on
  ``--qutip-spectrum-points`` of them; the largest difference relative to the maximum of S
  is printed (``--spectrum-points 0`` skips the spectra).
* The time of a ``--map`` x ``--map`` (r, phi) x 61-delay g2(tau) map (r = 0.30 .. 0.40 um)
  with ``pyspb.g2_tau`` on all cores (0 skips it).

QuTiP's times include its own steady state per point, as pyspb's do.  Ratios are what this
run measured; absolute times depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import pyspb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference import qutip_model  # noqa: E402  (the tests' QuTiP model)

CUTOFF = 5
TAU = np.linspace(0.0, 30.0, 61)


def point(inputs, k: int) -> tuple[float, complex, float, float, float]:
    flat = {name: np.broadcast_to(inputs[name].values, inputs.phi.shape) for name in inputs.data_vars}
    return (
        float(flat["Delta"][k]),
        complex(flat["J_re"][k] + 1j * flat["J_im"][k]),
        float(flat["chi"][k]),
        float(flat["xi"][k]),
        float(flat["gamma"][k]),
    )


def spectrum_row(inputs, cutoff: int, points: int, qutip_points: int) -> None:
    """S(omega) per point: pyspb.spectrum on ``points`` points, QuTiP on the first ``qutip_points``."""
    import qutip
    from threadpoolctl import threadpool_limits

    gamma = float(inputs.gamma)
    omega = np.linspace(-5 * gamma, 5 * gamma, 201)
    sub = inputs.isel(phi=np.linspace(0, inputs.phi.size - 1, points).round().astype(int))
    pyspb.spectrum(sub.isel(phi=[0]), omega[:3], cutoff=cutoff, progress=False)  # warm caches
    start = time.perf_counter()
    spectra = pyspb.spectrum(sub, omega, cutoff=cutoff, progress=False)
    ours = (time.perf_counter() - start) / points
    worst = 0.0
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        for k in range(qutip_points):
            H, c_ops, a1, _ = qutip_model(*point(sub, k), cutoff)
            S = qutip.spectrum(H, omega, c_ops, a1.dag(), a1)
            worst = max(worst, float(np.max(np.abs(spectra.S_cw.values[k] - S)) / np.max(np.abs(S))))
    theirs = (time.perf_counter() - start) / qutip_points
    print(f"S(omega), cutoff {cutoff}, {omega.size} frequencies over +-5 gamma")
    print(f"  pyspb.spectrum {1e3 * ours:9.1f} ms/point ({points} points, both modes)")
    print(f"  QuTiP          {1e3 * theirs:9.1f} ms/point ({qutip_points} points, spectrum 'es', cw)")
    print(f"  ratio          {theirs / ours:9.1f}x   max |S - S(QuTiP)| / max S(QuTiP) = {worst:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=41)
    parser.add_argument("--qutip-points", type=int, default=3)
    parser.add_argument("--spectrum-points", type=int, default=8, help="0 skips the spectra")
    parser.add_argument("--qutip-spectrum-points", type=int, default=1)
    parser.add_argument("--spectrum-cutoffs", type=int, nargs="+", default=[CUTOFF])
    parser.add_argument("--map", type=int, default=41, help="side of the (r, phi) map; 0 skips it")
    args = parser.parse_args()
    import qutip
    from threadpoolctl import threadpool_limits

    device = pyspb.Device()
    inputs = device.rates(r=0.35, phi=np.linspace(0.20, 0.34, args.points))[
        ["Delta", "J_re", "J_im", "chi", "xi", "gamma"]
    ]
    pyspb.g2_tau(inputs.isel(phi=[0]), TAU[:3], cutoff=CUTOFF)  # warm caches

    start = time.perf_counter()
    ours = pyspb.g2_tau(inputs, TAU, cutoff=CUTOFF, progress=False)
    ours_g2 = (time.perf_counter() - start) / args.points

    picks = np.linspace(0, args.points - 1, args.qutip_points).round().astype(int)
    options = {"nsteps": 10**6, "atol": 1e-12, "rtol": 1e-10}
    start = time.perf_counter()
    worst = 0.0
    with threadpool_limits(limits=1, user_api="blas"):  # as for the spectra and bench_regimes.py
        for k in picks:
            H, c_ops, a1, _ = qutip_model(*point(inputs, k), CUTOFF)
            g2, _ = qutip.coherence_function_g2(H, None, TAU, c_ops, a1, options=options)
            worst = max(worst, float(np.max(np.abs(ours.g2_cw_tau.values[k] / np.real(g2) - 1))))
    qutip_g2 = (time.perf_counter() - start) / picks.size
    print(f"g2(tau), cutoff {CUTOFF}, {TAU.size} delays 0..{TAU[-1]:g} us, paper's device, r = 0.35 um")
    print(f"  pyspb.g2_tau   {1e3 * ours_g2:9.1f} ms/point ({args.points} points, 3 correlations, both modes)")
    print(f"  QuTiP          {1e3 * qutip_g2:9.1f} ms/point ({picks.size} points, coherence_function_g2, cw)")
    print(f"  ratio          {qutip_g2 / ours_g2:9.1f}x   max |g2_cw / g2_cw(QuTiP) - 1| = {worst:.1e}")

    for cutoff in args.spectrum_cutoffs if args.spectrum_points else []:
        spectrum_row(inputs, cutoff, args.spectrum_points, args.qutip_spectrum_points)

    if args.map:
        grid = device.rates(r=np.linspace(0.30, 0.40, args.map), phi=np.linspace(0.20, 0.34, args.map))
        start = time.perf_counter()
        pyspb.g2_tau(grid, TAU, cutoff=CUTOFF, progress=False)
        elapsed = time.perf_counter() - start
        print(
            f"g2(tau) map {args.map} x {args.map} (r, phi) x {TAU.size} delays: {elapsed:.1f} s "
            f"({1e3 * elapsed / args.map**2:.1f} ms/point, all cores)"
        )


if __name__ == "__main__":
    main()
