"""The two-mode Kerr resonator of docs/model.md, section 1: basis, operators, Hamiltonian, Liouvillian.

Basis convention (used everywhere in pyspb): the joint Fock state
``|n_cw, n_ccw>`` has flat index ``i = n_cw * (cutoff + 1) + n_ccw``, i.e. the cw mode
is the first (slow) factor of NumPy's ``kron``.  ``cutoff`` is the largest photon number
kept per mode, so each mode has ``cutoff + 1`` levels.

Rates are in any consistent unit (the paper uses 1e6 s^-1); hbar = 1.

The *excitation basis* (:class:`ExcitationBasis`) diagonalises the drive-free Hamiltonian.
Without the drive, H conserves the total photon number K = n_cw + n_ccw, the Kerr energy
is ``chi K (K - 1)`` inside each K block, and the backscattering term
``J a1† a2 + J* a2† a1`` equals ``|J| G† X G`` with ``X = a1† a2 + a2† a1`` and
``G = exp(-i arg(J) n_cw)``.  The eigenvectors of X are fixed for a given cutoff, so one
real orthogonal matrix ``V`` diagonalises every grid point at once; only scalars
(eigenvalues and the phase of J) change from point to point.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

__all__ = [
    "fock_numbers",
    "mode_operators",
    "hamiltonian",
    "liouvillian",
    "ExcitationBasis",
    "excitation_basis",
    "coupling_phase",
]


def fock_numbers(cutoff: int) -> tuple[np.ndarray, np.ndarray]:
    """Photon numbers ``(n_cw, n_ccw)`` of every flat basis index."""
    levels = np.arange(cutoff + 1)
    n_cw, n_ccw = np.meshgrid(levels, levels, indexing="ij")
    return n_cw.ravel(), n_ccw.ravel()


@lru_cache(maxsize=16)
def mode_operators(cutoff: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Annihilation operators ``(a1, a2)`` of the cw and ccw modes (sparse, real)."""
    a = sp.diags(np.sqrt(np.arange(1, cutoff + 1, dtype=float)), 1, format="csr")
    eye = sp.identity(cutoff + 1, format="csr")
    return sp.kron(a, eye, format="csr"), sp.kron(eye, a, format="csr")


def hamiltonian(Delta: float, J: complex, chi: float, xi: float, cutoff: int) -> sp.csr_matrix:
    """The Hamiltonian of docs/model.md, section 1 in the rotating frame (sparse, complex)."""
    a1, a2 = mode_operators(cutoff)
    n_cw, n_ccw = fock_numbers(cutoff)
    diagonal = Delta * (n_cw + n_ccw) + chi * (n_cw * (n_cw - 1) + n_ccw * (n_ccw - 1)) + 2 * chi * n_cw * n_ccw
    hop = a1.T @ a2
    H = sp.diags(diagonal.astype(complex)) + J * hop + np.conj(J) * hop.T + xi * (a1 + a1.T)
    return sp.csr_matrix(H)


def liouvillian(Delta: float, J: complex, chi: float, xi: float, gamma: float, cutoff: int) -> sp.csc_matrix:
    """The Lindblad superoperator acting on ``rho.ravel()`` (row-major vectorisation).

    ``L @ rho.ravel() == (d rho/dt).ravel()``, so that for row-major vectors
    ``vec(A rho B) = kron(A, B.T) vec(rho)``.
    """
    a1, a2 = mode_operators(cutoff)
    d = a1.shape[0]
    eye = sp.identity(d, format="csr")
    H_eff = hamiltonian(Delta, J, chi, xi, cutoff) - 0.5j * gamma * (a1.T @ a1 + a2.T @ a2)
    L = -1j * sp.kron(H_eff, eye) + 1j * sp.kron(eye, H_eff.conj()) + gamma * (sp.kron(a1, a1) + sp.kron(a2, a2))
    return sp.csc_matrix(L)


@dataclass(frozen=True)
class ExcitationBasis:
    """Eigenbasis of the drive-free Hamiltonian, shared by all grid points of one cutoff.

    Attributes
    ----------
    cutoff : int
        Largest photon number per mode.
    K : ndarray of int, shape (d,)
        Total photon number of each basis vector.
    hopping : ndarray, shape (d,)
        Eigenvalues of ``X = a1† a2 + a2† a1``; the eigenvalue of ``H`` without drive is
        ``Delta K + chi K (K - 1) + |J| hopping``.
    V : sparse matrix, shape (d, d)
        Real orthogonal; column k is basis vector k in the Fock basis.
    A1, A2 : sparse matrix, shape (d, d)
        ``V.T @ a1 @ V`` and ``V.T @ a2 @ V`` (real).  In this basis the cw operator of a
        point with backscattering phase ``arg(J)`` is ``exp(i arg(J)) A1``.
    """

    cutoff: int
    K: np.ndarray
    hopping: np.ndarray
    V: sp.csr_matrix
    A1: sp.csr_matrix
    A2: sp.csr_matrix

    @property
    def dim(self) -> int:
        """Hilbert-space dimension ``(cutoff + 1) ** 2``."""
        return self.K.size

    def energies(self, Delta, J, chi) -> np.ndarray:
        """Eigenvalues of the drive-free H per point, ``Delta K + chi K (K - 1) + |J| hopping``.

        ``Delta``, ``chi`` (real) and ``J`` (complex) are arrays of shape (npts,); the result
        has shape (npts, d), in the same unit as the inputs.
        """
        Delta, chi = np.asarray(Delta)[:, None], np.asarray(chi)[:, None]
        K = self.K
        return Delta * K + chi * (K * (K - 1)) + np.abs(np.asarray(J))[:, None] * self.hopping


def coupling_phase(J: np.ndarray) -> np.ndarray:
    """``exp(i arg J)``, and 1 where J = 0 (whatever the sign of its zeros).

    The gauge factor between the Fock basis and the :class:`ExcitationBasis`.
    """
    return np.where(np.abs(J) > 0, np.exp(1j * np.angle(J)), 1.0)


@lru_cache(maxsize=16)
def excitation_basis(cutoff: int) -> ExcitationBasis:
    """Build (once per cutoff) the :class:`ExcitationBasis`."""
    n_cw, n_ccw = fock_numbers(cutoff)
    total = n_cw + n_ccw
    d = total.size
    columns: list[int] = []
    values: list[float] = []
    rows: list[int] = []
    K_list: list[int] = []
    hopping_list: list[float] = []
    for K in range(2 * cutoff + 1):
        members = np.flatnonzero(total == K)
        members = members[np.argsort(n_cw[members])]
        # X couples (n1, n2) -> (n1 + 1, n2 - 1) with amplitude sqrt((n1 + 1) n2).
        off = np.sqrt((n_cw[members[:-1]] + 1.0) * n_ccw[members[:-1]])
        block = np.diag(off, 1) + np.diag(off, -1)
        eigenvalues, vectors = np.linalg.eigh(block)
        for k in range(members.size):
            col = len(K_list)
            rows.extend(members)
            columns.extend([col] * members.size)
            values.extend(vectors[:, k])
            K_list.append(K)
            hopping_list.append(eigenvalues[k])
    V = sp.csr_matrix((values, (rows, columns)), shape=(d, d))
    V.eliminate_zeros()
    a1, a2 = mode_operators(cutoff)
    A1 = sp.csr_matrix(V.T @ a1 @ V)
    A2 = sp.csr_matrix(V.T @ a2 @ V)
    for A in (A1, A2):
        A.data[np.abs(A.data) < 1e-15 * np.sqrt(cutoff + 1)] = 0.0
        A.eliminate_zeros()
    return ExcitationBasis(
        cutoff=cutoff,
        K=np.asarray(K_list),
        hopping=np.asarray(hopping_list),
        V=V,
        A1=A1,
        A2=A2,
    )
