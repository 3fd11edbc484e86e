import numpy as np
import pytest
import xarray as xr

import pyspb


def test_checked_values_of_spec_section_2():
    ds = pyspb.Device().rates()  # r = 0.35 um, phi = 0.27 um
    expected = {
        "gamma0": 0.12153,
        "gamma1": 0.24305,
        "chi": 1.5831,
        "xi": 0.061590,
        "J0": 0.43749,
        "k_opt": 5.6751,
        "gamma": 0.29718,
    }
    for name, value in expected.items():
        assert float(ds[name]) == pytest.approx(value, rel=5e-5), name
    assert float(ds.chi / ds.gamma) == pytest.approx(5.327, rel=2e-4)
    assert float(ds.J_abs) == pytest.approx(0.0207, rel=5e-3)


def test_every_variable_has_units_and_long_name():
    ds = pyspb.Device().rates(r=np.linspace(0.1, 0.5, 3), phi=[0.2, 0.3])
    for name, var in ds.variables.items():
        assert "units" in var.attrs and "long_name" in var.attrs, name


def test_swept_parameters_become_dims_in_order():
    r = np.linspace(0.1, 0.5, 4)
    phi = np.linspace(0, 1, 5)
    ds = pyspb.Device().rates(r=r, phi=phi)
    assert ds.gamma.dims == ("r",)
    assert set(ds.J_re.dims) == {"r", "phi"}
    np.testing.assert_array_equal(ds.r.values, r)
    # each grid point equals the scalar computation
    one = pyspb.Device(r=r[2], phi=phi[3]).rates()
    for name in ("J_re", "J_im", "gamma", "Theta"):
        assert float(ds.sel(r=r[2], phi=phi[3])[name]) == pytest.approx(float(one[name]), rel=1e-14)


def test_tip_false_and_ideal_cavity():
    dev = pyspb.Device()
    no_tip = dev.rates(tip=False)
    assert float(no_tip.J_re) == pytest.approx(float(no_tip.J0))
    assert float(no_tip.J_im) == 0.0
    assert float(no_tip.gamma) == pytest.approx(float(no_tip.gamma1))
    ideal = dev.rates(J0=0.0, tip=False)
    assert float(ideal.J_re) == 0.0 and float(ideal.J_im) == 0.0


def test_tip_cancels_backscattering_at_paper_position():
    # J = 0 at r* = ln(a_t / J0) / (2 beta_t) and phi = ((2l+1) pi - theta - theta_t r) / (2 k_opt)
    dev = pyspb.Device()
    base = dev.rates()
    r_star = dev.decay_t * np.log(dev.a_t / float(base.J0))
    phi_star = (np.pi - dev.theta - dev.theta_t * r_star) / (2 * float(base.k_opt))
    at = dev.rates(r=r_star, phi=phi_star)
    assert float(at.J_abs) < 1e-12
    assert r_star == pytest.approx(0.345, abs=0.01)
    assert phi_star == pytest.approx(0.27, abs=0.01)


def test_J0_over_gamma1_sweep_and_J0_scalar():
    ds = pyspb.Device().rates(J0_over_gamma1=[0.0, 1.0, 1.8])
    np.testing.assert_allclose(ds.J0.values, ds.J0_over_gamma1.values * float(ds.gamma1))
    assert float(pyspb.Device().rates(J0=0.1).J0) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"r": -0.1}, "tip distance r"),
        ({"Q": 0.0}, "Q must be > 0"),
        ({"Pin": np.nan}, "Pin must be finite"),
        ({"bogus": 1.0}, "unknown device parameter"),
        ({"J0": 0.1, "J0_over_gamma1": 1.0}, "not both"),
        ({"r": np.ones((2, 2))}, "1-d array"),
    ],
)
def test_bad_device_parameters(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        pyspb.Device().rates(**kwargs)


def test_rates_feed_solve_directly():
    out = pyspb.solve(pyspb.Device().rates(phi=[0.27, 0.5]), cutoff=3)
    xr.testing.assert_equal(
        out.phi, xr.DataArray([0.27, 0.5], dims="phi", coords={"phi": [0.27, 0.5]}, attrs=out.phi.attrs)
    )


def test_rates_take_dataarrays_pointwise():
    # several fields along one shared dim (no grid): each point equals its own scalar call
    r = xr.DataArray([0.3, 0.35, 0.4], dims="sample")
    phi = xr.DataArray([0.2, 0.27, 0.3], dims="sample")
    rates = pyspb.Device().rates(r=r, phi=phi, Pin=5e-15)
    assert rates.J_re.dims == ("sample",) and rates.r.dims == ("sample",)
    for k in range(3):
        single = pyspb.Device().rates(r=float(r[k]), phi=float(phi[k]), Pin=5e-15)
        for name in ("J_re", "J_im", "gamma", "xi"):
            assert float(rates[name].broadcast_like(r)[k]) == pytest.approx(float(single[name]), rel=1e-14)
