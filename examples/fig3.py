"""Fig. 3 of Tang et al.: |J|^2 over the tip position (panel b), the single-photon
probabilities P01_ccw and P10_cw versus phi (panel c) and g2_cw(0) versus r (panel d),
numerical (exact steady state) and analytic (the weak-drive Eqs. 6 and 7).

    python examples/fig3.py --out figures
    python examples/fig3.py --quick --out figures
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from pyspb import figures, paper


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="coarse grids and a smaller cutoff")
    parser.add_argument("--out", type=Path, default=Path("figures"), help="output directory")
    args = parser.parse_args(argv)

    b = paper.fig3b(quick=args.quick)
    print(f"J = 0 at r = {float(b.r_cancel):.3f} um, phi = {', '.join(f'{p:.3f}' for p in b.phi_cancel.values)} um")
    c = paper.fig3c(quick=args.quick)
    d = paper.fig3d(quick=args.quick)

    for name, ds in (("fig3b", b), ("fig3c", c), ("fig3d", d)):
        nc, png = figures.write_panel(name, ds, args.out)
        print(f"wrote {nc} and {png}")


if __name__ == "__main__":
    main()
