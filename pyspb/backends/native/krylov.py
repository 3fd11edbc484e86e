"""Compiled kernels (numba) of the graded Krylov solver of :mod:`pyspb.backends.native`.

* :func:`graded_jumps`: the quantum-jump superoperator.
* :func:`orthogonalize`: modified Gram-Schmidt of a new Krylov vector, point by point.

Jumps: in the excitation basis the jump operators ``A1``, ``A2`` (the cw and ccw annihilators) are
real and sparse (``nnz(A) = 224`` at cutoff 7, ``550`` at cutoff 10, against ``d^2 = 4096``
and ``14641``), so a sandwich ``A y A^T`` costs ``2 nnz(A) d`` multiply-adds instead of the
``2 d^3`` of dense products.  The kernel loops over the stored entries directly: no sparse
matrix objects, no axis moves or copies per call, and the GIL is released so that the
Krylov workers run side by side.

Gram-Schmidt: the Krylov vectors of a point (``d^2`` reals each, up to 61 of them: 7 MB at
cutoff 10) do not fit in cache, so orthogonalisation is limited by memory traffic.  Classical
Gram-Schmidt twice, in NumPy over the batch, reads them four times per iteration; modified
Gram-Schmidt point by point reads each Krylov vector once from memory (the new vector stays in
cache) and is the backward-stable variant for GMRES.

This module imports numba; :mod:`pyspb.backends.native` imports it only when the Krylov solver
first runs (importing pyspb stays fast), and the compiled code is cached on disk.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["graded_jumps", "orthogonalize"]


@numba.njit(cache=True, nogil=True)
def _sandwich_add(y, indptr, indices, data, t, out, g):  # pragma: no cover - compiled
    """``out += g A y A^T`` for one complex (d, d) ``y``; ``A`` real CSR; ``t`` (d, d) scratch."""
    d = y.shape[0]
    t[:, :] = 0.0
    for k in range(d):
        for p in range(indptr[k], indptr[k + 1]):
            a, row = data[p], indices[p]
            for l in range(d):
                t[k, l] += a * y[row, l]
    for k in range(d):
        for l in range(d):
            total = 0.0j
            for p in range(indptr[l], indptr[l + 1]):
                total += data[p] * t[k, indices[p]]
            out[k, l] += g * total


@numba.njit(cache=True, nogil=True)
def graded_jumps(x, r, gamma, indptr1, indices1, data1, indptr2, indices2, data2, out):  # pragma: no cover
    """Graded jumps of a batch: for every point n::

        out[n] = gamma[n] (A1 y A1^T + A2 y A2^T),   y_kl = r[n, k] r[n, l] x[n, k, l]

    Parameters
    ----------
    x : complex ndarray, shape (npts, d, d), C-contiguous
        Graded states.
    r : float ndarray, shape (npts, d)
        Grading ratio of the level of each basis vector, per point.
    gamma : float ndarray, shape (npts,)
        Loss rate per point.
    indptr1, indices1, data1, indptr2, indices2, data2 : ndarray
        ``A1`` and ``A2`` in CSR form (int64 indices, float64 data).
    out : complex ndarray, shape (npts, d, d)
        Overwritten with the result.
    """
    npts, d = x.shape[0], x.shape[1]
    y = np.empty((d, d), dtype=np.complex128)
    t = np.empty((d, d), dtype=np.complex128)
    for n in range(npts):
        for k in range(d):
            for l in range(d):
                y[k, l] = r[n, k] * r[n, l] * x[n, k, l]
        out[n, :, :] = 0.0
        _sandwich_add(y, indptr1, indices1, data1, t, out[n], gamma[n])
        _sandwich_add(y, indptr2, indices2, data2, t, out[n], gamma[n])


@numba.njit(cache=True, nogil=True)
def orthogonalize(basis, j, w, h):  # pragma: no cover - compiled
    """Modified Gram-Schmidt of ``w`` against the first ``j + 1`` Krylov vectors, per point.

    For every point n and i = 0 .. j in turn: ``h[n, i] = basis[n, i] . w[n]``, then
    ``w[n] -= h[n, i] basis[n, i]``.

    Parameters
    ----------
    basis : float ndarray, shape (npts, m, D)
        Orthonormal Krylov vectors (real), rows 0 .. j used.
    j : int
    w : float ndarray, shape (npts, D)
        Overwritten with its part orthogonal to those vectors.
    h : float ndarray, shape (npts, j + 1)
        Overwritten with the projections.
    """
    npts, size = w.shape
    for n in range(npts):
        for i in range(j + 1):
            total = 0.0
            for k in range(size):
                total += basis[n, i, k] * w[n, k]
            for k in range(size):
                w[n, k] -= total * basis[n, i, k]
            h[n, i] = total
