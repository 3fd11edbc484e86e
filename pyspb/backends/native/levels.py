"""Level sweeps (cutoffs up to 12): one compiled loop over the density matrix in level order.

The level sweeps of :mod:`pyspb.backends.native.gauss_seidel` visit the blocks ``(K, K')`` of the
density matrix ``x`` (excitation basis, gauge of ``J`` removed) by increasing level
``s = K + K'``.  Elements of one level do not couple to each other (the drive moves ``s`` by
+-1, the jumps bring ``s + 2`` down to ``s``, the energies keep every element), so a whole
level can be updated at once.  This module stores ``x`` as one vector per point, its
elements sorted by level, and the Liouvillian's fixed parts as sparse matrices::

    (L x)_s = D_s x_s - i xi (X_{s,s-1} x_{s-1} + X_{s,s+1} x_{s+1}) + C_{s,s+2} x_{s+2}

with ``X = X (x) 1 - 1 (x) X`` the drive's commutator (real, fixed), ``C`` the jumps (real,
fixed) and ``D`` the per-point energies (diagonal).  A batch's sweeps, each followed by the
convergence check, run until a point finishes in one call of a compiled kernel
(:func:`sweep_until_finished`, numba, without the GIL; one sweep: :func:`sweep_by_lane`) whose
cost is the arithmetic alone: no NumPy call per level or block, which is what a single point
or a handful of points cost before; the products run over the real and imaginary parts of all
points of a batch at once (vectorised), so that a few dozen points at a time also beat the
block layout's BLAS calls on large grids.  For up to three points :func:`sweep_by_slot` takes
the products point by point with scalar sums (cutoff 7, one point: ~100 us per sweep against
~150 us).  Points start and leave through compiled kernels too (:func:`start_slots`,
:func:`gather_states`).  This module imports numba:
:mod:`pyspb.backends.native.gauss_seidel` imports it at the first sweep, not with pyspb.  As
the block sweeps do, it computes the upper triangle of ``x`` (and every population block
``(K, K)`` whole) and mirrors the rest, ``x_lk = conj(x_kl)``.
:class:`LevelSweeps` performs the same iteration as the block sweeps (same updates in the
same order, same convergence measure);
:func:`pyspb.backends.native.gauss_seidel.sweep_steady_states` uses it up to
:data:`~pyspb.backends.native.gauss_seidel.LEVEL_SWEEP_MAX_CUTOFF`.
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np
import scipy.sparse as sp

from ...model import ExcitationBasis, excitation_basis
from .gauss_seidel import SweepSlots, _judge

__all__ = [
    "SCALAR_SLOTS",
    "LevelOperators",
    "LevelSweeps",
    "gather_states",
    "judge",
    "level_operators",
    "start_slots",
    "sweep_by_lane",
    "sweep_by_slot",
    "sweep_until_finished",
]

#: what the kernel does with an element (:attr:`LevelOperators.kind`)
MIRRORED, COMPUTED, POPULATION = 0, 1, 2
#: up to this many slots a sweep is :func:`sweep_by_slot` (sparse products slot by slot, scalar
#: sums), above it :func:`sweep_by_lane` (over the lanes of all slots at once, vectorised): per
#: point at cutoff 7, 96, 87 and 86 us for 1, 2 and 3 slots against 147, 112 and 111 us, and
#: 53 us by lane at 6 slots
SCALAR_SLOTS = 3


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

    def energies(self, Delta, J, chi) -> np.ndarray:
        """``E_k`` of ``H_eff`` per point (drive-free, with ``-i K_k / 2``), shape (npts, d)."""
        return self.basis.energies(Delta, J, chi) - 0.5j * self.basis.K

    def gauge(self, phase: np.ndarray) -> np.ndarray:
        """``phase ** K_k`` per point, shape (npts, d): undoes the gauge of ``J`` as ``x_kl g_k g_l^*``."""
        return phase[:, None] ** self.basis.K[None, :]


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


@numba.njit(cache=True, nogil=True, inline="always")
def _products_by_lane(indptr, indices, data, i, lanes, out):  # pragma: no cover - compiled
    """``out = (M x)_i`` for a real CSR ``M``, over the lanes (real and imaginary parts of every
    slot) at once: the loop over lanes is vectorised, the fast way for more than a few slots.
    """
    out[:] = 0.0
    for p in range(indptr[i], indptr[i + 1]):
        value, row = data[p], indices[p]
        for m in range(out.size):
            out[m] += value * lanes[row, m]


@numba.njit(cache=True, nogil=True, inline="always")
def _products_by_slot(indptr, indices, data, i, lanes, out):  # pragma: no cover - compiled
    """``out = (M x)_i`` as :func:`_products_by_lane`, slot by slot with scalar sums: the fast way
    for up to three slots, where the loop over lanes is too short to vectorise.  Two partial sums
    of each part: with one, every product waits for the previous addition.
    """
    for n in range(out.size // 2):
        real = imag = real_2 = imag_2 = 0.0
        p, end = indptr[i], indptr[i + 1]
        while p + 1 < end:
            value, row, value_2, row_2 = data[p], indices[p], data[p + 1], indices[p + 1]
            real += value * lanes[row, 2 * n]
            imag += value * lanes[row, 2 * n + 1]
            real_2 += value_2 * lanes[row_2, 2 * n]
            imag_2 += value_2 * lanes[row_2, 2 * n + 1]
            p += 2
        if p < end:
            real += data[p] * lanes[indices[p], 2 * n]
            imag += data[p] * lanes[indices[p], 2 * n + 1]
        out[2 * n], out[2 * n + 1] = real + real_2, imag + imag_2


@numba.njit(cache=True, nogil=True, inline="always")
def _update(i, K, x, inverse_D, xi, kind, mirror, operators, drive, jump, change, norm, terms):  # pragma: no cover
    """Element ``i`` of every slot from ``drive = (X x)_i`` and ``jump = (C x)_i`` (lanes), and
    the convergence measures of the populations (see :func:`sweep_by_lane`).
    """
    left_ptr, left_col, left_val = operators[6:]
    for n in range(x.shape[1]):
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


@numba.njit(cache=True, nogil=True, inline="always")
def _sweep(x, inverse_D, xi, starts, kind, mirror, operators, change, norm, terms, by_slot):  # pragma: no cover
    """One sweep (:func:`sweep_by_lane`); ``by_slot`` (a constant in each kernel that inlines
    this, so the compiler keeps one kind of product: with a branch between them at run time the
    products slot by slot ran 1.3-1.5x slower at cutoff 7) chooses :func:`_products_by_slot`.
    """
    drive_ptr, drive_col, drive_val, jump_ptr, jump_col, jump_val = operators[:6]
    lanes = x.view(np.float64)  # (d * d, 2 slots): real and imaginary parts side by side
    drive = np.empty(lanes.shape[1])
    jump = np.empty(lanes.shape[1])
    for s in range(1, starts.size - 1):
        for i in range(starts[s], starts[s + 1]):
            if kind[i] != MIRRORED:
                if by_slot:
                    _products_by_slot(drive_ptr, drive_col, drive_val, i, lanes, drive)
                    _products_by_slot(jump_ptr, jump_col, jump_val, i, lanes, jump)
                else:
                    _products_by_lane(drive_ptr, drive_col, drive_val, i, lanes, drive)
                    _products_by_lane(jump_ptr, jump_col, jump_val, i, lanes, jump)
                _update(i, s // 2, x, inverse_D, xi, kind, mirror, operators, drive, jump, change, norm, terms)


@numba.njit(cache=True, nogil=True)
def sweep_by_lane(x, inverse_D, xi, starts, kind, mirror, operators, change, norm, terms):  # pragma: no cover
    """One forward level sweep of every slot, in place.

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
    the compiler vectorises; :func:`sweep_by_slot` is the same sweep for up to three slots.
    """
    _sweep(x, inverse_D, xi, starts, kind, mirror, operators, change, norm, terms, False)


@numba.njit(cache=True, nogil=True)
def sweep_by_slot(x, inverse_D, xi, starts, kind, mirror, operators, change, norm, terms):  # pragma: no cover
    """:func:`sweep_by_lane` with the sparse products slot by slot (:func:`_products_by_slot`)."""
    _sweep(x, inverse_D, xi, starts, kind, mirror, operators, change, norm, terms, True)


#: :func:`pyspb.backends.native.gauss_seidel._judge` compiled
judge = numba.njit(cache=True, nogil=True)(_judge)


@numba.njit(cache=True, nogil=True)
def sweep_until_finished(
    by_slot, x, inverse_D, xi, starts, kind, mirror, operators, index, sweeps, previous, ratio, tolerance, rules, status
):  # pragma: no cover - compiled
    """Sweep (:func:`sweep_by_slot` or :func:`sweep_by_lane`) and :data:`judge` in turn until a
    busy slot finishes: ``status`` 1 (converged) or 2 (failed) there.  The arguments are those
    of the two (``sweeps``, the sweeps done per slot, counted here).  One call instead of a
    Python loop: ~20 us less per sweep, a tenth of a single point's call at cutoff 5.
    """
    levels, slots = starts.size - 1, x.shape[1]
    photons = (levels + 1) // 2
    busy = False
    for n in range(slots):
        busy = busy or index[n] >= 0
    while busy:
        change = np.zeros((photons, slots))
        norm = np.zeros((photons, slots))
        terms = np.zeros((photons, slots))
        if by_slot:
            sweep_by_slot(x, inverse_D, xi, starts, kind, mirror, operators, change, norm, terms)
        else:
            sweep_by_lane(x, inverse_D, xi, starts, kind, mirror, operators, change, norm, terms)
        sweeps += 1
        judge(change, norm, terms, index, sweeps, previous, ratio, tolerance, rules, status)
        for n in range(slots):
            if status[n] != 0:
                return


@numba.njit(cache=True, nogil=True)
def start_slots(x, inverse_D, slots, energy, row, column):  # pragma: no cover - compiled
    """Put the vacuum into ``slots`` of ``x`` and ``1 / D`` of their points into ``inverse_D``.

    ``D_i = -i (E_k - E_l^*)`` for the element ``i = (k, l)`` (level order, ``row``, ``column``);
    the vacuum element's is set to 0 (it is held at 1).  ``energy`` has shape (len(slots), d).
    (NumPy's scatter along the slot axis took ~1.3 ms for 12 points at cutoff 7.)
    """
    for j in range(slots.size):
        n = slots[j]
        x[0, n] = 1.0
        inverse_D[0, n] = 0.0
    for i in range(1, row.size):
        for j in range(slots.size):
            n = slots[j]
            x[i, n] = 0.0
            # 1 / D = i / z with z = E_k - E_l^* = u + i v, v <= -1/2 (the decay) away from the vacuum
            z = energy[j, row[i]] - np.conj(energy[j, column[i]])
            inverse_D[i, n] = complex(z.imag, z.real) / (z.real * z.real + z.imag * z.imag)


@numba.njit(cache=True, nogil=True)
def gather_states(x, slots, order, row, column, gauge, out):  # pragma: no cover - compiled
    """``out[j]`` (shape (d * d,), row-major) = the state in slot ``slots[j]``, gauge undone.

    ``x_kl -> g_k x_kl g_l^*`` with ``gauge`` of shape (len(slots), d).
    """
    for i in range(order.size):
        for j in range(slots.size):
            out[j, order[i]] = gauge[j, row[i]] * x[i, slots[j]] * np.conj(gauge[j, column[i]])


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
        ops = self.ops
        start_slots(self.x, self.inverse_D, slots, ops.energies(Delta, J, chi), ops.row, ops.column)
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
        sweep = sweep_by_slot if self.slots <= SCALAR_SLOTS else sweep_by_lane
        sweep(self.x, self.inverse_D, self.xi, ops.starts, ops.kind, ops.mirror, ops.operators, change, norm, terms)
        self.sweeps += 1
        return change, norm, terms

    def advance(self, tolerance: float, rules: tuple, status: np.ndarray) -> None:
        """Sweep until a busy slot finishes (as ``gauss_seidel._Sweeps.advance``), in one compiled call."""
        ops = self.ops
        sweep_until_finished(
            self.slots <= SCALAR_SLOTS,
            self.x,
            self.inverse_D,
            self.xi,
            ops.starts,
            ops.kind,
            ops.mirror,
            ops.operators,
            self.index,
            self.sweeps,
            self.previous,
            self.ratio,
            tolerance,
            rules,
            status,
        )

    def states(self, slots: np.ndarray) -> np.ndarray:
        """States of the points in ``slots``, shape (n, d, d), in the original gauge."""
        ops = self.ops
        rho = np.empty((slots.size, ops.size), dtype=complex)
        gather_states(self.x, slots, ops.order, ops.row, ops.column, ops.gauge(self.phase[slots]), rho)
        return rho.reshape(slots.size, ops.dim, ops.dim)
