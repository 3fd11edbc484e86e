"""Independent references for the tests: QuTiP and the exact single-mode Kerr solution."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest


def qutip_operators(cutoff):
    """QuTiP annihilation operators ``(a1, a2)`` of the cw and ccw modes.

    The basis order is QuTiP's tensor(cw, ccw), i.e. index n_cw * (cutoff + 1) + n_ccw,
    the same as pyspb's.
    """
    qutip = pytest.importorskip("qutip")

    a = qutip.destroy(cutoff + 1)
    eye = qutip.qeye(cutoff + 1)
    return qutip.tensor(a, eye), qutip.tensor(eye, a)


def qutip_hamiltonian(a1, a2, Delta, J, chi, xi):
    """The Hamiltonian of docs/model.md, section 1 written in QuTiP."""
    n1, n2 = a1.dag() * a1, a2.dag() * a2
    return (
        Delta * (n1 + n2)
        + J * a1.dag() * a2
        + np.conj(J) * a2.dag() * a1
        + chi * (a1.dag() * a1.dag() * a1 * a1 + a2.dag() * a2.dag() * a2 * a2)
        + 2 * chi * n1 * n2
        + xi * (a1.dag() + a1)
    )


def qutip_model(Delta, J, chi, xi, gamma, cutoff):
    """The model in QuTiP: ``(H, c_ops, a1, a2)``."""
    a1, a2 = qutip_operators(cutoff)
    H = qutip_hamiltonian(a1, a2, Delta, J, chi, xi)
    return H, [np.sqrt(gamma) * a1, np.sqrt(gamma) * a2], a1, a2


def qutip_state(Delta, J, chi, xi, gamma, cutoff):
    """Steady state from QuTiP 5 (method "direct"), as a dense Fock-basis matrix."""
    qutip = pytest.importorskip("qutip")

    H, c_ops, _, _ = qutip_model(Delta, J, chi, xi, gamma, cutoff)
    return qutip.steadystate(H, c_ops, method="direct").full()


def kerr_moments(Delta, chi, xi, gamma, orders=4, dps=40):
    """Exact <a^dagger^j a^j>, j = 1..orders, of the driven single-mode Kerr oscillator.

    H = Delta a^dagger a + chi a^dagger^2 a^2 + xi (a^dagger + a), loss rate gamma, in the
    limit of no truncation (Drummond and Walls, J. Phys. A 13, 725 (1980)):
    <a^dagger^j a^j> = |xi/chi|^(2j) |Gamma(c)|^2 / |Gamma(c + j)|^2
                       0F2(c + j, c* + j; 2 |xi/chi|^2) / 0F2(c, c*; 2 |xi/chi|^2),
    with c = (Delta - i gamma / 2) / chi.  Evaluated with mpmath at ``dps`` digits.
    """
    with mpmath.workdps(dps):
        c = mpmath.mpc(Delta, -gamma / 2) / chi
        ratio = abs(mpmath.mpf(xi) / chi) ** 2
        x = 2 * ratio
        base = mpmath.hyper([], [c, mpmath.conj(c)], x)
        moments = []
        for j in range(1, orders + 1):
            value = (
                ratio**j
                * abs(mpmath.gamma(c)) ** 2
                / abs(mpmath.gamma(c + j)) ** 2
                * mpmath.hyper([], [c + j, mpmath.conj(c + j)], x)
                / base
            )
            moments.append(float(mpmath.re(value)))
    return np.array(moments)


def paper_points():
    """A few points of the paper's device (ideal, no tip, tip at (0.35, 0.27) um)."""
    import pyspb

    dev = pyspb.Device()
    return {
        "ideal": dev.rates(J0=0.0, tip=False),
        "no_tip": dev.rates(tip=False),
        "tip": dev.rates(),
    }


def random_points(n, seed):
    """n random model points (Delta, J, chi, xi, gamma) spanning weak to strong drive and coupling."""
    rng = np.random.default_rng(seed)
    gamma = rng.uniform(0.2, 2.0, n)
    return (
        rng.uniform(-2, 2, n) * gamma,
        (rng.uniform(0, 1.5, n) * np.exp(2j * np.pi * rng.uniform(size=n))) * gamma,
        rng.uniform(0.05, 5, n) * gamma,
        rng.uniform(0.01, 0.6, n) * gamma,
        gamma,
    )


def assert_stationary_density_matrix(rho, Delta, J, chi, xi, gamma, cutoff):
    """Trace 1, Hermitian, positive semidefinite, and L rho = 0 to rounding (Fock basis)."""
    from pyspb.model import liouvillian

    assert abs(np.trace(rho) - 1) < 1e-12
    np.testing.assert_allclose(rho, rho.conj().T, atol=1e-12)
    assert np.linalg.eigvalsh(0.5 * (rho + rho.conj().T)).min() > -1e-12
    L = liouvillian(Delta, J, chi, xi, gamma, cutoff)
    assert np.abs(L @ rho.ravel()).max() < 1e-10 * max(1.0, abs(Delta), abs(chi), xi, gamma, abs(J))


def refined_steady_state(Delta, J, chi, xi, gamma, cutoff, refinements=3):
    """The Fock-basis steady state by a dense LU of the Liouvillian (vacuum equation replaced by
    the trace), refined with residuals in long double: independent of the native engine's
    excitation basis, grading and Krylov solver, and accurate below double rounding."""
    import scipy.linalg

    from pyspb.model import liouvillian

    d = (cutoff + 1) ** 2
    A = liouvillian(Delta, J, chi, xi, gamma, cutoff).toarray()
    A[0, :] = 0.0
    A[0, np.arange(d) * (d + 1)] = 1.0
    b = np.zeros(d * d, dtype=complex)
    b[0] = 1.0
    factors = scipy.linalg.lu_factor(A)
    A_long, b_long = A.astype(np.clongdouble), b.astype(np.clongdouble)
    x = scipy.linalg.lu_solve(factors, b).astype(np.clongdouble)
    for _ in range(refinements):
        x += scipy.linalg.lu_solve(factors, (b_long - A_long @ x).astype(complex))
    rho = x.reshape(d, d)
    return (rho / np.trace(rho)).astype(complex)


def refined_populations(Delta, J, chi, xi, gamma, cutoff):
    """``P(n_cw, n_ccw)`` of :func:`refined_steady_state`."""
    rho = refined_steady_state(Delta, J, chi, xi, gamma, cutoff)
    return np.diag(rho).real.reshape(cutoff + 1, cutoff + 1)


def model_strategies():
    """Hypothesis strategies of the model inputs shared by the invariant tests (gamma = 1 scale)."""
    from hypothesis import strategies as st

    return {
        "Delta": st.floats(-3, 3),
        "J_abs": st.floats(0, 2),
        "J_arg": st.floats(0, 2 * np.pi),
        "chi": st.floats(-3, 5),
        "cutoff": st.integers(1, 4),
    }
