"""Native emission spectra: resolvent solves ``(L - i omega)^-1`` batched over frequencies.

Method
------
The incoherent spectrum of mode m (quantum regression theorem, ``delta a = a - <a>``)::

    S_m(omega) = int dtau exp(-i omega tau) <delta a_m^dag(tau) delta a_m(0)>
               = 2 Re Tr[a_m^dag x],   (L - i omega) x = -u_m,   u_m = a_m rho - <a_m> rho

(``omega`` is the detuning of the emitted light from the drive, in rate units; QuTiP's
``spectrum`` uses the same sign and normalisation).  ``u_m`` has trace zero, so the solution
is taken trace-free (at ``omega = 0`` the Liouvillian is singular only along ``rho``).

Every system is solved by GMRES (the batched solver of :mod:`pyspb.backends.native`),
right-preconditioned by the exact inverse of the no-jump part ``S - i omega``,
``S x = -i (H_eff x - x H_eff^dag)``: with ``H_eff = W Omega W^-1`` (one eigen-decomposition
per point, shared by all frequencies) ``(S - i omega)^-1`` is elementwise division in the
eigenbasis, and all frequencies and both modes of a point share each product with ``W``.
The preconditioned operator is ``1 + Jumps (S - i omega)^-1`` (jumps in the Fock basis are
shifted slices).  Points whose ``H_eff`` is nearly defective (eigenvector condition number
above :data:`CONDITION`) or whose GMRES does not converge are solved by a sparse LU of the
Liouvillian instead, so no unconverged value is returned.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits

from ...model import hamiltonian, liouvillian, mode_operators

__all__ = ["spectra"]

#: relative GMRES residual
TOLERANCE = 1e-11
#: Krylov vectors per restart, and restarts
RESTART = 16
MAX_RESTARTS = 8
#: eigenvector condition number of H_eff above which a point is solved by sparse LU
CONDITION = 1e8
#: frequencies solved together per point (memory: ~RESTART + 4 complex d^2 arrays each)
FREQUENCY_BATCH = 128


def _jumps(x: np.ndarray, gamma: float, c: int) -> np.ndarray:
    """``gamma (a1 x a1^dag + a2 x a2^dag)`` for a stack of Fock-basis matrices (n, d, d)."""
    n = x.shape[0]
    y = x.reshape(n, c + 1, c + 1, c + 1, c + 1)
    root = np.sqrt(np.arange(1, c + 1, dtype=float))
    factor = np.multiply.outer(root, root)
    out = np.zeros_like(y)
    out[:, :-1, :, :-1] = factor[None, :, None, :, None] * y[:, 1:, :, 1:]
    out[:, :, :-1, :, :-1] += factor[None, None, :, None, :] * y[:, :, 1:, :, 1:]
    out *= gamma
    return out.reshape(x.shape)


def _point_spectra(Delta, J, chi, xi, gamma, omega, rho, cutoff, tolerance):
    """S_cw, S_ccw of one point at the frequencies ``omega``, or None if it needs the LU."""
    from . import _gmres

    d = rho.shape[0]
    a1, a2 = (a.toarray() for a in mode_operators(cutoff))
    number = a1.T @ a1 + a2.T @ a2
    H = hamiltonian(Delta, J, chi, xi, cutoff).toarray() - 0.5j * gamma * number
    with np.errstate(all="ignore"):
        Omega, W = np.linalg.eig(H)
        W_inv = np.linalg.inv(W)
    condition = np.linalg.norm(W) * np.linalg.norm(W_inv)
    if not condition < CONDITION:
        return None
    W_dag, W_inv_dag = np.conj(W.T), np.conj(W_inv.T)
    sources = [a @ rho - np.trace(a @ rho) * rho for a in (a1, a2)]
    out = np.empty((2, omega.size))
    for start in range(0, omega.size, FREQUENCY_BATCH):
        w = omega[start : start + FREQUENCY_BATCH]
        nw = w.size
        # systems ordered (mode, frequency)
        denominator = -1j * (Omega[:, None] - np.conj(Omega)[None, :])[None, :, :] - 1j * w[:, None, None]
        denominator = np.concatenate([denominator, denominator])

        def precondition(y, active, denominator=denominator):
            z = np.matmul(np.matmul(W_inv, y), W_inv_dag) / denominator[active]
            return np.matmul(np.matmul(W, z), W_dag)

        def operator(y, active, precondition=precondition):
            return y + _jumps(precondition(y, active), gamma, cutoff)

        b = -np.concatenate([np.broadcast_to(s, (nw, d, d)) for s in sources]).astype(complex)
        y, residual = _gmres(operator, b, tolerance, RESTART, MAX_RESTARTS)
        if not np.all(residual <= 100 * tolerance):
            return None
        x = precondition(y, np.arange(2 * nw))
        x -= np.einsum("nkk->n", x)[:, None, None] * rho  # the trace-free solution
        for mode, a in enumerate((a1, a2)):
            # 2 Re Tr[a^dag x] = 2 Re sum_kl a_kl x_kl  (a real)
            out[mode, start : start + nw] = 2 * np.einsum("kl,nkl->n", a, x[mode * nw : (mode + 1) * nw]).real
    return out


def _lu_point_spectra(Delta, J, chi, xi, gamma, omega, rho, cutoff):
    """The same spectra by sparse LU, with the trace fixed by a rank-one term (no singularity)."""
    d = rho.shape[0]
    L = liouvillian(Delta, J, chi, xi, gamma, cutoff)
    diagonal = np.arange(d) * (d + 1)
    rows, cols = np.meshgrid(np.arange(d * d), diagonal, indexing="ij")
    # (L - i omega) x + rho Tr[x] = -u  has the trace-free solution of (L - i omega) x = -u
    fix = sp.csc_matrix((np.repeat(rho.ravel(), d), (rows.ravel(), cols.ravel())), shape=(d * d, d * d))
    a1, a2 = (a.toarray() for a in mode_operators(cutoff))
    sources = np.stack([-(a @ rho - np.trace(a @ rho) * rho).ravel() for a in (a1, a2)], axis=1)
    eye = sp.identity(d * d, format="csc")
    out = np.empty((2, omega.size))
    for k, w in enumerate(omega):
        x = spla.splu((L - 1j * w * eye + fix).tocsc()).solve(sources)
        for mode, a in enumerate((a1, a2)):
            out[mode, k] = 2 * np.real(a.ravel() @ x[:, mode])
    return out


def spectra(
    Delta, J, chi, xi, gamma, omega, *, cutoff: int, tolerance: float | None = None, threads: int | None = None
) -> dict[str, np.ndarray]:
    """Incoherent emission spectra of both modes, per point and frequency.

    Parameters
    ----------
    Delta, chi, xi, gamma : array_like of float, shape (npts,)
    J : array_like of complex, shape (npts,)
    omega : array_like of float, shape (nomega,)
        Detuning of the emitted light from the drive, in the rate unit.
    cutoff : int
    tolerance : float, optional
        Steady-state tolerance (default that of :mod:`pyspb.backends.native`).
    threads : int, optional
        Points solved side by side (default: one per core).

    Returns
    -------
    dict
        ``S_cw``, ``S_ccw`` (npts, nomega) in the inverse rate unit, normalised so that
        ``int S d omega / (2 pi) = <a^dag a> - |<a>|^2``; ``coherent_cw``, ``coherent_ccw``
        (``|<a>|^2``) and ``N_cw``, ``N_ccw``, shape (npts,).
    """
    from . import DEFAULT_TOLERANCE, _run, steady_state_density_matrices

    tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
    Delta, chi, xi, gamma = (np.asarray(v, dtype=float).reshape(-1) for v in (Delta, chi, xi, gamma))
    J = np.asarray(J, dtype=complex).reshape(-1)
    omega = np.asarray(omega, dtype=float).reshape(-1)
    npts = Delta.size
    rho = steady_state_density_matrices(Delta, J, chi, xi, gamma, cutoff=cutoff, tolerance=tolerance)
    a1, a2 = (a.toarray() for a in mode_operators(cutoff))
    out = {"S_cw": np.empty((npts, omega.size)), "S_ccw": np.empty((npts, omega.size))}
    for mode, a in (("cw", a1), ("ccw", a2)):
        out[f"coherent_{mode}"] = np.abs(np.einsum("kl,nlk->n", a, rho)) ** 2
        out[f"N_{mode}"] = np.einsum("kl,nlk->n", a.T @ a, rho).real

    def task(part: np.ndarray) -> None:
        for k in part:
            args = (Delta[k], J[k], chi[k], xi[k], gamma[k], omega, rho[k], cutoff)
            values = _point_spectra(*args, TOLERANCE)
            if values is None:
                values = _lu_point_spectra(*args)
            out["S_cw"][k], out["S_ccw"][k] = values

    workers = max(1, min(os.cpu_count() or 1, 8)) if threads is None else max(1, int(threads))
    parts = [np.arange(npts)[w::workers] for w in range(workers)]
    with threadpool_limits(limits=1, user_api="blas"):
        _run(task, [p for p in parts if p.size], workers)
    return out
