import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import assert_stationary_density_matrix, model_strategies, qutip_state, random_points

import pyspb
from pyspb.backends import native
from pyspb.backends.native import gauss_seidel
from pyspb.grid import flatten_inputs
from pyspb.model import excitation_basis


def sweep(points, cutoff, tolerance=1e-12):
    """Trace-1 states from the level sweeps alone, in the Fock basis, and the converged mask."""
    Delta, J, chi, xi, gamma = native.in_units_of_gamma(*points)
    basis = excitation_basis(cutoff)
    rho, converged = gauss_seidel.steady_states(Delta, J, chi, xi, basis, tolerance)
    rho = rho / np.einsum("nkk->n", rho).real[:, None, None]
    U = native.fock_from_excitation(basis, J)
    return U @ rho @ np.conj(np.swapaxes(U, 1, 2)), converged


def device_points(**coords):
    _, flat = flatten_inputs(pyspb.Device().rates(**coords)[["Delta", "J_re", "J_im", "chi", "xi", "gamma"]])
    return [flat[name] for name in ("Delta", "J", "chi", "xi", "gamma")]


def krylov_only(monkeypatch):
    monkeypatch.setattr(gauss_seidel, "MAX_SWEEPS", 0)


@pytest.mark.parametrize(
    ("cutoff", "layout"), [(2, "levels"), (3, "levels"), (5, "levels"), (2, "blocks"), (3, "blocks")]
)
def test_sweeps_match_qutip_on_random_points(monkeypatch, cutoff, layout):
    if layout == "blocks":  # the layout of cutoffs above LEVEL_SWEEP_MAX_CUTOFF
        monkeypatch.setattr(gauss_seidel, "LEVEL_SWEEP_MAX_CUTOFF", 0)
    points = random_points(6, seed=10 + cutoff)
    rho, converged = sweep(points, cutoff)
    assert converged.sum() >= 3  # random points include strong drives the sweeps leave alone
    for k in np.flatnonzero(converged):
        reference = qutip_state(*(p[k] for p in points), cutoff)
        np.testing.assert_allclose(rho[k], reference, atol=1e-10, rtol=0)


@pytest.mark.parametrize(
    "coords",
    [
        {"r": np.linspace(0.2, 0.6, 5), "phi": np.linspace(0.0, 1.1, 7)},  # Fig. 4(a)
        {"r": 0.1, "phi": np.linspace(0.0, 1.1, 6)},  # tip close: large loss
        {"chi3": 1.8e-15, "phi": np.linspace(0.0, 1.1, 6)},  # chi ~ 500 gamma
        {"tip": False, "Pin": np.geomspace(4e-18, 4e-14, 5)},
    ],
    ids=["fig4a", "tip-close", "huge-kerr", "no-tip-power"],
)
def test_sweeps_agree_with_the_krylov_solver_to_relative_accuracy(monkeypatch, coords):
    """Every photon-number level, including 4-photon populations ~1e-13, to 1e-9 relative."""
    points = device_points(**coords)
    basis = excitation_basis(6)
    rho, converged = sweep(points, 6)
    assert converged.all()
    krylov_only(monkeypatch)
    reference = native.steady_state_density_matrices(*points, cutoff=6)
    np.testing.assert_allclose(rho, reference, atol=1e-12, rtol=0)  # the tolerance of both
    levels = basis.K.max() + 1
    n_total = np.add.outer(np.arange(7), np.arange(7)).ravel()
    for k in range(len(points[0])):
        for K in range(5):
            mine = np.real(np.diag(rho[k]))[n_total == K].sum()
            theirs = np.real(np.diag(reference[k]))[n_total == K].sum()
            assert abs(mine - theirs) <= 1e-9 * theirs, (k, K, mine, theirs)
    assert levels == 13


def test_strong_drive_is_left_to_the_krylov_solver_and_still_right():
    points = device_points(Pin=np.array([4e-15, 4e-11]))  # the paper's power and 1e4 times it
    _, converged = sweep(points, 4)
    assert converged.tolist() == [True, False]
    P = native.steady_state_populations(*points, cutoff=4)
    reference = np.real(np.diag(qutip_state(*(p[1] for p in points), cutoff=4)))
    np.testing.assert_allclose(P[1].ravel(), reference, atol=1e-10)


def test_underflowing_levels_are_left_to_the_krylov_solver():
    """A drive of 1e-40 gamma: the sweeps would underflow; the answer is still linear response."""
    Delta, J, chi, gamma = (np.array([v, v]) for v in (0.0, 0.3 + 0.1j, 2.0, 1.0))
    xi = np.array([1e-40, 1e-6])
    basis = excitation_basis(5)
    ratios = native._perturbative_ratios(Delta, J, chi, xi, gamma, basis)
    assert gauss_seidel.underflows(ratios).tolist() == [True, False]
    P = native.steady_state_populations(Delta, J, chi, xi, gamma, cutoff=5)
    assert P[0, 0, 0] == pytest.approx(1.0)
    # one photon in either mode scales as xi^2
    np.testing.assert_allclose(P[0, 1, 0] / 1e-80, P[1, 1, 0] / 1e-12, rtol=1e-5)
    np.testing.assert_allclose(P[0, 0, 1] / 1e-80, P[1, 0, 1] / 1e-12, rtol=1e-5)


def test_no_point_is_returned_unconverged(monkeypatch):
    """With too few sweeps allowed, nothing is reported converged."""
    monkeypatch.setattr(gauss_seidel, "MAX_SWEEPS", 3)
    _, converged = sweep(device_points(phi=np.linspace(0.0, 1.1, 8)), 5)
    assert not converged.any()


def test_refilled_slots_give_the_same_states():
    """Points entering freed slots mid-run (batch of 3 for 20 points) start clean."""
    Delta, J, chi, xi, _ = native.in_units_of_gamma(*device_points(phi=np.linspace(0.0, 1.1, 20)))
    basis = excitation_basis(4)
    together = {}
    for index, states, converged in gauss_seidel.sweep_steady_states(Delta, J, chi, xi, basis, 1e-12, batch=64):
        together.update({i: s for i, s, c in zip(index, states, converged, strict=False) if c})
    apart = {}
    for index, states, converged in gauss_seidel.sweep_steady_states(Delta, J, chi, xi, basis, 1e-12, batch=3):
        apart.update({i: s for i, s, c in zip(index, states, converged, strict=False) if c})
    assert sorted(together) == sorted(apart) == list(range(20))
    for i in range(20):
        np.testing.assert_allclose(apart[i], together[i], atol=1e-13, rtol=0)


@settings(max_examples=int(os.environ.get("PYSPB_HYPOTHESIS_EXAMPLES", "25")), deadline=None)
@given(**model_strategies(), xi=st.floats(1e-4, 1.2))
def test_what_the_sweeps_accept_is_the_steady_state(Delta, J_abs, J_arg, chi, xi, cutoff):
    """Whenever the sweeps report convergence, the state is stationary and a density matrix."""
    J = J_abs * np.exp(1j * J_arg)
    rho, converged = sweep([np.array([v]) for v in (Delta, J, chi, xi, 1.0)], cutoff)
    if not converged[0]:
        return
    assert_stationary_density_matrix(rho[0], Delta, J, chi, xi, 1.0, cutoff)


@pytest.mark.parametrize("cutoff", [1, 4, 6])
@pytest.mark.parametrize("npts", [2, 5])
def test_level_sweeps_repeat_the_block_sweeps(cutoff, npts):
    """The level-by-level layout (few points: its kernel with the products slot by slot, and by
    lane) performs the same iteration as the block layout."""
    from pyspb.backends.native.levels import LevelSweeps

    Delta, J, chi, xi, _ = native.in_units_of_gamma(*random_points(npts, seed=40 + cutoff))
    basis = excitation_basis(cutoff)
    slots = np.arange(npts)
    level, block = LevelSweeps(basis, npts), gauss_seidel._Sweeps(basis, npts)
    for sweeps in (level, block):
        sweeps.fill(slots, slots, Delta, J, chi, xi)
    for _ in range(4):
        level_sums, block_sums = level.sweep(), block.sweep()
        # each relative to the scale the convergence measure uses (photon numbers above
        # REFERENCE_PHOTONS on the reference's scale), to rounding: far below the tolerance 1e-12
        scale = np.maximum(block_sums[1], block_sums[2])
        reference = min(gauss_seidel.REFERENCE_PHOTONS, scale.shape[0] - 1)
        scale[reference + 1 :] = np.maximum(scale[reference + 1 :], scale[reference])
        scale[scale == 0] = 1.0
        for ours, theirs in zip(level_sums, block_sums, strict=True):
            np.testing.assert_allclose(np.sqrt(ours / scale), np.sqrt(theirs / scale), rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(level.states(slots), block.states(slots), rtol=0, atol=1e-13)
