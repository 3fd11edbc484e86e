"""Peak memory and time of one ``pyspb.solve`` call at a large cutoff (native engine).

Run:  python benchmarks/bench_large_cutoff.py [--cutoff 20] [--points 4]

A power scan (Delta = 0, chi = 0.3, J = 0.6 + 0.2i, xi = 0.5 .. 1.5, gamma = 1), the case the
README's "Memory per point and cutoff" section quotes.  Prints the engine's memory estimate,
the wall time, the process's peak resident memory (``ru_maxrss``), the points per path and the
results.  No QuTiP comparison: its direct solve would need the sparse LU's memory of the
README's table (~61 GiB at cutoff 20).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import xarray as xr

import pyspb
from pyspb.backends.native import memory_estimate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cutoff", type=int, default=20)
    parser.add_argument("--points", type=int, default=4)
    args = parser.parse_args()
    inputs = xr.Dataset(
        {"Delta": 0.0, "chi": 0.3, "gamma": 1.0, "J_re": 0.6, "J_im": 0.2},
        coords={"xi": np.linspace(0.5, 1.5, args.points)},
    )
    estimate = memory_estimate(args.cutoff)
    print(
        f"cutoff {args.cutoff}: estimate {estimate['fixed'] / 2**20:.0f} MiB of operators "
        f"+ {estimate['per_point'] / 2**20:.0f} MiB per point in flight"
    )
    start = time.perf_counter()
    result = pyspb.solve(inputs, cutoff=args.cutoff, progress=False)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    paths = {key: value for key, value in result.attrs.items() if key.startswith("points_")}
    print(f"{elapsed:.0f} s, peak resident memory {peak / 2**30:.2f} GiB, {paths}")
    print(result[["N_cw", "g2_cw", "N_ccw", "g2_ccw", "truncation_error"]].to_dataframe())


if __name__ == "__main__":
    main()
