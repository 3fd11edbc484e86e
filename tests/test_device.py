import numpy as np
import pytest
import xarray as xr

import pyspb
from pyspb.attributes import VARIABLES


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


def test_every_variable_has_its_own_units_and_long_name():
    ds = pyspb.Device().rates(r=np.linspace(0.1, 0.5, 3), phi=[0.2, 0.3])
    for name, var in ds.variables.items():  # its own label, none carried over from another variable
        assert (var.attrs["long_name"], var.attrs["units"]) == VARIABLES[name], name
    rates = ("Delta", "J_re", "J_im", "chi", "xi", "gamma", "omega0", "gamma0", "gamma1", "gamma_tip", "J0", "J_abs")
    assert {ds[name].attrs["units"] for name in rates} == {"1e6 s-1"}
    assert ds.r.attrs["units"] == ds.phi.attrs["units"] == "um" and ds.Theta.attrs["units"] == "rad"
    assert "tip" in ds.r.attrs["long_name"] and "Kerr" in ds.chi.attrs["long_name"]
    assert "loss" in ds.gamma.attrs["long_name"] and "drive" in ds.xi.attrs["long_name"]


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


def test_the_calls_J0_over_gamma1_replaces_the_devices_J0():
    """Device(J0=0.4).rates(J0_over_gamma1=0) used to keep J0 = 0.4: the ideal cavity was ignored."""
    ideal = pyspb.Device(J0=0.4).rates(J0_over_gamma1=0.0, tip=False)
    assert float(ideal.J0) == 0.0 and float(ideal.J_re) == 0.0
    assert "device_J0" not in ideal.attrs and ideal.attrs["device_J0_over_gamma1"] == 0.0
    swept = pyspb.Device(J0=0.4).rates(J0_over_gamma1=[0.0, 1.0], tip=False)
    np.testing.assert_allclose(swept.J_re, [0.0, float(swept.gamma1)])
    # and the other way round, in rates and in replace
    assert float(pyspb.Device(J0_over_gamma1=1.0).rates(J0=0.1).J0) == 0.1
    assert pyspb.Device(J0=0.4).replace(J0_over_gamma1=0.0).J0 is None
    assert float(pyspb.Device(J0=0.4).replace(J0_over_gamma1=0.0).rates().J0) == 0.0
    # recorded attrs never claim both
    assert "device_J0_over_gamma1" not in pyspb.Device(J0=0.4).rates().attrs
    # neither: the paper's 1.8
    assert pyspb.Device().J0_over_gamma1 == 1.8 and pyspb.Device(J0=0.4).replace(J0=None).J0_over_gamma1 == 1.8


def test_J0_and_J0_over_gamma1_together_are_refused():
    with pytest.raises(ValueError, match="give J0 or J0_over_gamma1, not both"):
        pyspb.Device(J0=0.4, J0_over_gamma1=1.0)
    with pytest.raises(ValueError, match="not both"):
        pyspb.Device().rates(J0=0.4, J0_over_gamma1=1.0)


@pytest.mark.parametrize("tip", ["no", "False", 0, 1, None])
def test_tip_must_be_a_bool(tip):
    """rates(tip="no") used to keep the tip (a non-empty string is true)."""
    with pytest.raises(TypeError, match="tip must be True or False"):
        pyspb.Device().rates(tip=tip)
    with pytest.raises(TypeError, match="tip must be True or False"):
        pyspb.Device(tip=tip)


def test_tip_false_numpy_bool_is_accepted():
    assert float(pyspb.Device().rates(tip=np.bool_(False)).gamma_tip) == 0.0


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
