"""Compiled kernels (numba) of the graded Krylov solver of :mod:`pyspb.backends.native`.

* :func:`graded_liouvillian`: the vacuum-fixed graded Liouvillian of Hermitian states, packed
  output (the GMRES operator); with ``full=False`` its level-lower part.
* :func:`level_solve`: the preconditioner, one pass by increasing level (packed input).
* :func:`graded_jumps`: the quantum-jump superoperator (the residual check).
* :func:`orthogonalize`: modified Gram-Schmidt of a new Krylov vector, point by point.
* :func:`givens_rotate`: the Givens rotations keeping GMRES's least-squares problem triangular.

Sparse products: in the excitation basis the jump operators ``A1``, ``A2`` (the cw and ccw
annihilators) are real and sparse (``nnz(A) = 224`` at cutoff 7, ``550`` at cutoff 10, against
``d^2 = 4096`` and ``14641``), so the drive ``A1 x`` and a sandwich ``A y A^T`` cost
``nnz(A) d`` multiply-adds per product instead of the ``d^3`` of dense products.  Every
product is taken from the left, reading whole rows (``y A^T`` as ``(A y^H)^H``, ``G^H`` as the
adjoint of ``G``: measured 4x faster than scattering products into rows); the kernels loop over
the stored entries directly (no sparse matrix objects, no copies per call) and release the
GIL so that the Krylov workers run side by side.  The Krylov vectors are Hermitian matrices
packed as ``d^2`` reals (``pyspb.backends.native._Hermitian``); the kernels read and write
that layout, so no packing pass is needed per iteration.

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

__all__ = ["givens_rotate", "graded_jumps", "graded_liouvillian", "level_solve", "orthogonalize"]


@numba.njit(cache=True, nogil=True)
def _left_product(y, indptr, indices, data, t, upper):  # pragma: no cover - compiled
    """``t += A y`` for a real CSR ``A`` and a complex (d, d) ``y`` (rows of ``y`` read whole);
    with ``upper``, only the upper triangle of ``t`` (columns ``l >= k``).
    """
    d = y.shape[0]
    for k in range(d):
        start = k if upper else 0
        for p in range(indptr[k], indptr[k + 1]):
            a, row = data[p], indices[p]
            for l in range(start, d):
                t[k, l] += a * y[row, l]


@numba.njit(cache=True, nogil=True)
def _jump_add(t, A, u, out, upper):  # pragma: no cover - compiled
    """``out += A t^H`` (``A = (indptr, indices, data)``, CSR; ``upper`` as in :func:`_left_product`);
    ``u`` scratch.

    With ``t = A y`` and ``y`` Hermitian, ``A t^H = A y A^T``: a jump sandwich from two left
    products (rows read whole) and one adjoint.
    """
    d = t.shape[0]
    for k in range(d):
        for l in range(d):
            u[k, l] = np.conj(t[l, k])
    _left_product(u, A[0], A[1], A[2], out, upper)


@numba.njit(cache=True, nogil=True)
def graded_jumps(x, r, gamma, A1, A2, out):  # pragma: no cover - compiled
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
    A1, A2 : tuple of ndarray
        ``A1`` and ``A2`` in CSR form ``(indptr, indices, data)`` (int64 indices, float64 data).
    out : complex ndarray, shape (npts, d, d)
        Overwritten with the result.
    """
    npts, d = x.shape[0], x.shape[1]
    y = np.empty((d, d), dtype=np.complex128)
    t = np.empty((d, d), dtype=np.complex128)
    u = np.empty((d, d), dtype=np.complex128)
    for n in range(npts):
        for k in range(d):
            for l in range(d):
                y[k, l] = r[n, k] * r[n, l] * x[n, k, l]
        out[n, :, :] = 0.0
        for A in (A1, A2):
            t[:, :] = 0.0
            _left_product(y, A[0], A[1], A[2], t, False)
            _jump_add(t, A, u, out[n], False)
        out[n] *= gamma[n]


@numba.njit(cache=True, nogil=True)
def level_solve(z, vacuum_row, drive, r, diagonal, rows, columns, packed, A1T, out):  # pragma: no cover
    """Solve ``M x = z`` per point, ``M`` the level-lower part of the vacuum-fixed graded Liouvillian.

    Order the elements ``x_kl`` by their level ``s = K_k + K_l``.  The graded Liouvillian is
    diagonal inside a level (``D_kl = -i (E_k - E_l^*)``, ``E`` the diagonal of H_eff), the
    drive's raising part ``B = c^* R^-1 A1^T`` brings level ``s - 1`` to ``s``, its lowering
    part brings ``s + 1`` to ``s`` and the jumps ``s + 2`` to ``s``.  ``M`` keeps the diagonal
    and the raising part, ``M x = D x - i (B x - x B^H)``, with the vacuum equation
    ``(M x)_00 = vacuum_row x_00``; it is lower triangular in level order, so one pass by
    increasing level solves it (one level sweep of :mod:`pyspb.backends.native.gauss_seidel`
    applied to ``z`` from zero).

    Parameters
    ----------
    z : float ndarray, shape (npts, d^2)
        Hermitian right-hand sides, packed: ``[z_kk, sqrt(2) Re z_kl, sqrt(2) Im z_kl]`` (``k < l``;
        ``sqrt(2) Re z_kl`` at ``packed``, ``sqrt(2) Im z_kl`` at ``packed + d (d - 1) / 2``).
    vacuum_row : float ndarray, shape (npts,)
        Weight of the vacuum equation.
    drive : complex ndarray, shape (npts,)
        ``c = xi exp(i arg J)`` (units of gamma).
    r : float ndarray, shape (npts, d)
        Grading ratio of the level of each basis vector.
    diagonal : complex ndarray, shape (npts, d)
        Diagonal ``E`` of the graded H_eff (units of gamma).
    rows, columns : int ndarray, shape (d (d + 1) / 2,)
        ``(k, l)`` (``k <= l``) of the upper-triangle elements by increasing level, the vacuum
        first.
    packed : int ndarray, shape (d (d + 1) / 2,)
        Where ``sqrt(2) Re z_kl`` of each ``(k, l)`` of ``rows, columns`` is in ``z`` (unused for
        ``k = l``).
    A1T : tuple of ndarray
        ``A1^T`` in CSR form ``(indptr, indices, data)``.
    out : complex ndarray, shape (npts, d, d)
        Overwritten with ``x`` (Hermitian, both triangles).
    """
    npts, d = out.shape[0], out.shape[1]
    m = d * (d - 1) // 2
    half = np.sqrt(0.5)
    indptr, indices, data = A1T
    inverse_r = np.empty(d)
    for n in range(npts):
        c, zn, E = drive[n], z[n], diagonal[n]
        x = out[n]
        for k in range(d):
            inverse_r[k] = 1.0 / r[n, k]
        x[0, 0] = zn[0] / vacuum_row[n]
        for p in range(1, rows.size):
            k, l = rows[p], columns[p]
            z_kl = zn[k] + 0.0j if k == l else half * (zn[packed[p]] + 1j * zn[packed[p] + m])
            # (A1^T x)_kl and (x A1)_kl: elements of level s - 1, already solved (both triangles)
            left = 0.0j
            for q in range(indptr[k], indptr[k + 1]):
                left += data[q] * x[indices[q], l]
            right = 0.0j
            for q in range(indptr[l], indptr[l + 1]):
                right += x[k, indices[q]] * data[q]
            lower = np.conj(c) * left * inverse_r[k] - c * right * inverse_r[l]
            # x_kl = (z_kl + i lower) / D_kl with D_kl = -i (E_k - E_l^*) = -i e
            e = E[k] - np.conj(E[l])
            value = (z_kl + 1j * lower) * 1j * np.conj(e) / (e.real * e.real + e.imag * e.imag)
            x[k, l] = value
            x[l, k] = np.conj(value)


@numba.njit(cache=True, nogil=True)
def graded_liouvillian(
    x, vacuum_row, drive, r, diagonal, gamma, position, A1, A1T, A2, full, out
):  # pragma: no cover - compiled
    """The vacuum-fixed graded Liouvillian ``A x`` of a batch of Hermitian ``x``, from sparse products.

    ``(A x)_kl = D_kl x_kl - i (G - G^H)_kl + gamma (A1 y A1^T + A2 y A2^T)_kl`` with the graded
    drive ``G = H' x``, ``H' = c A1 R + c^* R^-1 A1^T`` (``R = diag(r)``; ``x H'^H = G^H`` as
    ``x`` is Hermitian), ``y = R x R`` and ``D`` as in :func:`level_solve`;
    ``(A x)_00 = vacuum_row x_00``.  Every product is a sparse product from the left (rows read
    whole); ``A1 y = (A1 R x) R`` reuses the drive's product.  Arguments as in
    :func:`level_solve` and :func:`graded_jumps` (``A1``, ``A1^T``, ``A2`` in CSR form); ``out``
    (npts, d^2) real receives ``A x`` packed as ``z`` of :func:`level_solve` (``A x`` is
    Hermitian).  With ``full`` False, only the level-lower part ``M x`` of :func:`level_solve`
    (no lowering drive, no jumps).
    """
    npts, d = x.shape[0], x.shape[1]
    m = d * (d - 1) // 2
    root2 = np.sqrt(2.0)
    y = np.empty((d, d), dtype=np.complex128)
    t = np.empty((d, d), dtype=np.complex128)
    u = np.empty((d, d), dtype=np.complex128)
    raising = np.empty((d, d), dtype=np.complex128)
    lowering = np.zeros((d, d), dtype=np.complex128)
    G = np.empty((d, d), dtype=np.complex128)
    jumps = np.zeros((d, d), dtype=np.complex128)  # upper triangle
    for n in range(npts):
        c, rn = drive[n], r[n]
        xn = x[n]
        raising[:, :] = 0.0
        _left_product(xn, A1T[0], A1T[1], A1T[2], raising, False)  # A1^T x
        if full:
            for k in range(d):
                for l in range(d):
                    y[k, l] = rn[k] * xn[k, l]
                    lowering[k, l] = 0.0
            _left_product(y, A1[0], A1[1], A1[2], lowering, False)  # A1 R x
            for k in range(d):
                for l in range(d):
                    t[k, l] = lowering[k, l] * rn[l]  # A1 y
                    y[k, l] *= rn[l]  # y = R x R
                    jumps[k, l] = 0.0
            _jump_add(t, A1, u, jumps, True)
            t[:, :] = 0.0
            _left_product(y, A2[0], A2[1], A2[2], t, False)
            _jump_add(t, A2, u, jumps, True)
        for k in range(d):
            for l in range(d):
                G[k, l] = c * lowering[k, l] + np.conj(c) * raising[k, l] / rn[k]
        for k in range(d):
            for l in range(k, d):
                e = diagonal[n, k] - np.conj(diagonal[n, l])
                value = -1j * (e * xn[k, l] + G[k, l] - np.conj(G[l, k])) + gamma[n] * jumps[k, l]
                if k == l:
                    out[n, k] = value.real
                else:
                    i = d + position[k, l]
                    out[n, i] = root2 * value.real
                    out[n, i + m] = root2 * value.imag
        out[n, 0] = vacuum_row[n] * xn[0, 0].real


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
            total = np.dot(basis[n, i], w[n])  # BLAS
            for k in range(size):
                w[n, k] -= total * basis[n, i, k]
            h[n, i] = total


@numba.njit(cache=True, nogil=True)
def givens_rotate(hessenberg, j, rotations, g):  # pragma: no cover - compiled
    """Bring column ``j`` of each point's Hessenberg matrix to upper-triangular form, per point.

    The ``j`` rotations of the earlier columns are applied to column ``j``; a new rotation
    ``[[c, s], [-s^*, c]]`` (``c`` real) zeroes its subdiagonal element and is applied to the
    rotated right-hand side ``g``, whose element ``j + 1`` is then, in modulus, the residual
    of the least-squares problem of GMRES after ``j + 1`` steps.

    Parameters
    ----------
    hessenberg : ndarray, shape (npts, m + 1, m), real or complex
        Columns ``0 .. j - 1`` already rotated; column ``j`` is rotated in place.
    j : int
    rotations : ndarray, shape (npts, m, 2)
        ``(c, s)`` of each column's rotation; entry ``j`` is written.
    g : ndarray, shape (npts, m + 1)
        Rotated right-hand side; elements ``j`` and ``j + 1`` are updated.
    """
    for n in range(hessenberg.shape[0]):
        h = hessenberg[n]
        for i in range(j):
            c, s = rotations[n, i, 0], rotations[n, i, 1]
            a, b = h[i, j], h[i + 1, j]
            h[i, j] = c * a + s * b
            h[i + 1, j] = -np.conj(s) * a + c * b
        a, b = h[j, j], h[j + 1, j]
        size = np.sqrt(np.abs(a) ** 2 + np.abs(b) ** 2)
        if size == 0:
            c, s = 1.0 + 0 * a, 0 * a
        elif np.abs(a) == 0:
            c, s = 0 * a, 1.0 + 0 * a
        else:
            phase = a / np.abs(a)
            c, s = np.abs(a) / size + 0 * a, phase * np.conj(b) / size
        rotations[n, j, 0], rotations[n, j, 1] = c, s
        h[j, j], h[j + 1, j] = c * a + s * b, 0 * a
        g[n, j + 1] = -np.conj(s) * g[n, j]
        g[n, j] = c * g[n, j]
