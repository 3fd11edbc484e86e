import numpy as np
import pytest
import scipy.sparse as sp
from reference import qutip_model

from pyspb.model import excitation_basis, fock_numbers, hamiltonian, liouvillian, mode_operators


def test_mode_operators_act_on_the_documented_index():
    cutoff = 3
    a1, a2 = mode_operators(cutoff)
    n_cw, n_ccw = fock_numbers(cutoff)
    np.testing.assert_allclose((a1.T @ a1).diagonal(), n_cw)
    np.testing.assert_allclose((a2.T @ a2).diagonal(), n_ccw)
    assert n_cw[1 * (cutoff + 1) + 2] == 1 and n_ccw[1 * (cutoff + 1) + 2] == 2


def test_hamiltonian_matches_qutip():
    pytest.importorskip("qutip")
    cutoff, Delta, J, chi, xi = 3, 0.3, 0.2 - 0.4j, 1.1, 0.7
    H, _, _, _ = qutip_model(Delta, J, chi, xi, 1.0, cutoff)
    np.testing.assert_allclose(hamiltonian(Delta, J, chi, xi, cutoff).toarray(), H.full(), atol=1e-13)


def test_liouvillian_preserves_trace_and_matches_commutator():
    cutoff = 2
    rng = np.random.default_rng(1)
    L = liouvillian(0.1, 0.3 + 0.1j, 0.7, 0.4, 0.9, cutoff)
    d = (cutoff + 1) ** 2
    rho = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    drho = (L @ rho.ravel()).reshape(d, d)
    assert abs(np.trace(drho)) < 1e-12
    a1, a2 = (op.toarray() for op in mode_operators(cutoff))
    H = hamiltonian(0.1, 0.3 + 0.1j, 0.7, 0.4, cutoff).toarray()
    expected = -1j * (H @ rho - rho @ H)
    for a in (a1, a2):
        expected += 0.9 * (a @ rho @ a.T - 0.5 * (a.T @ a @ rho + rho @ a.T @ a))
    np.testing.assert_allclose(drho, expected, atol=1e-12)


@pytest.mark.parametrize("cutoff", [1, 3, 6])
def test_excitation_basis_diagonalises_the_drive_free_hamiltonian(cutoff):
    basis = excitation_basis(cutoff)
    V = basis.V.toarray()
    np.testing.assert_allclose(V.T @ V, np.eye(basis.dim), atol=1e-13)
    Delta, chi, J = 0.4, 1.3, 0.7 * np.exp(0.9j)
    n_cw, _ = fock_numbers(cutoff)
    U = np.exp(1j * np.angle(J) * n_cw)[:, None] * V
    H0 = hamiltonian(Delta, J, chi, 0.0, cutoff).toarray()
    energy = basis.energies(np.array([Delta]), np.array([J]), np.array([chi]))[0]
    np.testing.assert_allclose(U.conj().T @ H0 @ U, np.diag(energy), atol=1e-12)
    a1, a2 = (op.toarray() for op in mode_operators(cutoff))
    np.testing.assert_allclose(U.conj().T @ a1 @ U, np.exp(1j * np.angle(J)) * basis.A1.toarray(), atol=1e-13)
    np.testing.assert_allclose(U.conj().T @ a2 @ U, basis.A2.toarray(), atol=1e-13)
    assert sp.issparse(basis.A1)
