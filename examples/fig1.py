"""Fig. 1 of Tang et al.: g2(tau) (panel b) and N_cw versus Delta / gamma1 (panel c).

Three cavities: ideal (J0 = 0, no tip), with intrinsic backscattering J0 = 1.8 gamma1 and no
tip, and with the nanotip at r = 0.35 um, phi = 0.27 um.

    python examples/fig1.py --out figures            # the paper's resolution (seconds)
    python examples/fig1.py --quick --out figures    # coarse grids
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files, open no window

from pyspb import figures, paper


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="coarse grids and a smaller cutoff")
    parser.add_argument("--out", type=Path, default=Path("figures"), help="output directory")
    args = parser.parse_args(argv)

    b = paper.fig1b(quick=args.quick)
    for case in b["case"].values:
        point = b.sel(case=case)
        print(
            f"{case:12s} g2(0) = {float(point.g2_cw):.3g}  g3(0) = {float(point.g3_cw):.2g}  "
            f"g4(0) = {float(point.g4_cw):.2g}  N_cw = {float(point.N_cw):.3g}"
        )
    c = paper.fig1c(quick=args.quick)

    for name, ds in (("fig1b", b), ("fig1c", c)):
        nc, png = figures.write_panel(name, ds, args.out)
        print(f"wrote {nc} and {png}")


if __name__ == "__main__":
    main()
