"""What a computation reports about itself: provenance attributes and a progress bar.

Shared by every labelled entry point (:func:`pyspb.solve`, :func:`pyspb.g2_tau`, ...), so
that none of them imports another's private helpers.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from ._version import __version__

__all__ = ["MODEL_REFERENCE", "progress_bar", "provenance"]

#: where the model behind every result is written down (shipped with the source)
MODEL_REFERENCE = "two-mode Kerr resonator with backscattering, docs/model.md in the pyspb source"


def provenance(backend: Any, cutoff: int, tolerance: float | None) -> dict[str, Any]:
    """Provenance attrs of a result: pyspb version, backend, method, cutoff, tolerance, time.

    Parameters
    ----------
    backend : module
        The backend that computed the result (its ``NAME``, ``METHOD`` and
        ``version_info()`` are recorded).
    cutoff : int
        Largest photon number kept per mode.
    tolerance : float or None
        Relative accuracy asked of the backend, if it takes one.
    """
    attrs: dict[str, Any] = {
        "pyspb_version": __version__,
        "backend": backend.NAME,
        "cutoff": cutoff,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": MODEL_REFERENCE,
        "method": backend.METHOD,
    }
    if tolerance is not None:
        attrs["tolerance"] = tolerance
    for key, value in backend.version_info().items():
        attrs[key] = str(value)
    return attrs


def progress_bar(
    total: int, enabled: bool | None, description: str, threshold: int, delay: float = 0, unit: str = "pt"
) -> Any:
    """A tqdm progress bar, or None.

    None when ``enabled`` is False, when tqdm is missing, or (``enabled=None``) when
    ``total`` points fit in one chunk of ``threshold`` points.  With ``delay`` (seconds) the
    bar appears only once the work has taken that long.
    """
    if enabled is False or (enabled is None and total <= threshold):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=description, unit=unit, delay=delay)
