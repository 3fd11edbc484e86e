"""Native steady-state engine (NumPy/SciPy): exact for the truncated model, batched over points.

Method
------
Work in the :class:`~pyspb.model.ExcitationBasis`, where the drive-free part of the
Liouvillian is diagonal,

    Lambda_kl = -i (E_k - E_l) - gamma (K_k + K_l) / 2,

and the remaining terms are the drive ``-i xi [B, rho]`` with
``B = e^{i phi} A1 + e^{-i phi} A1^T`` and the quantum jumps
``gamma (A1 rho A1^T + A2 rho A2^T)``; ``A1``, ``A2`` are fixed real sparse matrices, so one
sparse product serves a whole batch of grid points.

The steady state solves ``L rho = 0``.  The vacuum population is fixed to 1 (its equation is
dropped: the diagonal equations are linearly dependent through trace preservation), the
trace is normalised afterwards.  The reduced system is solved by GMRES, left-preconditioned
by ``1 / Lambda`` (exact for the drive-free, jump-free part), in *graded* variables
``rho_kl = w_{K_k} w_{K_l} x_kl`` where ``w_K ~ sqrt(P(K photons))``.  Grading makes every
excitation level of ``x`` of order one, so the Krylov tolerance becomes a *relative* tolerance
on each level: multi-photon populations of 1e-13 and below come out to full relative
accuracy, which g3 and g4 need.  The weights are refined from the solution until they are
stable, and every point's true residual is checked; a point that does not converge falls
back to a sparse LU of the same graded system (exact, slower), so no point returns an
unconverged answer.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..model import ExcitationBasis, excitation_basis, liouvillian

NAME = "native"

#: relative residual at which the graded GMRES stops
DEFAULT_TOLERANCE = 1e-12
#: Krylov subspace size before a restart
RESTART = 30
#: restarts of one GMRES call before the point is handed to the sparse LU
MAX_RESTARTS = 6
#: weight refinements (passes) at most
MAX_PASSES = 4
#: smallest weight used for an excitation level
WEIGHT_FLOOR = 1e-120


def version_info() -> dict:
    """Provenance of the native engine."""
    import scipy

    return {"numpy_version": np.__version__, "scipy_version": scipy.__version__}


def steady_state_populations(
    Delta, J, chi, xi, gamma, *, cutoff: int, tolerance: float = DEFAULT_TOLERANCE
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
        Relative residual of the graded system at which a point counts as converged.

    Returns
    -------
    ndarray, shape (npts, cutoff + 1, cutoff + 1)
        ``P[k, n_cw, n_ccw] = <n_cw, n_ccw| rho_ss |n_cw, n_ccw>`` of point k.
    """
    basis = excitation_basis(cutoff)
    rho_hat = steady_state_excitation_basis(Delta, J, chi, xi, gamma, basis, tolerance)
    V = basis.V.toarray()
    # diag(V rho V^T) in the Fock basis; the phase of J cancels on the diagonal.
    P = np.einsum("ik,nkl,il->ni", V, rho_hat, V, optimize=True).real
    return P.reshape(-1, cutoff + 1, cutoff + 1)


def steady_state_density_matrices(
    Delta, J, chi, xi, gamma, *, cutoff: int, tolerance: float = DEFAULT_TOLERANCE
) -> np.ndarray:
    """Steady-state density matrices in the Fock basis, shape (npts, d, d).

    The basis index is ``n_cw * (cutoff + 1) + n_ccw`` (see :mod:`pyspb.model`).
    """
    basis = excitation_basis(cutoff)
    rho_hat = steady_state_excitation_basis(Delta, J, chi, xi, gamma, basis, tolerance)
    U = fock_from_excitation(basis, np.asarray(J, dtype=complex).reshape(-1))
    return U @ rho_hat @ np.conj(np.swapaxes(U, 1, 2))


def fock_from_excitation(basis: ExcitationBasis, J: np.ndarray) -> np.ndarray:
    """Unitaries ``U = diag(exp(i arg J n_cw)) V`` taking excitation-basis vectors to Fock."""
    n_cw = np.repeat(np.arange(basis.cutoff + 1), basis.cutoff + 1)
    phase = np.exp(1j * np.angle(J)[:, None] * n_cw[None, :])
    return phase[:, :, None] * basis.V.toarray()[None, :, :]


class _GradedLiouvillian:
    """The Liouvillian of a batch of points in the excitation basis and graded variables."""

    def __init__(self, Delta, J, chi, xi, gamma, basis: ExcitationBasis):
        K = basis.K
        energy = (
            Delta[:, None] * K + chi[:, None] * (K * (K - 1)) + np.abs(J)[:, None] * basis.hopping
        )
        self.Lambda = -1j * (energy[:, :, None] - energy[:, None, :]) - 0.5 * gamma[:, None, None] * (
            K[:, None] + K[None, :]
        )
        self.gamma = gamma[:, None, None]
        self.drive = xi[:, None, None]
        self.phase = np.exp(1j * np.angle(J))[:, None, None]
        self.A1, self.A2 = basis.A1, basis.A2
        self.A1T = sp.csr_matrix(basis.A1.T)
        self.A2T = sp.csr_matrix(basis.A2.T)
        self.K = K
        self.npts, self.dim = energy.shape
        self.set_weights(np.ones((self.npts, K.max() + 1)))
        inverse = np.zeros_like(self.Lambda)
        nonzero = np.ones(self.Lambda.shape[1:], dtype=bool)
        nonzero[0, 0] = False  # the vacuum element: its equation is dropped
        inverse[:, nonzero] = 1.0 / self.Lambda[:, nonzero]
        self.preconditioner = inverse

    def set_weights(self, weights: np.ndarray) -> None:
        """Use ``rho_kl = t_k t_l x_kl`` with ``t_k = weights[K_k]`` (vacuum weight 1)."""
        self.weights = weights
        t = weights[:, self.K]
        self.scale = t[:, :, None] * t[:, None, :]

    def _left(self, A: sp.csr_matrix, x: np.ndarray) -> np.ndarray:
        """``A @ x[n]`` for every point n with one sparse product."""
        d = self.dim
        stacked = np.moveaxis(x, 0, 1).reshape(d, -1)
        return np.moveaxis((A @ stacked).reshape(d, self.npts, d), 1, 0)

    def _right(self, x: np.ndarray, A: sp.csr_matrix) -> np.ndarray:
        """``x[n] @ A`` for every point n."""
        d = self.dim
        return (x.reshape(-1, d) @ A).reshape(self.npts, d, d)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``L rho`` in graded variables: x -> (L (scale * x)) / scale."""
        rho = self.scale * x
        jumps = self._right(self._left(self.A1, rho), self.A1T) + self._right(
            self._left(self.A2, rho), self.A2T
        )
        B_rho = self.phase * self._left(self.A1, rho) + np.conj(self.phase) * self._left(self.A1T, rho)
        rho_B = self.phase * self._right(rho, self.A1) + np.conj(self.phase) * self._right(rho, self.A1T)
        out = self.Lambda * rho + self.gamma * jumps - 1j * self.drive * (B_rho - rho_B)
        return out / self.scale

    def reduced(self, x: np.ndarray) -> np.ndarray:
        """The preconditioned reduced operator ``x -> M^-1 P L x`` on ``x[0, 0] = 0``."""
        x = x.copy()
        x[:, 0, 0] = 0.0
        return self.preconditioner * self.apply(x)

    def vacuum(self) -> np.ndarray:
        e00 = np.zeros((self.npts, self.dim, self.dim), dtype=complex)
        e00[:, 0, 0] = 1.0
        return e00


def _gmres(operator, b, x0, tolerance, restart, max_restarts):
    """Batched restarted GMRES: solves ``operator(x) = b`` for every point of a batch.

    ``b`` and ``x0`` have shape (npts, ...); each point has its own Krylov space, all points
    share each operator application.  Returns ``(x, relative_residual)``.
    """
    npts = b.shape[0]
    shape = b.shape
    b = b.reshape(npts, -1)
    x = x0.reshape(npts, -1).copy()
    b_norm = np.linalg.norm(b, axis=1)
    b_norm[b_norm == 0] = 1.0
    active = np.arange(npts)
    residual = np.full(npts, np.inf)
    for _ in range(max_restarts):
        r = b[active] - operator(x[active].reshape((-1,) + shape[1:]), active).reshape(active.size, -1)
        beta = np.linalg.norm(r, axis=1)
        residual[active] = beta / b_norm[active]
        keep = residual[active] > tolerance
        active, r, beta = active[keep], r[keep], beta[keep]
        if active.size == 0:
            break
        n = active.size
        basis = np.zeros((n, restart + 1, r.shape[1]), dtype=complex)
        basis[:, 0] = r / beta[:, None]
        hessenberg = np.zeros((n, restart + 1, restart), dtype=complex)
        rhs = np.zeros((n, restart + 1), dtype=complex)
        rhs[:, 0] = beta
        y = np.zeros((n, 0), dtype=complex)
        for j in range(restart):
            w = operator(basis[:, j].reshape((-1,) + shape[1:]), active).reshape(n, -1)
            # classical Gram-Schmidt, twice (CGS2), batched
            for _ in range(2):
                h = np.einsum("nkd,nd->nk", np.conj(basis[:, : j + 1]), w)
                w = w - np.einsum("nkd,nk->nd", basis[:, : j + 1], h)
                hessenberg[:, : j + 1, j] += h
            h_next = np.linalg.norm(w, axis=1)
            hessenberg[:, j + 1, j] = h_next
            basis[:, j + 1] = w / np.where(h_next > 0, h_next, 1.0)[:, None]
            H = hessenberg[:, : j + 2, : j + 1]
            Q, R = np.linalg.qr(H, mode="reduced")
            g = np.einsum("nkj,nk->nj", np.conj(Q), rhs[:, : j + 2])
            y = np.linalg.solve(R, g[..., None])[..., 0]
            estimate = np.linalg.norm(rhs[:, : j + 2] - np.einsum("nkj,nj->nk", H, y), axis=1)
            if np.all(estimate / b_norm[active] <= 0.1 * tolerance):
                break
        x[active] += np.einsum("nkd,nk->nd", basis[:, : y.shape[1]], y)
    return x.reshape(shape), residual


def _perturbative_ratios(system: _GradedLiouvillian) -> np.ndarray:
    """Weak-drive amplitude ratios ``r_K ~ |C_K / C_{K-1}|``, capped at 1.

    ``r_K = xi sqrt(K) / min_k |E_k - i gamma K / 2|`` over the basis vectors k with K
    photons: the drive amplitude over the distance of the nearest K-photon level from the
    K-photon drive resonance.  It over-estimates a blockaded level, which keeps the graded
    operator well conditioned.
    """
    levels = system.K.max() + 1
    distance = np.abs(system.Lambda[:, :, 0])  # |-i E_k - gamma K_k / 2|
    ratio = np.ones((system.npts, levels))
    for K in range(1, levels):
        nearest = distance[:, system.K == K].min(axis=1)
        ratio[:, K] = system.drive[:, 0, 0] * np.sqrt(K) / nearest
    return np.clip(ratio, WEIGHT_FLOOR, 1.0)


def _level_weights(rho: np.ndarray, system: _GradedLiouvillian, ratios: np.ndarray) -> np.ndarray:
    """Excitation-level weights ``w_K = sqrt(P_K)`` measured from ``rho`` (graded by ``system``).

    Levels whose population is not resolved to 1e-6 relative accuracy by the current weights
    continue from the last resolved level with the weak-drive ``ratios``.
    """
    levels = ratios.shape[1]
    diagonal = np.abs(np.einsum("nkk->nk", rho))
    P = np.zeros((rho.shape[0], levels))
    np.add.at(P.T, system.K, diagonal.T)
    P /= P[:, :1]
    resolved = P >= 1e6 * system.tolerance * system.weights**2
    w = np.ones_like(P)
    for K in range(1, levels):
        guess = w[:, K - 1] * ratios[:, K]
        w[:, K] = np.where(resolved[:, K], np.sqrt(P[:, K]), guess)
    return np.maximum(w, WEIGHT_FLOOR)


def steady_state_excitation_basis(
    Delta, J, chi, xi, gamma, basis: ExcitationBasis, tolerance: float = DEFAULT_TOLERANCE
) -> np.ndarray:
    """Steady states of a batch of points in the excitation basis, trace 1, shape (npts, d, d)."""
    Delta, chi, xi, gamma = (np.asarray(v, dtype=float).reshape(-1) for v in (Delta, chi, xi, gamma))
    J = np.asarray(J, dtype=complex).reshape(-1)
    system = _GradedLiouvillian(Delta, J, chi, xi, gamma, basis)
    npts = Delta.size

    def operator(x, active):
        sub = _subsystem(system, active)
        return sub.reduced(x)

    system.tolerance = tolerance
    ratios = _perturbative_ratios(system)
    system.set_weights(np.cumprod(ratios, axis=1))
    x = np.zeros((npts, basis.dim, basis.dim), dtype=complex)
    for _ in range(MAX_PASSES):
        b = -system.preconditioner * system.apply(system.vacuum())
        x, residual = _gmres(operator, b, x, tolerance, RESTART, MAX_RESTARTS)
        converged = residual <= tolerance
        rho = system.scale * (x + system.vacuum())
        new = _level_weights(rho, system, ratios)
        stable = np.all(np.abs(np.log10(new / system.weights)) < 0.5, axis=1)
        system.set_weights(new)
        x = rho / system.scale - system.vacuum()
        if np.all(stable & converged):
            break
    rho = system.scale * (x + system.vacuum())
    for k in np.flatnonzero(~converged):
        rho[k] = _sparse_lu_point(Delta[k], J[k], chi[k], xi[k], gamma[k], basis)
    trace = np.einsum("nkk->n", rho).real
    return rho / trace[:, None, None]


def _subsystem(system: _GradedLiouvillian, active: np.ndarray) -> _GradedLiouvillian:
    """A view of ``system`` restricted to the points ``active``."""
    if active.size == system.npts:
        return system
    sub = object.__new__(_GradedLiouvillian)
    sub.__dict__.update(system.__dict__)
    for name in ("Lambda", "gamma", "drive", "phase", "preconditioner", "weights", "scale"):
        setattr(sub, name, getattr(system, name)[active])
    sub.npts = active.size
    return sub


def _sparse_lu_point(Delta, J, chi, xi, gamma, basis: ExcitationBasis) -> np.ndarray:
    """Fallback: one point by sparse LU of the Fock-basis Liouvillian, vacuum fixed.

    Returns the unnormalised state in the excitation basis.
    """
    L = liouvillian(Delta, J, chi, xi, gamma, basis.cutoff)
    d = basis.dim
    A = L[1:, 1:].tocsc()
    rhs = -L[1:, 0].toarray().ravel()
    solution = np.concatenate([[1.0], spla.spsolve(A, rhs)]).reshape(d, d)
    U = fock_from_excitation(basis, np.array([J]))[0]
    return np.conj(U.T) @ solution @ U
