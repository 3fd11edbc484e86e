"""Cost of a checkpoint: a checkpointed sweep against the same sweep without one, in one run.

Run:  python benchmarks/bench_checkpoint.py [--points 250000] [--chunks 250] [--cutoff 3]
                                            [--repeats 2] [--memory-points 1000000]

``--repeats 0`` skips the overhead part.

1. Overhead: the Fig. 4(a) tip map with ``--points`` points in ``--chunks`` chunks, solved
   without a checkpoint and with one (a fresh checkpoint directory each time), alternating,
   ``--repeats`` times; prints the wall and CPU times, their ratios (target <= 1.3) and the
   time spent writing chunks (measured inside :func:`pyspb.checkpoint.write_chunk`).  For contrast, the
   cost of the single-file checkpoint of pyspb 0.1 (the whole grid's populations rewritten
   with :func:`pyspb.save` after every chunk) is estimated from three timed rewrites.
2. Memory: peak resident memory (``ru_maxrss``) of a ``--memory-points`` sweep with a
   checkpoint and of the same sweep without one, each in a fresh process, next to the size of
   the populations array the result needs anyway.  ``--memory-points 0`` skips it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

import pyspb
from pyspb import checkpoint


def tip_map(points: int) -> xr.Dataset:
    side = int(round(np.sqrt(points)))
    return pyspb.Device().rates(r=np.linspace(0.2, 0.6, side), phi=np.linspace(0.0, 1.1, points // side))


def timed_sweep(inputs: xr.Dataset, cutoff: int, chunk: int, store: Path | None) -> tuple[float, float, float]:
    """Wall seconds and CPU seconds (all threads of this process) of the sweep, and wall seconds in write_chunk."""
    spent = [0.0]
    original = checkpoint.write_chunk

    def timed_write(*args, **kwargs):
        start = time.perf_counter()
        original(*args, **kwargs)
        spent[0] += time.perf_counter() - start

    checkpoint.write_chunk = timed_write
    try:
        start, cpu = time.perf_counter(), time.process_time()
        pyspb.solve(inputs, cutoff=cutoff, chunk_size=chunk, checkpoint=store, progress=False)
        return time.perf_counter() - start, time.process_time() - cpu, spent[0]
    finally:
        checkpoint.write_chunk = original


def old_rewrite_seconds(npts: int, cutoff: int, folder: Path) -> float:
    """Seconds of one rewrite of pyspb 0.1's single-file checkpoint of ``npts`` points."""
    levels = cutoff + 1
    ds = xr.Dataset(
        {
            "P_flat": (("point", "n_cw", "n_ccw"), np.random.default_rng(0).random((npts, levels, levels))),
            "done": (("point",), np.ones(npts, dtype=np.int8)),
        }
    )
    times = []
    for _ in range(3):
        start = time.perf_counter()
        pyspb.save(ds, folder / "old.nc")
        times.append(time.perf_counter() - start)
    return float(np.median(times))


MEMORY_RUN = """
import json, resource, sys, time
sys.path.insert(0, {bench!r})
from bench_checkpoint import tip_map
import pyspb
inputs = tip_map({points})
store = sys.argv[1] if len(sys.argv) > 1 else None
start = time.perf_counter()
out = pyspb.solve(inputs, cutoff={cutoff}, checkpoint=store, progress=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": time.perf_counter() - start, "maxrss_MB": peak}}))
"""


def peak_memory(points: int, cutoff: int, store: Path | None) -> dict:
    code = MEMORY_RUN.format(bench=str(Path(__file__).resolve().parent), points=points, cutoff=cutoff)
    args = [sys.executable, "-c", code] + ([str(store)] if store is not None else [])
    result = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=250_000)
    parser.add_argument("--chunks", type=int, default=250)
    parser.add_argument("--cutoff", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory-points", type=int, default=1_000_000)
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="pyspb-bench-checkpoint-"))
    try:
        inputs = tip_map(args.points)
        npts = int(np.prod(list(inputs.sizes.values())))
        chunk = -(-npts // args.chunks)
        if args.repeats:
            timed_sweep(tip_map(400), args.cutoff, 100, None)  # warm up
        print(f"{npts} points in {args.chunks} chunks of {chunk}, cutoff {args.cutoff}")
        print("wall and CPU seconds (CPU: all threads of this process, less disturbed by other load)")
        print(
            f"{'run':>4} {'no ckpt wall':>13} {'ckpt wall':>10} {'ratio':>6} {'no ckpt CPU':>12} {'ckpt CPU':>9} "
            f"{'ratio':>6} {'writing chunks s':>17}"
        )
        wall_ratios, cpu_ratios, shares = [], [], []
        for repeat in range(args.repeats):
            plain, plain_cpu, _ = timed_sweep(inputs, args.cutoff, chunk, None)
            store = folder / f"run{repeat}.ckpt"
            checked, checked_cpu, writing = timed_sweep(inputs, args.cutoff, chunk, store)
            wall_ratios.append(checked / plain)
            cpu_ratios.append(checked_cpu / plain_cpu)
            shares.append(writing / plain)
            size = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
            print(
                f"{repeat + 1:>4} {plain:>13.1f} {checked:>10.1f} {checked / plain:>6.2f} {plain_cpu:>12.1f} "
                f"{checked_cpu:>9.1f} {checked_cpu / plain_cpu:>6.2f} {writing:>17.2f}"
            )
            shutil.rmtree(store)
        if args.repeats:
            print(
                f"checkpoint/no checkpoint: wall {', '.join(f'{r:.2f}' for r in wall_ratios)}; CPU "
                f"{', '.join(f'{r:.2f}' for r in cpu_ratios)}; medians {np.median(wall_ratios):.2f}, "
                f"{np.median(cpu_ratios):.2f} (target <= 1.3)"
            )
            print(
                "time in write_chunk / sweep without checkpoint: "
                f"{', '.join(f'{100 * r:.1f} %' for r in shares)} (the cost a checkpoint adds, free of other load)"
            )
            print(f"checkpoint on disk: {size / 1e6:.1f} MB")
            rewrite = old_rewrite_seconds(npts, args.cutoff, folder)
            print(
                f"pyspb 0.1 single-file checkpoint: {rewrite:.2f} s per rewrite x {args.chunks} chunks = "
                f"{rewrite * args.chunks:.0f} s of writing (estimated), against {plain:.1f} s of solving"
            )

        if args.memory_points:
            levels = args.cutoff + 1
            print(
                f"\npeak memory, {args.memory_points} points, cutoff {args.cutoff} (populations array "
                f"{args.memory_points * levels**2 * 8 / 1e6:.0f} MB):"
            )
            for label, store in (("no checkpoint", None), ("checkpoint", folder / "memory.ckpt")):
                measured = peak_memory(args.memory_points, args.cutoff, store)
                print(f"  {label:>14}: {measured['maxrss_MB']:.0f} MB peak RSS, {measured['seconds']:.0f} s")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
