"""A large sweep done the safe way: a checkpoint, a progress bar, and (optionally) a dask cluster.

The map of Fig. 4(a) -- R over the tip position (r, phi) -- at any size.  With
``--checkpoint DIR`` every finished chunk is written to that directory; stop the script
(Ctrl-C, or a crash) and run the same command again: only the missing chunks are computed.
With ``--workers N`` the grid is cut into dask blocks and computed on a
``dask.distributed.LocalCluster`` of N processes (the same code runs on a real cluster: pass
its ``Client`` instead); with a checkpoint the workers write their own blocks.

    python examples/large_sweep.py --size 201 --checkpoint fig4a_run.ckpt --out fig4a.nc
    python examples/large_sweep.py --size 101 --workers 2 --checkpoint fig4a_dask.ckpt --out fig4a_dask.nc
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import pyspb
from pyspb.analytic import efficiency


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=201, help="points along r and along phi")
    parser.add_argument("--cutoff", type=int, default=5, help="largest photon number per mode")
    parser.add_argument("--checkpoint", type=Path, default=None, help="directory recording finished chunks")
    parser.add_argument("--workers", type=int, default=0, help="dask worker processes (0: no dask)")
    parser.add_argument("--out", type=Path, default=Path("large_sweep.nc"), help="NetCDF result")
    args = parser.parse_args(argv)

    inputs = pyspb.Device().rates(r=np.linspace(0.2, 0.6, args.size), phi=np.linspace(0.0, 1.1, args.size))
    start = time.perf_counter()
    if args.workers:
        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as cluster:
            with Client(cluster):
                blocks = inputs.chunk({"phi": max(1, args.size // (4 * args.workers))})
                out = pyspb.solve(blocks, cutoff=args.cutoff, checkpoint=args.checkpoint).compute()
    else:
        out = pyspb.solve(inputs, cutoff=args.cutoff, checkpoint=args.checkpoint, progress=True)
    ideal = pyspb.solve(pyspb.Device().rates(J0=0.0, tip=False), cutoff=args.cutoff)
    out["R"] = efficiency(out.g2_cw, ideal.g2_cw)
    elapsed = time.perf_counter() - start

    pyspb.save(out, args.out)
    best = out.R.where(out.R == out.R.max(), drop=True)
    print(
        f"{args.size}x{args.size} points at cutoff {args.cutoff} in {elapsed:.1f} s; "
        f"max R = {100 * float(out.R.max()):.2f} % at r = {float(best.r[0]):.3f} um, "
        f"phi = {float(best.phi[0]):.3f} um; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
