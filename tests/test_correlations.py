import numpy as np
import pytest
import xarray as xr
from reference import qutip_model

import pyspb
from pyspb.correlations import g2_tau


def inputs():
    return pyspb.rate_grid(Delta=np.array([0.0, 0.3]), J_re=0.3, J_im=0.2, chi=1.2, xi=0.2, gamma=0.5)


def test_g2_tau_at_zero_delay_equals_g2_of_solve():
    out = g2_tau(inputs(), tau=[0.0, 1.0], cutoff=4)
    g2 = pyspb.solve(inputs(), cutoff=4).g2_cw
    np.testing.assert_allclose(out.g2_cw_tau.sel(tau=0.0), g2, rtol=1e-9)
    assert out.g2_cw_tau.dims == ("Delta", "tau")
    assert out.g2_cw_tau.attrs["units"] == "1" and out.tau.attrs["units"] == "1e-6 s"


def test_g2_tau_goes_to_one_at_long_delays():
    out = g2_tau(inputs(), tau=[200.0], cutoff=4)
    np.testing.assert_allclose(out.g2_cw_tau, 1.0, atol=1e-8)


def test_g2_tau_of_a_linear_cavity_is_one():
    linear = inputs().assign(chi=0.0)
    out = g2_tau(linear, tau=np.linspace(0, 5, 6), cutoff=10)
    np.testing.assert_allclose(out.g2_cw_tau, 1.0, atol=1e-7)
    # coupled coherent states stay uncorrelated: the ccw and cross correlations are 1 too,
    # and so is solve's zero-delay cross correlation (exact limit, independent of both engines)
    np.testing.assert_allclose(out.g2_ccw_tau, 1.0, atol=1e-7)
    np.testing.assert_allclose(out.g2_cross_tau, 1.0, atol=1e-7)
    np.testing.assert_allclose(pyspb.solve(linear, cutoff=10).g2_cross, 1.0, atol=1e-7)
    kerr = g2_tau(inputs(), tau=[0.0], cutoff=4)
    assert float(abs(kerr.g2_cross_tau - 1).max()) > 1e-2  # the check can fail


def test_unsorted_delays_are_returned_in_the_given_order():
    tau = np.array([2.0, 0.0, 1.0])
    out = g2_tau(inputs(), tau=tau, cutoff=3)
    ordered = g2_tau(inputs(), tau=np.sort(tau), cutoff=3)
    xr.testing.assert_allclose(out.g2_cw_tau.sortby("tau"), ordered.g2_cw_tau, rtol=1e-12)


def test_evenly_spaced_and_uneven_delays_agree():
    """Evenly spaced and uneven delays (different integration steps) give one answer."""
    even = np.linspace(0.5, 6.0, 12)  # starts after 0: a first step, then the interval
    uneven = np.sort(np.concatenate([even, [2.2, 0.1]]))
    a = g2_tau(inputs(), tau=even, cutoff=4).g2_cw_tau
    b = g2_tau(inputs(), tau=uneven, cutoff=4).g2_cw_tau.sel(tau=even)
    xr.testing.assert_allclose(a, b, rtol=1e-10)
    assert float(abs(a - 1).max()) > 1e-3  # not trivially flat


def test_g2_tau_matches_qutip():
    qutip = pytest.importorskip("qutip")
    cutoff, Delta, J, chi, xi, gamma = 4, 0.1, 0.3 + 0.2j, 1.2, 0.2, 0.5
    H, c_ops, a1, _ = qutip_model(Delta, J, chi, xi, gamma, cutoff)
    tau = np.linspace(0, 10, 41)
    options = {"nsteps": 10**6, "atol": 1e-12, "rtol": 1e-10}
    g2_q, _ = qutip.coherence_function_g2(H, None, tau, c_ops, a1, options=options)
    grid = pyspb.rate_grid(Delta=Delta, J_re=J.real, J_im=J.imag, chi=chi, xi=xi, gamma=gamma)
    ours = g2_tau(grid, tau, cutoff=cutoff).g2_cw_tau.values
    np.testing.assert_allclose(ours, np.real(g2_q), rtol=1e-6)


@pytest.mark.parametrize("tau, match", [([-1.0], ">= 0"), ([np.nan], "finite"), ([[1.0]], "1-d"), ([], "non-empty")])
def test_bad_delays(tau, match):
    with pytest.raises(ValueError, match=match):
        g2_tau(inputs(), tau=tau, cutoff=3)


def test_no_drive_is_refused():
    with pytest.raises(ValueError, match="xi = 0"):
        g2_tau(inputs().assign(xi=0.0), tau=[0.0], cutoff=3)


def test_paper_no_tip_cavity_long_delays():
    """The case where QuTiP's coherence_function_g2 stops at its default step limit."""
    inputs = pyspb.Device().rates(tip=False)
    out = g2_tau(inputs, tau=np.linspace(0, 200, 11), cutoff=5)
    values = out.g2_cw_tau.values
    assert values[0] == pytest.approx(float(pyspb.solve(inputs, cutoff=5).g2_cw), rel=1e-9)
    assert np.all(np.isfinite(values)) and abs(values[-1] - 1) < 1e-3


def test_paper_no_tip_cavity_matches_qutip_given_enough_steps():
    """The paper's bunched no-tip cavity (Fig. 1(b), blue): QuTiP with a tight ODE agrees to 1e-6."""
    qutip = pytest.importorskip("qutip")
    inputs = pyspb.Device().rates(tip=False)
    cutoff = 5
    J = float(inputs.J_re) + 1j * float(inputs.J_im)
    H, c_ops, a1, _ = qutip_model(
        float(inputs.Delta), J, float(inputs.chi), float(inputs.xi), float(inputs.gamma), cutoff
    )
    tau = np.linspace(0, 30, 31)
    options = {"nsteps": 10**6, "atol": 1e-12, "rtol": 1e-10}
    g2_q, _ = qutip.coherence_function_g2(H, None, tau, c_ops, a1, options=options)
    ours = g2_tau(inputs, tau, cutoff=cutoff).g2_cw_tau.values
    assert np.max(np.real(g2_q)) > 5  # the strongly bunched oscillation of the no-tip cavity
    np.testing.assert_allclose(ours, np.real(g2_q), rtol=1e-6)


def test_g2_tau_progress_bar(capsys):
    g2_tau(inputs(), tau=[0.0, 1.0], cutoff=3, progress=True)
    shown = capsys.readouterr().err
    assert "pyspb.g2_tau (native, cutoff 3)" in shown and "2/2" in shown
    g2_tau(inputs(), tau=[0.0, 1.0], cutoff=3)  # two points: no bar by default
    assert capsys.readouterr().err == ""


def test_ccw_and_cross_correlations_match_qutip():
    """g2_ccw_tau (coherence_function_g2 of a2) and g2_cross_tau (correlation_3op_1t) from QuTiP."""
    qutip = pytest.importorskip("qutip")
    cutoff, Delta, J, chi, xi, gamma = 3, 0.1, 0.3 + 0.2j, 1.2, 0.2, 0.5
    H, c_ops, a1, a2 = qutip_model(Delta, J, chi, xi, gamma, cutoff)
    tau = np.linspace(0, 8, 17)
    options = {"nsteps": 10**6, "atol": 1e-12, "rtol": 1e-10}
    g2_ccw, _ = qutip.coherence_function_g2(H, None, tau, c_ops, a2, options=options)
    rho = qutip.steadystate(H, c_ops)
    n1, n2 = qutip.expect(a1.dag() * a1, rho), qutip.expect(a2.dag() * a2, rho)
    G_cross = qutip.correlation_3op_1t(H, rho, tau, c_ops, a1.dag(), a2.dag() * a2, a1, options=options)
    grid = pyspb.rate_grid(Delta=Delta, J_re=J.real, J_im=J.imag, chi=chi, xi=xi, gamma=gamma)
    ours = g2_tau(grid, tau, cutoff=cutoff)
    np.testing.assert_allclose(ours.g2_ccw_tau.values, np.real(g2_ccw), rtol=1e-6)
    np.testing.assert_allclose(ours.g2_cross_tau.values, np.real(G_cross) / (n1 * n2), rtol=1e-6)
    assert float(abs(ours.g2_cross_tau - 1).max()) > 0.05  # correlated at short delays


def test_cross_correlation_at_zero_delay_is_solves_g2_cross():
    out = g2_tau(inputs(), tau=[0.0], cutoff=4)
    solved = pyspb.solve(inputs(), cutoff=4)
    np.testing.assert_allclose(out.g2_cross_tau.sel(tau=0.0), solved.g2_cross, rtol=1e-9)
    np.testing.assert_allclose(out.g2_ccw_tau.sel(tau=0.0), solved.g2_ccw, rtol=1e-9)
    assert solved.g2_cross.attrs["units"] == "1" and "NaN" in solved.g2_cross.attrs["comment"]


def test_empty_ccw_mode_gives_nan_with_a_reason():
    """J = 0: the ccw mode holds no photon, its g2 and the cross correlation are 0/0."""
    out = g2_tau(inputs().assign(J_re=0.0, J_im=0.0), tau=[0.0, 1.0], cutoff=3)
    assert np.all(np.isnan(out.g2_ccw_tau)) and np.all(np.isnan(out.g2_cross_tau))
    assert np.all(np.isfinite(out.g2_cw_tau))
    assert "empty" in out.g2_cross_tau.attrs["comment"]
    assert np.isnan(pyspb.solve(inputs().assign(J_re=0.0, J_im=0.0), cutoff=3).g2_cross).all()


def test_a_nearly_dark_mode_gives_nan_with_a_reason():
    """Detuned by 50 gamma: the ccw mode holds ~4e-5 of the cw photons, below DARK_MODE.

    Its correlations are below what the integrator controls (the bright mode's rounding
    dominates them; measured errors up to 8e-4 before they were NaN): NaN, and the comment says why.
    """
    dark = pyspb.rate_grid(Delta=50.0, J_re=0.3, J_im=0.0, chi=1.0, xi=0.5, gamma=1.0)
    solved = pyspb.solve(dark, cutoff=3)
    assert float(solved.N_ccw) < pyspb.observables.DARK_MODE * float(solved.N_cw)
    out = g2_tau(dark, tau=[0.0, 2.0, 7.3], cutoff=3)
    assert np.all(np.isnan(out.g2_ccw_tau)) and np.all(np.isnan(out.g2_cross_tau))
    assert np.all(np.isfinite(out.g2_cw_tau))
    assert "fewer than 0.001 of the other mode's photons" in out.g2_ccw_tau.attrs["comment"]


def test_grossly_truncated_points_and_cutoff_1_are_nan_as_in_solve():
    # review finding: g2_tau at cutoff 1 gave g2 = 0 (perfect antibunching) where solve says NaN
    inputs = pyspb.Device(J0=0.0, tip=False).rates()
    at_cutoff_1 = g2_tau(inputs, [0.0, 1.0], cutoff=1)
    assert np.isnan(at_cutoff_1["g2_cw_tau"]).all() and np.isnan(float(pyspb.solve(inputs, cutoff=1).g2_cw))
    assert "cutoff 1 < 2" in at_cutoff_1["g2_cw_tau"].attrs["comment"]
    inputs["xi"] = 30 * inputs["xi"]  # truncation error ~1.5e-2 at cutoff 3: solve gives NaN
    with pytest.warns(pyspb.TruncationWarning):
        truncated = g2_tau(inputs, [0.0, 1.0], cutoff=3)
    assert np.isnan(truncated["g2_cw_tau"]).all()
    with pytest.warns(pyspb.TruncationWarning):
        assert np.isnan(float(pyspb.solve(inputs, cutoff=3).g2_cw))
