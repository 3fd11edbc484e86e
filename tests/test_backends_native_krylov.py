import numpy as np
import pytest

from pyspb.backends import native
from pyspb.backends.native import krylov
from pyspb.model import excitation_basis


def _random_hermitian(rng, n, d):
    x = rng.normal(size=(n, d, d)) + 1j * rng.normal(size=(n, d, d))
    return x + np.conj(np.swapaxes(x, 1, 2))


def _random_case(seed, n, cutoff=4):
    """A generator seeded with ``seed``, the excitation basis, n random Hermitian states and the
    points' data (:func:`_random_point_data`), drawn in that order."""
    rng = np.random.default_rng(seed)
    basis = excitation_basis(cutoff)
    x = _random_hermitian(rng, n, basis.dim)
    return rng, basis, x, *_random_point_data(rng, basis, n)


def _random_point_data(rng, basis, n):
    """Grading ratios, gamma, drive c, diagonal E of H_eff and vacuum weights of n random points."""
    r = rng.uniform(0.1, 2.0, size=(n, basis.dim))
    gamma = rng.uniform(0.5, 2.0, size=n)
    c = rng.normal(size=n) + 1j * rng.normal(size=n)
    E = rng.normal(size=(n, basis.dim)) - 0.5j * gamma[:, None] * basis.K
    vacuum_row = rng.uniform(0.5, 2.0, size=n)
    return r, gamma, c, E, vacuum_row


def _dense_graded_hamiltonian(basis, r, c, E):
    """``H_eff = diag(E) + c A1 R + c* R^-1 A1^T`` (graded), dense."""
    A1, R = basis.A1.toarray(), np.diag(r)
    return np.diag(E) + c * A1 @ R + np.conj(c) * np.linalg.inv(R) @ A1.T


def test_graded_jumps_match_dense_products():
    """The CSR kernel against dense matrix products of the same sandwiches."""
    rng = np.random.default_rng(0)
    basis = excitation_basis(4)
    d, n = basis.dim, 3
    x = _random_hermitian(rng, n, d)
    r = rng.uniform(0.1, 2.0, size=(n, d))
    gamma = rng.uniform(0.5, 2.0, size=n)
    out = np.full_like(x, np.nan)
    A1, _, A2 = native._sparse_operators(4)
    krylov.graded_jumps(x, r, gamma, A1, A2, out)
    A1, A2 = basis.A1.toarray(), basis.A2.toarray()
    for k in range(n):
        y = np.outer(r[k], r[k]) * x[k]
        expected = gamma[k] * (A1 @ y @ A1.T + A2 @ y @ A2.T)
        np.testing.assert_allclose(out[k], expected, rtol=1e-13, atol=1e-13 * np.abs(expected).max())


def test_graded_liouvillian_matches_dense_products():
    """The sparse kernel (packed output) against ``-i (H x - x H^H) + jumps`` from dense matrices,
    vacuum equation replaced."""
    cutoff, n = 4, 3
    _, basis, x, r, gamma, c, E, vacuum_row = _random_case(2, n, cutoff)
    d = basis.dim
    hermitian = native._hermitian(d)
    out = np.full((n, d * d), np.nan)
    args = (x, vacuum_row, c, r, E, gamma, native._level_blocks(cutoff)[1], *native._sparse_operators(cutoff))
    krylov.graded_liouvillian(*args, True, out)
    A1, A2 = basis.A1.toarray(), basis.A2.toarray()
    for k in range(n):
        H = _dense_graded_hamiltonian(basis, r[k], c[k], E[k])
        y = np.outer(r[k], r[k]) * x[k]
        expected = -1j * (H @ x[k] - x[k] @ np.conj(H.T)) + gamma[k] * (A1 @ y @ A1.T + A2 @ y @ A2.T)
        expected[0, 0] = vacuum_row[k] * x[k, 0, 0]
        np.testing.assert_allclose(hermitian.unpack(out)[k], expected, rtol=0, atol=1e-13 * np.abs(expected).max())


def test_level_solve_inverts_the_level_lower_part():
    """``level_solve`` solves ``M x = z`` with ``M x = D x - i (B x - x B^H)``, ``B`` the drive's
    raising part (dense here), vacuum equation replaced; ``graded_liouvillian(full=False)`` is ``M``."""
    cutoff, n = 4, 3
    _, basis, z, r, gamma, c, E, vacuum_row = _random_case(4, n, cutoff)
    d = basis.dim
    hermitian = native._hermitian(d)
    operators = native._sparse_operators(cutoff)
    starts, row_offset = native._level_blocks(cutoff)
    x = np.full_like(z, np.nan)
    krylov.level_solve(hermitian.pack(z), vacuum_row, c, r, E, starts, row_offset, operators[1], x)
    lower = np.full((n, d * d), np.nan)
    krylov.graded_liouvillian(x, vacuum_row, c, r, E, gamma, row_offset, *operators, False, lower)
    A1 = basis.A1.toarray()
    for k in range(n):
        B = np.conj(c[k]) * np.diag(1 / r[k]) @ A1.T
        D = -1j * (E[k][:, None] - np.conj(E[k])[None, :])
        Mx = D * x[k] - 1j * (B @ x[k] - x[k] @ np.conj(B.T))
        Mx[0, 0] = vacuum_row[k] * x[k, 0, 0]
        np.testing.assert_allclose(x[k], np.conj(x[k].T), rtol=0, atol=0)
        np.testing.assert_allclose(Mx, z[k], rtol=0, atol=1e-10 * np.abs(z[k]).max())
        # the terms of M x are much larger than z (the solve's growth): compare on their scale
        terms = np.abs(D * x[k]).max()
        np.testing.assert_allclose(hermitian.unpack(lower)[k], Mx, rtol=0, atol=1e-13 * terms)


def test_orthogonalize_matches_projection_onto_a_qr_basis():
    """Modified Gram-Schmidt against an orthonormal basis from numpy's QR, for the points ``rows``
    only: projections, remainder, its norm and the next Krylov vector, real and complex."""
    rng = np.random.default_rng(1)
    n, m, size, j = 3, 6, 50, 3
    rows = np.array([2, 0])
    for dtype in (float, complex):
        basis = np.zeros((n, m + 1, size), dtype=dtype)
        for k in range(n):
            A = rng.normal(size=(size, m)) + (1j * rng.normal(size=(size, m)) if dtype is complex else 0)
            basis[k, :m] = np.linalg.qr(A)[0].T
        w = rng.normal(size=(rows.size, size)) + (1j * rng.normal(size=(rows.size, size)) if dtype is complex else 0)
        V = basis[rows, : j + 1]
        expected_h = np.einsum("nid,nd->ni", V.conj(), w)
        expected_w = w - np.einsum("ni,nid->nd", expected_h, V)
        norm = np.linalg.norm(expected_w, axis=1)
        hessenberg = np.zeros((n, m + 1, m), dtype=dtype)
        untouched = basis[1].copy()
        krylov.orthogonalize(basis, rows, j, w, hessenberg)
        np.testing.assert_allclose(hessenberg[rows, : j + 1, j], expected_h, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(hessenberg[rows, j + 1, j], norm, rtol=1e-12)
        np.testing.assert_allclose(w, expected_w, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(basis[rows, j + 1], expected_w / norm[:, None], rtol=1e-12, atol=1e-13)
        assert np.abs(np.einsum("nid,nd->ni", V.conj(), w)).max() < 1e-13
        assert not hessenberg[1].any() and np.array_equal(basis[1], untouched)


def test_givens_rotations_give_the_least_squares_residual_and_solution_of_gmres():
    """After each column, |g_{j+1}| is the least-squares residual of min |beta e1 - H y| and the
    rotated triangle gives its solution (numpy's lstsq as reference), real and complex;
    ``update_solution`` adds ``y V`` to the points' solutions (here ``V`` random, a start of 1)."""
    rng = np.random.default_rng(5)
    n, m = 2, 6
    for dtype in (float, complex):
        H = np.triu(rng.normal(size=(n, m + 1, m)), -1).astype(dtype)
        if dtype is complex:
            H = H + 1j * np.triu(rng.normal(size=(n, m + 1, m)), -1)
        beta = rng.uniform(0.5, 2.0, size=n)
        rotated, rotations, g = H.copy(), np.zeros((n, m, 2), dtype=dtype), np.zeros((n, m + 1), dtype=dtype)
        g[:, 0] = beta
        V = rng.normal(size=(n, m + 1, 12)).astype(dtype)
        for j in range(m):
            limits, flags = np.array([0.0, np.inf]), np.zeros(n + 1, dtype=bool)
            count = krylov.givens_rotate(rotated, np.arange(n), j, rotations, g, limits, flags)
            assert count == 1 and not flags[0] and flags[1]  # |g| <= 0 nowhere, <= inf everywhere
            x = np.ones((n + 1, 12), dtype=dtype)
            krylov.update_solution(x, np.array([2, 0]), V, np.array([0, 1]), j, rotated, g)  # x[2] from row 0
            y = [np.linalg.lstsq(V[k, : j + 1].T, x[(2, 0)[k]] - 1, rcond=None)[0] for k in range(n)]
            np.testing.assert_array_equal(x[1], 1.0)  # not among the points
            for k in range(n):
                e1 = np.zeros(j + 2)
                e1[0] = beta[k]
                expected, *_ = np.linalg.lstsq(H[k, : j + 2, : j + 1], e1, rcond=None)
                residual = np.linalg.norm(e1 - H[k, : j + 2, : j + 1] @ expected)
                np.testing.assert_allclose(abs(g[k, j + 1]), residual, rtol=1e-12, atol=1e-14)
                np.testing.assert_allclose(y[k], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(np.finfo(np.longdouble).eps > 1e-18, reason="needs a long double wider than double")
@pytest.mark.parametrize("energy", [1e4, 1.0])
def test_graded_remainder_is_exact_where_the_terms_cancel(energy):
    """``graded_remainder`` (Dot2 sums) against the same terms summed in long double, ``b`` the
    (rounded) ``A x`` itself: the remainder is ~1e-16 of the terms, which plain double precision
    (the ``graded_liouvillian`` kernel) gets wrong by their rounding.  Energies ~1e4 times the
    loss (where the energies dominate), or ~1 (where the jumps are as large: in working precision
    they missed the remainder by their rounding).  Coefficients as the kernel forms them (in
    double: ``c a r``, ``c^* a / r``, ``a r``, ``gamma a r``)."""
    cutoff, n = 4, 2
    rng, basis, x, r, gamma, c, E, vacuum_row = _random_case(6, n, cutoff)
    d = basis.dim
    E = energy * rng.normal(size=(n, d)) - 0.5j * gamma[:, None] * basis.K
    operators = native._sparse_operators(cutoff)
    A1, A2 = basis.A1.toarray(), basis.A2.toarray()
    long = np.clongdouble

    def terms(k, size=False):
        """``i (E x - x E^* + G - G^H) - gamma (A1 y A1^T + A2 y A2^T)`` of point k in long double,
        (0, 0) left out; with ``size``, the sum of the terms' moduli instead."""
        modulus = np.abs if size else (lambda value: value)
        e = modulus((E[k][:, None] - np.conj(E[k])[None, :]).astype(long))
        lower = modulus((c[k] * (A1 * r[k][None, :])).astype(long))
        upper = modulus((np.conj(c[k]) * (A1.T / r[k][:, None])).astype(long))
        xl = modulus(x[k].astype(long))
        G = lower @ xl + upper @ xl
        value = e * xl + G + np.conj(G.T) if size else 1j * (e * xl + G - np.conj(G.T))
        for A in (A1, A2):
            AR = A * r[k][None, :]  # a r, and gamma a r, rounded as the kernel has them
            left, right = modulus((gamma[k] * AR).astype(np.longdouble)), modulus(AR.astype(np.longdouble))
            jumps = left @ xl @ right.T
            value = value + jumps if size else value - jumps
        value[0, 0] = 0.0
        return value

    # b = A x rounded to double: the remainder b - A x is the rounding of b alone
    b = np.stack([(-terms(k)).astype(complex) for k in range(n)])
    b = 0.5 * (b + np.conj(np.swapaxes(b, 1, 2)))  # Hermitian to the last bit
    rest = b.copy()
    rest[:, 0, 0] = 0.0
    out = np.full_like(x, np.nan)
    krylov.graded_remainder(x, rest, c, r, E, gamma, *operators, out)
    expected = np.stack([(rest[k].astype(long) + terms(k)).astype(complex) for k in range(n)])
    scale = max(float(np.abs(terms(k, size=True)).max()) for k in range(n))  # the terms that cancel
    # the upper triangle (the kernel mirrors it: gamma a r on one side and a r on the other leave
    # the exact terms Hermitian only to rounding)
    k, l = np.triu_indices(d)
    np.testing.assert_allclose(out[:, k, l], expected[:, k, l], rtol=0, atol=1e-18 * scale)
    assert np.abs(expected).max() < 1e-15 * scale  # the terms cancel
    # and plain double precision misses the remainder by their rounding
    hermitian = native._hermitian(d)
    plain = np.empty((n, d * d))
    krylov.graded_liouvillian(x, vacuum_row, c, r, E, gamma, native._level_blocks(cutoff)[1], *operators, True, plain)
    assert np.abs((b - hermitian.unpack(plain) - expected)[:, k, l]).max() > 1e-17 * scale
