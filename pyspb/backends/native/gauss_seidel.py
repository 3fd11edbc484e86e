"""Steady states by Gauss-Seidel sweeps over photon-number levels (the native fast path).

Method
------
In the :class:`~pyspb.model.ExcitationBasis` the drive-free Hamiltonian is diagonal with
energies ``E_k`` (``K_k`` photons), so the Liouvillian of one point is::

    L x = D x - i xi (X x - x X) + (A1 x A1^T + A2 x A2^T)      (units of gamma)

with ``D x = -i (E_k - E_l^*) x_kl`` elementwise, ``E_k`` including ``-i K_k / 2``, the
drive ``X = A1 + A1^T`` (after removing the phase of ``J`` by the gauge transformation
``x -> G x G^dagger``, ``G = exp(i arg(J) K)``) and the quantum jumps ``A x A^T``.
Group the density-matrix elements into *levels* ``s = K_k + K_l``: ``D`` keeps the level,
the drive moves it by +-1, the jumps bring level ``s + 2`` down to ``s``.  A steady state
satisfies, for every block ``(K, K')`` of ``x``::

    x_KK' = D^-1 [ i xi (X x - x X)_KK' - (A1 x A1^T + A2 x A2^T)_KK' ]

One *sweep* visits the blocks by increasing level and recomputes each from this equation,
using the blocks of lower levels already updated in the sweep (block Gauss-Seidel with the
vacuum fixed to 1).  A sweep therefore solves the drive's upward chain exactly and iterates
only on the downward couplings (drive from ``s + 1``, jumps from ``s + 2``), which are weak
where the mode is far from saturation: over the paper's Fig. 4(a) map a sweep shrinks the
error by 6x (at the tip position, N_cw ~ 0.12) to several hundred x, and 5-15 sweeps (6.3 on
average) reach 1e-12.  The density matrix is Hermitian, so only blocks with
``K <= K'`` are computed and the others mirrored.

Every element is computed from terms of its own size (no subtraction of large numbers), so
small populations come out with full relative accuracy without any grading of the
variables.  Convergence is measured per photon number K on the ``(K, K)`` block (the
populations): its change in one sweep relative to its size, or to the size of the drive
terms that cancel in it if larger (off resonance, e.g. a Kerr shift of 500 gamma, they
exceed the populations they produce and rounding sets a floor relative to them); for K > 4
relative to the 4-photon scale (higher levels enter the observables only through their
sums).  The sweeps converge linearly, so the largest such change ``c`` and its ratio ``q``
to the previous sweep's estimate the remaining error as ``c q / (1 - q)``; a point is
accepted when that is below ``tolerance`` and ``q <= 1/2`` in this sweep and the one
before.  A point whose change shrinks less than twofold per sweep (strong drive,
multi-photon resonances), or whose top level would underflow, is reported as not converged
and left to the Krylov solver of :mod:`pyspb.backends.native`.

Layouts: up to :data:`LEVEL_SWEEP_MAX_CUTOFF`, a compiled kernel sweeps the density matrix
stored level by level (:mod:`pyspb.backends.native.levels`).  Above it (the block layout of this
module), the blocks of all points of a batch live in "column strips" ``strip[K']`` of shape
``(d, s_K', npts)`` (point index last), so each block is a contiguous slice and every product
with the fixed real matrices is one BLAS call on a real view of the complex data.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ...model import ExcitationBasis, coupling_phase, excitation_basis

#: sweeps at most before a point is handed to the Krylov solver
MAX_SWEEPS = 40
#: a point must shrink its change at least this much per sweep to keep sweeping
SLOWEST_CONTRACTION = 0.5
#: sweeps before the first convergence check
FIRST_CHECK = 2
#: photon number whose block sets the scale of higher photon numbers
REFERENCE_PHOTONS = 4
#: estimated smallest population the sweeps handle (below it values underflow)
SMALLEST_POPULATION = 1e-280
#: up to :data:`LEVEL_SWEEP_MAX_CUTOFF` every batch is swept level by level by a compiled kernel
#: (:mod:`pyspb.backends.native.levels`), at most this many points at a time (refilled as points
#: finish): CPU per point on 4096 points of Fig. 4(a) at cutoff 5, 0.089 ms against 0.120 ms
#: with the block layout in batches of 1024, at cutoff 7 (1024 points) 0.318 against 0.448 ms
#: (16 or 128 points at a time: 10-20 % slower than 64)
LEVEL_SWEEP_POINTS = 64
#: above this cutoff the level operators (sparse kron products, ~1 GiB at cutoff 20) are not
#: built: every batch uses the block sweeps (BLAS products per block)
LEVEL_SWEEP_MAX_CUTOFF = 12


class _Blocks:
    """Index ranges and fixed matrices of one cutoff's excitation levels."""

    def __init__(self, basis: ExcitationBasis):
        K = basis.K
        self.levels = int(K.max()) + 1
        starts = [int(np.flatnonzero(K == level)[0]) for level in range(self.levels)]
        self.rows = [slice(start, start + int(np.sum(K == level))) for level, start in enumerate(starts)]
        self.size = [r.stop - r.start for r in self.rows]
        A1, A2 = basis.A1.toarray(), basis.A2.toarray()
        drive = A1 + A1.T
        # rows K-1..K+1 of the drive operator, restricted to the rows of level K
        self.window = []
        self.drive = []
        for level in range(self.levels):
            window = slice(self.rows[max(level - 1, 0)].start, self.rows[min(level + 1, self.levels - 1)].stop)
            self.window.append(window)
            self.drive.append(np.ascontiguousarray(drive[self.rows[level], window]))
        # jumps into block (K, K') from block (K + 1, K' + 1), acting on its row-major vector
        self.jump = {}
        for k in range(self.levels - 1):
            down_k = (A1[self.rows[k], self.rows[k + 1]], A2[self.rows[k], self.rows[k + 1]])
            for k2 in range(k, self.levels - 1):
                down_k2 = (A1[self.rows[k2], self.rows[k2 + 1]], A2[self.rows[k2], self.rows[k2 + 1]])
                self.jump[k, k2] = np.kron(down_k[0], down_k2[0]) + np.kron(down_k[1], down_k2[1])
        # upper-triangle blocks by increasing level; the vacuum block (0, 0) stays fixed
        self.order = [
            (k, level - k)
            for level in range(1, 2 * self.levels - 1)
            for k in range(level // 2 + 1)
            if level - k < self.levels
        ]


@lru_cache(maxsize=16)
def _blocks(cutoff: int) -> _Blocks:
    return _Blocks(excitation_basis(cutoff))


def _left(matrix: np.ndarray, block: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """``matrix @ block`` over the first axis of a complex (rows, cols, npts) block."""
    real = block.view(float).reshape(block.shape[0], -1)
    return (matrix @ real).view(complex).reshape(shape)


def _judge(change, norm, terms, index, sweeps, previous, ratio, tolerance, rules, status):  # pragma: no cover
    """After a sweep: which busy slots converged or failed (compiled by :func:`judge_kernel`).

    ``change``, ``norm`` and ``terms`` (shape (photon numbers, slots)) are, per photon number
    K, the squared change of the populations (block ``(K, K)``) in the sweep, their squared
    size and the squared size of the drive terms that cancel in them.  A slot's relative
    change ``c`` is the largest ``sqrt(change / scale)`` over K >= 1, with ``scale`` the
    larger of ``norm`` and ``terms``, and for K > :data:`REFERENCE_PHOTONS` at least the
    scale of that photon number (see the module doc); inf if any of them is not finite.
    With ``q = c / c_previous`` and ``n`` the sweeps done (``sweeps``), a busy slot
    (``index >= 0``) is, once ``n > FIRST_CHECK``:

    * converged (``status`` 1) if ``q <= 1/2`` in this sweep and the one before and the
      remaining error ``c q / (1 - q)`` is below ``tolerance``, or if ``c`` and
      ``c_previous`` are both below it (the rounding floor);
    * failed (``status`` 2) if not converged and ``q > 1/2`` after ``FIRST_CHECK + 3``
      sweeps, or ``c`` is not finite, or ``n`` reached :data:`MAX_SWEEPS`, or (from the
      second check on) ``c q_max^(MAX_SWEEPS - n)`` is above ``tolerance`` with ``q_max`` the
      larger of ``q`` and ``q_previous``: at that contraction the sweeps left would not reach it;
    * else still sweeping (``status`` 0).

    ``previous`` (``c``, from sweep FIRST_CHECK on; else inf) and ``ratio`` (``q`` of a
    checked slot; else inf) are updated in place for the next sweep.  ``rules`` holds
    ``(FIRST_CHECK, SLOWEST_CONTRACTION, MAX_SWEEPS, REFERENCE_PHOTONS)`` as set when called
    (compiled code would freeze module constants).
    """
    first_check, slowest, max_sweeps, reference_photons = rules
    photons, slots = change.shape
    reference = min(reference_photons, photons - 1)
    for n in range(slots):
        worst = 0.0
        for K in range(1, photons):
            scale = max(norm[K, n], terms[K, n])
            if K > reference:
                scale = max(scale, norm[reference, n], terms[reference, n])
            if scale > 0:
                worst = max(worst, change[K, n] / scale)
            if not (np.isfinite(change[K, n]) and np.isfinite(norm[K, n]) and np.isfinite(terms[K, n])):
                worst = np.inf
        relative = np.sqrt(worst) if np.isfinite(worst) else np.inf
        busy = index[n] >= 0
        checked = busy and sweeps[n] > first_check
        q = relative / previous[n] if previous[n] > 0 else (np.inf if relative > 0 else np.nan)
        done = False
        if checked:
            contracting = q <= slowest and ratio[n] <= slowest
            estimate = relative * q / (1.0 - min(q, slowest))
            done = (contracting and estimate <= tolerance) or (relative <= tolerance and previous[n] <= tolerance)
        slow = q > slowest and sweeps[n] > first_check + 3
        # the slower of the last two contractions kept up to MAX_SWEEPS would not reach the tolerance
        hopeless = False
        if checked and np.isfinite(ratio[n]) and relative > tolerance:
            hopeless = relative * max(q, ratio[n]) ** (max_sweeps - sweeps[n]) > tolerance
        failed = busy and not done and (slow or hopeless or not np.isfinite(relative) or sweeps[n] >= max_sweeps)
        status[n] = 1 if done else (2 if failed else 0)
        previous[n] = relative if sweeps[n] >= first_check else np.inf
        ratio[n] = q if checked else np.inf


def judge_kernel():
    """:func:`_judge` compiled by numba (:data:`pyspb.backends.native.levels.judge`: numba is
    imported with that module, at the first sweep).
    """
    from .levels import judge

    return judge


class SweepSlots:
    """What every sweeping layout keeps per slot: the point, its drive, gauge and progress."""

    PROGRESS = ("index", "xi", "phase", "sweeps", "previous", "ratio")

    def __init__(self, slots: int):
        self.index = np.full(slots, -1)  # input position of the point in each slot, -1: empty
        self.xi = np.zeros(slots)
        self.phase = np.ones(slots, dtype=complex)
        self.sweeps = np.zeros(slots, dtype=int)
        self.previous = np.full(slots, np.inf)  # relative change in the last sweep
        self.ratio = np.full(slots, np.inf)  # its ratio to the one before

    @property
    def slots(self) -> int:
        return self.index.size

    def start(self, slots: np.ndarray, index: np.ndarray, J, xi) -> None:
        """Record new points in ``slots`` (their states are set by the layout's ``fill``)."""
        self.index[slots] = index
        self.xi[slots] = xi
        self.phase[slots] = np.conj(coupling_phase(J))  # undoes the gauge in states()
        self.sweeps[slots] = 0
        self.previous[slots] = np.inf
        self.ratio[slots] = np.inf

    def empty(self, slots: np.ndarray) -> None:
        """Free ``slots``; their last states stay there (bounded) until refilled or shrunk."""
        self.index[slots] = -1

    def keep_busy(self) -> np.ndarray:
        """Drop the progress of empty slots; returns the slots kept (for the layout's arrays)."""
        keep = np.flatnonzero(self.index >= 0)
        for name in self.PROGRESS:
            setattr(self, name, getattr(self, name)[keep])
        return keep


class _Sweeps(SweepSlots):
    """The points being swept together, in a fixed number of slots (point index last).

    Each slot holds one point's blocks, ``D^-1``, drive and progress.  A point that finishes
    frees its slot, and :meth:`fill` starts a new point there from the vacuum, so a batch is
    refilled without copying the others.
    """

    def __init__(self, basis: ExcitationBasis, slots: int):
        super().__init__(slots)
        self.basis = basis
        self.blocks = b = _blocks(basis.cutoff)
        self.strips = [np.zeros((basis.dim, b.size[k], slots), dtype=complex) for k in range(b.levels)]
        self.inverse_D = {key: np.zeros((b.size[key[0]], b.size[key[1]], slots), dtype=complex) for key in b.order}

    def fill(self, slots: np.ndarray, index: np.ndarray, Delta, J, chi, xi) -> None:
        """Start the points ``index`` (inputs in units of gamma) from the vacuum in ``slots``."""
        b, basis = self.blocks, self.basis
        energy = (basis.energies(Delta, J, chi) - 0.5j * basis.K).T  # E_k of H_eff, shape (d, n)
        rows = b.rows
        for k, k2 in b.order:
            self.inverse_D[k, k2][:, :, slots] = 1.0 / (
                -1j * (energy[rows[k], None, :] - np.conj(energy[None, rows[k2], :]))
            )
        for strip in self.strips:
            strip[:, :, slots] = 0.0
        self.strips[0][0, 0, slots] = 1.0
        self.start(slots, index, J, xi)

    def shrink(self) -> None:
        """Drop the empty slots (copies every array once; used when few points are left)."""
        keep = self.keep_busy()
        self.strips = [np.ascontiguousarray(strip[:, :, keep]) for strip in self.strips]
        self.inverse_D = {key: np.ascontiguousarray(value[:, :, keep]) for key, value in self.inverse_D.items()}

    def advance(self, tolerance: float, rules: tuple, status: np.ndarray) -> None:
        """Sweep until a busy slot finishes: ``status`` 1 (converged) or 2 (failed) there, 0
        elsewhere (``rules`` as :func:`_judge` takes them): :meth:`sweep` and the judge in turn.
        """
        judge = judge_kernel()
        while np.any(self.index >= 0):
            with np.errstate(all="ignore"):  # a diverging point overflows in its own slot only
                change, norm, terms = self.sweep()
            judge(change, norm, terms, self.index, self.sweeps, self.previous, self.ratio, tolerance, rules, status)
            if status.any():
                return

    def sweep(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One sweep over all blocks; returns the populations' squared change, squared size and
        the squared size of the drive terms that cancel in them, per photon number and slot
        (the inputs of :func:`_judge`).
        """
        b = self.blocks
        rows, size, levels, strips = b.rows, b.size, b.levels, self.strips
        n = self.slots
        i_xi = 1j * self.xi
        change = np.zeros((levels, n))
        norm = np.zeros((levels, n))
        terms = np.zeros((levels, n))
        for k, k2 in b.order:
            a, c = size[k], size[k2]
            # i xi (X x - x X) restricted to block (K, K'); x X = (X x)^dagger for Hermitian x
            new = _left(b.drive[k], strips[k2][b.window[k]], (a, c, n))
            if k == k2:
                # size of the drive terms, which cancel to a small population off resonance
                drive_terms = new * self.inverse_D[k, k2]
                terms[k] = 4 * self.xi**2 * np.einsum("abn,abn->n", drive_terms.conj(), drive_terms).real
                right = np.conjugate(new.transpose(1, 0, 2))
            else:
                right = _left(b.drive[k2], strips[k][b.window[k2]], (c, a, n))
                np.conjugate(right, out=right)
                right = right.transpose(1, 0, 2)
            np.subtract(new, right, out=new)
            new *= i_xi
            if k2 + 1 < levels:
                source = strips[k2 + 1][rows[k + 1]]
                jumps = _left(b.jump[k, k2], source.reshape(-1, n), (a, c, n))
                np.subtract(new, jumps, out=new)
            new *= self.inverse_D[k, k2]
            block = strips[k2][rows[k]]
            if k == k2:
                np.subtract(block, new, out=block)
                change[k] = np.einsum("abn,abn->n", block.conj(), block).real
                norm[k] = np.einsum("abn,abn->n", new.conj(), new).real
            block[...] = new
            if k != k2:
                np.conjugate(new.transpose(1, 0, 2), out=strips[k][rows[k2]])
        self.sweeps += 1
        return change, norm, terms

    def states(self, slots: np.ndarray) -> np.ndarray:
        """States of the points in ``slots``, shape (n, d, d), in the original gauge."""
        rows = self.blocks.rows
        rho = np.empty((slots.size, self.basis.dim, self.basis.dim), dtype=complex)
        for k, strip in enumerate(self.strips):
            rho[:, :, rows[k]] = np.moveaxis(np.take(strip, slots, axis=2), 2, 0)
        # x_kl -> exp(-i arg(J) (K_k - K_l)) x_kl
        phase = self.phase[slots][:, None] ** self.basis.K[None, :]
        rho *= phase[:, :, None]
        rho *= np.conj(phase)[:, None, :]
        return rho


def sweep_steady_states(Delta, J, chi, xi, basis: ExcitationBasis, tolerance: float, batch: int = 512):
    """Unnormalised steady states (vacuum element 1) by level sweeps, as points finish.

    Parameters
    ----------
    Delta, J, chi, xi : ndarray, shape (npts,)
        Model inputs in units of gamma (``J`` complex).
    basis : ExcitationBasis
    tolerance : float
        Estimated relative error (per photon-number level) at which a point is accepted.
    batch : int
        Points swept together; a finished point's slot is given to the next point at once.

    Yields
    ------
    index : ndarray of int
        Positions (in the inputs) of points that finished in the last sweep.
    rho : ndarray, shape (len(index), d, d)
        Their states in the excitation basis; meaningful where ``converged``.
    converged : ndarray of bool
        False where the sweeps gave up (too slow, or non-finite): use another solver there.

    Notes
    -----
    The sweeps converge linearly: with ``c`` the relative change in the last sweep and
    ``q`` its ratio to the change before, the remaining error is about ``c q / (1 - q)``.
    A point is accepted when that estimate is below ``tolerance`` and ``q <= 1/2`` in the last
    two sweeps; a point whose ``q`` stays above 1/2 after six sweeps, or that reaches
    :data:`MAX_SWEEPS`, is given up.
    """
    from .levels import LevelSweeps  # (it builds on SweepSlots of this module)

    points = Delta.size
    by_level = basis.cutoff <= LEVEL_SWEEP_MAX_CUTOFF
    slots = max(1, min(batch, points, LEVEL_SWEEP_POINTS if by_level else batch))
    sweeps: _Sweeps | LevelSweeps = (LevelSweeps if by_level else _Sweeps)(basis, slots)
    queued = 0
    rules = (FIRST_CHECK, float(SLOWEST_CONTRACTION), MAX_SWEEPS, REFERENCE_PHOTONS)
    status = np.zeros(slots, dtype=np.int8)
    while True:
        free = np.flatnonzero(sweeps.index < 0)
        # refill many slots at once: scattered writes along the point axis are cheap only in bulk
        if queued < points and (free.size >= max(1, sweeps.slots // 4) or free.size == sweeps.slots):
            new = np.arange(queued, min(points, queued + free.size))
            sweeps.fill(free[: new.size], new, Delta[new], J[new], chi[new], xi[new])
            queued += new.size
            free = free[new.size :]
        elif queued == points and 0 < free.size and 2 * free.size >= sweeps.slots:
            sweeps.shrink()
            free = free[:0]
            status = status[: sweeps.slots]
        if free.size == sweeps.slots:  # nothing left to sweep
            return
        sweeps.advance(tolerance, rules, status)
        finished = np.flatnonzero(status)
        yield sweeps.index[finished], sweeps.states(finished), status[finished] == 1
        sweeps.empty(finished)


def steady_states(Delta, J, chi, xi, basis: ExcitationBasis, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """All points of :func:`sweep_steady_states` at once: ``(rho, converged)``, in input order."""
    rho = np.zeros((Delta.size, basis.dim, basis.dim), dtype=complex)
    converged = np.zeros(Delta.size, dtype=bool)
    for index, states, done in sweep_steady_states(Delta, J, chi, xi, basis, tolerance):
        rho[index], converged[index] = states, done
    return rho, converged


def underflows(ratios: np.ndarray) -> np.ndarray:
    """Points whose top level's estimated population is below :data:`SMALLEST_POPULATION`.

    ``ratios`` are the weak-drive amplitude ratios per level of
    :func:`pyspb.backends.native._perturbative_ratios`.
    """
    top = np.sum(np.log(ratios), axis=1)
    return 2 * top < np.log(SMALLEST_POPULATION)
