import numpy as np
import pytest
import xarray as xr

import pyspb
from pyspb.analytic import cancellation_positions, efficiency, weak_drive
from pyspb.attributes import VARIABLES


def test_weak_drive_g2_is_approached_by_the_exact_solver_as_xi_goes_to_zero():
    dev = pyspb.Device()
    inputs = dev.rates(phi=[0.2, 0.27, 0.5], r=[0.3, 0.35])
    errors = []
    for factor in (1e-1, 1e-2, 1e-3):
        scaled = inputs.assign(xi=inputs.xi * factor)
        exact = pyspb.solve(scaled, cutoff=5).g2_cw
        errors.append(float(abs(exact / weak_drive(scaled).g2_cw_weak - 1).max()))
    assert errors[-1] < 1e-3
    assert errors[0] > errors[1] > errors[2]  # converges as xi -> 0


def test_weak_drive_single_photon_probabilities_match_exact_populations():
    inputs = pyspb.Device(Pin=4e-19).rates(phi=[0.1, 0.27, 0.6])
    out = pyspb.solve(inputs, cutoff=4, P=True)
    weak = weak_drive(inputs)
    np.testing.assert_allclose(out.P.sel(n_cw=1, n_ccw=0), weak.P10_cw, rtol=1e-3)
    np.testing.assert_allclose(out.P.sel(n_cw=0, n_ccw=1), weak.P01_ccw, rtol=1e-3)


def test_J_zero_limit_of_eq7():
    inputs = pyspb.rate_grid(Delta=0.0, J_re=0.0, J_im=0.0, chi=np.array([0.5, 2.0]), xi=1e-3, gamma=1.0)
    expected = 1 / (4 * inputs.chi**2 + 1)
    np.testing.assert_allclose(weak_drive(inputs).g2_cw_weak, expected, rtol=1e-12)


def test_C20_vanishes_at_the_spb_conditions():
    # chi / gamma = 1/2, |J| / gamma = 1, Delta = 0 make Delta1 Delta2 + 4 |J|^2 chi / Delta2 = 0
    inputs = pyspb.rate_grid(Delta=0.0, J_re=0.6, J_im=0.8, chi=0.5, xi=0.01, gamma=1.0)
    weak = weak_drive(inputs)
    assert abs(float(weak.C20_re)) < 1e-15 and abs(float(weak.C20_im)) < 1e-15


def test_cancellation_positions_of_the_paper():
    pos = cancellation_positions()
    assert float(pos.r) == pytest.approx(0.35, abs=0.006)
    np.testing.assert_allclose(pos.phi, [0.27, 0.82], atol=0.006)


def test_efficiency_of_the_paper():
    dev = pyspb.Device()
    ideal = pyspb.solve(dev.rates(J0=0.0, tip=False), cutoff=6).g2_cw
    tip = pyspb.solve(dev.rates(), cutoff=6).g2_cw
    no_tip = pyspb.solve(dev.rates(tip=False), cutoff=6).g2_cw
    assert float(efficiency(tip, ideal)) == pytest.approx(0.997, abs=0.001)
    assert float(efficiency(no_tip, ideal)) == 0.0
    R = efficiency(xr.concat([tip, no_tip], "case"), ideal)
    assert R.attrs["units"] == "1" and R.name == "R" and "efficiency" in R.attrs["long_name"]


@pytest.mark.parametrize("kind", ["float", "array", "DataArray"])
def test_efficiency_follows_one_rule_for_every_input_type(kind):
    """g2_ideal = 1 used to raise ZeroDivisionError for floats but give inf for DataArrays."""
    wrap = {
        "float": lambda values: values,
        "array": np.asarray,
        "DataArray": lambda values: xr.DataArray(np.asarray(values), dims="x"),
    }[kind]
    if kind == "float":
        assert np.isnan(efficiency(0.5, 1.0)) and np.isnan(efficiency(0.5, 2.0))  # Eq. 8 undefined
        assert efficiency(0.5, 0.0) == 0.5 and efficiency(2.0, 0.1) == 0.0 and np.isnan(efficiency(np.nan, 0.1))
        assert isinstance(efficiency(0.5, 0.0), float)
    else:
        g2_device = wrap([0.5, 0.5, 0.5, 2.0, np.nan, 0.05])
        g2_ideal = wrap([0.0, 1.0, 3.0, 0.1, 0.1, 0.1])
        R = efficiency(g2_device, g2_ideal)
        np.testing.assert_allclose(np.asarray(R), [0.5, np.nan, np.nan, 0.0, np.nan, 0.95 / 0.9], rtol=1e-14)
        if kind == "DataArray":
            assert R.name == "R" and "g2_ideal >= 1" in R.attrs["comment"]
    with pytest.raises(ValueError, match="g2_device must be >= 0"):
        efficiency(wrap(-0.1) if kind == "float" else wrap([-0.1]), 0.01)
    with pytest.raises(ValueError, match="g2_ideal must be >= 0"):
        efficiency(0.5, wrap(-0.1) if kind == "float" else wrap([-0.1]))


def test_weak_drive_results_carry_their_own_labels():
    """Each result has its own long_name (none carried over from the inputs' J_re, xi, ...)."""
    out = weak_drive(pyspb.Device().rates(phi=[0.2, 0.27]))
    for name, var in out.data_vars.items():
        assert (var.attrs["long_name"], var.attrs["units"]) == VARIABLES[name], name
    assert "Eq. 5" in out.C20_re.attrs["long_name"] and "real part" in out.C20_re.attrs["long_name"]
    assert "ccw" in out.P01_ccw.attrs["long_name"] and "Eq. 7" in out.g2_cw_weak.attrs["long_name"]
