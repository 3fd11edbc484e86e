import numpy as np
import pytest

import pyspb
from pyspb.spectrum import spectrum


def grid(**overrides):
    values = dict(Delta=np.array([0.0, 0.4]), J_re=0.3, J_im=0.2, chi=1.2, xi=0.3, gamma=0.5)
    values.update(overrides)
    return pyspb.rate_grid(**values)


def test_matches_qutip_spectrum():
    """QuTiP's spectrum (pseudo-inverse solver) of a^dag, a: same sign and normalisation, no delta peak."""
    qutip = pytest.importorskip("qutip")
    from reference import qutip_model

    cutoff = 3
    omega = np.linspace(-6, 6, 13)
    inputs = grid()
    ours = spectrum(inputs, omega, cutoff=cutoff)
    for k, Delta in enumerate(inputs.Delta.values):
        H, c_ops, a1, a2 = qutip_model(Delta, 0.3 + 0.2j, 1.2, 0.3, 0.5, cutoff)
        for name, a in (("S_cw", a1), ("S_ccw", a2)):
            reference = qutip.spectrum(H, omega, c_ops, a.dag(), a, solver="pi")
            assert np.max(reference) > 1e-3  # a spectrum with structure, not zeros
            np.testing.assert_allclose(ours[name].values[k], reference, rtol=1e-7, atol=1e-9 * np.max(reference))


def test_sum_rule_and_coherent_part():
    """int S domega / 2pi = <a^dag a> - |<a>|^2 (N from pyspb.solve, an independent path)."""
    omega = np.linspace(-300, 300, 6001)
    inputs = grid(Delta=0.2)
    out = spectrum(inputs, omega, cutoff=3)
    solved = pyspb.solve(inputs, cutoff=3)
    for mode in ("cw", "ccw"):
        incoherent = np.trapezoid(out[f"S_{mode}"].values, omega) / (2 * np.pi)
        expected = float(solved[f"N_{mode}"]) - float(out[f"coherent_{mode}"])
        assert 0.01 < expected / float(solved[f"N_{mode}"]) < 0.99  # both parts present
        assert incoherent == pytest.approx(expected, rel=1e-4)  # tails beyond |omega| = 300 ~ 1e-5


def test_linear_cavity_has_no_incoherent_light():
    """chi = 0: the steady state is a coherent state in both modes, so S = 0 and N = |<a>|^2."""
    linear = grid(chi=0.0, xi=0.1)
    out = spectrum(linear, [-1.0, 0.0, 0.5], cutoff=6)
    # the truncation at 6 photons (Poisson tail ~1e-12 at N = 0.05) is the only departure
    assert float(abs(out.S_cw).max()) < 1e-8 * float(out.coherent_cw.max())
    np.testing.assert_allclose(out.coherent_cw, pyspb.solve(linear, cutoff=6).N_cw, rtol=1e-8)
    # and |<a>|^2 is the classical amplitude of two coupled linear modes (independent of any solver):
    # z a1 + i J a2 = -i xi, z a2 + i J* a1 = 0 with z = i Delta + gamma / 2
    z = 1j * linear.Delta.values + linear.gamma.values / 2
    J = complex(linear.J_re) + 1j * complex(linear.J_im)
    a1 = -1j * float(linear.xi) * z / (z**2 + abs(J) ** 2)
    a2 = -1j * np.conj(J) * a1 / z
    np.testing.assert_allclose(out.coherent_cw, abs(a1) ** 2, rtol=1e-8)
    np.testing.assert_allclose(out.coherent_ccw, abs(a2) ** 2, rtol=1e-8)
    with_kerr = spectrum(grid(chi=0.5, xi=0.1), [0.0], cutoff=6)
    assert float(with_kerr.S_cw.max()) > 1e-3 * float(with_kerr.coherent_cw.max())  # the test can fail


def test_labels_and_bad_frequencies():
    out = spectrum(grid(), [0.0, 1.0], cutoff=2)
    assert out.S_cw.dims == ("Delta", "omega") and out.S_cw.attrs["units"] == "1e-6 s"
    assert out.omega.attrs["units"] == "1e6 s-1" and "coherent" in out.S_ccw.attrs["comment"]
    with pytest.raises(ValueError, match="finite"):
        spectrum(grid(), [np.nan], cutoff=2)
    with pytest.raises(ValueError, match="1-d"):
        spectrum(grid(), [[1.0]], cutoff=2)


def test_no_points_give_empty_spectra_and_no_drive_is_refused():
    empty = spectrum(pyspb.Device().rates(phi=np.array([])), [0.0, 1.0], cutoff=3)
    assert empty["S_cw"].shape == (0, 2) and empty["coherent_cw"].shape == (0,)
    with pytest.raises(ValueError, match="xi = 0"):
        spectrum(grid(xi=0.0), [0.0], cutoff=3)


def test_grossly_truncated_points_are_nan_as_in_solve():
    inputs = pyspb.Device(J0=0.0, tip=False).rates()
    inputs["xi"] = 30 * inputs["xi"]  # truncation error ~1.5e-2 at cutoff 3
    with pytest.warns(pyspb.TruncationWarning):
        solved = pyspb.solve(inputs, cutoff=3)
    assert np.isnan(float(solved.N_cw))  # solve's own rule, which spectrum must follow
    with pytest.warns(pyspb.TruncationWarning):
        out = spectrum(inputs, [0.0, 1.0], cutoff=3)
    assert np.isnan(out["S_cw"]).all() and np.isnan(out["coherent_cw"]).all()
    assert "truncation_error" in out["S_cw"].attrs["comment"]
