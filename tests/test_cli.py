import re
import signal
import subprocess
import sys
import time

import pytest

from pyspb.cli import main


def test_table_prints_the_three_cavities(capsys):
    assert main(["table", "--cutoff", "5"]) == 0
    text = capsys.readouterr().out
    assert "ideal cavity" in text and "with tip" in text
    assert "99.7%" in text and "0.0%" in text


def test_help_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "pyspb.cli", "--help"], capture_output=True, text=True, check=True)
    assert "table" in result.stdout


def test_unknown_command_fails():
    with pytest.raises(SystemExit):
        main(["frobnicate"])


# --------------------------------------------------------------------------- help


def test_help_explains_both_verbs(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "reproduce" in text and "sweep" in text and "table" in text
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = capsys.readouterr().out
    assert "[device]" in text and "[rates]" in text and "start" in text


# --------------------------------------------------------------------------- reproduce


def test_reproduce_all_quick_writes_every_panel(tmp_path, capsys):
    import pyspb
    from pyspb.paper import FIGURES

    assert main(["reproduce", "all", "--quick", "--out", str(tmp_path)]) == 0
    for name in FIGURES:
        nc, png = tmp_path / f"{name}.nc", tmp_path / f"{name}.png"
        assert nc.exists() and png.exists(), name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        ds = pyspb.load(nc)
        assert ds.attrs["panel"] == name and ds.attrs["quick"] == 1
    printed = capsys.readouterr().out.split()
    assert len(printed) == 2 * len(FIGURES)


def test_reproduce_refuses_unknown_figures(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "fig7", "--out", str(tmp_path)])
    assert "unknown figure" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- sweep

DEVICE_TOML = """
[device]
r = [0.3, 0.35]
phi = {start = 0.2, stop = 0.3, num = 3}
J0_over_gamma1 = 1.8

[solve]
cutoff = 4
"""

RATES_TOML = """
[rates]
Delta = [-0.1, 0.0, 0.1]
J_re = {start = 0.0, stop = 0.4, num = 2}
J_im = 0.05
chi = 1.58
xi = 0.06
gamma = 0.3
"""

OBSERVABLES = ("N_cw", "N_ccw", "g2_cw", "g3_cw", "g4_cw", "g2_ccw", "g3_ccw", "g4_ccw", "truncation_error")


def _write(tmp_path, text, name="sweep.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_sweep_device_level_equals_solve(tmp_path, capsys):
    import numpy as np
    import xarray as xr

    import pyspb

    out = tmp_path / "device.nc"
    assert main(["sweep", str(_write(tmp_path, DEVICE_TOML)), "--out", str(out)]) == 0
    assert "pyspb.solve (native, cutoff 4)" in capsys.readouterr().err  # the progress bar
    result = pyspb.load(out)
    expected = pyspb.solve(pyspb.Device().rates(r=[0.3, 0.35], phi=np.linspace(0.2, 0.3, 3)), cutoff=4)
    assert result.attrs["cutoff"] == 4 and result.attrs["sweep_level"] == "device"
    assert "[device]" in result.attrs["sweep_config"]
    for name in OBSERVABLES:
        xr.testing.assert_allclose(result[name].drop_attrs(), expected[name].drop_attrs(), rtol=1e-12)
    assert "J_abs" in result and result["J_abs"].attrs["units"] == "1e6 s-1"


def test_sweep_rate_level_equals_solve_and_cli_overrides_cutoff(tmp_path):
    import numpy as np
    import xarray as xr

    import pyspb

    out = tmp_path / "rates.nc"
    assert (
        main(["sweep", str(_write(tmp_path, RATES_TOML)), "--out", str(out), "--cutoff", "5", "--backend", "native"])
        == 0
    )
    result = pyspb.load(out)
    inputs = pyspb.rate_grid(
        Delta=[-0.1, 0.0, 0.1], J_re=np.linspace(0.0, 0.4, 2), J_im=0.05, chi=1.58, xi=0.06, gamma=0.3
    )
    expected = pyspb.solve(inputs, cutoff=5)
    assert result.attrs["cutoff"] == 5 and dict(result.sizes) == {"Delta": 3, "J_re": 2}
    for name in OBSERVABLES:
        xr.testing.assert_allclose(result[name].drop_attrs(), expected[name].drop_attrs(), rtol=1e-12)


def test_sweep_checkpoint_resumes(tmp_path, monkeypatch):
    import xarray as xr

    import pyspb
    from pyspb.backends import native

    solved = []  # grid points handed to the native engine

    def counting(*args, **kwargs):
        solved.append(len(args[0]))
        return solve_points(*args, **kwargs)

    solve_points = native.steady_state_populations
    monkeypatch.setattr(native, "steady_state_populations", counting)
    config = _write(tmp_path, DEVICE_TOML)
    checkpoint = tmp_path / "run.ckpt.nc"
    first, second = tmp_path / "first.nc", tmp_path / "second.nc"
    assert main(["sweep", str(config), "--out", str(first), "--checkpoint", str(checkpoint)]) == 0
    assert checkpoint.exists() and sum(solved) == 6  # r (2) x phi (3)
    assert main(["sweep", str(config), "--out", str(second), "--checkpoint", str(checkpoint)]) == 0
    assert sum(solved) == 6, "the second run computed points the checkpoint holds"
    xr.testing.assert_equal(pyspb.load(first)["g2_cw"], pyspb.load(second)["g2_cw"])


@pytest.mark.parametrize(
    "text, message",
    [
        (DEVICE_TOML + RATES_TOML, "exactly one"),
        ("[solve]\ncutoff = 4\n", "exactly one"),
        ("[device]\nradius = 0.3\n", "unknown device parameter"),
        ("[device]\nr = -0.3\n", "r must be >= 0"),
        ("[device]\nr = 'near'\n", "must be a number"),
        ("[device]\nr = []\n", "one or more numbers"),
        ("[device]\nr = {start = 0.1, stop = 0.2}\n", "start, stop, num"),
        ("[device]\nr = {start = 0.1, stop = 0.2, num = 0}\n", "num must be an integer >= 1"),
        ("[device]\ntip = 1\n", "true or false"),
        ("[rates]\nDelta = 0.0\nJ_re = 0.1\nchi = 1.0\nxi = 0.1\n", "lacks gamma"),
        ("[rates]\nDelta = 0.0\nJ_re = 0.1\nchi = 1.0\nxi = 0.1\ngamma = 1.0\nkappa = 2\n", "unknown rate"),
        ("[rates]\nDelta = 0.0\nJ_re = 0.1\nchi = 1.0\nxi = 0.1\ngamma = -1.0\n", "gamma must be > 0"),
        ("[device]\nr = 0.3\n[solve]\ncutoff = 4\nmethod = 'fast'\n", "unknown key"),
        ("[device]\nr = 0.3\n[output]\nfile = 'x'\n", "unknown table"),
        ("[device\nr = 0.3\n", "not valid TOML"),
        ("[device]\nr = 0.3\n[solve]\nP = 'false'\n", "[solve] P must be true or false"),
        ("[device]\nr = 0.3\n[solve]\ntolerance = 'tight'\n", "[solve] tolerance must be a number"),
        ("[device]\nr = 0.3\n[solve]\ntolerance = 0.1\n", "tolerance must be in (0, 1e-3)"),
    ],
)
def test_sweep_bad_configs_fail_with_a_message(tmp_path, capsys, text, message):
    out = tmp_path / "out.nc"
    assert main(["sweep", str(_write(tmp_path, text)), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_sweep_missing_config_file(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o.nc")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_sweep_out_that_cannot_be_written_fails_before_any_work(tmp_path, capsys, monkeypatch):
    from pyspb.backends import native

    calls = []
    monkeypatch.setattr(native, "steady_state_populations", lambda *a, **k: calls.append(1))
    config = _write(tmp_path, DEVICE_TOML)
    blocker = tmp_path / "file"
    blocker.write_text("")  # a path under a regular file cannot be created, even by root
    assert main(["sweep", str(config), "--out", str(blocker / "out.nc")]) == 2
    assert "--out: cannot write" in capsys.readouterr().err
    assert calls == []


def test_ctrl_c_in_a_checkpointed_sweep_says_what_was_saved(tmp_path):
    config = _write(tmp_path, DEVICE_TOML.replace("num = 3", "num = 12"))
    store = tmp_path / "run.ckpt"
    script = (
        "import sys, time\n"
        "from pyspb.backends import native\n"
        "original = native.steady_state_populations\n"
        "def slow(*args, **kwargs):\n"
        "    time.sleep(0.2)\n"
        "    return original(*args, **kwargs)\n"
        "native.steady_state_populations = slow\n"
        "from pyspb.cli import main\n"
        "sys.argv[0] = 'pyspb'\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = ["sweep", str(config), "--out", str(tmp_path / "out.nc"), "--checkpoint", str(store)]
    # [solve] chunk_size = 2: 12 chunks of the 24 points
    config.write_text(config.read_text().replace("[solve]", "[solve]\nchunk_size = 2"))
    process = subprocess.Popen([sys.executable, "-c", script, *args], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((store / "chunks").glob("*.json"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in err
    assert re.search(r"pyspb sweep: interrupted: \d+ of 24 points are saved in checkpoint .*run the same call", err)


def test_sweep_non_utf8_config_is_one_line_error(tmp_path, capsys):
    config = tmp_path / "latin1.toml"
    config.write_bytes("[device]\nr = 0.3  # Rayon du résonateur\n".encode("latin-1"))
    out = tmp_path / "out.nc"
    assert main(["sweep", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "not UTF-8" in err and "save it as UTF-8" in err
    assert not out.exists()


# --------------------------------------------------------------------------- argument errors


def _usage_error(argv, capsys) -> str:
    """The stderr of a command line refused with exit status 2 (one line, no traceback)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("verb", ["table", "reproduce fig1b --quick", "sweep CONFIG"])
@pytest.mark.parametrize("cutoff", ["0", "-3", "six"])
def test_bad_cutoff_is_refused_before_any_work(tmp_path, capsys, verb, cutoff):
    argv = [w.replace("CONFIG", str(_write(tmp_path, DEVICE_TOML))) for w in verb.split()]
    out = tmp_path / "out"
    argv += [] if verb == "table" else ["--out", str(out)]
    err = _usage_error([*argv, "--cutoff", cutoff], capsys)
    assert "--cutoff: must be an integer >= 1" in err and repr(cutoff) in err
    assert not out.exists()


def test_reproduce_out_naming_a_file_is_refused(tmp_path, capsys):
    existing = tmp_path / "figures"
    existing.write_text("keep me")
    err = _usage_error(["reproduce", "fig1b", "--quick", "--out", str(existing)], capsys)
    assert "is a file, not a directory" in err and "give a new or existing directory" in err
    assert existing.read_text() == "keep me"


def test_sweep_out_naming_a_directory_is_refused(tmp_path, capsys):
    err = _usage_error(["sweep", str(_write(tmp_path, DEVICE_TOML)), "--out", str(tmp_path)], capsys)
    assert "is a directory; give the NetCDF file to write" in err
