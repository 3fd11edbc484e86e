"""NetCDF input and output: complex variables split into ``_re``/``_im``, atomic writes."""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["save", "load", "check_writable"]

#: attribute marking the two halves of a split complex variable
COMPLEX_PART = "pyspb_complex_part"
#: the global ``Conventions`` attribute of every file written (unless the Dataset has one)
CONVENTIONS = "CF-1.10"


#: what the long_name of each part of a split complex variable starts with
_PART_OF = {"re": "real part of ", "im": "imaginary part of "}


def _split_complex(ds: xr.Dataset) -> xr.Dataset:
    out = ds.copy()
    for name in list(out.data_vars):
        var = out[name]
        if np.iscomplexobj(var.values):
            for suffix, part in (("re", var.real), ("im", var.imag)):
                new = f"{name}_{suffix}"
                if new in out:
                    raise ValueError(f"cannot split complex {name!r}: {new!r} exists already")
                attrs = {**var.attrs, COMPLEX_PART: suffix}
                if "long_name" in attrs:  # each part says which part of the variable it is
                    attrs["long_name"] = _PART_OF[suffix] + attrs["long_name"]
                out[new] = part.assign_attrs(attrs)
            out = out.drop_vars(name)
    return out


def _join_complex(ds: xr.Dataset) -> xr.Dataset:
    for name in [n for n in ds.data_vars if ds[n].attrs.get(COMPLEX_PART) == "re"]:
        base = str(name)[: -len("_re")]
        re, im = ds[name], ds[f"{base}_im"]
        attrs = {k: v for k, v in re.attrs.items() if k != COMPLEX_PART}
        if str(attrs.get("long_name", "")).startswith(_PART_OF["re"]):
            attrs["long_name"] = attrs["long_name"][len(_PART_OF["re"]) :]
        ds = ds.drop_vars([name, f"{base}_im"])
        ds[base] = (re + 1j * im).assign_attrs(attrs)
    return ds


def save(ds: xr.Dataset | xr.DataArray, path: str | os.PathLike) -> Path:
    """Write ``ds`` to NetCDF (netCDF4 engine) without ever leaving a half-written file.

    The data go to a temporary file in the directory of the file written, flushed to disk and
    then renamed over it (atomic on POSIX); an interrupted write or a power cut leaves any
    previous file intact.
    If ``path`` is a symbolic link, the file it points to is replaced and the link kept.  The
    file gets the mode of the file it replaces, or else the one the umask gives new files.
    Complex variables are split into ``<name>_re`` and ``<name>_im`` and joined again by
    :func:`load`.  CF habits: a global ``Conventions`` attribute (:data:`CONVENTIONS`), no
    ``_FillValue`` on coordinates.

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        What to write; a DataArray must have a name (it is written as a Dataset of that one
        variable, and :func:`load` returns that Dataset).
    path : path-like
        The file to write (its directory is created if needed).

    Returns
    -------
    pathlib.Path
        ``path`` as given.
    """
    ds = _as_dataset(ds)
    path = Path(path)
    target = Path(os.path.realpath(path))  # a symlink's target, so that the link stays a link
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temporary(target)
    try:
        mode = stat.S_IMODE(os.stat(target if target.exists() else tmp).st_mode)
        data = _split_complex(ds)
        data.attrs.setdefault("Conventions", CONVENTIONS)
        encoding = {name: {"_FillValue": None} for name in data.coords}
        data.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
        os.chmod(tmp, mode)
        flush_to_disk(tmp)
        os.replace(tmp, target)
        flush_to_disk(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def flush_to_disk(path: Path) -> None:
    """``fsync`` a file or a directory, so that a rename done before a power cut survives it.

    The data of the temporary file are flushed before it is renamed over the old file, and the
    directory after, so that a crash leaves the old file or the whole new one, never an empty
    one (what a file system may leave when a rename reaches the disk before the data).  Where
    the operating system cannot open a directory (Windows), the directory is left to it.
    """
    try:  # a file through a writable descriptor (Windows' fsync needs one), a directory read-only
        fd = os.open(path, os.O_RDONLY if os.path.isdir(path) else os.O_RDWR)
    except (IsADirectoryError, PermissionError):
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_temporary(target: Path) -> Path:
    """A new empty file beside ``target`` for :func:`save` to write into and rename.

    Created like any new file (mode 0o666 less the umask), unlike tempfile's 0o600.
    """
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return tmp


def _as_dataset(ds) -> xr.Dataset:
    if isinstance(ds, xr.DataArray):
        if ds.name is None:
            raise TypeError("pyspb.save needs a Dataset or a named DataArray: name it first, e.g. da.rename('g2_cw')")
        return ds.to_dataset()
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"pyspb.save writes an xarray.Dataset or a named xarray.DataArray, got {type(ds).__name__}")
    return ds


def check_writable(path: str | os.PathLike) -> Path:
    """Check, before any work, that :func:`save` can write ``path``; raise an OSError saying why not.

    Creates the missing parent directories (as :func:`save` does) and an empty temporary file
    where :func:`save` would (beside a symbolic link's target), which is removed again.  A full
    disk may still fail the write itself.
    """
    path = Path(path)
    target = Path(os.path.realpath(path))
    try:
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        target.parent.mkdir(parents=True, exist_ok=True)
        _new_temporary(target).unlink()
    except OSError as err:
        raise OSError(err.errno, f"cannot write {path} ({err.strerror or err}); choose a writable location") from err
    return path


def load(path: str | os.PathLike) -> xr.Dataset:
    """Read a file written by :func:`save` into memory, complex variables joined again.

    The ``Conventions`` attribute that :func:`save` adds is dropped again, so that
    ``load(save(ds, path))`` is identical to ``ds``.
    """
    ds = _join_complex(xr.load_dataset(path, engine="netcdf4"))
    if ds.attrs.get("Conventions") == CONVENTIONS:
        del ds.attrs["Conventions"]
    return ds
