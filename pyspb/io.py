"""NetCDF input and output: complex variables split into ``_re``/``_im``, atomic writes."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["save", "load", "check_writable"]

#: attribute marking the two halves of a split complex variable
COMPLEX_PART = "pyspb_complex_part"


def _split_complex(ds: xr.Dataset) -> xr.Dataset:
    out = ds.copy()
    for name in list(out.data_vars):
        var = out[name]
        if np.iscomplexobj(var.values):
            for suffix, part in (("re", var.real), ("im", var.imag)):
                new = f"{name}_{suffix}"
                if new in out:
                    raise ValueError(f"cannot split complex {name!r}: {new!r} exists already")
                out[new] = part.assign_attrs(var.attrs, **{COMPLEX_PART: suffix})
            out = out.drop_vars(name)
    return out


def _join_complex(ds: xr.Dataset) -> xr.Dataset:
    for name in [n for n in ds.data_vars if ds[n].attrs.get(COMPLEX_PART) == "re"]:
        base = str(name)[: -len("_re")]
        re, im = ds[name], ds[f"{base}_im"]
        attrs = {k: v for k, v in re.attrs.items() if k != COMPLEX_PART}
        ds = ds.drop_vars([name, f"{base}_im"])
        ds[base] = (re + 1j * im).assign_attrs(attrs)
    return ds


def save(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to NetCDF (netCDF4 engine) without ever leaving a half-written file.

    The data go to a temporary file in the same directory, which is then renamed over
    ``path`` (atomic on POSIX); an interrupted write leaves any previous file intact.
    Complex variables are split into ``<name>_re`` and ``<name>_im`` and joined again by
    :func:`load`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        _split_complex(ds).to_netcdf(tmp, engine="netcdf4")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_writable(path: str | os.PathLike) -> Path:
    """Check, before any work, that :func:`save` can write ``path``; raise an OSError saying why not.

    Creates the missing parent directories (as :func:`save` does) and a temporary file beside
    ``path``, which is removed again.  A full disk may still fail the write itself.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(handle)
        os.unlink(tmp)
    except OSError as err:
        raise OSError(err.errno, f"cannot write {path} ({err.strerror or err}); choose a writable location") from err
    return path


def load(path: str | os.PathLike) -> xr.Dataset:
    """Read a file written by :func:`save` into memory, complex variables joined again."""
    return _join_complex(xr.load_dataset(path, engine="netcdf4"))
