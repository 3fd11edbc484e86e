"""Native steady-state engine (NumPy/SciPy): exact for the truncated model, batched over points.

Method
------
Two exact solvers of the same vacuum-fixed system, tried in turn for every point:

1. *Level sweeps* (:mod:`pyspb.backends.native.gauss_seidel`): block Gauss-Seidel over the
   photon-number levels of the density matrix, no eigen-decomposition.  Fast, and at
   moderate drive (every figure of the paper) it converges for every point.
2. *Graded Krylov* (this module, below) for the points the sweeps leave: strong drive or
   multi-photon resonances (where the sweeps contract too slowly) and drives so weak that
   the top levels would underflow.

The Krylov solver works in the :class:`~pyspb.model.ExcitationBasis` (eigenbasis of the
drive-free Hamiltonian, the same for every grid point), where the Liouvillian of one point is
``L x = D x - i (H' x - x H'^H) + J x``: ``D x = -i (E_k - E_l^*) x_kl`` elementwise (``E`` the
diagonal of ``H_eff = H - i gamma (n1 + n2) / 2``), ``H' = c A1 + c^* A1^T`` the drive
(``c = xi e^{i arg J}``) and ``J x = gamma (A1 x A1^T + A2 x A2^T)`` the quantum jumps.  Group the
elements ``x_kl`` into levels ``s = K_k + K_l``: ``D`` keeps the level, the drive's raising part
``c^* A1^T`` brings level ``s - 1`` up to ``s``, its lowering part ``s + 1`` down to ``s``, the
jumps ``s + 2`` down to ``s``.

The steady state solves ``L rho = 0`` with the vacuum population fixed to 1 (the equation
of the vacuum element is replaced by ``rho_00 = 1``: the diagonal equations are linearly
dependent through trace preservation), normalised to trace 1 afterwards.  The replaced
equation is weighted by the scale of the Liouvillian's terms (measured on the previous
solution, 1 at first), so that the Krylov tolerance is relative to that scale even where a
weak drive meets a large loss and every term of ``L rho`` is small.  GMRES solves it with
``L`` applied explicitly (sparse products, compiled: :mod:`pyspb.backends.native.krylov`),
right-preconditioned by one of two exact solves:

1. the *level solve* ``M^-1``, ``M = D + `` the raising drive (the lower-triangular part of
   ``L`` in level order): one pass in an order that respects the levels (row blocks of the
   excitation basis), i.e. one level sweep of
   :mod:`pyspb.backends.native.gauss_seidel` applied to the Krylov vector.  It costs about as
   much as one application of ``L`` (``O(nnz(A1) d)``, no ``O(d^3)`` work, no
   eigen-decomposition) and, measured on the hard regimes at cutoffs 5 and 7, needs about
   as many iterations as the exact no-jump inverse below (10-20 at strong drive, the
   multi-photon resonances and strong |J|, 30-60 on the Kerr bistable side): GMRES turns the
   sweeps, which contract too slowly there, into a fast solver.
2. for the points whose answer is not accepted after at most :data:`LEVEL_RESTARTS` cycles of
   it (the Liouvillian's residual, from the sparse kernels, or GMRES's own above 100 times the
   tolerance; where the vacuum equation's first weight is far off the Liouvillian's scale,
   only after the next pass: :data:`SCALE_MISMATCH`), the exact
   *no-jump inverse* ``S^-1``, ``S = L - J`` (drive and loss, no jumps), applied through the
   eigen-decomposition ``H_eff = W Omega W^-1`` (one ``O(d^3)`` decomposition per point,
   four dense ``d x d`` products per iteration; the Schur form where ``W`` is
   ill-conditioned), from where the level solve left the point; its answer replaces the level
   GMRES's only where it is better (:func:`_better`).

Every Krylov vector is a Hermitian matrix (``L`` and the vacuum equation keep Hermiticity,
the right-hand side is real), so GMRES runs on real vectors of ``d^2`` numbers (the kernels
read and write them packed), orthogonalised by a compiled modified Gram-Schmidt point by
point (each Krylov vector read once from memory) with the least-squares problem kept
triangular by Givens rotations.  With the level preconditioner each point's whole GMRES is one
compiled call (:func:`pyspb.backends.native.krylov.level_gmres`, no Python or GIL between
iterations); with the no-jump inverse GMRES is batched over points, and a point leaves the
batch's Krylov cycle as soon as it has converged.  The true residual of ``L x`` is checked
for every point at the end, from the same sparse kernels as GMRES's operator (the tests check
them against dense products).  A later pass (refined weights) starts from the previous pass's
solution.

Accuracy of small numbers: multi-photon populations can be 1e-13 and below while the
vacuum population is ~1, and g3, g4 need them to full relative accuracy.  So the solve runs
in *graded* variables ``rho_kl = t_k t_l x_kl`` with ``t_k = w_{K_k}``, ``w_K ~ sqrt(P_K)``
(``P_K`` the probability of K photons in total): every excitation level of ``x`` is of order
one and the Krylov tolerance becomes a relative tolerance per level.  The weights start from
a weak-drive estimate and are refined from the solution until every level is resolved.  Every
point's residual is checked; a point that does not converge is solved by sparse LU of the
same vacuum-fixed system instead, so no point returns an unconverged answer.

Nearly empty modes: :mod:`pyspb.observables` reports a mode's moment down to 1e-10 of the same
moment of the total photon number, so its last digits must be right to ~1e-16 of the level
populations, below what the tolerance pins down.  The converged GMRES answers are off by a few
units of that (the rounding of ``L x``, whose energy and drive terms cancel to leave terms up to
~1e4 times smaller, enters every product with ``L``): measured on random hard points, g3 and g4
of a nearly empty mode erred by up to 1e-5, and still 1.0-1.5e-6 at a 10-100x tighter tolerance
(1e-13, 1e-14).  So every final answer with a mode near that limit (a factorial moment within
:data:`REFINE_MARGIN` of the smallest reported; elsewhere the reported numbers do not need the
last digits) gets one step of iterative refinement (:func:`_refine`): the remainder ``b - A x`` with
the energies, the drive and the jumps summed in twice the working precision (Dot2,
:func:`pyspb.backends.native.krylov.graded_remainder`), its correction from GMRES with the
preconditioner that solved the point, to 1e-4 of it (to the remainder's rounding floor in
one step).  That brings every reported number within 5e-7 of a long-double-refined dense LU
(random hard points, five seeds; 63-77 % of them are refined).  Refining every answer cost
29-50 % more CPU time per point (one thread, cutoff 7,
power and detuning scans, strong |J|, Kerr side: 3.2, 2.7, 1.7, 6.6 ms without refinement,
4.4-4.8, 3.8, 2.2, 8.5-8.7 ms with it, against 7.6, 9.0-9.3, 4.4, 23.0 ms with the exact no-jump
inverse as the only preconditioner); these scans have no mode near the limit but for one point
each of the first two, and in the same minutes took 3.5, 2.7, -, 6.5 ms refining only those
against 4.5, 3.6, -, 8.2 ms refining all.
"""

from __future__ import annotations

import numbers
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property, lru_cache

import numpy as np
import scipy.linalg
import scipy.sparse.linalg as spla
from scipy.linalg.lapack import ztrsyl as trsyl
from threadpoolctl import ThreadpoolController

from ...model import ExcitationBasis, coupling_phase, excitation_basis, liouvillian
from ...observables import MAX_ORDER, factorial_moments, level_populations, resolution
from .. import memory
from . import gauss_seidel

NAME = "native"
#: what solves the steady states (recorded in the results' attrs)
METHOD = (
    "level sweeps (block Gauss-Seidel over photon-number levels); graded GMRES (Hermitian, explicit Liouvillian,"
    " preconditioned by one level solve, else by the exact no-jump inverse; one refinement step with a"
    " twice-precision remainder), then sparse LU, for the points they do not converge"
)
#: what computes two-time correlations (recorded by pyspb.g2_tau)
METHOD_TAU = (
    "exact steady state, then exp(L tau) of the conditional states by adaptive ETDRK4 in the Fock basis"
    " (energies exactly, drive/hopping/jumps by the integrator; photon numbers kept up to where one more"
    " changes nothing; pyspb.backends.native.dynamics)"
)
#: what computes emission spectra (recorded by pyspb.spectrum)
METHOD_SPECTRUM = (
    "exact steady state, then a reduced model of (L - i omega)^-1 per point: Galerkin on a rational Krylov"
    " space of GMRES solves (preconditioned with the exact no-jump inverse) at shifts added until the true"
    " residual is <= 1e-11 at every frequency (sparse LU where it cannot be; pyspb.backends.native.spectrum)"
)
#: NumPy/SciPy release the GIL and are safe in any thread (dask workers included)
MAIN_THREAD_ONLY = False

#: relative residual at which the graded GMRES stops
DEFAULT_TOLERANCE = 1e-12
#: Krylov subspace size before a restart (the Kerr bistable side needs 30-60 products at
#: cutoff 7: 60 spares most of them the restarts)
RESTART = 60
#: restarts of one GMRES call before the point is handed to the sparse LU
MAX_RESTARTS = 5
#: GMRES cycles preconditioned by the level solve before a point turns to the no-jump inverse
LEVEL_RESTARTS = 2
#: GMRES cycles of the refinement's correction (:func:`_refine`), with either preconditioner
REFINEMENT_RESTARTS = 2
#: the refinement's GMRES (:func:`_refine`) stops when it has reduced the remainder by this factor
#: (random hard points of the tests, five seeds: worst reported error 3.1e-7, 3.6e-7, 4.7e-7,
#: 1.9e-7, 2.4e-7; with 1e-2 6.7e-6 on seed 4, a strong-drive point solved by the level
#: preconditioner whose remainder one step to 1e-2 brought from 1.5e-11 to 1.3e-13, its rounding
#: floor being ~2e-15)
REFINEMENT_TOLERANCE = 1e-4
#: a point is refined (:func:`_refine`) where a mode's factorial moment is within this factor of
#: the smallest :mod:`pyspb.observables` reports; elsewhere the reported numbers do not need the
#: last digits the refinement corrects.  Random hard points of the tests, five seeds, worst
#: reported error: 2.8e-7 ... 4.7e-7 with 1e2, 1e3 or every point refined, 9.6e-7 with 10, 1.0e-5
#: with 1 (seed 0)
REFINE_MARGIN = 1e3
#: weight refinements (passes) at most
MAX_PASSES = 4
#: a point the level preconditioner leaves goes to the no-jump inverse at once unless the vacuum
#: equation's first weight (1) is off the scale of the Liouvillian's terms by more than this
#: factor: then the next pass, with the measured weight, comes first (strong drive at cutoff 20,
#: weak-drive level weights: scale 2.4e7; the next pass's level GMRES converged in 1 s where the
#: no-jump inverse, O(d^3) per iteration, had taken 39 s and not converged)
SCALE_MISMATCH = 100.0
#: eigenvector-basis condition number above which a point uses the Schur form of H_eff
SCHUR_CONDITION = 1e8
#: points swept together by the level sweeps (at most)
SWEEP_BATCH = 1024
#: points per worker from which the level sweeps of a call are split over the workers
SPLIT_POINTS = 4
#: working memory of one batch of points, in bytes
BATCH_BYTES = 256 * 2**20
#: smallest weight used for an excitation level
WEIGHT_FLOOR = 1e-120
#: the solvers a point can take, in the order they are tried (keys of the ``paths`` counts)
PATHS = ("level_sweeps", "krylov", "sparse_lu")


#: measured peak of SciPy's sparse LU (COLAMD) of the vacuum-fixed Liouvillian, bytes, and
#: the power of d^2 it grows with (cutoff 5: 5 MB, 7: 45 MB, 10: 477 MB)
LU_BYTES_CUTOFF_10 = 480e6
LU_GROWTH = 1.9


def level_sizes(cutoff: int) -> np.ndarray:
    """Basis vectors with K photons in total, K = 0 .. 2 cutoff."""
    K = np.arange(2 * cutoff + 1)
    return np.minimum(K + 1, 2 * cutoff + 1 - K)


def memory_estimate(cutoff: int) -> dict[str, float]:
    """Working memory of the native engine at one cutoff, in bytes (estimates, from the array sizes).

    Returns
    -------
    dict
        ``fixed``: operators built once per cutoff (block sweeps' jump matrices, level
        operators, excitation basis); ``per_point``: one point in the level sweeps and in the
        graded Krylov solver (Krylov vectors, eigenvectors of H_eff), the larger of the two;
        ``sparse_lu``: one point through the sparse-LU last resort (fill-in of the factors,
        extrapolated from measurements at cutoffs 5-10); ``minimum``: fixed plus one point.
        Not included: the compiled Krylov kernels (numba), ~30 MB once per process.
    """
    d = (cutoff + 1) ** 2
    N = float(d) ** 2
    s = level_sizes(cutoff).astype(float)
    # block sweeps: a dense jump matrix for every pair of blocks (K + 1, K' + 1) -> (K, K'), K <= K'
    pair = s[:-1] * s[1:]
    jumps = 8.0 * np.sum(np.triu(np.outer(pair, pair)))
    # level operators (compiled level sweeps): sparse kron(A, A) of both modes and the drive commutator
    nnz_A = np.sum(s[:-1] * s[1:])
    level_ops = 2 * 12.0 * nnz_A**2 + 4 * 12.0 * N * (2 * cutoff + 2)
    if cutoff > gauss_seidel.LEVEL_SWEEP_MAX_CUTOFF:
        level_ops = 0.0  # not built: every batch uses the block sweeps
    basis = 3 * 16.0 * d * (2 * cutoff + 1) + 8.0 * d * d
    fixed = jumps + level_ops + basis
    sweeps = 16.0 * N * 2
    krylov = _krylov_bytes_per_element() * N
    per_point = max(sweeps, krylov)
    lu = LU_BYTES_CUTOFF_10 * (N / 121.0**2) ** LU_GROWTH
    return {"fixed": fixed, "per_point": per_point, "sparse_lu": lu, "minimum": fixed + per_point}


def _krylov_bytes_per_element() -> float:
    """Graded Krylov memory per point and density-matrix element, bytes: the Krylov vectors
    (real, :class:`_Hermitian`) and ~12 complex d x d arrays (the state and the operator's
    temporaries; for the points the level preconditioner leaves, the eigenvectors of H_eff,
    their inverse and conjugates).  The Givens rotations and the kernels' scratch (per worker,
    not per point) are negligible.
    """
    return 8.0 * (RESTART + 1) + 16.0 * 12


def available_memory() -> float:
    """Bytes of memory available now (:func:`pyspb.backends.memory.available_memory`; inf where unknown)."""
    found = memory.available_memory()
    return float("inf") if found is None else float(found)


def check_memory(cutoff: int) -> None:
    """Raise a MemoryError naming the cutoff and the memory it needs if it cannot fit.

    Checked before any work, so that a too large cutoff fails at once with a clear message
    instead of a NumPy allocation error minutes later.
    """
    need, have = memory_estimate(cutoff)["minimum"], available_memory()
    if need > have:
        raise MemoryError(
            f"cutoff {cutoff} needs about {_gib(need)} of memory for the native engine "
            f"(d^2 = {(cutoff + 1) ** 4} density-matrix elements per point), but {_gib(have)} is available: "
            "choose a smaller cutoff, or check truncation_error at the largest cutoff that fits"
        )


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


def version_info() -> dict:
    """Provenance of the native engine."""
    import scipy

    return {"numpy_version": np.__version__, "scipy_version": scipy.__version__}


def solver_options(tolerance: float | None = None) -> dict:
    """Keyword arguments of :func:`steady_state_populations`: ``tolerance`` checked and defaulted.

    Parameters
    ----------
    tolerance : float, optional
        Relative accuracy per photon-number level, in (0, 1e-3); default
        :data:`DEFAULT_TOLERANCE`.

    Returns
    -------
    dict
        ``{"tolerance": float}``.
    """
    if tolerance is None:
        return {"tolerance": DEFAULT_TOLERANCE}
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real):
        raise TypeError(
            f"tolerance must be a number in (0, 1e-3) (the relative accuracy per photon-number level, "
            f"default {DEFAULT_TOLERANCE:g}), got {tolerance!r}"
        )
    tolerance = float(tolerance)
    if not 0 < tolerance < 1e-3:
        raise ValueError(f"tolerance must be in (0, 1e-3), got {tolerance}")
    return {"tolerance": tolerance}


def steady_state_populations(
    Delta,
    J,
    chi,
    xi,
    gamma,
    *,
    cutoff: int,
    tolerance: float = DEFAULT_TOLERANCE,
    threads: int | None = None,
    paths: dict[str, int] | None = None,
) -> np.ndarray:
    """Joint photon-number probabilities of the steady state.

    Parameters
    ----------
    Delta, chi, xi, gamma : array_like of float, shape (npts,)
        Detuning, Kerr coefficient, drive amplitude and loss rate per mode (one rate unit).
    J : array_like of complex, shape (npts,)
        Backscattering coupling.
    cutoff : int
        Largest photon number kept per mode.
    tolerance : float
        Relative accuracy per photon-number level at which a point counts as converged: the
        estimated remaining error of the level sweeps, or the residual of the graded Krylov
        system.
    threads : int, optional
        Workers run side by side (default: one per core).
    paths : dict, optional
        If given, the number of points each solver finished is added to it under
        :data:`PATHS` (level sweeps, graded Krylov, sparse LU).

    Returns
    -------
    ndarray, shape (npts, cutoff + 1, cutoff + 1)
        ``P[k, n_cw, n_ccw] = <n_cw, n_ccw| rho_ss |n_cw, n_ccw>`` of point k.
    """
    basis = excitation_basis(cutoff)
    return steady_state_excitation_basis(
        Delta, J, chi, xi, gamma, basis, tolerance, threads, reduce=_fock_blocks(cutoff).populations, paths=paths
    )


class _FockBlocks:
    """The excitation basis's vectors with K photons as Fock states with K photons, per K."""

    def __init__(self, basis: ExcitationBasis):
        cutoff = basis.cutoff
        V = basis.V.toarray()
        n_total = np.add.outer(np.arange(cutoff + 1), np.arange(cutoff + 1)).ravel()
        # V is block diagonal: Fock states with K photons are made of basis vectors with K photons
        self.shape = (cutoff + 1, cutoff + 1)
        self.blocks = []
        for K in range(2 * cutoff + 1):
            fock, own = np.flatnonzero(n_total == K), np.flatnonzero(basis.K == K)
            self.blocks.append((fock, slice(own[0], own[-1] + 1), V[np.ix_(fock, own)]))

    def populations(self, rho_hat: np.ndarray) -> np.ndarray:
        """``P[k, n_cw, n_ccw]``: the Fock-basis diagonal ``diag(V rho V^T)`` of excitation-basis
        states (the phase of J cancels on the diagonal), any normalisation.
        """
        P = np.empty((rho_hat.shape[0], self.shape[0] * self.shape[1]))
        for fock, own, V_K in self.blocks:
            P[:, fock] = np.einsum("ik,nkl,il->ni", V_K, rho_hat[:, own, own], V_K).real
        return P.reshape((-1,) + self.shape)


@lru_cache(maxsize=4)
def _fock_blocks(cutoff: int) -> _FockBlocks:
    return _FockBlocks(excitation_basis(cutoff))


def _near_the_resolution(rho_hat: np.ndarray, basis: ExcitationBasis, Delta, chi, gamma) -> np.ndarray:
    """Points with a factorial moment of one mode (orders 1 .. 4) within :data:`REFINE_MARGIN` of
    the smallest that :mod:`pyspb.observables` reports (``resolution`` times the same moment of the
    total photon number): those whose last digits the reported numbers need (a nearly empty mode).
    NaN or zero moments count as near.
    """
    P = _fock_blocks(basis.cutoff).populations(rho_hat)
    order = min(MAX_ORDER, basis.cutoff)
    total = factorial_moments(level_populations(P), order)
    floor = REFINE_MARGIN * np.asarray(resolution(Delta, gamma, chi), dtype=float)[:, None] * total
    near = np.zeros(P.shape[0], dtype=bool)
    for marginal in (P.sum(axis=2), P.sum(axis=1)):
        near |= np.any(~(factorial_moments(marginal, order) >= floor), axis=1)
    return near


def steady_state_density_matrices(
    Delta, J, chi, xi, gamma, *, cutoff: int, tolerance: float = DEFAULT_TOLERANCE
) -> np.ndarray:
    """Steady-state density matrices in the Fock basis, shape (npts, d, d).

    The basis index is ``n_cw * (cutoff + 1) + n_ccw`` (see :mod:`pyspb.model`).
    """
    basis = excitation_basis(cutoff)
    Delta, J, chi, xi, gamma = in_units_of_gamma(Delta, J, chi, xi, gamma)
    rho_hat = steady_state_excitation_basis(Delta, J, chi, xi, gamma, basis, tolerance)
    U = fock_from_excitation(basis, J)
    return U @ rho_hat @ np.conj(np.swapaxes(U, 1, 2))


def fock_from_excitation(basis: ExcitationBasis, J: np.ndarray) -> np.ndarray:
    """Unitaries ``U = diag(exp(i arg J n_cw)) V`` taking excitation-basis vectors to Fock."""
    n_cw = np.repeat(np.arange(basis.cutoff + 1), basis.cutoff + 1)
    phase = coupling_phase(J)[:, None] ** n_cw[None, :]
    return phase[:, :, None] * basis.V.toarray()[None, :, :]


def in_units_of_gamma(Delta, J, chi, xi, gamma) -> tuple[np.ndarray, ...]:
    """Flat inputs divided by gamma (the steady state depends on rate ratios only).

    A coupling below 1e-250 gamma is set to exactly 0, so that its phase (used both by the
    solver and to return to the Fock basis) is never that of an underflowed number.
    """
    Delta, chi, xi, gamma = (np.asarray(v, dtype=float).reshape(-1) for v in (Delta, chi, xi, gamma))
    J = np.asarray(J, dtype=complex).reshape(-1)
    J = np.where(np.abs(J) > 1e-250 * gamma, J / gamma, 0.0)
    return Delta / gamma, J, chi / gamma, xi / gamma, np.ones_like(gamma)


class _GradedSystem:
    """The Liouvillian of a batch of points in the excitation basis and graded variables.

    ``ratios[n, K] = w_K / w_{K-1}`` are the level-weight ratios of point n.
    """

    def __init__(self, Delta, J, chi, xi, gamma, basis: ExcitationBasis, ratios: np.ndarray):
        K = basis.K
        self.K = K
        self.gamma = gamma[:, None, None]
        self.A1, self.A2 = basis.A1, basis.A2
        self.npts, self.dim = Delta.size, K.size
        self.vacuum_row = np.ones(self.npts)
        self.ratios = ratios
        self.weights = np.cumprod(ratios, axis=1)
        r = ratios[:, K]  # ratio of the level of each basis vector, shape (npts, d)
        self.r = np.ascontiguousarray(r)
        self.gamma_flat = np.ascontiguousarray(gamma, dtype=float)
        #: ``A1, A1^T, A2`` in CSR form, for the kernels
        self.operators = _sparse_operators(basis.cutoff)
        self.starts, self.row_offset = _level_blocks(basis.cutoff)
        #: the right preconditioner: "levels" (:meth:`level_solve`) or "no-jump" (``S^-1``,
        #: set by :meth:`decompose`)
        self.preconditioner = "levels"
        energy = basis.energies(Delta, J, chi)
        self.drive = xi * coupling_phase(J)  # c = xi e^{i phi}
        self.diagonal = energy - 0.5j * gamma[:, None] * K  # diagonal of H_eff

    @cached_property
    def H(self) -> np.ndarray:
        """The graded ``H_eff = diag(E) + c A1 R + c^* R^-1 A1^T`` per point (``R = diag(r)``), dense:
        made when first needed (the no-jump inverse and the residual check; the level solve and
        the sparse kernels do without it).
        """
        drive = self.drive[:, None, None]
        A1 = self.A1.toarray()
        H = drive * (A1[None, :, :] * self.r[:, None, :]) + np.conj(drive) * (A1.T[None, :, :] / self.r[:, :, None])
        H[:, np.arange(self.dim), np.arange(self.dim)] += self.diagonal
        return H

    @cached_property
    def H_dagger(self) -> np.ndarray:
        """``H^dagger`` per point, contiguous."""
        return np.ascontiguousarray(np.conj(np.swapaxes(self.H, 1, 2)))

    def decompose(self) -> None:
        """Eigen-decomposition ``H_eff = W Omega W^-1`` per point (``O(d^3)``), for :meth:`no_jump_inverse`."""
        omega, self.W = np.linalg.eig(self.H)
        self.W_inv = np.linalg.inv(self.W)
        # conjugate transposes, contiguous, made once (every GMRES iteration multiplies by them)
        self.W_dagger, self.W_inv_dagger = (
            np.ascontiguousarray(np.conj(np.swapaxes(M, 1, 2))) for M in (self.W, self.W_inv)
        )
        self.denominator = -1j * (omega[:, :, None] - np.conj(omega)[:, None, :])
        # Where H_eff is close to defective (e.g. chi = 0, where its eigenvalues are
        # degenerate and its eigenvectors nearly parallel) the eigenvector basis is useless;
        # those points use the Schur form (Bartels-Stewart), backward stable everywhere.
        condition = np.linalg.norm(self.W, axis=(1, 2)) * np.linalg.norm(self.W_inv, axis=(1, 2))
        self.schur = {}
        for k in np.flatnonzero(~(condition < SCHUR_CONDITION)):
            T, Z = scipy.linalg.schur(self.H[k], output="complex")
            self.schur[int(k)] = (T, Z)
        self.preconditioner = "no-jump"

    def jumps(self, x: np.ndarray) -> np.ndarray:
        """Graded jump term ``gamma (A1 y A1^T + A2 y A2^T)`` with ``y = r r^T * x``."""
        from . import krylov  # numba: imported and compiled at the first use

        out = np.empty(x.shape, dtype=complex)  # C order whatever the layout of x
        A1, _, A2 = self.operators
        krylov.graded_jumps(np.ascontiguousarray(x), self.r, self.gamma_flat, A1, A2, out)
        return out

    def no_jump(self, x: np.ndarray) -> np.ndarray:
        """Graded ``S x = -i (H x - x H^dagger)`` (dense batched products with H_eff)."""
        return -1j * (self.H @ x - x @ self.H_dagger)

    def no_jump_inverse(self, y: np.ndarray) -> np.ndarray:
        """Graded ``S^-1 y`` through the eigen-decomposition (or Schur form) of H_eff."""
        z = self.W_inv @ y @ self.W_inv_dagger
        z /= self.denominator
        x = self.W @ z @ self.W_dagger
        for k, (T, Z) in self.schur.items():
            # S x = y  <=>  T x' - x' T^H = i Z^H y Z  with  x = Z x' Z^H
            c = 1j * (np.conj(Z.T) @ y[k] @ Z)
            solution, scale, info = trsyl(T, T, c, trana="N", tranb="C", isgn=-1)
            x[k] = Z @ (solution / scale) @ np.conj(Z.T)
        return x

    def level_solve(self, z: np.ndarray) -> np.ndarray:
        """``M^-1 z`` for packed ``z`` (:class:`_Hermitian`), ``M`` the level-lower part of ``A``
        (diagonal and the drive's raising part): one pass over the levels (row blocks)
        (:func:`pyspb.backends.native.krylov.level_solve`).  Returns the Hermitian ``d x d`` matrices.
        """
        from . import krylov

        out = np.empty((self.npts, self.dim, self.dim), dtype=complex)
        args = (self.vacuum_row, self.drive, self.r, self.diagonal, self.starts, self.row_offset)
        krylov.level_solve(np.ascontiguousarray(z), *args, self.operators[1], out)
        return out

    def liouvillian(self, x: np.ndarray, full: bool = True) -> np.ndarray:
        """``A x``, packed (:class:`_Hermitian`): the graded ``L x`` of Hermitian ``x`` with the
        vacuum equation replaced by ``vacuum_row x_00`` (sparse drive and jumps, compiled:
        :func:`pyspb.backends.native.krylov.graded_liouvillian`); with ``full`` False its
        level-lower part ``M x`` (the inverse of :meth:`level_solve`).
        """
        from . import krylov

        out = np.empty((self.npts, self.dim**2))
        args = (*self.point_data(), self.row_offset)
        krylov.graded_liouvillian(np.ascontiguousarray(x), *args, *self.operators, full, out)
        return out

    def precondition(self, z: np.ndarray) -> np.ndarray:
        """``x = P z`` for packed ``z``, the right preconditioner: :meth:`level_solve` or :meth:`no_jump_inverse`."""
        if self.preconditioner == "levels":
            return self.level_solve(z)
        return self.no_jump_inverse(_hermitian(self.dim).unpack(z))

    def preconditioned(self, z: np.ndarray) -> np.ndarray:
        """``A P z`` (packed in, packed out): ``L P z`` with the vacuum equation replaced by
        ``sigma (P z)_00``.

        ``sigma`` (:attr:`vacuum_row`, per point) puts the vacuum equation on the scale of the
        others, so that GMRES's tolerance, relative to the right-hand side ``sigma e_00``, is
        a tolerance on the Liouvillian's own residual.  ``L`` is applied explicitly
        (:meth:`liouvillian`), so GMRES minimises the true residual whatever the accuracy of
        the preconditioner ``P``.  With the level preconditioner both are one compiled call
        (:func:`pyspb.backends.native.krylov.level_preconditioned`).
        """
        if self.preconditioner != "levels":
            return self.liouvillian(self.precondition(z))
        from . import krylov

        x = np.empty((self.npts, self.dim, self.dim), dtype=complex)
        out = np.empty((self.npts, self.dim**2))
        args = (*self.point_data(), self.starts, self.row_offset)
        krylov.level_preconditioned(np.ascontiguousarray(z), *args, *self.operators, x, out)
        return out

    def point_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What the kernels take per point: ``vacuum_row, drive, r, diagonal, gamma`` (contiguous)."""
        return self.vacuum_row, self.drive, self.r, self.diagonal, self.gamma_flat

    def start(self, x: np.ndarray) -> np.ndarray:
        """A packed ``z`` with ``P z = x`` (``P^-1 x``): the GMRES start for a first guess ``x``."""
        if self.preconditioner == "levels":
            return self.liouvillian(x, full=False)
        return _hermitian(self.dim).pack(self.no_jump(x))

    def remainder(self, x: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``b - A x`` for Hermitian ``x`` (``A`` as in :meth:`liouvillian`), the energies, the drive
        and the jumps summed in twice the working precision
        (:func:`pyspb.backends.native.krylov.graded_remainder`).

        The energies ``-i (E_k - E_l^*) x_kl`` and the graded drive (whose raising part
        ``c^* / r`` grows with the energies it balances) are the large terms of ``A x``: they
        cancel to leave terms up to ~1e4 times smaller at chi ~ 500 gamma, so in working
        precision the remainder would be their rounding; the jumps' rounding set the floor of
        the remaining cases (a g4 of a nearly empty mode, 1.0e-6 off with them in working
        precision).
        """
        from . import krylov

        x = np.ascontiguousarray(x)
        rest = b.copy()
        rest[:, 0, 0] = b[:, 0, 0] - self.vacuum_row * x[:, 0, 0]
        out = np.empty_like(x)
        krylov.graded_remainder(x, rest, self.drive, self.r, self.diagonal, self.gamma_flat, *self.operators, out)
        return out

    def residual(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Relative residual of ``L x = 0`` (vacuum equation left out) per point, and its scale.

        The scale is ``|S x| + |J x| + |(|E_k| + |E_l|) x_kl|`` (``E`` the diagonal of H_eff):
        the size of the terms that cancel in ``L x``, including the energies that cancel
        inside ``S x``.  Rounding alone leaves a residual of ~1e-16 of it (with chi ~ 500 gamma
        that is ~1e-11 of ``|S x|``), so the criterion asks no more than floating point gives.
        """
        # from the sparse kernels, packed (norms kept): A x = (S + J) x with the vacuum equation
        # in element 0, and J x; the dense S x took 5 % of a strong-drive point at cutoff 10
        hermitian = _hermitian(self.dim)
        r = self.liouvillian(x)
        jumps = hermitian.pack(self.jumps(x))
        no_jump = r - jumps
        no_jump[:, 0] = self._no_jump_vacuum(x)
        r[:, 0] = 0.0
        energy = np.abs(self.diagonal)
        energies = (energy[:, :, None] + energy[:, None, :]) * np.abs(x)
        scale = sum(np.linalg.norm(term.reshape(self.npts, -1), axis=1) for term in (no_jump, jumps, energies))
        return np.linalg.norm(r, axis=1) / scale, scale

    def _no_jump_vacuum(self, x: np.ndarray) -> np.ndarray:
        """``(S x)_00 = -i (H x - x H^dagger)_00 = 2 Im (H x)_00`` per point (``x`` Hermitian, ``E_0``
        real), from row 0 of the graded ``H = diag(E) + c A1 R + c^* R^-1 A1^T`` (row 0 of
        ``A1^T`` is empty: nothing is raised into the vacuum).
        """
        ptr, col, val = self.operators[0]
        row = slice(ptr[0], ptr[1])
        Hx = self.diagonal[:, 0] * x[:, 0, 0]
        Hx = Hx + self.drive * np.sum(val[row] * self.r[:, col[row]] * x[:, col[row], 0], axis=1)
        return 2.0 * Hx.imag

    def subset(self, keep: np.ndarray) -> _GradedSystem:
        """The same system restricted to the points ``keep``."""
        sub = object.__new__(_GradedSystem)
        sub.__dict__.update(self.__dict__)
        for name in (
            "gamma",
            "gamma_flat",
            "r",
            "ratios",
            "weights",
            "diagonal",
            "drive",
            "vacuum_row",
        ):
            setattr(sub, name, getattr(self, name)[keep])
        for name in ("H", "H_dagger"):  # the subset's rows where made, else made again where needed
            if name in self.__dict__:
                sub.__dict__[name] = self.__dict__[name][keep]
        sub.npts = keep.size
        if self.preconditioner == "no-jump":
            for name in ("W", "W_inv", "W_dagger", "W_inv_dagger", "denominator"):
                setattr(sub, name, getattr(self, name)[keep])
            position = {int(k): i for i, k in enumerate(keep)}
            sub.schur = {position[k]: v for k, v in self.schur.items() if k in position}
        return sub


#: a real sparse matrix as the kernels take it: ``(indptr, indices, data)`` of its CSR form
_CSR = tuple[np.ndarray, np.ndarray, np.ndarray]


@lru_cache(maxsize=8)
def _level_blocks(cutoff: int) -> tuple[np.ndarray, np.ndarray]:
    """The layout :func:`pyspb.backends.native.krylov.level_solve` reads: the first basis vector of
    each excitation block, and ``d`` (the basis is sorted by excitation number), and where each
    row's ``sqrt(2) Re x_kl`` is in a packed vector (:class:`_Hermitian`), less ``l``.
    """
    K = excitation_basis(cutoff).K
    if np.any(np.diff(K) < 0):  # pragma: no cover - a property of pyspb.model.excitation_basis
        raise ValueError("the excitation basis must be sorted by photon number for the level solve")
    d = K.size
    starts = np.searchsorted(K, np.arange(K.max() + 2)).astype(np.int64)
    k = np.arange(d - 1)
    row_offset = np.zeros(d, dtype=np.int64)
    row_offset[:-1] = d + _hermitian(d).position[k, k + 1] - (k + 1)
    return starts, row_offset


@lru_cache(maxsize=8)
def _sparse_operators(cutoff: int) -> tuple[_CSR, _CSR, _CSR]:
    """``A1, A1^T, A2`` of the excitation basis in CSR form (:func:`_csr_arrays`)."""
    basis = excitation_basis(cutoff)
    return _csr_arrays(basis.A1), _csr_arrays(basis.A1.T), _csr_arrays(basis.A2)


def _csr_arrays(A) -> _CSR:
    """``(indptr, indices, data)`` of a real sparse matrix in CSR form, contiguous, for the kernels."""
    A = A.tocsr()
    A.sort_indices()
    return (
        np.ascontiguousarray(A.indptr, dtype=np.int64),
        np.ascontiguousarray(A.indices, dtype=np.int64),
        np.ascontiguousarray(A.data, dtype=float),
    )


def _gmres(operator, b: np.ndarray, tolerance: float, restart: int, max_restarts: int, x0: np.ndarray | None = None):
    """Batched restarted GMRES: ``operator(x, active) = b`` for every point of a batch.

    ``b`` has shape (npts, ...), real or complex (the Krylov vectors take its type); each point
    has its own Krylov space, all active points share each operator application.  ``x0``: a
    start (default zero), scaled per point by the factor that minimises the starting residual
    (so a poor start, or a zero one, is never worse than starting from zero).  Returns
    ``(x, relative_residual_estimate)``.
    """
    npts, shape = b.shape[0], b.shape
    b = b.reshape(npts, -1)
    from . import krylov  # numba: imported and compiled at the first use

    b_norm = np.linalg.norm(b, axis=1)
    residual = np.ones(npts)
    active = np.arange(npts)
    if x0 is None:
        x = np.zeros_like(b)
        r = b.copy()
    else:
        x = x0.reshape(npts, -1).astype(b.dtype, copy=True)
        image = operator(x.reshape(shape), active).reshape(npts, -1)
        with np.errstate(all="ignore"):
            scale = np.sum(np.conj(image) * b, axis=1) / np.sum(np.abs(image) ** 2, axis=1)
        scale = np.where(np.isfinite(scale), scale, 0.0)
        x *= scale[:, None]
        r = b - scale[:, None] * image
    for _ in range(max_restarts):
        beta = np.linalg.norm(r, axis=1)
        cycle = active  # the points of this cycle; ``active``: those still iterating
        n = active.size
        # the Krylov vectors of every point, preallocated; ``rows``: the rows (of these arrays)
        # of the points still iterating (a converged point's row is left where it is)
        basis = np.empty((n, restart + 1, r.shape[1]), dtype=b.dtype)
        basis[:, 0] = r / beta[:, None]
        rows = np.arange(n)
        # the Hessenberg matrix, made upper triangular by Givens rotations as it grows (compiled):
        # the least-squares residual of the rotated right-hand side g is its last element
        hessenberg = np.zeros((n, restart + 1, restart), dtype=b.dtype)
        rotations = np.zeros((n, restart, 2), dtype=b.dtype)
        g = np.zeros((n, restart + 1), dtype=b.dtype)
        g[:, 0] = beta
        limits = tolerance * b_norm[active]  # the residual at which each point has converged
        flags = np.zeros(n, dtype=bool)
        for j in range(restart):
            v = basis[:, j] if rows.size == n else basis[rows, j]
            w = operator(v.reshape((rows.size,) + shape[1:]), active).reshape(rows.size, -1)
            w = np.ascontiguousarray(w, dtype=b.dtype)
            if np.may_share_memory(w, basis):  # an operator that returned (a view of) its input
                w = w.copy()
            # modified Gram-Schmidt point by point, the next Krylov vector, the rotations and
            # which points have converged (compiled)
            krylov.orthogonalize(basis, rows, j, w, hessenberg)
            count = krylov.givens_rotate(hessenberg, rows, j, rotations, g, limits, flags)
            if count == rows.size or j == restart - 1:
                break
            if count:
                # points that are done leave the cycle with their update
                finished = flags[: rows.size]
                krylov.update_solution(x, active[finished], basis, rows[finished], j, hessenberg, g)
                rows, active, limits = rows[~finished], active[~finished], limits[~finished]
        krylov.update_solution(x, active, basis, rows, j, hessenberg, g)
        active, n = cycle, cycle.size
        r = b[active] - operator(x[active].reshape((n,) + shape[1:]), active).reshape(n, -1)
        residual[active] = np.linalg.norm(r, axis=1) / b_norm[active]
        keep = residual[active] > tolerance
        active, r = active[keep], r[keep]
        if active.size == 0:
            break
    return x.reshape(shape), residual


def _perturbative_ratios(Delta, J, chi, xi, gamma, basis: ExcitationBasis) -> np.ndarray:
    """Weak-drive amplitude ratios ``r_K ~ |C_K / C_{K-1}|``, capped at 1.

    ``r_K = xi sqrt(K) / min_k |E_k - i gamma K / 2|`` over the basis vectors k with K
    photons: the drive over the distance of the nearest K-photon level from the K-photon
    resonance.  It over-estimates a blockaded level, which is the safe side.
    """
    K = basis.K
    levels = np.arange(1, K.max() + 1)
    energy = basis.energies(Delta, J, chi)
    distance = np.abs(energy - 0.5j * gamma[:, None] * K)
    ratio = np.ones((Delta.size, levels.size + 1))
    # the basis is sorted by photon number (as the level solve checks): the nearest level of
    # every K in one reduction
    nearest = np.minimum.reduceat(distance, np.searchsorted(K, levels), axis=1)
    ratio[:, 1:] = xi[:, None] * np.sqrt(levels) / nearest
    return np.clip(ratio, WEIGHT_FLOOR, 1.0)


def _level_populations(rho: np.ndarray, K: np.ndarray, levels: int) -> np.ndarray:
    """``P_K``: the trace of each excitation block of ``rho`` (basis-independent)."""
    diagonal = np.einsum("nkk->nk", rho).real
    P = np.zeros((rho.shape[0], levels))
    for level in range(levels):
        P[:, level] = diagonal[:, K == level].sum(axis=1)
    return P


def _solve_graded(
    system: _GradedSystem, b: np.ndarray, tolerance: float, start: np.ndarray | None = None, restarts: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """``x = P z`` with ``system.preconditioned(z) = b`` by GMRES (``restarts`` cycles at most), per
    point, and the relative residual ``|A x - b| / |b|`` GMRES measured; ``start``: first guess of
    ``x`` (or 0).

    Every vector of this system is a Hermitian matrix (``S``, ``J`` and the vacuum equation map
    Hermitian matrices to Hermitian matrices, ``b`` is real), so GMRES runs on real vectors of
    ``d^2`` numbers (:class:`_Hermitian`): half the memory traffic of complex ``d x d``
    matrices in Gram-Schmidt, with the same inner products.
    """
    npts, d = b.shape[0], b.shape[1]
    hermitian = _hermitian(d)
    x0 = None if start is None or not np.any(start) else system.start(start)
    if system.preconditioner == "levels":
        # every point's GMRES in one compiled call (the same algorithm as _gmres, point by point)
        from . import krylov

        packed = hermitian.pack(b)
        z, residual = np.empty_like(packed), np.empty(npts)
        krylov.level_gmres(
            packed,
            packed if x0 is None else np.ascontiguousarray(x0),
            x0 is not None,
            tolerance,
            RESTART,
            restarts,
            *system.point_data(),
            system.starts,
            system.row_offset,
            *system.operators,
            z,
            residual,
        )
        return system.precondition(z), residual

    last: dict[bytes, _GradedSystem] = {}  # the system of the points still iterating, made once

    def operator(v, active):
        if active.size == npts:
            sub = system
        else:
            key = active.tobytes()
            if key not in last:
                last.clear()
                last[key] = system.subset(active)
            sub = last[key]
        return sub.preconditioned(v)

    v, residual = _gmres(operator, hermitian.pack(b), tolerance, RESTART, restarts, x0=x0)
    return system.precondition(v), residual


class _Hermitian:
    """Hermitian ``d x d`` matrices as real vectors of ``d^2`` numbers, inner product kept.

    ``pack(x) = [x_kk, sqrt(2) Re x_kl, sqrt(2) Im x_kl]`` (k < l) for a stack of matrices
    (only the upper triangle of ``x`` is read); ``unpack`` is its inverse.
    """

    def __init__(self, d: int):
        self.d = d
        k, l = np.triu_indices(d, 1)
        self.diagonal = np.arange(d) * (d + 1)
        self.upper, self.lower = k * d + l, l * d + k
        self.m = k.size
        #: index of (k, l), k < l, among the packed off-diagonal elements (for the kernels)
        self.position = np.zeros((d, d), dtype=np.int64)
        self.position[k, l] = np.arange(self.m)

    def pack(self, x: np.ndarray) -> np.ndarray:
        n, d, m = x.shape[0], self.d, self.m
        flat = x.reshape(n, d * d)
        out = np.empty((n, d * d))
        out[:, :d] = flat[:, self.diagonal].real
        upper = flat[:, self.upper]
        upper *= np.sqrt(2.0)
        out[:, d : d + m] = upper.real
        out[:, d + m :] = upper.imag
        return out

    def unpack(self, v: np.ndarray) -> np.ndarray:
        n, d, m = v.shape[0], self.d, self.m
        flat = np.empty((n, d * d), dtype=complex)
        flat[:, self.diagonal] = v[:, :d]
        upper = (v[:, d : d + m] + 1j * v[:, d + m :]) * np.sqrt(0.5)
        flat[:, self.upper] = upper
        flat[:, self.lower] = np.conj(upper)
        return flat.reshape(n, d, d)


@lru_cache(maxsize=8)
def _hermitian(d: int) -> _Hermitian:
    return _Hermitian(d)


def _refine(system: _GradedSystem, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x`` after one step of iterative refinement, per point: ``x + e`` with ``A e`` the remainder
    ``b - A x`` (:meth:`_GradedSystem.remainder`, its large terms summed in twice the working
    precision), solved by GMRES with ``system``'s preconditioner (the one that solved the point)
    to :data:`REFINEMENT_TOLERANCE` of it; kept where GMRES's closing residual
    ``|A e - (b - A x)|``, measured in working precision (``e`` is small, so its products round
    far below the remainder), is below the remainder: where the remainder shrank.

    Measured on the 150 random hard points of the tests (cutoff 4, Krylov path), every reported
    N, g2, g3, g4 against a long-double-refined dense LU: without this step g3, g4 of nearly empty
    modes err by up to 1.0e-5 (tolerance 1e-12) and 1.0-1.5e-6 (1e-13, 1e-14); with it, by
    3.1e-7 on the tests' seed 0 (seeds 1-4: 3.6e-7, 4.7e-7, 1.9e-7, 2.4e-7), and the other numbers by
    1e-12 instead of 1e-10.  The correction must be solved to the remainder's rounding floor: to
    1e-2 of the remainder, g2_ccw of a strong-drive point (seed 4) stayed 6.7e-6 off; with the
    remainder's jump terms in working precision, a g4_ccw at the edge of the resolution rule
    (seed 2) 1.0e-6 (2.5e-7 with them in twice the precision).  The
    remainder in plain double precision (the GMRES operator's kernel) left 3e-6:
    its rounding is the error.  A point solved with the no-jump inverse must be refined with it:
    the level preconditioner reduced such a remainder only 0.58x (g2_ccw 1.6e-6 off, xi = 6.7).
    """
    remainder = system.remainder(x, b)
    correction, reduction = _solve_graded(system, remainder, REFINEMENT_TOLERANCE, restarts=REFINEMENT_RESTARTS)
    better = reduction < 1  # NaN (a failed solve) is not
    x[better] += correction[better]
    return x


def _accepted(residual: np.ndarray, solved: np.ndarray, tolerance: float) -> np.ndarray:
    """Where an answer is taken as converged: the Liouvillian's relative residual and GMRES's own
    (of the vacuum-fixed system) both within 100 times the tolerance (NaN is not).
    """
    return (residual <= 100 * tolerance) & (solved <= 100 * tolerance)


def _better(residual: np.ndarray, residual_again: np.ndarray, accepted_again: np.ndarray) -> np.ndarray:
    """Where the no-jump inverse's answer replaces the level GMRES's (not accepted, by
    :func:`_accepted`): where it is accepted, or its Liouvillian residual is smaller (NaN: larger).

    It can end above where the level GMRES left a point (cutoff 20, strong drive: 3.3e-10 from
    1.04e-12), and the level answer may have failed on GMRES's own residual alone, which the
    Liouvillian's residual does not see (components in levels graded far too small).
    """
    return accepted_again | (residual_again < np.nan_to_num(residual, nan=np.inf))


def _solve_batch(
    Delta,
    J,
    chi,
    xi,
    gamma,
    basis: ExcitationBasis,
    tolerance: float,
    lu_points: list | None = None,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Trace-1 steady states of one batch in the excitation basis, shape (npts, d, d).

    The positions (in the batch) of points solved by the sparse LU are appended to ``lu_points``.
    ``start``: approximate states (any normalisation; zero where there is none).  Each pass
    after the first starts from the previous pass's solution.  (The states where the level
    sweeps gave up were tried as starts and saved no iterations: their error sits in the high
    levels, which the grading magnifies.)
    """
    npts, d = Delta.size, basis.dim
    levels = basis.K.max() + 1
    rho = np.zeros((npts, d, d), dtype=complex)
    rho[:, 0, 0] = 1.0  # xi = 0: the vacuum is the steady state
    todo = np.flatnonzero(xi != 0)
    ratios = _perturbative_ratios(Delta, J, chi, xi, gamma, basis)
    # scale of the vacuum equation (see _GradedSystem.preconditioned): 1 at first, then the
    # scale of the Liouvillian's terms measured on the previous solution
    vacuum_row = np.ones(npts)
    measured_scale = np.zeros(npts, dtype=bool)
    for number in range(MAX_PASSES):
        if todo.size == 0:
            break
        sel = (Delta[todo], J[todo], chi[todo], xi[todo], gamma[todo])
        with np.errstate(all="ignore"):  # a near-defective H_eff overflows its condition number
            system = _GradedSystem(*sel, basis, ratios[todo])
        system.vacuum_row = vacuum_row[todo]
        b = np.zeros((todo.size, d, d), dtype=complex)
        b[:, 0, 0] = vacuum_row[todo]
        with np.errstate(all="ignore"):  # an ill-conditioned H_eff shows up as non-finite
            t = system.weights[:, basis.K]
            x0 = None if start is None else start[todo] / (t[:, :, None] * t[:, None, :])
            if x0 is not None:
                x0[~np.all(np.isfinite(x0), axis=(1, 2))] = 0.0
            x, solved = _solve_graded(system, b, tolerance, start=x0, restarts=LEVEL_RESTARTS)
            residual, scale = system.residual(x)
            # Where the level preconditioner is not enough (the answer is not accepted after its
            # GMRES cycles: very strong drive), the point goes on from where it is,
            # preconditioned by the exact no-jump inverse S^-1 (an eigen-decomposition of H_eff
            # per point, O(d^3) per iteration).  Not yet where the vacuum equation's weight is
            # still the first guess and far from the scale of the Liouvillian's terms: GMRES's
            # tolerance was then on the wrong scale, and the next pass (weight measured) comes
            # first.
            finite = np.all(np.isfinite(x), axis=(1, 2))
            usable = np.isfinite(scale) & (scale > 0)  # the scale the next pass would use
            with np.errstate(divide="ignore", invalid="ignore"):
                mismatch = np.maximum(scale / vacuum_row[todo], vacuum_row[todo] / scale)
            rescale = usable & ~measured_scale[todo] & (mismatch > SCALE_MISMATCH) & (number < MAX_PASSES - 1)
            again = np.flatnonzero(~_accepted(residual, solved, tolerance) & finite & ~rescale)
            no_jump = system.subset(again)
            by_no_jump = np.zeros(todo.size, dtype=bool)
            if again.size:
                no_jump.decompose()
                x_again, solved_again = _solve_graded(no_jump, b[again], tolerance, x[again], MAX_RESTARTS)
                residual_again, scale_again = no_jump.residual(x_again)
                better = _better(residual[again], residual_again, _accepted(residual_again, solved_again, tolerance))
                taken = again[better]
                x[taken], solved[taken] = x_again[better], solved_again[better]
                residual[taken], scale[taken] = residual_again[better], scale_again[better]
                by_no_jump[taken] = True
            # Both residuals must be small: GMRES's own (of the vacuum-fixed system, relative to
            # the vacuum equation) catches an x with huge components in levels whose weights
            # are far too small, which the Liouvillian's residual relative to its own terms
            # (dominated by those components) does not.
            converged = _accepted(residual, solved, tolerance)
        t = system.weights[:, basis.K]
        rho[todo] = t[:, :, None] * t[:, None, :] * x
        # A level is resolved when its graded noise floor, tolerance * w_K^2, is below
        # 1e-7 of its own population or of the 4-photon level that g4 needs (levels
        # beyond 4 photons only enter the observables through their sum).
        P = _level_populations(rho[todo], basis.K, levels)
        P /= np.where(P[:, :1] > 0, P[:, :1], 1.0)
        reference = np.maximum(P, P[:, np.minimum(np.arange(levels), 4)])
        resolved = tolerance * system.weights**2 <= 1e-7 * reference
        measured = np.sqrt(np.maximum(P, WEIGHT_FLOOR**2))
        new_weights = np.where(resolved, system.weights, measured)
        new_ratios = new_weights.copy()
        with np.errstate(divide="ignore", invalid="ignore"):  # weights underflowed to 0 (xi ~ 1e-120)
            new_ratios[:, 1:] = new_weights[:, 1:] / new_weights[:, :-1]
        new_ratios = np.clip(np.nan_to_num(new_ratios, nan=WEIGHT_FLOOR), WEIGHT_FLOOR, 1.0)
        unresolved = ~np.all(resolved, axis=1)
        # the answers of this pass that are final and have a mode near the resolution limit: one
        # step of iterative refinement each, with the preconditioner that solved them
        final = converged & (~unresolved | (number == MAX_PASSES - 1))
        refined = final.copy()
        ends = todo[final]
        refined[final] = _near_the_resolution(rho[ends], basis, Delta[ends], chi[ends], gamma[ends])
        for done, within in ((refined & ~by_no_jump, system), (refined & by_no_jump, no_jump)):
            points = np.flatnonzero(done)
            if points.size:
                rows = points if within is system else np.searchsorted(again, points)
                x[points] = _refine(within.subset(rows), x[points], b[points])
                rho[todo[points]] = t[points, :, None] * t[points, None, :] * x[points]
        # Where the terms of L x are much smaller than the vacuum equation's right-hand side
        # (weak drive against a large loss), GMRES meets its tolerance on the wrong scale: such
        # a point is solved once more with the measured scale before it is handed to the LU.
        usable = np.isfinite(scale) & (scale > 0)
        retry = ~converged & usable & ~measured_scale[todo] & (number < MAX_PASSES - 1)
        vacuum_row[todo[usable]] = scale[usable]
        measured_scale[todo[usable]] = True
        for k in np.flatnonzero(~converged & ~retry):
            i = todo[k]
            rho[i] = _sparse_lu_point(Delta[i], J[i], chi[i], xi[i], gamma[i], basis)
            if lu_points is not None:
                lu_points.append(int(i))
        ratios[todo] = new_ratios
        start = rho.copy()  # the next pass (new weights) starts from this one's solution
        todo = todo[(converged & unresolved) | retry]
    trace = np.einsum("nkk->n", rho).real
    return rho / trace[:, None, None]


def steady_state_excitation_basis(
    Delta,
    J,
    chi,
    xi,
    gamma,
    basis: ExcitationBasis,
    tolerance: float = DEFAULT_TOLERANCE,
    threads: int | None = None,
    reduce: Callable[[np.ndarray], np.ndarray] | None = None,
    paths: dict[str, int] | None = None,
) -> np.ndarray:
    """Steady states in the excitation basis, trace 1, shape (npts, d, d).

    Every point is first solved by level sweeps (:mod:`pyspb.backends.native.gauss_seidel`); the
    points they leave (strong drive, or levels that would underflow) are solved by the graded
    Krylov method of this module, in batches of bounded memory.  ``threads`` workers run side
    by side (default: one per core).  With ``reduce``, states are passed through it as they
    are found and only its results are kept (e.g. populations): memory then does not grow
    with d^2 npts.
    """
    Delta, J, chi, xi, gamma = in_units_of_gamma(Delta, J, chi, xi, gamma)
    d, npts = basis.dim, Delta.size
    workers = _workers(threads)
    results: dict[str, np.ndarray] = {}
    counts = dict.fromkeys(PATHS, 0)
    lock = threading.Lock()

    def deliver(index: np.ndarray, states: np.ndarray) -> None:
        states /= np.einsum("nkk->n", states).real[:, None, None]
        values = states if reduce is None else reduce(states)
        with lock:
            if "out" not in results:
                results["out"] = np.empty((npts,) + values.shape[1:], dtype=values.dtype)
        results["out"][index] = values

    ratios = _perturbative_ratios(Delta, J, chi, xi, gamma, basis)
    swept = (xi != 0) & ~gauss_seidel.underflows(ratios)
    sweepable = np.flatnonzero(swept)
    unswept = np.flatnonzero(~swept)  # xi = 0 (the vacuum), or levels that would underflow
    sweep_batch = int(min(SWEEP_BATCH, max(16, BATCH_BYTES // (64 * d * d))))
    if basis.cutoff <= gauss_seidel.LEVEL_SWEEP_MAX_CUTOFF:
        # compiled level sweeps (no GIL, a few dozen points at a time): split from 2 x 4 points
        sweepers = max(1, min(workers, sweepable.size // SPLIT_POINTS))
    else:
        # block sweeps: a worker per full batch at most (splitting a small grid costs more than it gains)
        sweepers = max(1, min(workers, -(-sweepable.size // sweep_batch)))
    sweep_parts = [sweepable[w::sweepers] for w in range(sweepers)]

    # the points the sweeps give up go on to the Krylov solver in batches of this size as they
    # are found (with two workers or more), the rest when the sweeps are done (the_rest)
    batch = _krylov_batch(npts, d, workers)
    pending: list[np.ndarray] = []  # points the sweeps gave up, not yet in a Krylov batch
    krylov_tasks: list[Future] = []

    def krylov(part: np.ndarray) -> None:
        lu_points: list[int] = []
        states = _solve_batch(Delta[part], J[part], chi[part], xi[part], gamma[part], basis, tolerance, lu_points)
        deliver(part, states)
        with lock:
            counts["sparse_lu"] += len(lu_points)
            counts["krylov"] += part.size - len(lu_points)

    def hand_over(points: np.ndarray, pool: ThreadPoolExecutor | None) -> None:
        """Queue points for the Krylov solver; with a pool, start batches as soon as they are full
        (``pending`` then never holds more than a batch).
        """
        with lock:
            pending.append(points)
            if pool is None or sum(waiting.size for waiting in pending) < batch:
                return
            waiting = np.concatenate(pending)
            full = waiting.size // batch * batch
            pending[:] = [waiting[full:]]
            krylov_tasks.extend(pool.submit(krylov, part) for part in _krylov_parts(waiting[:full], batch))

    def sweep(part: np.ndarray, pool: ThreadPoolExecutor | None) -> None:
        args = (Delta[part], J[part], chi[part], xi[part])
        for where, states, converged in gauss_seidel.sweep_steady_states(*args, basis, tolerance, sweep_batch):
            if converged.any():
                deliver(part[where[converged]], states[converged])
                with lock:
                    counts["level_sweeps"] += int(converged.sum())
            if not converged.all():
                hand_over(part[where[~converged]], pool)

    def the_rest() -> list[np.ndarray]:
        """The points no Krylov batch has taken yet, in batches sized for them."""
        rest = np.sort(np.concatenate([unswept, *pending]))
        return _krylov_parts(rest, _krylov_batch(rest.size, d, workers))

    # small matrices: one BLAS thread per worker, workers side by side (BLAS releases the GIL)
    with _blas_controller().limit(limits=1, user_api="blas"):
        if workers == 1 or sweepers == 1:
            for part in sweep_parts:
                sweep(part, None)
            _run(krylov, the_rest(), workers)
        else:
            # one pool for both: a worker that is done sweeping starts on the points the other
            # worker's sweeps gave up (a few slowly converging points no longer hold them back)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for task in [pool.submit(sweep, part, pool) for part in sweep_parts]:
                    task.result()
                krylov_tasks.extend(pool.submit(krylov, part) for part in the_rest())
                for task in krylov_tasks:
                    task.result()
    if "out" not in results:  # no points
        deliver(np.zeros(0, dtype=int), np.zeros((0, d, d), dtype=complex))
    if paths is not None:
        for key, value in counts.items():
            paths[key] = paths.get(key, 0) + value
    return results["out"]


def _krylov_batch(points: int, d: int, workers: int) -> int:
    """Points per Krylov batch in a call of ``points`` points of dimension ``d`` with ``workers``
    workers (not all of them may reach the Krylov solver).
    """
    batch = max(1, int(BATCH_BYTES // (_krylov_bytes_per_element() * d * d)))
    # two batches per worker keep both cores busy to the end; small matrices want big
    # batches, or Python overhead dominates
    smallest = max(4, 16384 // (d * d))
    batch = min(batch, max(smallest, -(-points // (2 * workers))), max(1, -(-points // workers)))
    # the Krylov vectors of the batches running side by side fit in the last-level cache (those of
    # the no-jump inverse's batched GMRES; Kerr side, cutoff 10, one thread: 8 points a batch
    # 25.7 ms/pt, 2-4 points 18.8-19.1 ms/pt; at cutoff 7 this keeps 8)
    return min(batch, max(1, _last_level_cache() // (workers * 8 * (RESTART + 1) * d * d)))


def _krylov_parts(points: np.ndarray, batch: int) -> list[np.ndarray]:
    """``points`` in batches of at most ``batch``, each a sample of the whole (every n-th point):
    along a scan the work per point grows with the drive, and contiguous batches left the
    hardest one for last.
    """
    batches = -(-points.size // batch)
    return [points[first::batches] for first in range(batches)]


@lru_cache(maxsize=1)
def _last_level_cache() -> int:
    """Bytes of the machine's last-level cache (:func:`pyspb.backends.memory.last_level_cache`, read once)."""
    return memory.last_level_cache()


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    """The BLAS libraries loaded (found once: the search costs ~10 ms, a call on one point less)."""
    return ThreadpoolController()


def _workers(threads: int | None) -> int:
    """Workers run side by side: ``threads`` if given (at least 1), else one per core (at most 8)."""
    return max(1, min(os.cpu_count() or 1, 8)) if threads is None else max(1, int(threads))


def _run(task: Callable[[np.ndarray], None], parts: list[np.ndarray], workers: int) -> None:
    """``task(part)`` for every part, ``workers`` at a time."""
    if workers == 1 or len(parts) <= 1:
        for part in parts:
            task(part)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(task, parts))


def _sparse_lu_point(Delta, J, chi, xi, gamma, basis: ExcitationBasis) -> np.ndarray:
    """Fallback: one point by sparse LU of the Fock-basis Liouvillian, vacuum fixed.

    Returns the unnormalised state in the excitation basis.
    """
    need, have = memory_estimate(basis.cutoff)["sparse_lu"], available_memory()
    if need > have:
        raise MemoryError(
            f"the point Delta={Delta:g}, J={J:g}, chi={chi:g}, xi={xi:g} (units of gamma) did not converge in the "
            f"level sweeps or the graded Krylov solver, and their last resort, a sparse LU at cutoff {basis.cutoff}, "
            f"needs about {_gib(need)} of memory ({_gib(have)} available): use a smaller cutoff for such points"
        )
    L = liouvillian(Delta, J, chi, xi, gamma, basis.cutoff)
    d = basis.dim
    A = L[1:, 1:].tocsc()
    rhs = -L[1:, 0].toarray().ravel()
    solution = np.concatenate([[1.0], spla.spsolve(A, rhs)]).reshape(d, d)
    U = fock_from_excitation(basis, np.array([J]))[0]
    return np.conj(U.T) @ solution @ U


def tau_correlations(Delta, J, chi, xi, gamma, tau, *, cutoff: int, tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """Two-time correlation functions per point and delay: see :mod:`pyspb.backends.native.dynamics`."""
    from . import dynamics

    return dynamics.tau_correlations(Delta, J, chi, xi, gamma, tau, cutoff=cutoff, tolerance=tolerance)


def spectra(Delta, J, chi, xi, gamma, omega, *, cutoff: int, tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """Incoherent emission spectra per point and frequency: see :mod:`pyspb.backends.native.spectrum`."""
    from . import spectrum

    return spectrum.spectra(Delta, J, chi, xi, gamma, omega, cutoff=cutoff, tolerance=tolerance)
