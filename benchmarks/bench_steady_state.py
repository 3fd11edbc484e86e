"""Time per steady state: pyspb native vs QuTiP 5 steadystate (method "direct", CSR), same model.

Run:  python benchmarks/bench_steady_state.py [--cutoffs 3 4 ... 10] [--points 64]

Both engines solve the paper's device with the tip scanned along phi at r = 0.35 um
(Delta = 0).  QuTiP's time includes building H and the collapse operators per point (as a
hand-written QuTiP loop does), with one BLAS thread; pyspb's is a batched call.  The table also shows the largest
relative difference of g2 between the two (where QuTiP is converged).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import pyspb
from pyspb.backends import native
from pyspb.observables import correlations

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference import qutip_hamiltonian, qutip_operators  # noqa: E402  (the tests' QuTiP model)


def qutip_g2(a1, a2, Delta, J, chi, xi, gamma):
    """g2(0) of the cw mode from QuTiP's steady state (H built per point, as a user loop does).

    QuTiP runs with one BLAS thread, as in bench_regimes.py, so that the ratio does not depend
    on how many cores happen to be free for its threads.
    """
    import qutip
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        H = qutip_hamiltonian(a1, a2, Delta, J, chi, xi)
        rho = qutip.steadystate(H, [np.sqrt(gamma) * a1, np.sqrt(gamma) * a2], method="direct")
        N = qutip.expect(a1.dag() * a1, rho)
        return qutip.expect(a1.dag() * a1.dag() * a1 * a1, rho) / N**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cutoffs", type=int, nargs="+", default=list(range(3, 11)))
    parser.add_argument("--points", type=int, default=64, help="points for pyspb per cutoff")
    parser.add_argument("--qutip-seconds", type=float, default=4.0, help="time budget for QuTiP per cutoff")
    parser.add_argument("--plot", default=None, help="also draw time per point vs cutoff into this PNG")
    args = parser.parse_args()

    grid = pyspb.Device().rates(phi=np.linspace(0.0, 1.0, args.points))
    flat = {
        "Delta": grid.Delta.broadcast_like(grid.phi).values,
        "J": (grid.J_re + 1j * grid.J_im).values,
        "chi": grid.chi.broadcast_like(grid.phi).values,
        "xi": grid.xi.broadcast_like(grid.phi).values,
        "gamma": grid.gamma.broadcast_like(grid.phi).values,
    }
    rows = []
    print(
        f"{'cutoff':>6s} {'pyspb ms/pt':>12s} {'QuTiP ms/pt':>12s} {'ratio':>8s} "
        f"{'QuTiP pts':>9s} {'max |dg2|/g2':>13s}"
    )
    for cutoff in args.cutoffs:
        native.steady_state_populations(*(v[:2] for v in flat.values()), cutoff=cutoff)  # warm caches
        start = time.perf_counter()
        P = native.steady_state_populations(*flat.values(), cutoff=cutoff)
        ours = (time.perf_counter() - start) / args.points
        g2 = correlations(P)["g2_cw"]
        a1, a2 = qutip_operators(cutoff)
        times, diffs = [], []
        for k in range(args.points):
            start = time.perf_counter()
            g2_q = qutip_g2(a1, a2, *(v[k] for v in flat.values()))
            times.append(time.perf_counter() - start)
            diffs.append(abs(g2_q / g2[k] - 1))
            if sum(times) > args.qutip_seconds:
                break
        theirs = float(np.mean(times))
        rows.append((cutoff, ours, theirs))
        print(
            f"{cutoff:6d} {1e3 * ours:12.2f} {1e3 * theirs:12.1f} {theirs / ours:7.0f}x "
            f"{len(times):9d} {max(diffs):13.1e}",
            flush=True,
        )

    if args.plot:
        plot(rows, args.plot)


def plot(rows: list[tuple[int, float, float]], path: str) -> None:
    """Time per point vs cutoff, pyspb and QuTiP, on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cutoffs, ours, theirs = (np.array(column) for column in zip(*rows, strict=False))
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.semilogy(cutoffs, 1e3 * theirs, "s-", label='QuTiP 5 steadystate("direct")')
    ax.semilogy(cutoffs, 1e3 * ours, "o-", label="pyspb native (batched, 2 cores)")
    ax.set_xlabel("cutoff (largest photon number per mode)")
    ax.set_ylabel("time per steady state (ms)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
