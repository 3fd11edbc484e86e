"""Level sweeps (cutoffs up to 12): one compiled loop over the density matrix in level order.

The level sweeps of :mod:`pyspb.backends.native.gauss_seidel` visit the blocks ``(K, K')`` of the
density matrix ``x`` (excitation basis, gauge of ``J`` removed) by increasing level
``s = K + K'``.  Elements of one level do not couple to each other (the drive moves ``s`` by
+-1, the jumps bring ``s + 2`` down to ``s``, the energies keep every element), so a whole
level can be updated at once.  This module stores ``x`` as one vector per point, its
elements sorted by level, and the Liouvillian's fixed parts as sparse matrices::

    (L x)_s = D_s x_s - i xi (X_{s,s-1} x_{s-1} + X_{s,s+1} x_{s+1}) + C_{s,s+2} x_{s+2}

with ``X = X (x) 1 - 1 (x) X`` the drive's commutator (real, fixed), ``C`` the jumps (real,
fixed) and ``D`` the per-point energies (diagonal).  One sweep is one call of a compiled
kernel (:func:`sweep_kernel`, numba, without the GIL) whose cost is the arithmetic alone: no
NumPy call per level or block, which is what a single point or a handful of points cost
before; the products run over the real and imaginary parts of all points of a batch at once
(vectorised), so that a few dozen points at a time also beat the block layout's BLAS calls on
large grids.  As the block sweeps do, it computes the upper triangle of ``x`` (and every
population block ``(K, K)`` whole) and mirrors the rest, ``x_lk = conj(x_kl)``.
:class:`LevelSweeps` performs the same iteration as the block sweeps (same updates in the
same order, same convergence measure);
:func:`pyspb.backends.native.gauss_seidel.sweep_steady_states` uses it up to
:data:`~pyspb.backends.native.gauss_seidel.LEVEL_SWEEP_MAX_CUTOFF`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from ...model import ExcitationBasis, excitation_basis
from .gauss_seidel import SweepSlots

__all__ = ["LevelOperators", "LevelSweeps", "level_operators", "sweep_kernel"]

#: what the kernel does with an element (:attr:`LevelOperators.kind`)
MIRRORED, COMPUTED, POPULATION = 0, 1, 2


class LevelOperators:
    """Level order and the fixed sparse parts of the Liouvillian for one cutoff.

    Attributes
    ----------
    order : ndarray of int, shape (d * d,)
        Row-major index ``k * d + l`` (excitation basis) of each element in level order.
    row, column : ndarray of int, shape (d * d,)
        ``k`` and ``l`` of each element in level order.
    bounds : list of slice
        Elements of level ``s`` in the level-ordered vector.
    starts : ndarray of int64, shape (levels + 1,)
        The same as boundaries (``bounds[s] = slice(starts[s], starts[s + 1])``).
    kind : ndarray of int8, shape (d * d,)
        :data:`POPULATION` for the elements of the blocks ``(K, K)`` (computed, and measured
        for convergence), :data:`COMPUTED` for the other elements with ``k < l``,
        :data:`MIRRORED` for those with ``k > l`` (set from their mirror image).
    mirror : ndarray of int64, shape (d * d,)
        Level-order position of the element ``(l, k)`` of each element ``(k, l)``.
    operators : tuple of 9 ndarrays
        CSR arrays (indptr, indices, data) of the commutator ``X (x) 1 - 1 (x) X``, of the
        jumps ``A1 (x) A1 + A2 (x) A2`` and of ``X (x) 1`` on the population rows (the drive
        terms that cancel in a population), all in level order.
    """

    def __init__(self, basis: ExcitationBasis):
        self.basis = basis
        K = basis.K
        d = self.dim = basis.dim
        row_level = np.repeat(K, d)
        col_level = np.tile(K, d)
        level = row_level + col_level
        self.order = np.argsort(level, kind="stable")
        self.levels = int(level.max()) + 1
        counts = np.bincount(level, minlength=self.levels)
        self.starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.bounds = [slice(int(self.starts[s]), int(self.starts[s + 1])) for s in range(self.levels)]
        self.row_K = row_level[self.order]
        self.col_K = col_level[self.order]
        self.row, self.column = k, l = self.order // d, self.order % d
        population = self.row_K == self.col_K
        self.kind = np.where(population, POPULATION, np.where(k < l, COMPUTED, MIRRORED)).astype(np.int8)
        position = np.empty_like(self.order)
        position[self.order] = np.arange(self.order.size)
        self.mirror = position[l * d + k].astype(np.int64)
        A1, A2 = basis.A1.tocsr(), basis.A2.tocsr()
        X = (A1 + A1.T).tocsr()
        eye = sp.identity(d, format="csr")
        perm = self.order
        left_part = sp.kron(X, eye, format="csr")
        commutator = _pruned((left_part - sp.kron(eye, X, format="csr"))[perm][:, perm])
        jumps = _pruned((sp.kron(A1, A1, format="csr") + sp.kron(A2, A2, format="csr"))[perm][:, perm])
        left = _pruned(sp.diags(population.astype(float)) @ left_part[perm][:, perm])
        self.operators = tuple(array for matrix in (commutator, jumps, left) for array in _csr_arrays(matrix))

    @property
    def size(self) -> int:
        """Elements of the density matrix, ``d ** 2``."""
        return self.dim * self.dim

    def inverse_energies(self, Delta, J, chi) -> np.ndarray:
        """``1 / D`` in level order, shape (d * d, npts); 0 for the vacuum element."""
        energy = (self.basis.energies(Delta, J, chi) - 0.5j * self.basis.K).T  # (d, npts)
        # np.take: fancy indexing of the conjugate took ~10x longer (0.8 ms at cutoff 7, 12 points)
        D = -1j * (np.take(energy, self.row, axis=0) - np.take(np.conj(energy), self.column, axis=0))
        D[0] = 1.0
        inverse = 1.0 / D
        inverse[0] = 0.0
        return inverse

    def to_matrices(self, x: np.ndarray, phase: np.ndarray) -> np.ndarray:
        """Level-ordered vectors (N, npts) -> density matrices (npts, d, d), gauge undone."""
        npts, d = x.shape[1], self.dim
        flat = np.empty((npts, d * d), dtype=complex)
        flat[:, self.order] = x.T
        rho = flat.reshape(npts, d, d)
        gauge = phase[:, None] ** self.basis.K[None, :]
        rho *= gauge[:, :, None]
        rho *= np.conj(gauge)[:, None, :]
        return rho


def _pruned(matrix) -> sp.csr_matrix:
    matrix = sp.csr_matrix(matrix)
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix


def _csr_arrays(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return matrix.indptr.astype(np.int32), matrix.indices.astype(np.int32), matrix.data.astype(float)


@lru_cache(maxsize=4)
def level_operators(cutoff: int) -> LevelOperators:
    """The :class:`LevelOperators` of one cutoff (built once)."""
    return LevelOperators(excitation_basis(cutoff))


def _sweep_levels(x, inverse_D, xi, starts, kind, mirror, operators, change, norm, terms):  # pragma: no cover
    """One forward level sweep of every slot, in place (compiled by :func:`sweep_kernel`).

    For every level ``s = 1 .. 2 (2 cutoff)`` in turn and every element ``i`` of it::

        x_i <- D_i^-1 [ i xi (X x)_i - (C x)_i ]

    with ``X = X (x) 1 - 1 (x) X`` the drive's commutator and ``C`` the jumps (both CSR,
    level order; ``X`` couples level s to s +- 1 only, ``C`` to s + 2 only, so the elements
    of one level are independent and the lower levels are already updated: Gauss-Seidel
    by level).  Elements of ``kind`` MIRRORED are not computed but set to the conjugate of
    their mirror image (``x`` is Hermitian).  On the POPULATION elements (blocks ``(K, K)``
    of level 2K) it also accumulates, per slot, the squared change ``|x_old - x_new|^2``
    (``change[K]``), the squared new value (``norm[K]``) and ``4 xi^2 |D^-1 ((X (x) 1) x)_i|^2``,
    the drive terms that cancel in a population (``terms[K]``): the inputs of
    :func:`~pyspb.backends.native.gauss_seidel._judge`.

    ``x`` and ``inverse_D`` have shape (d * d, slots), C order; ``change``, ``norm`` and
    ``terms`` (shape (levels of K, slots)) must be zero on entry.  The sparse products run
    over the real and imaginary parts of all slots at once (the operators are real), which
    the compiler vectorises.
    """
    drive_ptr, drive_col, drive_val, jump_ptr, jump_col, jump_val, left_ptr, left_col, left_val = operators
    slots = x.shape[1]
    lanes = x.view(np.float64)  # (d * d, 2 slots): real and imaginary parts side by side
    drive = np.empty(2 * slots)
    jump = np.empty(2 * slots)
    for s in range(1, starts.size - 1):
        K = s // 2
        for i in range(starts[s], starts[s + 1]):
            if kind[i] == MIRRORED:
                continue
            # drive = (X x)_i and jump = (C x)_i, every slot's real and imaginary part
            for which in range(2):
                indptr, indices, data, out = (
                    (drive_ptr, drive_col, drive_val, drive) if which == 0 else (jump_ptr, jump_col, jump_val, jump)
                )
                if slots == 1:  # two scalar sums (a loop over two lanes costs ~20 % more)
                    real = imag = 0.0
                    for p in range(indptr[i], indptr[i + 1]):
                        real += data[p] * lanes[indices[p], 0]
                        imag += data[p] * lanes[indices[p], 1]
                    out[0], out[1] = real, imag
                else:
                    out[:] = 0.0
                    for p in range(indptr[i], indptr[i + 1]):
                        value, row = data[p], indices[p]
                        for m in range(2 * slots):
                            out[m] += value * lanes[row, m]
            for n in range(slots):
                drive_n = complex(drive[2 * n], drive[2 * n + 1])
                new = (1j * xi[n] * drive_n - complex(jump[2 * n], jump[2 * n + 1])) * inverse_D[i, n]
                if kind[i] == POPULATION:
                    left = 0j
                    for p in range(left_ptr[i], left_ptr[i + 1]):
                        left += left_val[p] * x[left_col[p], n]
                    left *= inverse_D[i, n]
                    delta = x[i, n] - new
                    terms[K, n] += 4.0 * xi[n] ** 2 * (left.real**2 + left.imag**2)
                    change[K, n] += delta.real**2 + delta.imag**2
                    norm[K, n] += new.real**2 + new.imag**2
                else:
                    x[mirror[i], n] = new.conjugate()
                x[i, n] = new


@lru_cache(maxsize=1)
def sweep_kernel():
    """:func:`_sweep_levels` compiled by numba (on the first call; cached on disk)."""
    import numba

    return numba.njit(cache=True, nogil=True)(_sweep_levels)


class LevelSweeps(SweepSlots):
    """Level sweeps of a batch of points: the interface of ``gauss_seidel._Sweeps``.

    All levels of all points live in one array ``x`` of shape (d * d, slots) in level order.
    """

    def __init__(self, basis: ExcitationBasis, slots: int):
        super().__init__(slots)
        self.basis = basis
        self.ops = level_operators(basis.cutoff)
        N = self.ops.size
        self.x = np.zeros((N, slots), dtype=complex)
        self.inverse_D = np.zeros((N, slots), dtype=complex)

    def fill(self, slots: np.ndarray, index: np.ndarray, Delta, J, chi, xi) -> None:
        """Start the points ``index`` (inputs in units of gamma) from the vacuum in ``slots``."""
        self.inverse_D[:, slots] = self.ops.inverse_energies(Delta, J, chi)
        self.x[:, slots] = 0.0
        self.x[0, slots] = 1.0
        self.start(slots, index, J, xi)

    def shrink(self) -> None:
        """Drop the empty slots."""
        keep = self.keep_busy()
        self.x = np.ascontiguousarray(self.x[:, keep])
        self.inverse_D = np.ascontiguousarray(self.inverse_D[:, keep])

    def sweep(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One forward sweep; the populations' squared change, squared size and drive terms (as the block sweeps)."""
        ops = self.ops
        half = (ops.levels + 1) // 2
        change, norm, terms = (np.zeros((half, self.slots)) for _ in range(3))
        sweep_kernel()(
            self.x, self.inverse_D, self.xi, ops.starts, ops.kind, ops.mirror, ops.operators, change, norm, terms
        )
        self.sweeps += 1
        return change, norm, terms

    def states(self, slots: np.ndarray) -> np.ndarray:
        """States of the points in ``slots``, shape (n, d, d), in the original gauge."""
        return self.ops.to_matrices(self.x[:, slots], self.phase[slots])
