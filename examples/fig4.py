"""Fig. 4 of Tang et al.: the efficiency R (Eq. 8) over the tip position at J0 = 1.8 gamma1
(panel a) and versus J0 / gamma1 with and without the tip (panel b).

In panel (b) the "min" of Eq. (8) is over the tip positions: for each J0 the smallest g2(0)
found by a nested grid search over (r, phi).

    python examples/fig4.py --out figures            # about 30 s on two cores
    python examples/fig4.py --quick --out figures    # seconds
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

    a = paper.fig4a(quick=args.quick)
    best = a.R.where(a.R == a.R.max(), drop=True)
    print(f"max R = {100 * float(a.R.max()):.2f} % at r = {float(best.r[0]):.3f} um, phi = {float(best.phi[0]):.3f} um")
    b = paper.fig4b(quick=args.quick)
    print(b.R.to_pandas().T.round(4))

    for name, ds in (("fig4a", a), ("fig4b", b)):
        nc, png = figures.write_panel(name, ds, args.out)
        print(f"wrote {nc} and {png}")


if __name__ == "__main__":
    main()
