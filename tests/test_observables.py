import math

import numpy as np
import pytest

from pyspb.observables import correlations, factorial_moments, truncation_error


def poisson(mean, levels):
    n = np.arange(levels)
    return np.array([math.exp(-mean) * mean**k / math.factorial(k) for k in n])


def test_factorial_moments_of_a_poisson_distribution_are_powers_of_the_mean():
    p = poisson(0.7, 40)[None, :]
    np.testing.assert_allclose(factorial_moments(p)[0], [0.7, 0.7**2, 0.7**3, 0.7**4], rtol=1e-12)


def test_correlations_of_a_product_of_coherent_and_fock_states():
    levels = 30
    P = np.outer(poisson(0.5, levels), np.eye(levels)[1])[None]  # cw coherent, ccw one photon
    out = correlations(P, resolution=0.0)  # exact P: a zero moment is a true zero
    for order in (2, 3, 4):
        assert out[f"g{order}_cw"][0] == pytest.approx(1.0, rel=1e-10)
        assert out[f"g{order}_ccw"][0] == 0.0  # a Fock state |1> has no photon pairs
    assert out["N_ccw"][0] == pytest.approx(1.0)


def test_empty_mode_gives_nan_not_noise():
    levels = 6
    P = np.zeros((1, levels, levels))
    P[0, :, 0] = poisson(0.2, levels) / poisson(0.2, levels).sum()
    P[0, 1, 1] = 1e-30  # rounding noise in the ccw mode
    out = correlations(P)
    assert np.isnan(out["g2_ccw"][0]) and np.isnan(out["g4_ccw"][0])
    assert np.isfinite(out["g2_cw"][0])


def test_moments_below_the_solver_resolution_give_nan():
    """A ccw moment far below the total's (the paper's tip point: g4_ccw) is not reported."""
    levels = 6
    cw = poisson(0.2, levels) / poisson(0.2, levels).sum()
    ccw = np.array([1.0, 1e-3, 1e-8, 1e-20, 1e-30, 0.0])
    P = np.outer(cw, ccw / ccw.sum())[None]
    out = correlations(P)
    # total photon number: <K(K-1)...> ~ 0.04, 0.008, 0.002 for n = 2, 3, 4
    assert np.isfinite(out["g2_ccw"][0])  # <a^2 a^2> = 2e-8: resolved
    assert np.isnan(out["g3_ccw"][0]) and np.isnan(out["g4_ccw"][0])  # 6e-20 and 2.4e-29
    for order in (2, 3, 4):
        assert np.isfinite(out[f"g{order}_cw"][0])
    # the same P read as exact keeps every number
    exact = correlations(P, resolution=0.0)
    assert all(np.isfinite(exact[f"g{order}_ccw"][0]) for order in (2, 3, 4))


def test_orders_above_the_cutoff_are_nan():
    P = np.zeros((1, 3, 3))
    P[0, 0, 0], P[0, 1, 0], P[0, 2, 0] = 0.7, 0.2, 0.1
    out = correlations(P)  # cutoff 2
    assert np.isfinite(out["g2_cw"][0])
    assert np.isnan(out["g3_cw"][0]) and np.isnan(out["g4_cw"][0])


def test_truncation_error_counts_the_top_levels_once():
    P = np.zeros((1, 3, 3))
    P[0, 2, 2] = 0.1
    P[0, 2, 0] = 0.2
    P[0, 0, 2] = 0.3
    P[0, 0, 0] = 0.4
    assert truncation_error(P)[0] == pytest.approx(0.6)
