import warnings

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


def test_an_empty_ccw_mode_gives_nan_with_a_reason():
    """J = 0: no ccw light; its S is rounding noise (it came out as -1.3e-21), NaN as in g2_tau."""
    out = spectrum(grid(J_re=0.0, J_im=0.0), np.linspace(-2.0, 2.0, 9), cutoff=3)
    assert np.all(np.isnan(out.S_ccw))
    assert np.all(np.isfinite(out.S_cw)) and float(out.S_cw.max()) > 0
    assert "empty to numerical precision" in out.S_ccw.attrs["comment"]


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


def dense_spectra(Delta, J, chi, xi, gamma, cutoff, omega):
    """S_cw, S_ccw by dense solves of QuTiP's Liouvillian (independent of pyspb's model and solvers).

    The steady state solves ``L rho = 0`` with the first equation replaced by ``Tr rho = 1``;
    ``(L - i omega) x + rho Tr[x] = -(a rho - <a> rho)`` has the trace-free solution of the
    singular system; S = 2 Re Tr[a^dag x].
    """
    qutip = pytest.importorskip("qutip")
    from reference import qutip_model

    H, c_ops, a1, a2 = qutip_model(Delta, J, chi, xi, gamma, cutoff)
    L = qutip.liouvillian(H, c_ops).full()  # column-stacking vectorisation
    d = a1.shape[0]
    vec = lambda m: m.reshape(-1, order="F")  # noqa: E731
    trace_row = vec(np.eye(d))
    fixed = L.copy()
    fixed[0] = trace_row
    rho = np.linalg.solve(fixed, np.eye(d * d)[0]).reshape(d, d, order="F")
    modes = [a1.full(), a2.full()]
    b = np.stack([-vec(a @ rho - np.trace(a @ rho) * rho) for a in modes], axis=1)
    fix = np.outer(vec(rho), trace_row)
    out = np.empty((2, len(omega)))
    for k, w in enumerate(omega):
        x = np.linalg.solve(L - 1j * w * np.eye(d * d) + fix, b)
        out[:, k] = [2 * np.vdot(vec(a), x[:, m]).real for m, a in enumerate(modes)]
    return out


@pytest.mark.parametrize(
    ("point", "cutoff", "every"),
    [
        ((0.2, 0.3 + 0.2j, 1.2, 0.3, 0.5), 3, 13),  # strong drive, Kerr ~ gamma: broad, asymmetric spectra
        ("paper", 4, 29),  # the paper's device with tip (gamma = 0.297, chi = 5.3 gamma); dense solves cost more
    ],
)
def test_every_frequency_matches_dense_solves(point, cutoff, every):
    """201 frequencies from one reduced model: the values between its shifts (most of them), at
    unsorted and repeated frequencies, match dense solves of QuTiP's Liouvillian."""
    if point == "paper":
        rates = pyspb.Device().rates(r=0.35, phi=0.27)
        point = tuple(float(rates[name]) for name in ("Delta", "chi", "xi", "gamma"))
        point = (point[0], complex(float(rates.J_re), float(rates.J_im))) + point[1:]
    Delta, J, chi, xi, gamma = point
    omega = np.linspace(-5 * gamma, 5 * gamma, 201)
    omega = np.concatenate([omega[::-1], omega[[7, 100]]])  # reversed, two frequencies twice
    inputs = pyspb.rate_grid(Delta=Delta, J_re=J.real, J_im=J.imag, chi=chi, xi=xi, gamma=gamma)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pyspb.TruncationWarning)
        out = spectrum(inputs, omega, cutoff=cutoff)
    ours = np.stack([out.S_cw.values, out.S_ccw.values])
    # spread over the range (with every = 13: a repeated one too), and omega = 0, where L is singular
    check = np.append(np.arange(3, omega.size, every), 100)
    reference = dense_spectra(Delta, J, chi, xi, gamma, cutoff, omega[check])
    for mode in range(2):
        assert np.max(reference[mode]) > 1e-6  # light in both modes
        error = np.max(np.abs(ours[mode, check] - reference[mode])) / np.max(np.abs(reference[mode]))
        assert error < 1e-9
    np.testing.assert_array_equal(ours[:, -2:], ours[:, [201 - 1 - 7, 100]])


def test_points_the_reduced_model_cannot_certify_are_solved_by_lu(monkeypatch):
    """An unreachable residual criterion: no frequency can be certified, every point goes to the
    sparse LU, and the spectra still match the dense reference (no uncertified value returned)."""
    from pyspb.backends.native import spectrum as engine

    calls = []
    lu = engine._lu_point_spectra
    monkeypatch.setattr(engine, "_lu_point_spectra", lambda *args: calls.append(1) or lu(*args))
    monkeypatch.setattr(engine, "TOLERANCE", 1e-30)
    monkeypatch.setattr(engine, "MAX_RESTARTS", 1)
    point = (0.2, 0.3 + 0.2j, 1.2, 0.3, 0.5)
    omega = np.linspace(-2, 2, 9)
    inputs = pyspb.rate_grid(Delta=0.2, J_re=0.3, J_im=0.2, chi=1.2, xi=0.3, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pyspb.TruncationWarning)
        out = spectrum(inputs, omega, cutoff=3)
    assert calls == [1]
    reference = dense_spectra(*point, 3, omega)
    np.testing.assert_allclose(out.S_cw.values, reference[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out.S_ccw.values, reference[1], rtol=1e-9, atol=1e-12)


def test_omega_zero_as_a_shift_at_cutoff_5(monkeypatch):
    """omega = 0, where L is singular along rho, as one of the first shifts (paper's device, cutoff 5):
    the part of the solution along rho, invisible in L's residual there, is certified too (with L's
    residual alone, rounding in the basis left errors of 1e-9 of max S at omega = 0)."""
    from pyspb.backends.native import spectrum as engine

    monkeypatch.setattr(engine, "INITIAL_SHIFTS", 3)  # -5 gamma, 0, 5 gamma
    rates = pyspb.Device().rates(r=0.35, phi=0.22)
    point = (float(rates.Delta), complex(float(rates.J_re), float(rates.J_im)), float(rates.chi), float(rates.xi))
    gamma = float(rates.gamma)
    omega = np.linspace(-5 * gamma, 5 * gamma, 201)
    inputs = pyspb.rate_grid(
        Delta=point[0], J_re=point[1].real, J_im=point[1].imag, chi=point[2], xi=point[3], gamma=gamma
    )
    out = spectrum(inputs, omega, cutoff=5)
    check = [100, 137]  # omega = 0 and a frequency between shifts
    reference = dense_spectra(*point, gamma, 5, omega[check])
    for mode, name in enumerate(("S_cw", "S_ccw")):
        error = np.abs(out[name].values[check] - reference[mode]) / np.max(np.abs(out[name].values))
        assert np.all(error < 1e-10)
