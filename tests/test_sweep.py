import numpy as np
import pytest

from pyspb.sweep import SWEEP_EXAMPLE, SweepConfigError, load_sweep_config, run_sweep, sweep_inputs

RATES = "[rates]\nDelta = [0.0, 0.1]\nJ_re = 0.4\nchi = 1.5\nxi = 0.06\ngamma = 0.3\n"


def _write(tmp_path, text, name="sweep.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_grid_values_become_floats_and_dims(tmp_path):
    config = load_sweep_config(
        _write(
            tmp_path,
            "[device]\nr = {start = 0.2, stop = 0.6, num = 5}\nphi = [0.21, 0.27]\nJ0_over_gamma1 = 2\ntip = false\n",
        )
    )
    grid = config["grid"]
    assert config["level"] == "device" and config["solve"] == {}
    np.testing.assert_array_equal(grid["r"], [0.2, 0.3, 0.4, 0.5, 0.6])
    np.testing.assert_array_equal(grid["phi"], [0.21, 0.27])
    assert grid["J0_over_gamma1"] == 2.0 and isinstance(grid["J0_over_gamma1"], float)
    assert grid["tip"] is False
    assert dict(sweep_inputs(config).sizes) == {"r": 5, "phi": 2}


def test_rates_J_im_defaults_to_zero(tmp_path):
    config = load_sweep_config(
        _write(tmp_path, "[rates]\nDelta = [0, 1]\nJ_re = 0.4\nchi = 1.5\nxi = 0.06\ngamma = 0.3\n")
    )
    assert config["grid"]["J_im"] == 0.0
    assert dict(sweep_inputs(config).sizes) == {"Delta": 2}


def test_the_help_example_is_a_valid_configuration(tmp_path):
    device, rates = SWEEP_EXAMPLE.split("or rate level")
    device_toml = "\n".join(line for line in device.splitlines()[1:])
    rates_toml = "\n".join(rates.splitlines()[1:])
    assert load_sweep_config(_write(tmp_path, device_toml, "d.toml"))["solve"] == {
        "cutoff": 6,
        "backend": "native",
        "P": False,
    }
    assert load_sweep_config(_write(tmp_path, rates_toml, "r.toml"))["level"] == "rates"


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("P", '"false"', "[solve] P must be true or false"),  # the string "false" once turned P on
        ("P", "1", "[solve] P must be true or false"),
        ("tolerance", '"tight"', "[solve] tolerance must be a number"),
        ("tolerance", "true", "[solve] tolerance must be a number"),
        ("cutoff", "0", "[solve] cutoff must be an integer >= 1"),
        ("cutoff", "4.5", "[solve] cutoff must be an integer >= 1"),
        ("cutoff", '"big"', '"auto"'),
        ("backend", '"fortran"', "[solve] backend must be one of 'native', 'julia', 'auto'"),
        ("chunk_size", "0", "[solve] chunk_size must be an integer >= 1"),
    ],
)
def test_solve_values_of_the_wrong_type_name_their_key(tmp_path, key, value, message):
    with pytest.raises(SweepConfigError) as error:
        load_sweep_config(_write(tmp_path, f"[device]\nr = 0.3\n[solve]\n{key} = {value}\n"))
    assert message in str(error.value) and "got" in str(error.value)


@pytest.mark.parametrize("value", ['"false"', "0", "[true]"])
def test_tip_must_be_a_toml_boolean(tmp_path, value):
    with pytest.raises(SweepConfigError, match=r"\[device\] tip must be true or false"):
        load_sweep_config(_write(tmp_path, f"[device]\ntip = {value}\n"))


@pytest.mark.parametrize(
    "value, message",
    [
        ("true", "must be a number"),
        ("[0.1, true]", "one or more numbers"),
        ("{start = 0.1, stop = true, num = 3}", "stop must be a number"),
        ("{start = 0.1, stop = 0.2, num = 2.0}", "num must be an integer >= 1"),
        ("{start = 0.1, stop = 0.2, num = 3, step = 1}", "exactly the keys start, stop, num"),
    ],
)
def test_bad_grid_values_are_refused(tmp_path, value, message):
    with pytest.raises(SweepConfigError, match=message):
        load_sweep_config(_write(tmp_path, f"[device]\nr = {value}\n"))


def test_non_utf8_file_says_so(tmp_path):
    path = tmp_path / "cp1252.toml"
    path.write_bytes(b"[device]\nr = 0.3  # \x93quoted\x94\n")
    with pytest.raises(SweepConfigError, match=r"not UTF-8 text \(byte b'\\x93' on line 2\)"):
        load_sweep_config(path)


@pytest.mark.parametrize("P", [False, True])
def test_P_false_and_true_are_honoured(tmp_path, P):
    import pyspb

    text = f"{RATES}[solve]\nP = {str(P).lower()}\ncutoff = 2\n"
    config = _write(tmp_path, text)
    result = pyspb.load(run_sweep(config, tmp_path / "out.nc", progress=False))
    assert ("P" in result) is P


def test_the_backend_checks_the_tolerance_range(tmp_path):
    config = _write(tmp_path, "[device]\nr = 0.3\n[solve]\ntolerance = 0.1\ncutoff = 2\n")
    with pytest.raises(SweepConfigError, match=r"solve refused the sweep: tolerance must be in \(0, 1e-3\)"):
        run_sweep(config, tmp_path / "out.nc", progress=False)
    assert not (tmp_path / "out.nc").exists()


def test_correlations_table_adds_g2_tau_and_spectra(tmp_path):
    """[correlations] tau/omega: the file holds what pyspb.g2_tau and pyspb.spectrum return."""
    import xarray as xr

    import pyspb

    text = (
        RATES + "[solve]\ncutoff = 3\n[correlations]\ntau = {start = 0.0, stop = 2.0, num = 3}\nomega = [-1.0, 0.5]\n"
    )
    out = run_sweep(_write(tmp_path, text), tmp_path / "out.nc", progress=False)
    with xr.open_dataset(out) as result:
        inputs = sweep_inputs(load_sweep_config(tmp_path / "sweep.toml"))
        expected = pyspb.g2_tau(inputs, [0.0, 1.0, 2.0], cutoff=3)
        np.testing.assert_allclose(result.g2_cross_tau, expected.g2_cross_tau, rtol=1e-12)
        np.testing.assert_allclose(result.S_cw, pyspb.spectrum(inputs, [-1.0, 0.5], cutoff=3).S_cw, rtol=1e-12)
        assert result.g2_cw_tau.dims == ("Delta", "tau") and "g2_cross" in result


@pytest.mark.parametrize(
    "table, message",
    [("tau = 1.0", "list of numbers"), ("tau = [-1.0]", ">= 0"), ("delay = [1.0]", "unknown key")],
)
def test_bad_correlations_tables_are_refused(tmp_path, table, message):
    with pytest.raises(SweepConfigError, match=message):
        load_sweep_config(_write(tmp_path, RATES + "[correlations]\n" + table + "\n"))


def test_correlations_at_xi_0_are_refused_before_any_work_and_a_checkpoint_warns(tmp_path, monkeypatch):
    from pyspb.backends import native

    calls = []
    monkeypatch.setattr(native, "steady_state_populations", lambda *a, **k: calls.append(a))
    no_drive = RATES.replace("xi = 0.06", "xi = [0.0, 0.06]") + "[correlations]\ntau = [0.0]\n"
    with pytest.raises(SweepConfigError, match="xi = 0"):
        run_sweep(_write(tmp_path, no_drive), tmp_path / "out.nc", progress=False)
    assert calls == []  # refused before the steady states were computed
    monkeypatch.undo()
    text = RATES + "[solve]\ncutoff = 3\n[correlations]\ntau = [0.0]\n"
    with pytest.warns(UserWarning, match="records the steady states only"):
        run_sweep(_write(tmp_path, text), tmp_path / "out.nc", checkpoint=tmp_path / "ckpt", progress=False)
