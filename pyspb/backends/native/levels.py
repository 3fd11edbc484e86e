"""Level sweeps for a few points: the Liouvillian stored level by level.

The level sweeps of :mod:`pyspb.backends.native.gauss_seidel` visit the blocks ``(K, K')`` of the
density matrix ``x`` (excitation basis, gauge of ``J`` removed) by increasing level
``s = K + K'``.  Blocks of one level do not couple to each other (the drive moves ``s`` by
+-1, the jumps bring ``s + 2`` down to ``s``, the energies keep every element), so a whole
level can be updated at once.  This module stores ``x`` as one vector per point, its
elements sorted by level, and the Liouvillian's fixed parts as sparse matrices between
neighbouring levels::

    (L x)_s = D_s x_s - i xi (X_{s,s-1} x_{s-1} + X_{s,s+1} x_{s+1}) + C_{s,s+2} x_{s+2}

with ``X = X (x) 1 - 1 (x) X`` the drive's commutator (real, fixed), ``C`` the jumps (real,
fixed) and ``D`` the per-point energies (diagonal).  A sweep then costs ~4 NumPy calls per
level instead of ~15 per block: what matters when a call has only a handful of points and
the Python overhead, not the arithmetic, sets the time.  :class:`LevelSweeps` performs the
same iteration as the block sweeps (same updates in the same order, same convergence
measure); :func:`pyspb.backends.native.gauss_seidel.sweep_steady_states` picks it for small batches.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from ...model import ExcitationBasis, excitation_basis
from .gauss_seidel import SweepSlots, relative_change

try:  # SciPy's CSR times dense kernel, without the checks of csr_matrix.__matmul__
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover - a SciPy that moved it: the public product is used
    _csr_matvecs = None

__all__ = ["LevelOperators", "LevelSweeps", "level_operators"]


class LevelOperators:
    """Level order and the fixed sparse parts of the Liouvillian for one cutoff.

    Attributes
    ----------
    order : ndarray of int, shape (d * d,)
        Row-major index ``k * d + l`` (excitation basis) of each element in level order.
    bounds : list of slice
        Elements of level ``s`` in the level-ordered vector.
    window : list of slice
        Elements of levels ``s - 1 .. s + 1`` (contiguous in level order).
    drive, jump : list of csr_matrix
        ``(X_{s,s-1} X_{s,s+1})`` over ``window[s]``, and ``C_{s,s+2}``, per level (None where
        absent).
    left : list of csr_matrix or None
        Rows of ``X (x) 1`` that belong to the populations ``(K, K)`` of an even level, over the
        columns of levels ``s - 1 .. s + 1`` (the drive terms that cancel in a population).
    population : list of ndarray or None
        Positions, inside level ``s = 2K``, of the elements of the ``(K, K)`` block.
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
        starts = np.concatenate([[0], np.cumsum(counts)])
        self.bounds = [slice(int(starts[s]), int(starts[s + 1])) for s in range(self.levels)]
        self.row_K = row_level[self.order]
        self.col_K = col_level[self.order]
        A1, A2 = basis.A1.tocsr(), basis.A2.tocsr()
        X = (A1 + A1.T).tocsr()
        eye = sp.identity(d, format="csr")
        perm = self.order
        commutator = (sp.kron(X, eye, format="csr") - sp.kron(eye, X, format="csr"))[perm][:, perm].tocsr()
        left_part = sp.kron(X, eye, format="csr")[perm][:, perm].tocsr()
        jumps = (sp.kron(A1, A1, format="csr") + sp.kron(A2, A2, format="csr"))[perm][:, perm].tocsr()
        b = self.bounds
        self.jump: list = [None] * self.levels
        self.left: list = [None] * self.levels
        self.drive: list = [None] * self.levels
        self.window: list = [None] * self.levels
        self.population: list = [None] * self.levels
        for s in range(self.levels):
            rows = commutator[b[s]]
            if s + 2 < self.levels:
                self.jump[s] = _pruned(jumps[b[s]][:, b[s + 2]])
            # X_{s,s-1} and X_{s,s+1} side by side, over the contiguous levels s - 1 .. s + 1
            self.window[s] = slice(b[max(s - 1, 0)].start, b[min(s + 1, self.levels - 1)].stop)
            self.drive[s] = _pruned(rows[:, self.window[s]])
            if s % 2 == 0:
                inside = np.flatnonzero((self.row_K[b[s]] == s // 2) & (self.col_K[b[s]] == s // 2))
                self.population[s] = inside
                self.left[s] = _pruned(left_part[b[s]][inside][:, self.window[s]])

    @property
    def size(self) -> int:
        """Elements of the density matrix, ``d ** 2``."""
        return self.dim * self.dim

    def inverse_energies(self, Delta, J, chi) -> np.ndarray:
        """``1 / D`` in level order, shape (d * d, npts); 0 for the vacuum element."""
        energy = (self.basis.energies(Delta, J, chi) - 0.5j * self.basis.K).T  # (d, npts)
        d = self.dim
        k, l = self.order // d, self.order % d
        D = -1j * (energy[k] - np.conj(energy[l]))
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


def _pruned(matrix) -> sp.csr_matrix | None:
    matrix = sp.csr_matrix(matrix)
    matrix.eliminate_zeros()
    matrix.sort_indices()
    matrix.indptr = matrix.indptr.astype(np.int32)
    matrix.indices = matrix.indices.astype(np.int32)
    return matrix if matrix.nnz else None


@lru_cache(maxsize=4)
def level_operators(cutoff: int) -> LevelOperators:
    """The :class:`LevelOperators` of one cutoff (built once)."""
    return LevelOperators(excitation_basis(cutoff))


def _product(matrix: sp.csr_matrix, x: np.ndarray) -> np.ndarray:
    """``matrix @ x`` for a real sparse matrix and a complex (n, npts) array.

    Calls SciPy's CSR kernel directly where it is available: for the small matrices of a few
    points, the checks of ``csr_matrix.__matmul__`` cost more than the product itself.
    """
    real = np.ascontiguousarray(x).view(float)
    if _csr_matvecs is None:
        return (matrix @ real).view(complex)
    out = np.zeros((matrix.shape[0], real.shape[1]))
    _csr_matvecs(*matrix.shape, real.shape[1], matrix.indptr, matrix.indices, matrix.data, real.ravel(), out.ravel())
    return out.view(complex)


class LevelSweeps(SweepSlots):
    """Level sweeps of a few points at once: the interface of ``gauss_seidel._Sweeps``.

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

    def sweep(self) -> np.ndarray:
        """One forward sweep; each slot's relative change of the populations (as the block sweeps)."""
        ops, x = self.ops, self.x
        b = ops.bounds
        n = self.slots
        i_xi = 1j * self.xi
        half = (ops.levels + 1) // 2
        change = np.zeros((half, n))
        norm = np.zeros((half, n))
        terms = np.zeros((half, n))
        for s in range(1, ops.levels):
            window = x[ops.window[s]]
            new = _product(ops.drive[s], window)
            new *= i_xi
            if ops.jump[s] is not None:
                new -= _product(ops.jump[s], x[b[s + 2]])
            new *= self.inverse_D[b[s]]
            if s % 2 == 0:
                K, inside = s // 2, ops.population[s]
                drive = _product(ops.left[s], window) * self.inverse_D[b[s]][inside]
                terms[K] = 4 * self.xi**2 * np.einsum("an,an->n", drive.conj(), drive).real
                delta = x[b[s]][inside] - new[inside]
                change[K] = np.einsum("an,an->n", delta.conj(), delta).real
                norm[K] = np.einsum("an,an->n", new[inside].conj(), new[inside]).real
            x[b[s]] = new
        self.sweeps += 1
        return relative_change(change, norm, terms)

    def states(self, slots: np.ndarray) -> np.ndarray:
        """States of the points in ``slots``, shape (n, d, d), in the original gauge."""
        return self.ops.to_matrices(self.x[:, slots], self.phase[slots])
