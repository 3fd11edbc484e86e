"""Compiled kernels (numba) of the graded Krylov solver of :mod:`pyspb.backends.native`.

* :func:`graded_liouvillian`: the vacuum-fixed graded Liouvillian of Hermitian states, packed
  output (the GMRES operator); with ``full=False`` its level-lower part.
* :func:`level_solve`: the preconditioner, one pass over the levels (row block by row block;
  packed input); :func:`level_preconditioned` applies it and then the Liouvillian.
* :func:`graded_jumps`: the quantum-jump superoperator (the residual check).
* :func:`graded_remainder`: the remainder ``b - A x`` with the energies, the drive and the jumps
  summed in twice the working precision (the refinement of nearly empty modes' answers).
* :func:`orthogonalize`: modified Gram-Schmidt of a new Krylov vector, point by point, and the next
  Krylov vector.
* :func:`givens_rotate`: the Givens rotations keeping GMRES's least-squares problem triangular.
* :func:`update_solution`: GMRES's update of the solution from its least-squares problem.
* :func:`level_gmres`: the whole restarted GMRES with the level preconditioner, point after point
  (the kernels above, no Python between iterations).

Sparse products: in the excitation basis the jump operators ``A1``, ``A2`` (the cw and ccw
annihilators) are real and sparse (``nnz(A) = 224`` at cutoff 7, ``550`` at cutoff 10, against
``d^2 = 4096`` and ``14641``; most of them between the blocks from K = cutoff up, where
the per-mode truncation mixes the states: 440 of the 550), so the drive ``A1 x`` and a sandwich
``A y A^T`` cost ``nnz(A) d`` multiply-adds per product instead of the ``d^3`` of dense
products.  Every
product is taken from the left, reading whole rows (``y A^T`` as ``(A y^H)^H``, ``G^H`` as the
adjoint of ``G``: measured 4x faster than scattering products into rows); the kernels loop over
the stored entries directly (no sparse matrix objects, no copies per call) and release the
GIL so that the Krylov workers run side by side.  The Krylov vectors are Hermitian matrices
packed as ``d^2`` reals (``pyspb.backends.native._Hermitian``); the kernels read and write
that layout, so no packing pass is needed per iteration.

Gram-Schmidt: the Krylov vectors of a point (``d^2`` reals each, up to 61 of them: 7 MB at
cutoff 10) are read at every iteration, so orthogonalisation is limited by memory traffic
(:func:`level_gmres` keeps one point's at a time; for the batched GMRES of the no-jump inverse
:mod:`pyspb.backends.native` sizes its batches so that those of the batches running side by
side stay in the last-level cache).  Classical
Gram-Schmidt twice reads them four times per iteration (measured at cutoff 7, 31 vectors: one
classical pass as two BLAS matrix-vector products already took 1.4x the time of the modified
one); modified Gram-Schmidt point by point reads each Krylov vector once from memory (the new
vector stays in cache) and is the backward-stable variant for GMRES.  It also writes the next
Krylov vector, and works on the rows of the points still iterating (no copies when points
leave GMRES).

This module imports numba; :mod:`pyspb.backends.native` imports it only when the Krylov solver
first runs (importing pyspb stays fast), and the compiled code is cached on disk.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "givens_rotate",
    "graded_jumps",
    "graded_liouvillian",
    "graded_remainder",
    "level_gmres",
    "level_preconditioned",
    "level_solve",
    "orthogonalize",
    "update_solution",
]


@numba.njit(cache=True, nogil=True)
def _left_product(y, indptr, indices, data, t):  # pragma: no cover - compiled
    """``t += A y`` for a real CSR ``A`` and a complex (d, d) ``y`` (rows of ``y`` read whole).

    (Whole rows: limited to the upper triangle of ``t``, the product took 1.5-1.9x the time.)
    """
    d = y.shape[0]
    # on the real and imaginary parts (A is real): a complex product by a real number would
    # cost a full complex multiplication, whose products with the zero imaginary part the
    # compiler must keep
    y_real, t_real = y.view(np.float64), t.view(np.float64)
    for k in range(d):
        for p in range(indptr[k], indptr[k + 1]):
            a, row = data[p], indices[p]
            for l in range(2 * d):
                t_real[k, l] += a * y_real[row, l]


@numba.njit(cache=True, nogil=True)
def _jump_add(t, indptr, indices, data, u, out):  # pragma: no cover - compiled
    """``out += A t^H`` (``A`` in CSR form ``(indptr, indices, data)``); ``u`` scratch.

    With ``t = A y`` and ``y`` Hermitian, ``A t^H = A y A^T``: a jump sandwich from two left
    products (rows read whole) and one adjoint.
    """
    d = t.shape[0]
    for k in range(d):
        for l in range(d):
            u[k, l] = np.conj(t[l, k])
    _left_product(u, indptr, indices, data, out)


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
            _left_product(y, A[0], A[1], A[2], t)
            _jump_add(t, A[0], A[1], A[2], u, out[n])
        out[n] *= gamma[n]


@numba.njit(cache=True, nogil=True)
def level_solve(z, vacuum_row, drive, r, diagonal, starts, row_offset, A1T, out):  # pragma: no cover
    """Solve ``M x = z`` per point, ``M`` the level-lower part of the vacuum-fixed graded Liouvillian.

    Order the elements ``x_kl`` by their level ``s = K_k + K_l``.  The graded Liouvillian is
    diagonal inside a level (``D_kl = -i (E_k - E_l^*)``, ``E`` the diagonal of H_eff), the
    drive's raising part ``B = c^* R^-1 A1^T`` brings level ``s - 1`` to ``s``, its lowering
    part brings ``s + 1`` to ``s`` and the jumps ``s + 2`` to ``s``.  ``M`` keeps the diagonal
    and the raising part, ``M x = D x - i (B x - x B^H)``, with the vacuum equation
    ``(M x)_00 = vacuum_row x_00``; it is lower triangular in level order, so one pass by
    increasing level solves it (one level sweep of :mod:`pyspb.backends.native.gauss_seidel`
    applied to ``z`` from zero).

    The basis is sorted by excitation number (blocks ``starts[K] .. starts[K + 1]``), and the
    upper triangle is solved row block by row block, each row by increasing column block:
    element ``(k, l)`` (blocks ``a <= b``) needs ``x`` of the rows of block ``a - 1`` (``(A1^T x)_kl``,
    formed for a whole row block at once, rows of ``x`` read whole: vectorised) and of row
    ``k``'s columns of block ``b - 1`` (``(x A1)_kl``, a short sum), both solved before it.

    Parameters
    ----------
    z : float ndarray, shape (npts, d^2)
        Hermitian right-hand sides, packed: ``[z_kk, sqrt(2) Re z_kl, sqrt(2) Im z_kl]`` (``k < l``;
        ``sqrt(2) Re z_kl`` at ``row_offset[k] + l``, ``sqrt(2) Im z_kl`` at
        ``row_offset[k] + l + d (d - 1) / 2``).
    vacuum_row : float ndarray, shape (npts,)
        Weight of the vacuum equation.
    drive : complex ndarray, shape (npts,)
        ``c = xi exp(i arg J)`` (units of gamma).
    r : float ndarray, shape (npts, d)
        Grading ratio of the level of each basis vector.
    diagonal : complex ndarray, shape (npts, d)
        Diagonal ``E`` of the graded H_eff (units of gamma).
    starts : int ndarray, shape (levels + 1,)
        First basis vector of each excitation block, and ``d``.
    row_offset : int ndarray, shape (d,)
        Where ``sqrt(2) Re z_kl`` of row ``k`` is in ``z``, less ``l``.
    A1T : tuple of ndarray
        ``A1^T`` in CSR form ``(indptr, indices, data)``.
    out : complex ndarray, shape (npts, d, d)
        Overwritten with ``x`` (Hermitian, both triangles).
    """
    npts, d = out.shape[0], out.shape[1]
    m = d * (d - 1) // 2
    top = starts.size - 2  # the highest excitation block
    half = np.sqrt(0.5)
    indptr, indices, data = A1T
    inverse_r = np.empty(d)
    T = np.empty((d, 2 * d))  # A1^T x on the rows of the block being solved (real, imaginary parts)
    for n in range(npts):
        c, zn, E = drive[n], z[n], diagonal[n]
        cc = np.conj(c)
        x = out[n]
        x_real = x.view(np.float64)  # real arithmetic where a factor is real (see _left_product)
        for k in range(d):
            inverse_r[k] = 1.0 / r[n, k]
        x[0, 0] = zn[0] / vacuum_row[n]
        for a in range(top + 1):
            first = 2 * starts[a]
            for k in range(starts[a], starts[a + 1]):  # (A1^T x)_kl, l from the block's start
                for column in range(first, 2 * d):
                    T[k, column] = 0.0
                for q in range(indptr[k], indptr[k + 1]):
                    weight, row = data[q], indices[q]
                    for column in range(first, 2 * d):
                        T[k, column] += weight * x_real[row, column]
            for b in range(a, top + 1):
                for k in range(starts[a], starts[a + 1]):
                    for l in range(max(k, starts[b], 1), starts[b + 1]):  # (0, 0): the vacuum equation
                        if k == l:
                            z_re, z_im = zn[k], 0.0
                        else:
                            z_re, z_im = half * zn[row_offset[k] + l], half * zn[row_offset[k] + l + m]
                        # (x A1)_kl = sum_j x_kj A1^T_lj, j in block b - 1 (row k, solved)
                        right_re = right_im = 0.0
                        for q in range(indptr[l], indptr[l + 1]):
                            right_re += x_real[k, 2 * indices[q]] * data[q]
                            right_im += x_real[k, 2 * indices[q] + 1] * data[q]
                        left = complex(T[k, 2 * l] * inverse_r[k], T[k, 2 * l + 1] * inverse_r[k])
                        right = complex(right_re * inverse_r[l], right_im * inverse_r[l])
                        lower = cc * left - c * right
                        # x_kl = (z_kl + i lower) / D_kl with D_kl = -i (E_k - E_l^*) = -i e:
                        # x_kl = u i e^* / |e|^2, u = z_kl + i lower
                        e = E[k] - np.conj(E[l])
                        u_re, u_im = z_re - lower.imag, z_im + lower.real
                        inverse = 1.0 / (e.real * e.real + e.imag * e.imag)
                        value_re = (u_re * e.imag - u_im * e.real) * inverse
                        value_im = (u_re * e.real + u_im * e.imag) * inverse
                        x[k, l] = complex(value_re, value_im)
                        x[l, k] = complex(value_re, -value_im)


@numba.njit(cache=True, nogil=True)
def _scaled(A, row_scale, column_scale, out):  # pragma: no cover - compiled
    """``out``: the stored values of ``diag(row_scale) A diag(column_scale)`` (``A`` in CSR form)."""
    indptr, indices, data = A
    for k in range(indptr.size - 1):
        for p in range(indptr[k], indptr[k + 1]):
            out[p] = row_scale[k] * data[p] * column_scale[indices[p]]


@numba.njit(cache=True, nogil=True)
def graded_liouvillian(
    x, vacuum_row, drive, r, diagonal, gamma, row_offset, A1, A1T, A2, full, out
):  # pragma: no cover - compiled
    """The vacuum-fixed graded Liouvillian ``A x`` of a batch of Hermitian ``x``, from sparse products.

    ``(A x)_kl = D_kl x_kl - i (G - G^H)_kl + gamma (A1 y A1^T + A2 y A2^T)_kl`` with the graded
    drive ``G = H' x``, ``H' = c A1 R + c^* R^-1 A1^T`` (``R = diag(r)``; ``x H'^H = G^H`` as
    ``x`` is Hermitian), ``y = R x R`` and ``D`` as in :func:`level_solve`;
    ``(A x)_00 = vacuum_row x_00``.  The grading goes into the stored values of the sparse
    factors, per point (``A1 R``, ``R^-1 A1^T``, ``A2 R``): every product is a sparse product
    from the left (rows read whole) with no pass over the states to scale them, and the jumps
    ``A y A^T = (A R) ((A R) x)^H`` reuse the drive's product ``A1 R x``.  Arguments as in
    :func:`level_solve` (``row_offset``: the packed layout of ``out``) and :func:`graded_jumps`
    (``A1``, ``A1^T``, ``A2`` in CSR form); ``out``
    (npts, d^2) real receives ``A x`` packed as ``z`` of :func:`level_solve` (``A x`` is
    Hermitian).  With ``full`` False, only the level-lower part ``M x`` of :func:`level_solve`
    (no lowering drive, no jumps).
    """
    npts, d = x.shape[0], x.shape[1]
    m = d * (d - 1) // 2
    root2 = np.sqrt(2.0)
    u = np.empty((d, d), dtype=np.complex128)
    raising = np.empty((d, d), dtype=np.complex128)  # R^-1 A1^T x
    lowering = np.zeros((d, d), dtype=np.complex128)  # A1 R x
    ccw = np.empty((d, d), dtype=np.complex128)  # A2 R x
    jumps = np.zeros((d, d), dtype=np.complex128)
    A1_R, A2_R, raise_R = np.empty(A1[2].size), np.empty(A2[2].size), np.empty(A1T[2].size)
    ones = np.ones(d)
    inverse_r = np.empty(d)
    for n in range(npts):
        c, rn, xn = drive[n], r[n], x[n]
        for k in range(d):
            inverse_r[k] = 1.0 / rn[k]
        _scaled(A1T, inverse_r, ones, raise_R)
        raising[:, :] = 0.0
        _left_product(xn, A1T[0], A1T[1], raise_R, raising)
        if full:
            _scaled(A1, ones, rn, A1_R)
            _scaled(A2, ones, rn, A2_R)
            lowering[:, :] = 0.0
            _left_product(xn, A1[0], A1[1], A1_R, lowering)
            ccw[:, :] = 0.0
            _left_product(xn, A2[0], A2[1], A2_R, ccw)
            jumps[:, :] = 0.0
            _jump_add(lowering, A1[0], A1[1], A1_R, u, jumps)
            _jump_add(ccw, A2[0], A2[1], A2_R, u, jumps)
        cc, g = np.conj(c), gamma[n]
        G = raising  # the drive G = c A1 R x + c^* R^-1 A1^T x, in place
        for k in range(d):
            for l in range(d):
                G[k, l] = c * lowering[k, l] + cc * raising[k, l]
        for k in range(d):
            E_k = diagonal[n, k]
            for l in range(k, d):
                # value = -i q + gamma (jumps)_kl, q = (E_k - E_l^*) x_kl + G_kl - conj(G_lk)
                q = (E_k - np.conj(diagonal[n, l])) * xn[k, l] + G[k, l] - np.conj(G[l, k])
                jump = jumps[k, l]
                value_re, value_im = q.imag + g * jump.real, g * jump.imag - q.real
                if k == l:
                    out[n, k] = value_re
                else:
                    i = row_offset[k] + l
                    out[n, i] = root2 * value_re
                    out[n, i + m] = root2 * value_im
        out[n, 0] = vacuum_row[n] * xn[0, 0].real


@numba.njit(cache=True, nogil=True)
def level_preconditioned(
    z, vacuum_row, drive, r, diagonal, gamma, starts, row_offset, A1, A1T, A2, x, out
):  # pragma: no cover - compiled
    """``A M^-1 z``: :func:`level_solve` of ``z`` into ``x``, then :func:`graded_liouvillian` of ``x``
    into ``out``, in one call (GMRES's operator with the level preconditioner: one dispatch, and
    no Python, which would hold the GIL, between the two).  Arguments as there.
    """
    level_solve(z, vacuum_row, drive, r, diagonal, starts, row_offset, A1T, x)
    graded_liouvillian(x, vacuum_row, drive, r, diagonal, gamma, row_offset, A1, A1T, A2, True, out)


@numba.njit(cache=True, nogil=True, inline="always")
def _two_sum(a, b):  # pragma: no cover - compiled
    """``(s, e)`` with ``s = fl(a + b)`` and ``s + e = a + b`` exactly (Knuth)."""
    s = a + b
    z = s - a
    return s, (a - (s - z)) + (b - z)


@numba.njit(cache=True, nogil=True, inline="always")
def _split(a):  # pragma: no cover - compiled
    """``(high, low)``, ``high + low = a``, each with at most 26 significant bits (Veltkamp)."""
    t = 134217729.0 * a  # 2^27 + 1
    high = t - (t - a)
    return high, a - high


@numba.njit(cache=True, nogil=True, inline="always")
def _add_product(high, low, a, b):  # pragma: no cover - compiled
    """``(high, low) + a b`` in twice the working precision (one step of Dot2, Ogita-Rump-Oishi)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    error = ((ah * bh - p) + ah * bl + al * bh) + al * bl  # p + error = a b exactly (Dekker)
    s, e = _two_sum(high, p)
    return s, low + (e + error)


@numba.njit(cache=True, nogil=True, inline="always")
def _add_complex_product(total, c, v):  # pragma: no cover - compiled
    """``total + c v`` for complex ``c``, ``v``; ``total = (re, re_low, im, im_low)`` in twice the precision."""
    re, re_low = _add_product(total[0], total[1], c.real, v.real)
    re, re_low = _add_product(re, re_low, -c.imag, v.imag)
    im, im_low = _add_product(total[2], total[3], c.real, v.imag)
    im, im_low = _add_product(im, im_low, c.imag, v.real)
    return re, re_low, im, im_low


@numba.njit(cache=True, nogil=True)
def graded_remainder(x, rest, drive, r, diagonal, gamma, A1, A1T, A2, out):  # pragma: no cover - compiled
    """``out = rest + i (E x - x E^* + G - G^H) - gamma (A1 y A1^T + A2 y A2^T)`` per point, the sum
    in twice the working precision.

    With ``rest = b`` and the vacuum equation's remainder at (0, 0), this is the remainder
    ``b - A x`` of the vacuum-fixed graded Liouvillian (:func:`graded_liouvillian`), ``E`` the
    diagonal of H_eff, ``G = c A1 R x + c^* R^-1 A1^T x`` the graded drive and ``y = R x R``.  The
    energies, the drive and the jumps are the terms of ``A x`` that cancel (the energies up to
    ~1e4 times what they leave at chi ~ 500 gamma): every one of their products is split
    exactly into a rounded value and its error (Dekker) and the sum is compensated (Dot2, Ogita,
    Rump and Oishi 2005), so the result is as if computed in twice the precision and then
    rounded; the jumps as ``A y A^T = (A R) (x (A R)^T)``, the inner product kept in twice the
    precision.  The coefficients (``c a r``, ``c^* a / r``, ``a r``, ``gamma a r``) are rounded
    once, the same at every call: an operator perturbed by ~1e-16, whose remainder is exact.  (With
    the jumps in working precision, their rounding was the floor of g4 of a nearly empty mode at
    the edge of the resolution rule: 1.0e-6, against 2.5e-7 with them in long double.)
    Element (0, 0) is ``rest``'s alone (the vacuum equation).

    Parameters
    ----------
    x : complex ndarray, shape (npts, d, d)
        Hermitian graded states.
    rest : complex ndarray, shape (npts, d, d)
        ``b``, and at (0, 0) the vacuum equation's remainder (Hermitian).
    drive, r, diagonal, gamma :
        As in :func:`graded_liouvillian`.
    A1, A1T, A2 : tuple of ndarray
        ``A1``, ``A1^T`` and ``A2`` in CSR form.
    out : complex ndarray, shape (npts, d, d)
        Receives the remainder (Hermitian).
    """
    npts, d = x.shape[0], x.shape[1]
    lowering = np.empty(A1[1].size, dtype=np.complex128)  # c a r of every stored entry of A1 R
    raising = np.empty(A1T[1].size, dtype=np.complex128)  # c^* a / r of every stored entry of R^-1 A1^T
    A1_R, A2_R = np.empty(A1[2].size), np.empty(A2[2].size)  # a r of every stored entry of A1 R, A2 R
    ones = np.ones(d)
    # x (A R)^T of each jump operator in twice the precision: [operator, part, i, l], part = real
    # and its low word, imaginary and its low word
    half = np.empty((2, 4, d, d))
    for n in range(npts):
        xn, E, rn, g = x[n], diagonal[n], r[n], gamma[n]
        for p in range(A1[1].size):
            lowering[p] = drive[n] * (A1[2][p] * rn[A1[1][p]])
        for k in range(d):
            for p in range(A1T[0][k], A1T[0][k + 1]):
                raising[p] = np.conj(drive[n]) * (A1T[2][p] / rn[k])
        _scaled(A1, ones, rn, A1_R)
        _scaled(A2, ones, rn, A2_R)
        for which, A, AR in ((0, A1, A1_R), (1, A2, A2_R)):
            for i in range(d):
                for l in range(d):
                    re = re_low = im = im_low = 0.0
                    for q in range(A[0][l], A[0][l + 1]):
                        value = xn[i, A[1][q]]
                        re, re_low = _add_product(re, re_low, AR[q], value.real)
                        im, im_low = _add_product(im, im_low, AR[q], value.imag)
                    half[which, 0, i, l], half[which, 1, i, l] = re, re_low
                    half[which, 2, i, l], half[which, 3, i, l] = im, im_low
        for k in range(d):
            for l in range(k, d):
                total = (0.0, 0.0, 0.0, 0.0)
                jumps = (0.0, 0.0, 0.0, 0.0)
                if k > 0 or l > 0:
                    total = _add_complex_product(total, E[k] - np.conj(E[l]), xn[k, l])
                    # + G_kl, then - conj(G_lk) as the sum of the conjugate products, negated
                    for A, w in ((A1, lowering), (A1T, raising)):
                        for p in range(A[0][k], A[0][k + 1]):
                            total = _add_complex_product(total, w[p], xn[A[1][p], l])
                        for p in range(A[0][l], A[0][l + 1]):
                            total = _add_complex_product(total, -np.conj(w[p]), np.conj(xn[A[1][p], k]))
                    # - gamma (A y A^T)_kl = - sum_i gamma (a_ki r_i) (x (A R)^T)_il
                    jump_re = jump_re_low = jump_im = jump_im_low = 0.0
                    for which, A, AR in ((0, A1, A1_R), (1, A2, A2_R)):
                        for p in range(A[0][k], A[0][k + 1]):
                            i, coefficient = A[1][p], -(g * AR[p])
                            jump_re, jump_re_low = _add_product(jump_re, jump_re_low, coefficient, half[which, 0, i, l])
                            jump_re_low += coefficient * half[which, 1, i, l]
                            jump_im, jump_im_low = _add_product(jump_im, jump_im_low, coefficient, half[which, 2, i, l])
                            jump_im_low += coefficient * half[which, 3, i, l]
                    jumps = (jump_re, jump_re_low, jump_im, jump_im_low)
                re, re_low, im, im_low = total
                jump_re, jump_re_low, jump_im, jump_im_low = jumps
                # rest + i V - gamma J: real part rest.real - Im V + Re(-gamma J), imaginary part
                # rest.imag + Re V + Im(-gamma J)
                a, a_low = _two_sum(rest[n, k, l].real, -im)
                a, a_low2 = _two_sum(a, jump_re)
                b, b_low = _two_sum(rest[n, k, l].imag, re)
                b, b_low2 = _two_sum(b, jump_im)
                value = complex(
                    a + ((a_low + a_low2) + (jump_re_low - im_low)), b + ((b_low + b_low2) + (jump_im_low + re_low))
                )
                out[n, l, k] = np.conj(value)
                out[n, k, l] = value


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _dot(a, b):  # pragma: no cover - compiled
    """``a^H b`` (summed in any order: vectorised)."""
    total = 0.0 * a[0]  # of the vectors' type, real or complex
    for e in range(a.size):
        total += np.conj(a[e]) * b[e]
    return total


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _subtract_and_dot(w, h, previous, following):  # pragma: no cover - compiled
    """``w -= h previous``, and ``following^H w`` of the new ``w``, in one pass over ``w``."""
    total = 0.0 * h
    for e in range(w.size):
        value = w[e] - h * previous[e]
        w[e] = value
        total += np.conj(following[e]) * value
    return total


@numba.njit(cache=True, nogil=True)
def orthogonalize(basis, rows, j, w, hessenberg):  # pragma: no cover - compiled
    """Modified Gram-Schmidt of each new Krylov vector ``w[i]`` against the first ``j + 1``
    Krylov vectors of its point ``n = rows[i]``, and the next Krylov vector.

    For i = 0 .. j in turn: ``h_i = basis[n, i]^H w``, ``w -= h_i basis[n, i]``; then
    ``basis[n, j + 1] = w / |w|``.  The projections and ``|w|`` are column ``j`` of the point's
    Hessenberg matrix.  Each subtraction and the next projection share one pass over ``w``
    (each Krylov vector is read from memory once, and again from cache: 18-21 % faster than
    a dot product and a subtraction in turn, measured at cutoffs 7 and 10).

    Parameters
    ----------
    basis : ndarray, shape (npts, m + 1, D), real or complex
        Orthonormal Krylov vectors of each point, rows 0 .. j used; row ``j + 1`` of the points
        ``rows`` is written.
    rows : int ndarray, shape (n,)
        The points (first index of ``basis`` and ``hessenberg``) of the vectors ``w``.
    j : int
    w : ndarray, shape (n, D), same type as ``basis``
        New Krylov vectors; overwritten with their parts orthogonal to the basis.
    hessenberg : ndarray, shape (npts, m + 1, m)
        Column ``j`` (rows 0 .. j + 1) of the points ``rows`` is written.
    """
    size = w.shape[1]
    for i in range(rows.size):
        n, wi = rows[i], w[i]
        h = _dot(basis[n, 0], wi)
        for k in range(j + 1):
            hessenberg[n, k, j] = h
            # after the last subtraction: |w|^2
            h = _subtract_and_dot(wi, h, basis[n, k], basis[n, k + 1] if k < j else wi)
        norm = np.sqrt(h.real)
        hessenberg[n, j + 1, j] = norm
        scale = 1.0 / norm if norm > 0 else 1.0
        for e in range(size):
            basis[n, j + 1, e] = wi[e] * scale


@numba.njit(cache=True, nogil=True)
def update_solution(x, points, basis, rows, j, hessenberg, g):  # pragma: no cover - compiled
    """``x[points[i]] += sum_k y_k basis[rows[i], k]`` (k = 0 .. j), with ``y`` the solution of the
    point's rotated least-squares problem ``R y = g`` (``R`` the first ``j + 1`` rows and columns
    of its upper-triangular rotated Hessenberg matrix), by back substitution.

    A happy breakdown leaves a zero pivot: its component of ``y`` is zero anyway (pivot taken as
    1).  No copies of the Krylov vectors, and no Python between the points (compiled, without
    the GIL: the batches of the other workers run meanwhile).
    """
    size = basis.shape[2]
    y = np.empty(j + 1, dtype=g.dtype)
    for i in range(rows.size):
        n, point = rows[i], points[i]
        R = hessenberg[n]
        for row in range(j, -1, -1):
            total = g[n, row]
            for column in range(row + 1, j + 1):
                total -= R[row, column] * y[column]
            pivot = R[row, row]
            y[row] = total / pivot if pivot != 0 else total
        for k in range(j + 1):
            coefficient = y[k]
            for e in range(size):
                x[point, e] += coefficient * basis[n, k, e]


@numba.njit(cache=True, nogil=True)
def givens_rotate(hessenberg, rows, j, rotations, g, limits, finished):  # pragma: no cover - compiled
    """Bring column ``j`` of the Hessenberg matrix of the points ``rows`` to upper-triangular form.

    The ``j`` rotations of the earlier columns are applied to column ``j``; a new rotation
    ``[[c, s], [-s^*, c]]`` (``c`` real) zeroes its subdiagonal element and is applied to the
    rotated right-hand side ``g``, whose element ``j + 1`` is then, in modulus, the residual
    of the least-squares problem of GMRES after ``j + 1`` steps.

    Parameters
    ----------
    hessenberg : ndarray, shape (npts, m + 1, m), real or complex
        Columns ``0 .. j - 1`` already rotated; column ``j`` is rotated in place.
    rows : int ndarray
        The points (first index of the arrays) to rotate.
    j : int
    rotations : ndarray, shape (npts, m, 2)
        ``(c, s)`` of each column's rotation; entry ``j`` is written.
    g : ndarray, shape (npts, m + 1)
        Rotated right-hand side; elements ``j`` and ``j + 1`` are updated.
    limits : float ndarray, shape (rows.size,)
        The residual at which each point has converged.
    finished : bool ndarray, shape (rows.size,) or longer
        Written: whether ``|g[rows[i], j + 1]| <= limits[i]`` (never where it is NaN).

    Returns
    -------
    int
        How many points finished (the check here, compiled, rather than in GMRES's Python loop:
        that loop holds the GIL, which the other workers' batches wait for).
    """
    count = 0
    for point in range(rows.size):
        n = rows[point]
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
        finished[point] = np.abs(g[n, j + 1]) <= limits[point]
        count += finished[point]
    return count


@numba.njit(cache=True, nogil=True, error_model="numpy")
def level_gmres(
    b,
    start,
    use_start,
    tolerance,
    restart,
    max_restarts,
    vacuum_row,
    drive,
    r,
    diagonal,
    gamma,
    starts,
    row_offset,
    A1,
    A1T,
    A2,
    z,
    residual,
):  # pragma: no cover - compiled
    """Restarted GMRES for ``A M^-1 z = b``, point after point, all compiled (no GIL throughout).

    ``A M^-1`` is :func:`level_preconditioned` (the level solve, then the graded Liouvillian);
    the algorithm is that of ``pyspb.backends.native._gmres`` for one point at a time: with
    ``use_start``, the start ``start[n]`` scaled by the factor that minimises the starting
    residual (0 where that is not finite); Arnoldi by :func:`orthogonalize`, least squares by
    :func:`givens_rotate` until its residual is within ``tolerance |b|`` or ``restart`` vectors,
    the update by :func:`update_solution`; then the residual ``|b - A M^-1 z| / |b|`` measured,
    and another cycle (``max_restarts`` in all) while it is above ``tolerance`` (NaN stops).
    Divisions by zero give inf or NaN as in NumPy (``error_model="numpy"``), as there: a zero
    start is scaled by 0, a zero ``b`` gives a NaN residual.

    One point at a time: its Krylov vectors (``restart + 1`` of ``d^2`` reals, 2 MB at cutoff 7)
    stay in the core's cache, and a batch of points costs one dispatch and no Python per
    iteration, which held the GIL for ~16 % of a Krylov worker's time (the other worker waited).

    Parameters
    ----------
    b : float ndarray, shape (npts, d^2)
        Packed right-hand sides.
    start : float ndarray, shape (npts, d^2)
        Packed starts (read only with ``use_start``).
    use_start : bool
    tolerance : float
    restart, max_restarts : int
    vacuum_row, drive, r, diagonal, gamma, starts, row_offset, A1, A1T, A2
        As in :func:`level_preconditioned` (per point, and the fixed operators).
    z : float ndarray, shape (npts, d^2)
        Overwritten with the solutions.
    residual : float ndarray, shape (npts,)
        Overwritten with the measured relative residuals.
    """
    npts, size = b.shape
    d = diagonal.shape[1]
    basis = np.empty((1, restart + 1, size))
    hessenberg = np.zeros((1, restart + 1, restart))
    rotations = np.zeros((1, restart, 2))
    g = np.zeros((1, restart + 1))
    rows = np.zeros(1, dtype=np.int64)
    limits = np.empty(1)
    finished = np.zeros(1, dtype=np.bool_)
    state = np.empty((1, d, d), dtype=np.complex128)
    image = np.empty((1, size))
    remainder = np.empty(size)
    for n in range(npts):
        point = (vacuum_row[n : n + 1], drive[n : n + 1], r[n : n + 1], diagonal[n : n + 1], gamma[n : n + 1])
        x = z[n : n + 1]
        b_n = b[n]
        b_norm = np.sqrt(_dot(b_n, b_n))
        if use_start:
            x[0, :] = start[n]
            level_preconditioned(x, *point, starts, row_offset, A1, A1T, A2, state, image)
            scale = _dot(image[0], b_n) / _dot(image[0], image[0])
            if not np.isfinite(scale):
                scale = 0.0
            for e in range(size):
                x[0, e] *= scale
                remainder[e] = b_n[e] - scale * image[0, e]
        else:
            x[0, :] = 0.0
            remainder[:] = b_n
        measured = 1.0
        for _ in range(max_restarts):
            beta = np.sqrt(_dot(remainder, remainder))
            for e in range(size):
                basis[0, 0, e] = remainder[e] / beta
            hessenberg[:] = 0.0
            g[:] = 0.0
            g[0, 0] = beta
            limits[0] = tolerance * b_norm
            j = 0
            for j in range(restart):
                level_preconditioned(basis[0, j : j + 1], *point, starts, row_offset, A1, A1T, A2, state, image)
                orthogonalize(basis, rows, j, image, hessenberg)
                if givens_rotate(hessenberg, rows, j, rotations, g, limits, finished):
                    break
            update_solution(x, rows, basis, rows, j, hessenberg, g)
            level_preconditioned(x, *point, starts, row_offset, A1, A1T, A2, state, image)
            for e in range(size):
                remainder[e] = b_n[e] - image[0, e]
            measured = np.sqrt(_dot(remainder, remainder)) / b_norm
            if not measured > tolerance:
                break
        residual[n] = measured
