import numpy as np

from pyspb.backends import native
from pyspb.backends.native import krylov
from pyspb.model import excitation_basis


def test_graded_jumps_match_dense_products():
    """The CSR kernel against dense matrix products of the same sandwiches."""
    rng = np.random.default_rng(0)
    basis = excitation_basis(4)
    d, n = basis.dim, 3
    x = rng.normal(size=(n, d, d)) + 1j * rng.normal(size=(n, d, d))
    r = rng.uniform(0.1, 2.0, size=(n, d))
    gamma = rng.uniform(0.5, 2.0, size=n)
    out = np.full_like(x, np.nan)
    krylov.graded_jumps(x, r, gamma, *native._csr_arrays(basis.A1), *native._csr_arrays(basis.A2), out)
    A1, A2 = basis.A1.toarray(), basis.A2.toarray()
    for k in range(n):
        y = np.outer(r[k], r[k]) * x[k]
        expected = gamma[k] * (A1 @ y @ A1.T + A2 @ y @ A2.T)
        np.testing.assert_allclose(out[k], expected, rtol=1e-13, atol=1e-13 * np.abs(expected).max())


def test_orthogonalize_matches_projection_onto_a_qr_basis():
    """Modified Gram-Schmidt against an orthonormal basis from numpy's QR: projections and remainder."""
    rng = np.random.default_rng(1)
    n, m, size, j = 3, 6, 50, 3
    basis = np.empty((n, m, size))
    for k in range(n):
        basis[k] = np.linalg.qr(rng.normal(size=(size, m)))[0].T
    w = rng.normal(size=(n, size))
    expected_h = np.einsum("nid,nd->ni", basis[:, : j + 1], w)
    expected_w = w - np.einsum("ni,nid->nd", expected_h, basis[:, : j + 1])
    h = np.empty((n, j + 1))
    krylov.orthogonalize(basis, j, w, h)
    np.testing.assert_allclose(h, expected_h, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(w, expected_w, rtol=1e-12, atol=1e-13)
    assert np.abs(np.einsum("nid,nd->ni", basis[:, : j + 1], w)).max() < 1e-13
