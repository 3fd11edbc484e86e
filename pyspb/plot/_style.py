"""What every drawing shares: Axes handling, input checks, styles, font sizes and axis labels."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import xarray as xr

#: colours of the three cavities (the paper's Fig. 1)
CASE_COLORS = {"ideal": "0.45", "without tip": "tab:blue", "with tip": "tab:red"}
#: colours and markers of chi / gamma in Fig. 2
CHI_STYLES = {0.1: ("tab:blue", "s"), 0.5: ("tab:green", "^"), 3.0: ("tab:red", "o")}
#: styles of the curves of Fig. 2(b) by phi (um); 0.33 lies on 0.21: crosses on the dashed line
FIG2B_STYLES: dict[float, dict[str, Any]] = {
    0.27: {"color": "tab:red", "ls": "-"},
    0.21: {"color": "0.35", "ls": "--"},
    0.33: {"color": "tab:purple", "ls": "none", "marker": "x", "ms": 5, "mew": 1.2},
}
#: smallest font size of any text in a figure (points), insets included
MIN_FONT_SIZE = 8
#: markers of the analytic results drawn on top of the numerical curves
MARKER_COUNT = 16

TAU_LABEL = r"$\tau$ ($\mu$s)"
R_LABEL = r"$r$ ($\mu$m)"
PHI_LABEL = r"$\phi$ ($\mu$m)"
G2_LABEL = r"$g^{(2)}_{\rm cw}(0)$"
N_LABEL = r"$N_{\rm cw}$"


def axes(ax, rows: int = 1, figsize: tuple[float, float] = (5.0, 3.8)):
    """``(figure, [axes...])``: new ones if ``ax`` is None, else the given ones checked."""
    if ax is None:
        import matplotlib.pyplot as plt

        figure, grid = plt.subplots(rows, 1, figsize=figsize, sharex=True, squeeze=False, layout="constrained")
        return figure, list(grid[:, 0])
    axes = list(ax) if isinstance(ax, (Sequence, np.ndarray)) else [ax]
    if len(axes) != rows:
        raise ValueError(
            f"this panel needs {rows} Axes ({'top, bottom' if rows == 2 else 'one'}), got {len(axes)}; "
            "pass ax=None to create them"
        )
    for item in axes:
        if not hasattr(item, "get_figure"):
            raise TypeError(f"ax must be matplotlib Axes, got {type(item).__name__}")
    return axes[0].get_figure(), axes


def require(ds: xr.Dataset, panel: str, names: Sequence[str]) -> None:
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"{panel}: expected the xarray.Dataset of pyspb.paper.{panel}, got {type(ds).__name__}")
    missing = [name for name in names if name not in ds.variables]
    if missing:
        raise ValueError(f"{panel}: the Dataset lacks {', '.join(missing)}; pass the output of pyspb.paper.{panel}()")


def every(values: np.ndarray, count: int = MARKER_COUNT) -> slice:
    """A slice picking about ``count`` evenly spaced points (analytic markers)."""
    return slice(None, None, max(1, int(np.ceil(len(values) / count))))


def quick_note(ax, ds: xr.Dataset) -> None:
    if ds.attrs.get("quick"):
        ax.text(
            0.99, 0.01, "quick", transform=ax.transAxes, ha="right", va="bottom", fontsize=MIN_FONT_SIZE, color="0.5"
        )


#: short axis labels of coordinates (symbol as in the paper); units come from the attrs
SYMBOLS = {
    "r": r"$r$",
    "phi": r"$\phi$",
    "Delta": r"$\Delta$",
    "Delta_over_gamma1": r"$\Delta/\gamma_1$",
    "chi": r"$\chi$",
    "chi_over_gamma": r"$\chi/\gamma$",
    "xi": r"$\xi$",
    "gamma": r"$\gamma$",
    "J0": r"$J_0$",
    "J0_over_gamma1": r"$J_0/\gamma_1$",
    "Pin": r"$P_{\rm in}$",
    "Q": r"$Q$",
    "tau": r"$\tau$",
}
#: units as typeset on axes
UNIT_TEXT = {"um": r"$\mu$m", "1e6 s-1": r"$10^6$ s$^{-1}$", "1e-6 s": r"$\mu$s", "1e12 s-2": r"$10^{12}$ s$^{-2}$"}


def axis_label(array: xr.DataArray, name: Hashable | None = None) -> str:
    r"""A short axis label: the paper's symbol (or the name) and the units in parentheses.

    Correlations ``g2_cw``, ``g3_ccw``, ... become :math:`g^{(2)}_{\rm cw}(0)`; dimensionless
    quantities (units "1") get no unit.
    """
    name = str(array.name if name is None else name)
    parts = name.split("_")
    if len(parts) == 2 and parts[0] in ("g2", "g3", "g4") and parts[1] in ("cw", "ccw"):
        symbol = rf"$g^{{({parts[0][1]})}}_{{\rm {parts[1]}}}(0)$"
    else:
        symbol = SYMBOLS.get(name, name)
    units = str(array.attrs.get("units", "1"))
    return symbol if units == "1" else f"{symbol} ({UNIT_TEXT.get(units, units)})"
