import os

import mpmath
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reference import assert_stationary_density_matrix, kerr_moments, model_strategies, qutip_state, random_points

from pyspb.backends import native
from pyspb.backends.native import gauss_seidel
from pyspb.model import excitation_basis, liouvillian
from pyspb.observables import correlations


def populations(Delta, J, chi, xi, gamma, cutoff, **kwargs):
    args = [np.atleast_1d(np.asarray(v)) for v in (Delta, J, chi, xi, gamma)]
    return native.steady_state_populations(*args, cutoff=cutoff, **kwargs)


@pytest.mark.parametrize("cutoff", [2, 3, 4, 5])
def test_density_matrix_matches_qutip_on_random_points(cutoff):
    points = random_points(4, seed=cutoff)
    rho = native.steady_state_density_matrices(*points, cutoff=cutoff)
    for k in range(4):
        reference = qutip_state(*(p[k] for p in points), cutoff)
        np.testing.assert_allclose(rho[k], reference, atol=1e-10, rtol=0)


def test_populations_match_qutip_relatively_on_random_points():
    cutoff = 4
    points = random_points(6, seed=11)
    P = native.steady_state_populations(*points, cutoff=cutoff)
    for k in range(6):
        reference = np.diag(qutip_state(*(p[k] for p in points), cutoff)).real.reshape(cutoff + 1, -1)
        big = reference > 1e-8  # where QuTiP's own absolute error is negligible
        np.testing.assert_allclose(P[k][big], reference[big], rtol=1e-7)


@pytest.mark.parametrize(
    "Delta, chi, xi, gamma",
    [
        (0.0, 1.5831, 0.061587, 0.24305),  # the paper's ideal cavity
        (0.3, 0.5, 0.4, 1.0),
        (-0.7, 0.2, 0.8, 1.0),  # strongly driven, several photons
        (0.0, 3.0, 0.05, 0.24),  # deep blockade: <a+^4 a^4> ~ 1e-13
    ],
)
def test_single_mode_limit_matches_exact_kerr_solution(Delta, chi, xi, gamma):
    """J = 0: the cw mode is the driven Kerr oscillator, whose steady state is known exactly."""
    cutoff = 16
    P = populations(Delta, 0j, chi, xi, gamma, cutoff)
    exact = kerr_moments(Delta, chi, xi, gamma)
    marginal = P.sum(axis=2)[0]
    n = np.arange(cutoff + 1.0)
    moments = [np.sum(marginal * np.prod([np.clip(n - j, 0, None) for j in range(k)], axis=0)) for k in range(1, 5)]
    np.testing.assert_allclose(moments, exact, rtol=1e-8)
    # the ccw mode stays empty
    assert P[0, :, 1:].sum() < 1e-15 * P[0, 1:, :].sum()


def test_deep_blockade_case_really_is_deep():
    exact = kerr_moments(0.0, 3.0, 0.05, 0.24)
    assert exact[3] < 1e-12  # the regime the accuracy requirement speaks of


def test_extended_precision_solution_at_small_cutoff():
    """Solve the vacuum-fixed Liouvillian in 50-digit arithmetic and compare every population."""
    cutoff = 2
    Delta, J, chi, xi, gamma = 0.05, 0.3 - 0.2j, 4.0, 0.03, 0.3
    L = liouvillian(Delta, J, chi, xi, gamma, cutoff).toarray()
    d = (cutoff + 1) ** 2
    with mpmath.workdps(50):
        A = mpmath.matrix(L[1:, 1:].tolist())
        b = mpmath.matrix((-L[1:, 0]).tolist())
        x = mpmath.lu_solve(A, b)
        rho = [mpmath.mpf(1)] + [x[i] for i in range(d * d - 1)]
        diag = [mpmath.re(rho[i * d + i]) for i in range(d)]
        total = sum(diag)
        exact = np.array([float(v / total) for v in diag])
    P = populations(Delta, J, chi, xi, gamma, cutoff).ravel()
    assert exact.min() < 1e-9  # two-photon populations are tiny here
    np.testing.assert_allclose(P, exact, rtol=1e-9)


def test_zero_kerr_gives_coherent_state():
    """chi = 0: both modes are linear; the state is a product of coherent states."""
    Delta, J, xi, gamma = 0.2, 0.35 + 0.1j, 0.3, 0.8
    P = populations(Delta, J, 0.0, xi, gamma, cutoff=14)
    c = correlations(P)
    # linear amplitudes: 0 = -(i Delta + gamma/2) a1 - i J a2 - i xi, 0 = -(i Delta + gamma/2) a2 - i J* a1
    M = np.array([[1j * Delta + gamma / 2, 1j * J], [1j * np.conj(J), 1j * Delta + gamma / 2]])
    alpha = np.linalg.solve(M, [-1j * xi, 0.0])
    assert c["N_cw"][0] == pytest.approx(abs(alpha[0]) ** 2, rel=1e-9)
    assert c["N_ccw"][0] == pytest.approx(abs(alpha[1]) ** 2, rel=1e-9)
    for order in (2, 3, 4):
        assert c[f"g{order}_cw"][0] == pytest.approx(1.0, abs=1e-8)
        assert c[f"g{order}_ccw"][0] == pytest.approx(1.0, abs=1e-8)


def test_no_drive_gives_vacuum():
    P = populations(0.1, 0.2j, 1.0, 0.0, 0.5, cutoff=3)
    assert P[0, 0, 0] == 1.0 and P.sum() == 1.0


def test_sparse_lu_fallback_agrees_with_krylov_path(monkeypatch):
    points = random_points(3, seed=5)
    monkeypatch.setattr(gauss_seidel, "MAX_SWEEPS", 0)  # the Krylov path, not the level sweeps
    fast = native.steady_state_populations(*points, cutoff=4)
    monkeypatch.setattr(native, "LEVEL_RESTARTS", 0)  # GMRES does nothing: every point falls back
    monkeypatch.setattr(native, "MAX_RESTARTS", 0)
    slow = native.steady_state_populations(*points, cutoff=4)
    np.testing.assert_allclose(fast, slow, rtol=1e-8, atol=1e-16)


def test_batches_and_threads_do_not_change_results(monkeypatch):
    points = random_points(9, seed=3)
    together = native.steady_state_populations(*points, cutoff=3)
    monkeypatch.setattr(native, "BATCH_BYTES", 1)  # one point per batch
    apart = native.steady_state_populations(*points, cutoff=3)
    np.testing.assert_allclose(together, apart, rtol=1e-9, atol=1e-18)


def test_krylov_batches_handed_over_by_the_sweeps_give_the_same_states(monkeypatch):
    """With two workers the points the sweeps give up go to Krylov batches as they are found
    (here two points per batch, the points given up in groups of three: every group fills a
    batch and leaves one point for later): the same states as one worker that sweeps first and
    then solves the rest, every point solved and counted once."""
    Delta, J, chi, xi, gamma = random_points(12, seed=5)
    xi = np.where(np.arange(12) % 2 == 0, 8 * xi + 1.0, xi)  # every other point strongly driven
    one_worker, two_workers = {}, {}
    alone = native.steady_state_populations(Delta, J, chi, xi, gamma, cutoff=4, threads=1, paths=one_worker)
    sweeps = gauss_seidel.sweep_steady_states

    def given_up_in_threes(*args, **kwargs):
        found = list(sweeps(*args, **kwargs))
        for where, states, converged in found:
            if converged.any():
                yield where[converged], states[converged], converged[converged]
        where = np.concatenate([where[~converged] for where, _, converged in found])
        states = np.concatenate([states[~converged] for _, states, converged in found])
        for first in range(0, where.size, 3):
            yield where[first : first + 3], states[first : first + 3], np.zeros(where[first : first + 3].size, bool)

    monkeypatch.setattr(gauss_seidel, "sweep_steady_states", given_up_in_threes)
    monkeypatch.setattr(native, "BATCH_BYTES", 2 * native._krylov_bytes_per_element() * excitation_basis(4).dim ** 2)
    side_by_side = native.steady_state_populations(Delta, J, chi, xi, gamma, cutoff=4, threads=2, paths=two_workers)
    np.testing.assert_allclose(side_by_side, alone, rtol=1e-9, atol=1e-18)
    assert one_worker == two_workers
    assert two_workers["krylov"] >= 6 and two_workers["level_sweeps"] >= 1
    assert sum(two_workers.values()) == 12


@settings(max_examples=int(os.environ.get("PYSPB_HYPOTHESIS_EXAMPLES", "25")), deadline=None)
@given(**model_strategies(), xi=st.floats(0, 1.2), gamma=st.floats(0.05, 3))
# found by hypothesis: J = 0 at cutoff 3, where the previous Krylov path returned rho 1.5e-9 off
# (residual 3e-9); now GMRES's own residual rejects the pass (empty levels graded at the
# weight floor) and the sparse LU solves the point
@example(
    Delta=2.1696938246184994, J_abs=0.0, J_arg=0.0, chi=2.7145855430325705, cutoff=3, xi=0.6867735025974917, gamma=1.625
)
def test_steady_state_is_a_density_matrix(Delta, J_abs, J_arg, chi, xi, gamma, cutoff):
    J = J_abs * np.exp(1j * J_arg)
    rho = native.steady_state_density_matrices(
        np.array([Delta]), np.array([J]), np.array([chi]), np.array([xi]), np.array([gamma]), cutoff=cutoff
    )[0]
    assert_stationary_density_matrix(rho, Delta, J, chi, xi, gamma, cutoff)


@pytest.mark.parametrize(
    "device",
    [
        {"r": 0.1},  # tip close: large gamma_tip, every term of L rho ~5e-4 of the vacuum equation
        {"chi3": 1.8e-15},  # chi ~ 500 gamma: energies ~1e4 gamma cancel inside S rho
    ],
    ids=["weak-drive-large-loss", "huge-kerr"],
)
def test_hard_regimes_converge_without_the_lu_fallback(monkeypatch, device):
    """GMRES must meet its tolerance on the scale of the Liouvillian's own terms (not hand
    every point to the sparse LU), and agree with QuTiP."""
    import pyspb
    from pyspb.grid import flatten_inputs

    inputs = pyspb.Device().rates(**device, phi=np.linspace(0.0, 1.1, 12))
    _, flat = flatten_inputs(inputs[["Delta", "J_re", "J_im", "chi", "xi", "gamma"]])
    points = [flat[name] for name in ("Delta", "J", "chi", "xi", "gamma")]
    monkeypatch.setattr(gauss_seidel, "MAX_SWEEPS", 0)  # the Krylov path, not the level sweeps
    calls = []
    lu = native._sparse_lu_point
    monkeypatch.setattr(native, "_sparse_lu_point", lambda *args: calls.append(args) or lu(*args))
    P = native.steady_state_populations(*points, cutoff=6, threads=1)
    assert calls == []
    for k in (0, 7):
        reference = np.real(np.diag(qutip_state(*(p[k] for p in points), cutoff=6)))
        big = reference > 1e-8
        np.testing.assert_allclose(P[k].ravel()[big], reference[big], rtol=1e-6)


def test_memory_does_not_grow_with_the_number_of_points(monkeypatch):
    """Populations only are kept: 4x the points must not need 4x the working memory."""
    import tracemalloc

    monkeypatch.setattr(native, "SWEEP_BATCH", 64)
    monkeypatch.setattr(native, "BATCH_BYTES", 2**20)
    cutoff, d = 3, 16

    def peak(n):
        points = random_points(n, seed=n)
        tracemalloc.start()
        native.steady_state_populations(*points, cutoff=cutoff, threads=1)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(500), peak(2000)
    states = 2000 * d * d * 16  # what keeping every density matrix would take
    assert large < 2 * small and large < 0.5 * states, (small, large, states)


#: points of the regimes the level sweeps leave to the Krylov solver (gamma = 1): name, Delta, J, chi, xi
HARD_REGIMES = [
    ("strong-drive", 0.0, 0.6 + 0.2j, 2.0, 3.0),
    ("two-photon-resonance", -2.0, 0.6 + 0.2j, 2.0, 0.8),
    ("three-photon-resonance", -4.0, 0.6 + 0.2j, 2.0, 0.8),
    ("large-J", 0.0, 8.0 * np.exp(0.3j), 2.0, 0.8),
    ("huge-kerr", 0.0, 0.5 + 0.0j, 50.0, 3.0),
    ("tiny-kerr", 0.0, 0.4 - 0.3j, 0.02, 0.3),
    ("kerr-bistable", -2.0, 0.3 + 0.0j, 0.4, 1.0),
]


def test_every_regime_gives_n_g2_g3_g4_of_both_modes_to_1e6_against_qutip():
    """Strong drive, multi-photon resonances, large |J|, huge and tiny Kerr, the bistable side:
    N and g2..g4 of both modes to 1e-6 relative against QuTiP's direct solve (a different
    method and basis), wherever QuTiP's own absolute error (~1e-14) is below 1e-8 of the moment."""
    import qutip
    from reference import qutip_model

    cutoff = 5
    points = [np.array(column) for column in zip(*(row[1:] for row in HARD_REGIMES), strict=True)]
    points.append(np.ones(len(HARD_REGIMES)))
    paths: dict[str, int] = {}
    P = native.steady_state_populations(*points, cutoff=cutoff, paths=paths)
    assert paths["krylov"] + paths["sparse_lu"] >= 5  # the regimes the sweeps give up on
    ours = correlations(P, resolution=0.0)
    checked = 0
    for k, (name, *_) in enumerate(HARD_REGIMES):
        H, c_ops, a1, a2 = qutip_model(*(p[k] for p in points), cutoff)
        rho = qutip.steadystate(H, c_ops, method="direct")
        for mode, a in (("cw", a1), ("ccw", a2)):
            N = qutip.expect(a.dag() * a, rho)
            assert ours[f"N_{mode}"][k] == pytest.approx(N, rel=1e-6), (name, mode)
            for order in (2, 3, 4):
                moment = qutip.expect(a.dag() ** order * a**order, rho)
                if moment > 1e-6:
                    assert ours[f"g{order}_{mode}"][k] == pytest.approx(moment / N**order, rel=1e-6), (
                        name,
                        mode,
                        order,
                    )
                    checked += 1
    assert checked >= 30


@pytest.mark.slow
def test_strong_drive_and_bistable_side_at_cutoff_9_against_qutip():
    import qutip
    from reference import qutip_model

    cutoff = 9
    rows = [HARD_REGIMES[0], HARD_REGIMES[-1]]
    points = [np.array(column) for column in zip(*(row[1:] for row in rows), strict=True)] + [np.ones(2)]
    ours = correlations(native.steady_state_populations(*points, cutoff=cutoff), resolution=0.0)
    for k, (name, *_) in enumerate(rows):
        H, c_ops, a1, _ = qutip_model(*(p[k] for p in points), cutoff)
        rho = qutip.steadystate(H, c_ops, method="direct")
        N = qutip.expect(a1.dag() * a1, rho)
        assert ours["N_cw"][k] == pytest.approx(N, rel=1e-6), name
        for order in (2, 3, 4):
            g = qutip.expect(a1.dag() ** order * a1**order, rho) / N**order
            assert ours[f"g{order}_cw"][k] == pytest.approx(g, rel=1e-6), (name, order)


# --------------------------------------------------------------------------- solver options


def test_solver_options_default_and_check_the_tolerance():
    assert native.solver_options() == {"tolerance": native.DEFAULT_TOLERANCE}
    assert native.solver_options(np.float32(1e-8)) == {"tolerance": float(np.float32(1e-8))}
    for bad in (0.0, -1e-12, 1e-3, float("nan")):
        with pytest.raises(ValueError, match=r"tolerance must be in \(0, 1e-3\)"):
            native.solver_options(bad)
    with pytest.raises(TypeError, match="tolerance must be a number"):
        native.solver_options("tight")


def test_the_lu_last_resort_refuses_to_start_when_its_memory_does_not_fit(monkeypatch):
    points = random_points(2, seed=7)
    monkeypatch.setattr(gauss_seidel, "MAX_SWEEPS", 0)  # no level sweeps
    monkeypatch.setattr(native, "LEVEL_RESTARTS", 0)  # no GMRES: every point goes to the LU
    monkeypatch.setattr(native, "MAX_RESTARTS", 0)
    monkeypatch.setattr(native, "available_memory", lambda: native.memory_estimate(3)["sparse_lu"] / 2)
    with pytest.raises(MemoryError, match=r"did not converge .* sparse LU at cutoff 3, needs about .* available"):
        native.steady_state_populations(*points, cutoff=3, threads=1)


def test_memory_estimate_grows_with_the_cutoff_and_covers_a_measured_run():
    import tracemalloc

    # the level operators of small calls are built up to LEVEL_SWEEP_MAX_CUTOFF only, so the
    # estimate grows with the cutoff on each side of it (and drops once across it)
    top = gauss_seidel.LEVEL_SWEEP_MAX_CUTOFF
    for cutoffs in ((4, 8, top), (top + 1, 16, 20)):
        sizes = [native.memory_estimate(c)["minimum"] for c in cutoffs]
        assert all(a < b for a, b in zip(sizes, sizes[1:], strict=False)), (cutoffs, sizes)
    points = random_points(3, seed=2)
    # loading the compiled Krylov kernels (numba) allocates ~30 MB once per process, not per point
    native.steady_state_populations(*points, cutoff=8, threads=1)
    tracemalloc.start()
    native.steady_state_populations(*points, cutoff=8, threads=1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # fixed operators (cached, may predate the trace) + the three points in flight
    estimate = native.memory_estimate(8)
    assert peak < estimate["fixed"] + 3 * estimate["per_point"], (peak, estimate)


# --------------------------------------------------------------------------- graded Krylov pieces


def test_hermitian_packing_is_an_isometry_and_inverts():
    """GMRES runs on packed Hermitian matrices: packing must keep inner products and invert."""
    rng = np.random.default_rng(1)
    d = 7
    M = rng.normal(size=(3, d, d)) + 1j * rng.normal(size=(3, d, d))
    x = M + np.conj(np.swapaxes(M, 1, 2))
    M = rng.normal(size=(3, d, d)) + 1j * rng.normal(size=(3, d, d))
    y = M + np.conj(np.swapaxes(M, 1, 2))
    packing = native._hermitian(d)
    u, v = packing.pack(x), packing.pack(y)
    assert u.dtype == float and u.shape == (3, d * d)
    np.testing.assert_allclose(np.sum(u * v, axis=1), np.einsum("nkl,nkl->n", np.conj(x), y).real, rtol=1e-13)
    np.testing.assert_allclose(packing.unpack(u), x, rtol=0, atol=1e-14)


@pytest.mark.parametrize("cutoff", [4, 7])
def test_the_residual_check_matches_dense_products(cutoff):
    """``_GradedSystem.residual`` (sparse kernels, packed) against the definition from dense
    matrices: ``|S x + J x|`` without the vacuum equation over ``|S x| + |J x| + |(|E_k| + |E_l|) x_kl|``,
    ``S x = -i (H x - x H^H)``; on states of any memory layout."""
    rng = np.random.default_rng(cutoff)
    basis = excitation_basis(cutoff)
    Delta, J, chi, xi, gamma = native.in_units_of_gamma(*random_points(4, seed=cutoff))
    ratios = native._perturbative_ratios(Delta, J, chi, xi, gamma, basis)
    system = native._GradedSystem(Delta, J, chi, xi, gamma, basis, ratios)
    system.vacuum_row = rng.uniform(0.5, 2.0, size=4)
    d = basis.dim
    M = rng.normal(size=(4, d, d)) + 1j * rng.normal(size=(4, d, d))
    x = np.swapaxes(M + np.conj(np.swapaxes(M, 1, 2)), 1, 2)  # Hermitian, not C-contiguous
    residual, scale = system.residual(x)
    A1, A2 = basis.A1.toarray(), basis.A2.toarray()
    for n in range(4):
        r, c, E = system.r[n], system.drive[n], system.diagonal[n]
        H = np.diag(E) + c * A1 * r[None, :] + np.conj(c) * A1.T / r[:, None]
        no_jump = -1j * (H @ x[n] - x[n] @ np.conj(H.T))
        y = np.outer(r, r) * x[n]
        jumps = gamma[n] * (A1 @ y @ A1.T + A2 @ y @ A2.T)
        total = no_jump + jumps
        total[0, 0] = 0.0
        energies = (np.abs(E)[:, None] + np.abs(E)[None, :]) * np.abs(x[n])
        expected_scale = sum(np.linalg.norm(term) for term in (no_jump, jumps, energies))
        assert scale[n] == pytest.approx(expected_scale, rel=1e-13)
        assert residual[n] == pytest.approx(np.linalg.norm(total) / expected_scale, rel=1e-12)


@pytest.mark.parametrize("restart", [native.RESTART, 12])
def test_the_compiled_level_gmres_solves_every_point(restart):
    """``krylov.level_gmres`` (every point's GMRES compiled, restarted every ``restart`` vectors):
    the iterates of the batched ``_gmres`` on the same operator, and where converged, a dense
    solve of that operator (assembled column by column), on strong-drive points at cutoff 3; an
    answer given as the start is kept."""
    from pyspb.backends.native import krylov

    basis = excitation_basis(3)
    Delta, J, chi, xi, gamma = native.in_units_of_gamma(*random_points(4, seed=9))
    xi = xi * 10  # strong drive: the level sweeps would give up
    ratios = native._perturbative_ratios(Delta, J, chi, xi, gamma, basis)
    system = native._GradedSystem(Delta, J, chi, xi, gamma, basis, ratios)
    size = basis.dim**2
    b = np.zeros((4, size))
    b[:, 0] = 1.0
    fixed = (system.starts, system.row_offset, *system.operators)

    def solve(start=None):
        z, residual = np.full_like(b, np.nan), np.full(4, np.nan)
        args = (b, b if start is None else start, start is not None, 1e-12, restart, 10)
        krylov.level_gmres(*args, *system.point_data(), *fixed, z, residual)
        return z, residual

    z, residual = solve()
    batched, batched_residual = native._gmres(
        lambda v, active: system.subset(active).preconditioned(v), b, 1e-12, restart, 10
    )
    np.testing.assert_allclose(z, batched, rtol=0, atol=1e-12 * np.abs(batched).max())
    np.testing.assert_allclose(residual, batched_residual, rtol=0.1, atol=1e-12)
    assert np.sum(residual <= 1e-12) >= 3  # (GMRES(12) stalls on one point)
    for n in np.flatnonzero(residual <= 1e-12):
        one = system.subset(np.array([n]))
        dense = np.stack([one.preconditioned(column[None])[0] for column in np.eye(size)], axis=1)
        exact = np.linalg.solve(dense, b[n])
        np.testing.assert_allclose(z[n], exact, rtol=0, atol=1e-9 * np.abs(exact).max())
    again, residual_again = solve(start=z)
    done = residual <= 1e-12
    np.testing.assert_allclose(again[done], z[done], rtol=0, atol=1e-11 * np.abs(z).max())
    assert np.all(residual_again[done] <= 1e-12)


def test_the_compiled_level_gmres_uses_a_start_and_edge_cases_as_the_batched_gmres():
    """A start after a short budget (3 vectors, one cycle: the iterate depends on how the start
    is scaled and used), a zero start next to a non-zero one (scaled by 0), and b = 0 (a NaN
    residual, not an error): ``krylov.level_gmres`` as the batched ``_gmres``."""
    from pyspb.backends.native import krylov

    basis = excitation_basis(3)
    Delta, J, chi, xi, gamma = native.in_units_of_gamma(*random_points(4, seed=9))
    xi = xi * 10
    ratios = native._perturbative_ratios(Delta, J, chi, xi, gamma, basis)
    system = native._GradedSystem(Delta, J, chi, xi, gamma, basis, ratios)
    size = basis.dim**2
    b = np.zeros((4, size))
    b[:3, 0] = 1.0  # the last point: b = 0
    start = np.random.default_rng(1).normal(size=(4, size)) * 0.1
    start[1] = 0.0
    fixed = (system.starts, system.row_offset, *system.operators)
    z, residual = np.full_like(b, np.nan), np.full(4, np.nan)
    krylov.level_gmres(b, start, True, 1e-12, 3, 1, *system.point_data(), *fixed, z, residual)
    with np.errstate(all="ignore"):
        batched, batched_residual = native._gmres(
            lambda v, active: system.subset(active).preconditioned(v), b, 1e-12, 3, 1, x0=start
        )
    np.testing.assert_allclose(z[:3], batched[:3], rtol=0, atol=1e-12 * np.abs(batched[:3]).max())
    np.testing.assert_allclose(residual[:3], batched_residual[:3], rtol=1e-9)
    assert np.all(residual[:3] > 1e-6)  # three vectors are far from enough: the start matters
    assert np.isnan(residual[3]) and np.isnan(batched_residual[3])


def _matrix_operator(matrices):
    return lambda x, active: np.einsum("nij,nj->ni", matrices[active], x)


def test_gmres_solves_each_point_of_a_batch_and_a_start_only_helps():
    """Batched GMRES against numpy's dense solve; a good start saves iterations, a bad one
    (scaled away) costs at most the one extra product."""
    rng = np.random.default_rng(2)
    n, D = 5, 60
    A = np.eye(D)[None] + 0.3 * rng.normal(size=(n, D, D)) / np.sqrt(D) * np.linspace(0.5, 2.5, n)[:, None, None]
    b = rng.normal(size=(n, D))
    exact = np.linalg.solve(A, b[..., None])[..., 0]
    counts = []

    def counted(x, active):
        counts.append(active.size)
        return _matrix_operator(A)(x, active)

    def solve(x0=None):
        counts.clear()
        x, residual = native._gmres(counted, b, 1e-12, 40, 5, x0=x0)
        np.testing.assert_allclose(x, exact, rtol=0, atol=1e-9)
        assert np.all(residual <= 1e-12)
        return sum(counts)

    from_zero = solve()
    # half the digits already there: about half the iterations
    assert solve(x0=exact * (1 + 1e-6 * rng.normal(size=exact.shape))) < 0.7 * from_zero
    assert solve(x0=1e6 * rng.normal(size=exact.shape)) <= from_zero + n


def test_points_leave_gmres_when_they_converge():
    """A point that converges early stops costing products (the others go on)."""
    rng = np.random.default_rng(3)
    D = 40
    easy = np.eye(D) + 1e-3 * rng.normal(size=(D, D))
    hard = np.eye(D) + 0.9 * rng.normal(size=(D, D)) / np.sqrt(D)
    A = np.stack([easy, hard])
    b = rng.normal(size=(2, D))
    sizes = []
    x, _ = native._gmres(lambda x, active: sizes.append(active.size) or _matrix_operator(A)(x, active), b, 1e-12, 40, 5)
    np.testing.assert_allclose(x, np.linalg.solve(A, b[..., None])[..., 0], rtol=0, atol=1e-9)
    assert sizes.count(1) > sizes.count(2)  # most products were for the hard point alone


def test_points_the_level_preconditioner_leaves_are_solved_with_the_no_jump_inverse(monkeypatch):
    """A point whose level-preconditioned GMRES does not converge (here: no cycles at all) must go
    on with S^-1 as preconditioner (eigen-decomposition of H_eff) and give the exact state without
    the sparse LU; and S^-1 is only a preconditioner there (L is applied explicitly), so spoiling
    it by 1e-6 must not change the answer."""
    rows = [HARD_REGIMES[0], HARD_REGIMES[1]]
    points = [np.array(column) for column in zip(*(row[1:] for row in rows), strict=True)] + [np.ones(2)]
    monkeypatch.setattr(gauss_seidel, "MAX_SWEEPS", 0)  # the Krylov path, not the level sweeps
    exact = populations(*points, cutoff=4)
    calls = []
    monkeypatch.setattr(native, "_sparse_lu_point", lambda *args: calls.append(args))
    monkeypatch.setattr(native, "LEVEL_RESTARTS", 0)
    monkeypatch.setattr(native, "REFINE_MARGIN", np.inf)  # every answer refined
    inverse = native._GradedSystem.no_jump_inverse
    used = []
    monkeypatch.setattr(
        native._GradedSystem, "no_jump_inverse", lambda self, y: used.append(1) or inverse(self, y) * (1 + 1e-6)
    )
    solve, reductions = native._solve_graded, []

    def recording(system, b, tolerance, start=None, restarts=1):
        x, reduction = solve(system, b, tolerance, start, restarts)
        if tolerance == native.REFINEMENT_TOLERANCE:
            reductions.extend(reduction)
        return x, reduction

    monkeypatch.setattr(native, "_solve_graded", recording)
    spoiled = populations(*points, cutoff=4, threads=1)
    assert calls == [] and used
    # both answers refined (their remainders shrank), with the spoiled S^-1
    assert len(reductions) == 2 and max(reductions) < 1
    np.testing.assert_allclose(spoiled, exact, rtol=1e-8, atol=1e-15)


def test_an_empty_level_graded_far_too_small_does_not_pass_for_converged():
    """J ~ 1e-244 at cutoff 2: the ccw mode is empty, so the 3- and 4-photon levels are rounding
    noise; the refined weights of the second pass grade them by ~1e-9 and 1e-120, where GMRES's
    answer has huge components that dominate the Liouvillian's own residual scale.  GMRES's
    residual of the vacuum-fixed system must reject it (found by hypothesis; the sparse LU
    solves the point), giving a stationary state."""
    Delta, chi, xi, gamma = 0.8826861662540759, 0.02239738277039543, 0.8826861662540759, 1.0
    J = 4.5796745124482384e-244 + 1.025898780825406e-245j
    args = [np.array([v]) for v in (Delta, J, chi, xi, gamma)]
    rho = native.steady_state_density_matrices(*args, cutoff=2)[0]
    assert_stationary_density_matrix(rho, Delta, J, chi, xi, gamma, 2)


@pytest.mark.slow
def test_every_reported_number_of_random_hard_points_is_exact(monkeypatch):
    """150 random points (Delta in +-8, |J| 1e-3..10, chi up to 500, xi 1e-3..10 gamma; cutoff 4)
    on the Krylov path: every N, g2, g3, g4 the resolution rule reports agrees with a dense LU
    refined in long double to 1e-6.  (A level-preconditioned GMRES that met the same residual
    tolerance erred by 1.2e-5 on g4_ccw at xi = 2.6 gamma here; so did the detuning-only
    resolution rule, by 1.5e-4, at chi ~ 150 gamma.)"""
    from reference import refined_populations

    from pyspb.observables import resolution

    monkeypatch.setattr(gauss_seidel, "MAX_SWEEPS", 0)  # the Krylov path, not the level sweeps
    rng = np.random.default_rng(0)
    n = 150
    Delta = rng.uniform(-8, 8, n)
    J = 10 ** rng.uniform(-3, 1, n) * np.exp(1j * rng.uniform(0, 2 * np.pi, n))
    chi = np.where(rng.random(n) < 0.2, 10 ** rng.uniform(1, 2.7, n), rng.uniform(-3, 5, n))
    xi = 10 ** rng.uniform(-3, 1, n)
    gamma = np.ones(n)
    P = native.steady_state_populations(Delta, J, chi, xi, gamma, cutoff=4)
    exact = np.array([refined_populations(*point, cutoff=4) for point in zip(Delta, J, chi, xi, gamma, strict=True)])
    ours, reference = correlations(P, resolution(Delta, gamma, chi)), correlations(exact, 0.0)
    reported = 0
    for name, values in ours.items():
        finite = np.isfinite(values)
        reported += int(finite.sum())
        np.testing.assert_allclose(values[finite], reference[name][finite], rtol=1e-6, err_msg=name)
    assert reported > 0.8 * n * len(ours)  # the rule leaves most numbers reported (85 %)


@pytest.fixture
def decompositions(monkeypatch):
    """The Krylov path (no level sweeps), and a list that grows by one per no-jump decomposition."""
    monkeypatch.setattr(gauss_seidel, "MAX_SWEEPS", 0)
    calls = []
    decompose = native._GradedSystem.decompose
    monkeypatch.setattr(native._GradedSystem, "decompose", lambda self: calls.append(1) or decompose(self))
    return calls


def assert_reported_numbers_match_refined_lu(point, P, cutoff):
    """Every N, g2, g3, g4 the resolution rule reports for ``P`` (populations of ``point``) within
    1e-6 of a long-double-refined dense LU, g2_ccw among them."""
    from reference import refined_populations

    from pyspb.observables import resolution

    exact = refined_populations(*point, cutoff=cutoff)[None]
    Delta, _, chi, _, gamma = (np.array([value]) for value in point)
    ours, reference = correlations(P, resolution(Delta, gamma, chi)), correlations(exact, 0.0)
    assert np.isfinite(ours["g2_ccw"][0])  # reported
    for name, values in ours.items():
        finite = np.isfinite(values)
        np.testing.assert_allclose(values[finite], reference[name][finite], rtol=1e-6, err_msg=name)


def test_a_point_solved_with_the_no_jump_inverse_is_refined_with_it(decompositions):
    """Strong drive (xi = 6.7 gamma) with a nearly empty ccw mode (its <n^2> is 2.4e-10 of the
    total's): the level preconditioner leaves the point to the no-jump inverse, and the refinement
    step must use that one too (with the level preconditioner it reduced the remainder only
    0.58x and g2_ccw stayed 1.6e-6 off).  Every reported number against a long-double-refined
    dense LU to 1e-6."""
    point = (
        -4.6418155880255,
        -0.001520096477735044 + 0.004055657603474096j,
        0.6917270925972643,
        6.676620647954336,
        1.0,
    )
    P = native.steady_state_populations(*[np.array([value]) for value in point], cutoff=4)
    assert decompositions  # the no-jump inverse was used
    assert_reported_numbers_match_refined_lu(point, P, cutoff=4)


def test_a_level_solved_point_is_refined_to_the_last_digits(decompositions):
    """Strong drive (xi = 2.5 gamma) on a nearly linear resonator (chi = -0.007 gamma) with a
    nearly empty ccw mode (|J| = 0.003 gamma): the level preconditioner solves the point, and
    the refinement must reach the remainder's rounding floor.  One refinement step to 1e-2 of
    the remainder (1.5e-11 -> 1.3e-13, where the floor is ~2e-15) left g2_ccw 6.7e-6 off (2.2e-6
    with the Gram-Schmidt sums in BLAS's order instead); every reported number against a
    long-double-refined dense LU to 1e-6."""
    point = (
        -0.004916151488053799,
        -0.000971681591658456 - 0.002464394297167871j,
        -0.006654922513543049,
        2.501694776275373,
        1.0,
    )
    P = native.steady_state_populations(*[np.array([value]) for value in point], cutoff=4)
    assert not decompositions  # the level preconditioner solved it
    assert_reported_numbers_match_refined_lu(point, P, cutoff=4)


@pytest.mark.slow
def test_a_first_guess_on_the_wrong_scale_is_regraded_before_the_no_jump_inverse(monkeypatch, decompositions):
    """Strong drive at cutoff 20: the first pass (weak-drive weights, vacuum equation weighted 1
    where the Liouvillian's terms are ~2e7) leaves the level GMRES short of the tolerance.  The
    next pass, with the measured weight, solves it with the level preconditioner; the no-jump
    inverse (O(d^3) per iteration) had taken 39 s there without converging and must not run."""
    lu = []
    monkeypatch.setattr(native, "_sparse_lu_point", lambda *args: lu.append(args))
    point = (0.0, 0.6 + 0.2j, 0.3, 1.5, 1.0)
    rho = native.steady_state_density_matrices(*[np.array([value]) for value in point], cutoff=20)[0]
    assert not decompositions and not lu
    assert_stationary_density_matrix(rho, *point, 20)


def test_the_no_jump_answer_replaces_the_level_answer_only_where_better():
    """Level answers, all not accepted: NaN residual (no cycles), an accepted no-jump answer with a
    larger residual than a level answer rejected on GMRES's own residual, a worse no-jump
    answer (cutoff 20: 3.3e-10 against 1.04e-12), a better one, and a NaN no-jump answer."""
    residual = np.array([np.nan, 1e-13, 1.04e-12, 1e-9, 1e-9])
    residual_again = np.array([1e-14, 5e-13, 3.3e-10, 1e-11, np.nan])
    accepted_again = np.array([True, True, False, False, False])
    better = native._better(residual, residual_again, accepted_again)
    np.testing.assert_array_equal(better, [True, True, False, True, False])
    solved = np.array([1e-13, 1e-9, np.nan])
    np.testing.assert_array_equal(
        native._accepted(np.array([1e-11, 1e-13, 1e-13]), solved, 1e-12), [True, False, False]
    )


def test_only_points_near_the_resolution_are_refined(monkeypatch):
    """The refinement corrects last digits that only the moments of a nearly empty mode need: the
    Kerr side (both modes populated, ccw ~7 % of cw) and the power scan's strong drive (13 %)
    skip it, a point whose ccw mode holds 1.2e-6 of the cw photons (J = 1e-3 gamma) takes it."""
    monkeypatch.setattr(gauss_seidel, "MAX_SWEEPS", 0)  # the Krylov path, not the level sweeps
    refine, refined = native._refine, []
    monkeypatch.setattr(native, "_refine", lambda system, x, b: refined.append(x.shape[0]) or refine(system, x, b))
    for point, expected in (
        ((-2.0, 0.3, 0.4, 1.0, 1.0), 0),
        ((0.0, 0.6 + 0.2j, 2.0, 2.0, 1.0), 0),
        ((0.0, 1e-3, 2.0, 1.0, 1.0), 1),
    ):
        refined.clear()
        native.steady_state_populations(*[np.array([value]) for value in point], cutoff=4)
        assert sum(refined) == expected, point
