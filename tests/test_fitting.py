"""pyspb.fit: recovery of known parameters from synthetic data, its standard errors, bad input."""

import numpy as np
import pytest
import xarray as xr

import pyspb
from pyspb.cli import main

PARAMS = {"Q": (1e9, 1e11), "J0_over_gamma1": (0.5, 5)}
#: the cavity without tip: its Q and intrinsic backscattering are what one measures first
TRUTH = pyspb.Device(Q=1.25e10, J0_over_gamma1=2.2, tip=False)
START = pyspb.Device(tip=False)  # Q = 1e10, J0 / gamma1 = 1.8
DELTA = np.linspace(-0.6, 0.6, 11)
PIN = np.array([2e-15, 8e-15])


def measurement(cutoff=5, noise=0.02, seed=0, names=("g2_cw", "N_cw"), truth=TRUTH, pin=PIN):
    clean = pyspb.solve(truth.rates(Delta=DELTA, Pin=pin), cutoff)
    data = xr.Dataset(coords=clean.coords)
    rng = np.random.default_rng(seed)
    for name in names:
        data[name] = clean[name] * (1 + noise * rng.standard_normal(clean[name].shape))
        if noise:
            data[f"{name}_sigma"] = noise * clean[name]
    return data


def test_noise_free_data_give_the_truth_and_nan_points_are_ignored():
    data = measurement(noise=0.0)
    data["g2_cw"][0, 0] = np.nan
    data["N_cw"][3, 1] = np.nan
    fit = pyspb.fit(data, START, PARAMS)
    assert fit.attrs["data_points"] == 2 * DELTA.size * PIN.size - 2
    for name in PARAMS:
        assert float(fit[name]) == pytest.approx(getattr(TRUTH, name), rel=1e-6)
    assert float(fit.chi2_reduced) < 1e-12
    assert np.isnan(float(fit.g2_cw_residual[0, 0])) and np.isfinite(float(fit.g2_cw_fit[0, 0]))
    assert fit.Q.attrs["units"] == "1" and fit.g2_cw_fit.attrs["units"] == "1"


def test_noisy_data_recover_the_parameters_within_their_standard_errors():
    fit = pyspb.fit(measurement(seed=3), START, PARAMS)
    for name in PARAMS:
        value, error, truth = float(fit[name]), float(fit[f"{name}_stderr"]), getattr(TRUTH, name)
        assert 0 < error < 0.02 * truth  # the data do determine it
        assert abs(value - truth) < 3 * error
    assert 0.5 < float(fit.chi2_reduced) < 1.6  # noise of the size the sigmas say
    assert fit.covariance.dims == ("param", "param2")
    np.testing.assert_allclose(np.sqrt(np.diag(fit.covariance)), [float(fit[f"{p}_stderr"]) for p in PARAMS])
    assert fit.attrs["optimizer_success"] == 1 and fit.attrs["solve_calls"] < 3 * fit.attrs["evaluations"] + 3


def test_the_standard_error_is_where_chi2_rises_by_one():
    # independent of the fit's Jacobian: chi2 from direct solves at best +- stderr
    data = measurement(seed=5)
    fit = pyspb.fit(data, START.replace(Q=TRUTH.Q), {"J0_over_gamma1": (0.5, 5)})
    best, error = float(fit.J0_over_gamma1), float(fit.J0_over_gamma1_stderr)
    steps = np.array([best - error, best, best + error])
    model = pyspb.solve(START.replace(Q=TRUTH.Q).rates(Delta=DELTA, Pin=PIN, J0_over_gamma1=steps), 5)
    chi2 = sum(
        (((model[name] - data[name]) / data[f"{name}_sigma"]) ** 2).sum(["Delta", "Pin"]).values
        for name in ("g2_cw", "N_cw")
    )
    np.testing.assert_allclose(chi2[[0, 2]] - chi2[1], 1.0, rtol=0.1)


def test_data_of_a_larger_cutoff_are_fitted():
    # up to 1 pW, N_cw ~ 0.6: cutoff 5 still holds the state (truncation error 2e-7), cutoff 2 does not
    data = measurement(cutoff=8, seed=7, pin=np.array([4e-15, 1e-12]))
    fit = pyspb.fit(data, START, PARAMS, cutoff=5)
    for name in PARAMS:
        assert abs(float(fit[name]) - getattr(TRUTH, name)) < 3 * float(fit[f"{name}_stderr"])
    assert fit.attrs["cutoff"] == 5 and fit.attrs["truncation_error_max"] < 1e-6
    with pytest.warns(RuntimeWarning) as record:  # also: stopped without converging (max_evaluations=1)
        pyspb.fit(data[["N_cw", "N_cw_sigma"]], START, PARAMS, cutoff=2, max_evaluations=1)
    assert any(isinstance(w.message, pyspb.TruncationWarning) and "pyspb.fit" in str(w.message) for w in record)


def test_unweighted_fit_scales_the_covariance_by_the_scatter():
    data = measurement(seed=11, names=("N_cw",), noise=0.0)
    rng = np.random.default_rng(11)
    data["N_cw"] = data.N_cw + 1e-3 * rng.standard_normal(data.N_cw.shape)  # homoscedastic noise
    unweighted = pyspb.fit(data, TRUTH, PARAMS)
    weighted = pyspb.fit(data.assign(N_cw_sigma=xr.full_like(data.N_cw, 1e-3)), TRUTH, PARAMS)
    assert float(unweighted.chi2_reduced) == pytest.approx(1e-6, rel=0.5)  # the noise variance
    for name in PARAMS:
        assert float(unweighted[f"{name}_stderr"]) == pytest.approx(float(weighted[f"{name}_stderr"]), rel=0.3)
    assert "chi2_reduced" in unweighted.attrs["weights"]


def test_a_parameter_the_data_cannot_determine_gets_infinite_stderr():
    with pytest.warns(RuntimeWarning, match="do not determine a_gamma"):
        fit = pyspb.fit(
            measurement(noise=0.0, truth=START),  # the start is the best fit: few evaluations
            START,
            {"J0_over_gamma1": (0.5, 5), "a_gamma": (1.0, 4.0)},
        )
    assert np.isinf(float(fit.a_gamma_stderr)) and "do not determine" in fit.a_gamma_stderr.attrs["comment"]
    assert np.isfinite(float(fit.J0_over_gamma1_stderr))
    assert float(fit.J0_over_gamma1) == pytest.approx(START.J0_over_gamma1, rel=1e-6)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: (d, {"Qfactor": (1e9, 1e11)}), "unknown or unfitted parameter"),
        (lambda d: (d.assign(P10=d.N_cw), PARAMS), "not a quantity pyspb.solve computes"),
        (lambda d: (d.assign(truncation_error=d.N_cw), PARAMS), "variables="),
        (lambda d: (d, {"Q": (2e10, 1e11)}), "exclude its start"),
        (lambda d: (d * np.nan, PARAMS), "no finite values"),
        (lambda d: (d[[]], PARAMS), "no variable to fit"),
        (lambda d: (d.rename(Pin="power"), PARAMS), "dim 'power'"),
        (lambda d: (d, {"Delta": (-1, 1)}), "coordinate of the data"),
        (lambda d: (d.assign(g2_cw=d.N_cw, N_cw_sigma=d.N_cw), PARAMS), "uncertainties for every fitted variable"),
        (lambda d: (d.isel(Delta=[0], Pin=[0])[["N_cw"]], PARAMS), "cannot determine 2 parameter"),
    ],
)
def test_bad_input_is_refused_with_a_reason(change, match):
    data, params = change(measurement(noise=0.0, names=("N_cw",)))
    with pytest.raises(ValueError, match=match):
        pyspb.fit(data, START, params)


def test_command_line_fits_a_file(tmp_path, capsys):
    path = tmp_path / "data.nc"
    pyspb.save(measurement(noise=0.0), path)
    argv = ["fit", str(path), "--param", "Q=1e9:1e11", "--param", "J0_over_gamma1=0.5:5", "--device", "tip=false"]
    argv += ["--device", "J0_over_gamma1=2.1", "--start", "Q=1.2e10"]
    assert main([*argv, "--out", str(tmp_path / "fit.nc")]) == 0
    fit = pyspb.load(tmp_path / "fit.nc")
    assert float(fit.Q) == pytest.approx(TRUTH.Q, rel=1e-6)
    assert "Q" in capsys.readouterr().out
    assert main(["fit", str(path), "--param", "Q=1e9", "--out", str(tmp_path / "x.nc")]) == 2
    assert "LOW:HIGH" in capsys.readouterr().err


def test_scattered_points_along_a_dim_with_device_field_coords():
    # no grid: each measurement has its own detuning and power (coords along dim "point")
    rng = np.random.default_rng(1)
    Delta = xr.DataArray(rng.uniform(-0.6, 0.6, 12), dims="point")
    Pin = xr.DataArray(rng.choice(PIN, 12), dims="point")
    clean = pyspb.solve(TRUTH.rates(Delta=Delta, Pin=Pin), 5)
    data = xr.Dataset({"g2_cw": clean.g2_cw, "N_cw": clean.N_cw}).assign_coords(Delta=Delta, Pin=Pin)
    fit = pyspb.fit(data, START.replace(Q=1.2e10, J0_over_gamma1=2.1), PARAMS)
    for name in PARAMS:
        assert float(fit[name]) == pytest.approx(getattr(TRUTH, name), rel=1e-6)
    assert fit.g2_cw_fit.dims == ("point",)


def test_a_model_undefined_at_every_data_point_is_refused():
    # review finding: fitting g4 at cutoff 3 (g4 is NaN there) returned the start value
    data = measurement(noise=0.0, names=("g2_cw",)).rename(g2_cw="g4_cw")
    with pytest.raises(ValueError, match="NaN at every data point"):
        pyspb.fit(data, START, PARAMS, cutoff=3)


def test_covariance_units_and_parameter_labels_follow_cf():
    fit = pyspb.fit(measurement(noise=0.0, truth=START), START, PARAMS)
    assert "units" not in fit["param"].attrs and "units" not in fit["param2"].attrs  # string labels
    assert fit["covariance"].attrs["units"] == "1"  # Q and J0 / gamma1 are both dimensionless
    mixed = pyspb.fit(measurement(noise=0.0, truth=START), START, {"Q": (1e9, 1e11), "gamma_ex": (0.05, 0.5)})
    assert "units" not in mixed["covariance"].attrs and "gamma_ex: 1e6 s-1" in mixed["covariance"].attrs["comment"]
