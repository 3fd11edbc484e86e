"""Grid throughput: the paper's Fig. 4(a) map of R over (r, phi), native vs QuTiP.

Run:  python benchmarks/bench_grid.py [--size 201] [--cutoff 5] [--qutip-points 20]

Prints a table of points per second for several grid sizes and cutoffs (native with one
core and with all cores, and a dask LocalCluster with 2 worker processes if dask.distributed
is installed), then times the full size x size map at the given cutoff and compares with
QuTiP 5 ``steadystate(method="direct")`` extrapolated from a sample of points timed in the
same run, and with a bare sparse LU of the same Liouvillian (QuTiP's solve without its
per-call overhead).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import pyspb
from pyspb.analytic import efficiency
from pyspb.backends import native

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_steady_state import qutip_g2, qutip_operators  # noqa: E402


def tip_map(size: int):
    return pyspb.Device().rates(r=np.linspace(0.2, 0.6, size), phi=np.linspace(0.0, 1.1, size))


def time_native(inputs, cutoff: int, threads: int | None) -> float:
    """Seconds for the native backend on the whole grid (threads=None: one per core)."""
    flat = pyspb.grid.flatten_inputs(inputs)[1]
    start = time.perf_counter()
    native.steady_state_populations(*flat.values(), cutoff=cutoff, threads=threads)
    return time.perf_counter() - start


def time_dask(inputs, cutoff: int) -> float | None:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        return None
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            lazy = pyspb.solve(inputs.chunk({"phi": max(1, inputs.sizes["phi"] // 8)}), cutoff=cutoff)
            client.compute(pyspb.solve(tip_map(4).chunk({"phi": 2}), cutoff=cutoff)).result()  # warm up
            start = time.perf_counter()
            client.compute(lazy).result()
            return time.perf_counter() - start


def time_qutip(inputs, cutoff: int, points: int) -> float:
    """Seconds per point of QuTiP on a random sample of the grid's points."""
    a1, a2 = qutip_operators(cutoff)
    flat = pyspb.grid.flatten_inputs(inputs)[1]
    rng = np.random.default_rng(0)
    sample = rng.choice(flat["Delta"].size, size=points, replace=False)
    start = time.perf_counter()
    for k in sample:
        qutip_g2(a1, a2, *(flat[name][k] for name in pyspb.grid.POINT_ORDER))
    return (time.perf_counter() - start) / points


def time_sparse_lu(inputs, cutoff: int, points: int) -> float:
    """Seconds per point of a bare sparse LU (SciPy SuperLU) of the same Liouvillian.

    The Fock-basis Liouvillian of :func:`pyspb.model.liouvillian` with its first row
    replaced by the trace, as a direct steady-state solver does, without QuTiP's per-call
    overhead; its construction is not timed.
    """
    import scipy.sparse.linalg as spla

    from pyspb.model import liouvillian

    flat = pyspb.grid.flatten_inputs(inputs)[1]
    rng = np.random.default_rng(0)
    sample = rng.choice(flat["Delta"].size, size=points, replace=False)
    d = (cutoff + 1) ** 2
    total = 0.0
    for k in sample:
        L = liouvillian(*(flat[name][k] for name in pyspb.grid.POINT_ORDER), cutoff).tolil()
        L[0, :] = 0.0
        L[0, np.arange(d) * (d + 1)] = 1.0
        L = L.tocsc()
        rhs = np.zeros(d * d, dtype=complex)
        rhs[0] = 1.0
        start = time.perf_counter()
        spla.spsolve(L, rhs)
        total += time.perf_counter() - start
    return total / points


def print_table() -> None:
    """Points per second for several grid sizes and cutoffs."""
    print(f"{'grid':>9s} {'cutoff':>6s} {'1 core pt/s':>12s} {'all cores pt/s':>15s} {'dask 2 workers pt/s':>20s}")
    for size, cutoff in [(20, 3), (20, 5), (50, 5), (20, 7), (50, 7)]:
        inputs = tip_map(size)
        n = inputs.sizes["r"] * inputs.sizes["phi"]
        serial = time_native(inputs, cutoff, threads=1)
        parallel = time_native(inputs, cutoff, threads=None)
        distributed = time_dask(inputs, cutoff)
        dask_rate = f"{n / distributed:20.0f}" if distributed else f"{'n/a':>20s}"
        print(f"{size:4d}x{size:<4d} {cutoff:6d} {n / serial:12.0f} {n / parallel:15.0f} {dask_rate}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=201)
    parser.add_argument("--cutoff", type=int, default=5)
    parser.add_argument("--qutip-points", type=int, default=20)
    parser.add_argument("--fig4a-only", action="store_true", help="skip the table of grid sizes")
    args = parser.parse_args()

    if not args.fig4a_only:
        print_table()

    inputs = tip_map(args.size)
    n = inputs.sizes["r"] * inputs.sizes["phi"]
    start = time.perf_counter()
    out = pyspb.solve(inputs, cutoff=args.cutoff, progress=False)
    ideal = pyspb.solve(pyspb.Device().rates(J0=0.0, tip=False), cutoff=args.cutoff)
    R = efficiency(out.g2_cw, ideal.g2_cw)
    ours = time.perf_counter() - start
    qutip_per_point = time_qutip(inputs, args.cutoff, args.qutip_points)
    lu_per_point = time_sparse_lu(inputs, args.cutoff, args.qutip_points)
    print(
        f"\nFig. 4(a) {args.size}x{args.size} at cutoff {args.cutoff}: pyspb {ours:.1f} s "
        f"({1e3 * ours / n:.2f} ms/pt); QuTiP {1e3 * qutip_per_point:.1f} ms/pt on {args.qutip_points} "
        f"sampled points -> {qutip_per_point * n:.0f} s extrapolated; ratio {qutip_per_point * n / ours:.0f}x; "
        f"bare sparse LU {1e3 * lu_per_point:.1f} ms/pt -> ratio {lu_per_point * n / ours:.0f}x; "
        f"max R = {float(R.max()):.4f}"
    )


if __name__ == "__main__":
    main()
