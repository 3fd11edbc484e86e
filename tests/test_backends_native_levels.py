import subprocess
import sys

import numpy as np
import pytest
from reference import qutip_model, random_points

from pyspb.backends import native
from pyspb.backends.native import gauss_seidel
from pyspb.backends.native.levels import SCALAR_SLOTS, LevelSweeps, level_operators
from pyspb.model import excitation_basis


def frame_liouvillian(Delta, J, chi, xi, cutoff):
    """QuTiP's Liouvillian (units of gamma) acting on x, the density matrix of the sweeps' frame.

    The sweeps work on ``x`` with ``rho = W x W^dagger`` (Fock basis), ``W = U G``: ``U`` the
    excitation basis with the phase of J (:func:`pyspb.backends.native.fock_from_excitation`),
    ``G = exp(-i arg(J) K)`` the gauge.  Returns the matrix on row-major ``x`` and the drive's
    left action ``x -> H_drive x`` in the same frame.
    """
    qutip = pytest.importorskip("qutip")
    H, c_ops, a1, _ = qutip_model(Delta, J, chi, xi, 1.0, cutoff)
    L = qutip.liouvillian(H, c_ops).full()  # on column-stacked rho
    basis = excitation_basis(cutoff)
    phase = np.exp(-1j * np.angle(J)) if J != 0 else 1.0
    W = native.fock_from_excitation(basis, np.array([J]))[0] * phase ** basis.K[None, :]
    d = W.shape[0]
    M = np.empty((d * d, d * d), dtype=complex)
    drive = np.empty_like(M)
    H_drive = W.conj().T @ (xi * (a1 + a1.dag())).full() @ W
    for column in range(d * d):
        x = np.zeros(d * d, dtype=complex)
        x[column] = 1.0
        x = x.reshape(d, d)
        rho = W @ x @ W.conj().T
        M[:, column] = (W.conj().T @ (L @ rho.ravel(order="F")).reshape(d, d, order="F") @ W).ravel()
        drive[:, column] = (H_drive @ x).ravel()
    return M, drive


@pytest.mark.parametrize("cutoff", [2, 3])
@pytest.mark.parametrize("npts", [SCALAR_SLOTS, SCALAR_SLOTS + 1])
def test_a_level_sweep_is_gauss_seidel_by_level_of_qutips_liouvillian(cutoff, npts):
    """One compiled sweep from random Hermitian states equals a dense block Gauss-Seidel step
    (levels s = K + K' in turn, each level's equations solved exactly, vacuum fixed) on
    QuTiP's Liouvillian in the same frame, and measures what it should on the populations;
    with the sparse products slot by slot (up to SCALAR_SLOTS points) and by lane (more)."""
    points = native.in_units_of_gamma(*random_points(npts, seed=70 + cutoff))
    Delta, J, chi, xi = points[:4]
    ops = level_operators(cutoff)
    d, levels = ops.dim, ops.levels
    rng = np.random.default_rng(cutoff)
    sweeps = LevelSweeps(ops.basis, Delta.size)
    slots = np.arange(Delta.size)
    sweeps.fill(slots, slots, Delta, J, chi, xi)
    start = []
    for n in slots:
        x = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
        x = x + x.conj().T
        x[0, 0] = 1.0
        start.append(x.ravel())
        sweeps.x[:, n] = x.ravel()[ops.order]
    change, norm, terms = sweeps.sweep()
    for n in slots:
        M, drive = frame_liouvillian(Delta[n], J[n], chi[n], xi[n], cutoff)
        x = start[n].copy()
        level = (ops.basis.K[:, None] + ops.basis.K[None, :]).ravel()
        population = (ops.basis.K[:, None] == ops.basis.K[None, :]).ravel()
        expected = np.zeros((3, (levels + 1) // 2))
        for s in range(1, levels):
            rows, rest = np.flatnonzero(level == s), np.flatnonzero(level != s)
            new = np.linalg.solve(M[np.ix_(rows, rows)], -M[np.ix_(rows, rest)] @ x[rest])
            inside = population[rows]
            D = np.diag(M[np.ix_(rows, rows)])[inside]
            left = (drive[rows] @ x)[inside] / D
            expected[:, s // 2] += [
                np.sum(np.abs(x[rows][inside] - new[inside]) ** 2) if s % 2 == 0 else 0.0,
                np.sum(np.abs(new[inside]) ** 2) if s % 2 == 0 else 0.0,
                4 * np.sum(np.abs(left) ** 2) if s % 2 == 0 else 0.0,
            ]
            x[rows] = new
        np.testing.assert_allclose(sweeps.x[:, n], x[ops.order], rtol=0, atol=1e-12 * np.abs(x).max())
        for ours, theirs in zip((change, norm, terms), expected, strict=True):
            np.testing.assert_allclose(ours[:, n], theirs, rtol=1e-10, atol=1e-14 * theirs.max())


def test_the_convergence_rules():
    """Each documented rule of gauss_seidel._judge on one slot of its own (FIRST_CHECK = 2)."""
    judge = gauss_seidel.judge_kernel()
    rules = (2, 0.5, 40, 4)
    photons = 6
    # slots: converged by the estimate, at the rounding floor, slow, not finite, out of sweeps,
    # too early to check, empty
    relative = np.array([1e-13, 1e-13, 1e-3, np.nan, 1e-3, 1e-13, 1e-13])
    previous = np.array([1e-11, 5e-13, 1.5e-3, 1e-3, 1e-2, 1e-11, 1e-11])
    ratio = np.array([0.1, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1])
    sweeps = np.array([5, 5, 6, 5, 40, 2, 5])
    index = np.array([0, 1, 2, 3, 4, 5, -1])
    change = np.zeros((photons, relative.size))
    change[2] = relative**2  # the largest relative change is at K = 2
    norm = np.ones((photons, relative.size))
    terms = np.zeros((photons, relative.size))
    status = np.zeros(relative.size, dtype=np.int8)
    judge(change, norm, terms, index, sweeps, previous, ratio, 1e-12, rules, status)
    assert status.tolist() == [1, 1, 2, 2, 2, 0, 0]
    np.testing.assert_allclose(previous[:3], relative[:3])  # kept for the next sweep
    np.testing.assert_allclose(ratio[:3], [1e-2, 0.2, 1 / 1.5])
    assert previous[3] == np.inf  # not finite: reported as inf


def test_small_calls_split_over_workers_give_the_same_states():
    """12 points in one worker or split over two (each its own compiled sweeps): same populations."""
    points = random_points(12, seed=80)
    one = native.steady_state_populations(*points, cutoff=5, threads=1)
    two = native.steady_state_populations(*points, cutoff=5, threads=2)
    np.testing.assert_allclose(two, one, rtol=1e-12, atol=1e-15)


def test_importing_pyspb_does_not_import_numba():
    """The kernels compile on the first solve, not at import (numba's import alone takes ~0.4 s)."""
    code = "import sys, pyspb; assert 'numba' not in sys.modules, 'numba imported by import pyspb'"
    subprocess.run([sys.executable, "-c", code], check=True)
