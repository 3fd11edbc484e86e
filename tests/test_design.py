"""pyspb.optimize_tip against dense grid searches, pyspb.tolerance's sampling, the design CLI verbs."""

import numpy as np
import pytest
import xarray as xr

import pyspb
from pyspb.analytic import cancellation_positions, efficiency
from pyspb.cli import main
from pyspb.design import summarize

DEVICE = pyspb.Device()
PERIOD = np.pi / float(DEVICE.rates()["k_opt"])


@pytest.fixture(scope="module")
def dense():
    """g2, N_cw and |J| on a 61 x 61 grid over the default bounds (3721 points)."""
    rates = DEVICE.rates(r=np.linspace(0.1, 1.2, 61), phi=np.linspace(0.0, PERIOD, 61, endpoint=False))
    return pyspb.solve(rates, 5, progress=False).assign(J_abs=rates.J_abs)


@pytest.fixture(scope="module")
def best():
    return pyspb.optimize_tip(DEVICE, cutoff=5)


def test_optimize_tip_reaches_the_dense_grid_minimum_with_far_fewer_points(best, dense):
    assert float(best.g2_cw) <= float(dense.g2_cw.min())
    assert best.attrs["points_solved"] < dense.g2_cw.size / 2
    # the optimum is next to the tip position that cancels the backscattering (J = 0)
    J0_point = cancellation_positions(DEVICE)
    assert float(best.r) == pytest.approx(float(J0_point.r), abs=0.005)
    assert float(best.phi) == pytest.approx(float(J0_point.phi[0]), abs=0.005)
    # the reported observables are those of the reported position
    there = pyspb.solve(DEVICE.rates(r=float(best.r), phi=float(best.phi)), 5)
    for name in ("g2_cw", "g3_cw", "N_cw"):
        assert float(best[name]) == pytest.approx(float(there[name]), rel=1e-9)
    ideal = pyspb.solve(DEVICE.rates(J0=0.0, tip=False), 5)
    assert float(best.R) == pytest.approx(float(efficiency(float(there.g2_cw), float(ideal.g2_cw))), rel=1e-9)
    assert best.r.attrs["units"] == "um" and best.attrs["objective"] == "g2_cw"


def test_a_constraint_is_respected_and_its_optimum_beats_the_feasible_grid(best, dense):
    limited = pyspb.optimize_tip(DEVICE, cutoff=5, constraints={"J_abs": (0.05, None)})
    assert float(limited.J_abs) >= 0.05
    feasible = dense.g2_cw.where(dense.J_abs >= 0.05)
    assert float(best.g2_cw) < float(limited.g2_cw) <= float(feasible.min())


def test_other_objectives_and_a_batch_over_J0(best):
    by_R = pyspb.optimize_tip(DEVICE, objective="R", over={"J0_over_gamma1": [0.0, DEVICE.J0_over_gamma1]})
    assert by_R.g2_cw.dims == ("J0_over_gamma1",)
    assert float(by_R.R.sel(J0_over_gamma1=0.0)) == pytest.approx(1.0, abs=1e-4)  # tip far away: ideal cavity
    assert float(by_R.r.sel(J0_over_gamma1=0.0)) == pytest.approx(1.2)
    assert float(by_R.g2_cw.sel(J0_over_gamma1=1.8)) == pytest.approx(float(best.g2_cw), rel=1e-4)
    g3 = pyspb.optimize_tip(DEVICE, objective="g3_cw", candidates=1)
    assert float(g3.g3_cw) <= float(best.g3_cw)


def test_no_feasible_position_gives_nan_and_a_warning():
    with pytest.warns(RuntimeWarning, match="no tip position"):
        out = pyspb.optimize_tip(DEVICE, constraints={"N_cw": (0.5, None)}, grid=(6, 6))
    assert np.isnan(float(out.r)) and np.isnan(float(out.g2_cw)) and "constraints" in out.g2_cw.attrs["comment"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"objective": "g5_cw"}, "unknown objective"),
        ({"constraints": {"N_total": (0.1, None)}}, "constraint on 'N_total'"),
        ({"constraints": {"N_cw": (None, None)}}, "neither"),
        ({"bounds": {"r": (0.5, 0.2)}}, "low < high"),
        ({"bounds": {"theta": (0, 1)}}, "r and phi only"),
        ({"over": {"r": [0.3]}}, "other than r and phi"),
    ],
)
def test_optimize_tip_refuses_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pyspb.optimize_tip(DEVICE, **kwargs)


def test_optimize_tip_refuses_a_device_without_tip():
    # review finding: every position is the same cavity, and it returned r = 0.1, phi = 0 as "the optimum"
    with pytest.raises(ValueError, match="needs a device with a tip"):
        pyspb.optimize_tip(DEVICE.replace(tip=False))


# --------------------------------------------------------------------------- tolerance


def test_tolerance_is_reproducible_with_a_seed():
    a = pyspb.tolerance(DEVICE, samples=16, seed=4)
    b = pyspb.tolerance(DEVICE, spread={"phi": 0.003, "r": 0.005}, samples=16, seed=4)  # same, other order
    c = pyspb.tolerance(DEVICE, samples=16, seed=5)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    assert not np.allclose(a.r, c.r)


def test_zero_spread_gives_the_nominal_device():
    mc = pyspb.tolerance(DEVICE, spread={"r": 0.0, "Pin": 0.0}, samples=3, seed=0)
    nominal = pyspb.solve(DEVICE.rates(), 5)
    for name in ("N_cw", "g2_cw", "g3_cw", "g2_ccw"):
        np.testing.assert_allclose(mc[name], float(nominal[name]), rtol=1e-10)
    ideal = pyspb.solve(DEVICE.rates(J0=0.0, tip=False), 5)
    np.testing.assert_allclose(mc.R, efficiency(float(nominal.g2_cw), float(ideal.g2_cw)), rtol=1e-10)
    assert "ideal cavity" in mc["g2_cw_ideal"].attrs["long_name"]  # not the device's label
    assert mc.R.attrs["units"] == "1" and mc.attrs["r_nominal"] == 0.35


def test_sampled_fields_have_the_requested_spread():
    mc = pyspb.tolerance(DEVICE, spread={"r": 0.005}, samples=1000, seed=1)
    assert float(mc.r.mean()) == pytest.approx(0.35, abs=3 * 0.005 / np.sqrt(1000))
    assert float(mc.r.std()) == pytest.approx(0.005, rel=0.07)  # std of the std: 2.2 %
    uniform = pyspb.tolerance(DEVICE, spread={"phi": 0.003}, samples=1000, seed=1, distribution="uniform")
    assert float(abs(uniform.phi - 0.27).max()) <= 0.003
    assert float(uniform.phi.std()) == pytest.approx(0.003 / np.sqrt(3), rel=0.07)
    # R falls off on both sides of the optimum: the nominal point is near the best samples
    assert mc.attrs["R_quantiles"][0] < mc.attrs["R_quantiles"][2]
    np.testing.assert_allclose(mc.attrs["R_quantiles"], np.quantile(mc.R, [0.05, 0.5, 0.95]))


def test_a_spread_cavity_field_has_its_own_ideal_cavity_per_sample():
    mc = pyspb.tolerance(DEVICE, spread={"Pin": 1e-15}, samples=4, seed=2)
    assert mc.g2_cw_ideal.dims == ("sample",)
    first = pyspb.solve(DEVICE.rates(J0=0.0, tip=False, Pin=float(mc.Pin[0])), 5)
    assert float(mc.g2_cw_ideal[0]) == pytest.approx(float(first.g2_cw), rel=1e-10)


def test_tolerance_in_dask_chunks_equals_the_serial_run():
    pytest.importorskip("dask")
    serial = pyspb.tolerance(DEVICE, samples=24, seed=3)
    chunked = pyspb.tolerance(DEVICE, samples=24, seed=3, chunks=8)
    xr.testing.assert_allclose(serial.drop_attrs(), chunked.drop_attrs(), rtol=1e-12)
    summary = summarize(chunked, [0.5])
    assert float(summary.R.sel(quantile=0.5)) == pytest.approx(float(np.median(chunked.R)))


def test_tolerance_refuses_invalid_samples_and_fields():
    with pytest.raises(ValueError, match="smaller spread"):
        pyspb.tolerance(DEVICE, spread={"r": 1.0}, samples=64, seed=0)
    with pytest.raises(ValueError, match="not a numeric pyspb.Device field"):
        pyspb.tolerance(DEVICE, spread={"radius": 0.01})
    with pytest.raises(ValueError, match="distribution"):
        pyspb.tolerance(DEVICE, distribution="cauchy")


def test_command_line_tolerance(tmp_path, capsys):
    out = tmp_path / "mc.nc"
    argv = ["tolerance", "--spread", "r=0.005", "--samples", "8", "--seed", "0", "--out", str(out)]
    assert main(argv) == 0
    assert "R quantiles" in capsys.readouterr().out
    mc = pyspb.load(out)
    assert mc.sizes["sample"] == 8 and mc.attrs["seed"] == 0
    assert main(["tolerance", "--spread", "radius=1", "--out", str(out)]) == 2
    assert "not a pyspb.Device field" in capsys.readouterr().err


def test_a_field_the_device_leaves_as_none_is_sampled_around_its_value():
    # Device(J0=0.45) has J0_over_gamma1 None: the nominal value is J0 / gamma1
    device = pyspb.Device(J0=0.45)
    mc = pyspb.tolerance(device, spread={"J0_over_gamma1": 0.0}, samples=2, seed=0)
    rates = device.rates()
    assert mc.attrs["J0_over_gamma1_nominal"] == pytest.approx(0.45 / float(rates.gamma1), rel=1e-12)
    nominal = pyspb.solve(rates, 5)
    np.testing.assert_allclose(mc.g2_cw, float(nominal.g2_cw), rtol=1e-10)
