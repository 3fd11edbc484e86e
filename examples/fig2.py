"""Fig. 2 of Tang et al.: g2_cw(0) and N_cw versus phi for chi / gamma = 0.1, 0.5, 3 (panel a)
and versus chi / gamma at phi = 0.27 um and 0.21, 0.33 um (panel b).

chi / gamma is set by changing chi at fixed gamma (r = 0.35 um).

    python examples/fig2.py --out figures
    python examples/fig2.py --quick --out figures
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

    a = paper.fig2a(quick=args.quick)
    b = paper.fig2b(quick=args.quick)
    at_cancellation = a.sel(phi=0.27)
    for ratio in a["chi_over_gamma"].values:
        point = at_cancellation.sel(chi_over_gamma=ratio)
        print(f"phi = 0.27 um, chi/gamma = {ratio:g}: g2(0) = {float(point.g2_cw):.3g}, N_cw = {float(point.N_cw):.3g}")

    for name, ds in (("fig2a", a), ("fig2b", b)):
        nc, png = figures.write_panel(name, ds, args.out)
        print(f"wrote {nc} and {png}")


if __name__ == "__main__":
    main()
