import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr
from reference import qutip_model, refined_populations

import pyspb
from pyspb.attributes import VARIABLES
from pyspb.backends import native
from pyspb.solve import OBSERVABLES


def grid():
    return pyspb.rate_grid(
        Delta=np.array([-0.1, 0.0, 0.2]),
        chi=np.array([0.5, 1.5]),
        J_re=0.3,
        J_im=-0.1,
        xi=0.06,
        gamma=0.25,
    )


def test_result_has_inputs_dims_coords_units_and_provenance():
    inputs = grid()
    out = pyspb.solve(inputs, cutoff=4)
    assert dict(out.sizes) == {"Delta": 3, "chi": 2}
    xr.testing.assert_identical(out.Delta, inputs.Delta)
    for name in ("N_cw", "N_ccw", "g2_cw", "g3_cw", "g4_cw", "g2_ccw", "g3_ccw", "g4_ccw", "truncation_error"):
        assert out[name].dims == ("Delta", "chi"), name
        assert out[name].attrs["units"] == "1", name
        assert out[name].attrs["long_name"] == VARIABLES[name][0], name  # its own label, none carried over
    assert "second-order cw-ccw cross correlation" in out.g2_cross.attrs["long_name"]
    for name in (name for name in OBSERVABLES if name != "g2_cross"):  # each label names its own mode and order
        mode = name.split("_")[1]
        assert f"of the {mode} mode" in out[name].attrs["long_name"], name
        order = {"N": "mean photon number", "g2": "second-order", "g3": "third-order", "g4": "fourth-order"}
        assert order[name.split("_")[0]] in out[name].attrs["long_name"], name
    # the scalar inputs are recorded with their own labels and rate units
    for name in ("J_re", "J_im", "xi", "gamma"):
        assert float(out[name]) == float(inputs[name]), name
        assert out[name].attrs["units"] == "1e6 s-1" and out[name].attrs["long_name"] == VARIABLES[name][0]
    assert out.attrs["backend"] == "native" and out.attrs["cutoff"] == 4
    assert out.attrs["pyspb_version"] == pyspb.__version__
    assert out.attrs["tolerance"] == native.DEFAULT_TOLERANCE
    assert out.attrs["numpy_version"] == np.__version__
    assert out.attrs["method"].startswith("level sweeps")


@pytest.mark.parametrize("lazy", [False, True], ids=["numpy", "dask"])
def test_every_input_coord_on_the_grid_dims_is_kept(lazy):
    if lazy:
        pytest.importorskip("dask")
    inputs = grid().assign_coords(
        label=("Delta", ["red", "green", "blue"]),  # non-index coord of one dim
        weight=(("Delta", "chi"), np.arange(6.0).reshape(3, 2)),  # on dims no variable shares
        run="A",  # scalar coord
    )
    out = pyspb.solve(inputs.chunk({"Delta": 2}) if lazy else inputs, cutoff=3)
    for name in ("label", "weight", "run"):
        xr.testing.assert_identical(out[name], inputs[name])


def test_each_labelled_grid_point_matches_qutip():
    """Every (Delta, chi) label carries QuTiP's steady state of that point (independent solver)."""
    qutip = pytest.importorskip("qutip")
    inputs = grid()
    out = pyspb.solve(inputs, cutoff=4, P=True)
    for Delta in inputs.Delta.values:
        for chi in inputs.chi.values:
            H, c_ops, a1, a2 = qutip_model(Delta, 0.3 - 0.1j, chi, 0.06, 0.25, cutoff=4)
            rho = qutip.steadystate(H, c_ops, method="direct")
            here = out.sel(Delta=Delta, chi=chi)
            np.testing.assert_allclose(here.P.values.ravel(), rho.diag().real, rtol=1e-7, atol=1e-14)
            N_cw = qutip.expect(a1.dag() * a1, rho)
            g2_cw = qutip.expect(a1.dag() * a1.dag() * a1 * a1, rho) / N_cw**2
            N_ccw = qutip.expect(a2.dag() * a2, rho)
            assert float(here.N_cw) == pytest.approx(N_cw, rel=1e-8)
            assert float(here.g2_cw) == pytest.approx(g2_cw, rel=1e-6)
            assert float(here.N_ccw) == pytest.approx(N_ccw, rel=1e-7)


def test_complex_J_and_split_J_agree_and_chunks_do_not_matter():
    split = pyspb.solve(grid(), cutoff=3)
    inputs = grid()
    inputs["J"] = inputs.J_re + 1j * inputs.J_im
    joined = pyspb.solve(inputs.drop_vars(["J_re", "J_im"]), cutoff=3, chunk_size=1, progress=False)
    xr.testing.assert_allclose(split[list(OBSERVABLES)].drop_attrs(), joined[list(OBSERVABLES)].drop_attrs(), rtol=1e-9)
    xr.testing.assert_identical(joined.J, inputs.J)  # the inputs are recorded as given


def test_scalar_inputs_give_a_zero_dimensional_result():
    out = pyspb.solve(pyspb.Device().rates(), cutoff=5)
    assert out.g2_cw.ndim == 0
    assert float(out.g2_cw) == pytest.approx(0.012, rel=0.02)  # the paper's number


def test_paper_headline_numbers():
    out = pyspb.solve(
        xr.concat([pyspb.Device().rates(J0=0.0, tip=False), pyspb.Device().rates()], dim="case"), cutoff=8
    )
    ideal, tip = out.isel(case=0), out.isel(case=1)
    assert float(ideal.g2_cw) == pytest.approx(0.009, abs=0.0005)
    assert float(tip.g2_cw) == pytest.approx(0.012, abs=0.0005)
    assert float(tip.g3_cw) == pytest.approx(3.6e-5, rel=0.03)
    assert float(tip.g4_cw) == pytest.approx(4.8e-8, rel=0.03)
    assert float(tip.truncation_error) < 1e-20


def test_J_zero_leaves_ccw_empty_and_its_g_nan():
    inputs = pyspb.rate_grid(Delta=0.0, J_re=0.0, J_im=0.0, chi=1.0, xi=0.1, gamma=0.3)
    out = pyspb.solve(inputs, cutoff=4)
    assert float(out.N_ccw) == 0.0 and "exactly 0 where J = 0" in out.N_ccw.attrs["comment"]
    assert np.isnan(float(out.g2_ccw)) and "empty" in out.g2_ccw.attrs["comment"]


def test_small_cutoff_gives_nan_for_higher_orders_with_a_note():
    with pytest.warns(pyspb.TruncationWarning):  # 1.7e-4 in the top level
        out = pyspb.solve(grid(), cutoff=2)
    assert np.all(np.isnan(out.g3_cw)) and np.all(np.isnan(out.g4_cw))
    assert "cutoff 2 < 4" in out.g4_cw.attrs["comment"]
    assert np.all(np.isfinite(out.g2_cw))


def test_truncation_error_flags_a_too_small_cutoff():
    inputs = pyspb.rate_grid(Delta=0.0, J_re=0.0, J_im=0.0, chi=0.02, xi=0.25, gamma=0.5)  # N ~ 1
    with pytest.warns(pyspb.TruncationWarning):
        assert float(pyspb.solve(inputs, cutoff=3).truncation_error) > 0.01
    assert float(pyspb.solve(inputs, cutoff=12).truncation_error) < 1e-6


@pytest.mark.parametrize(
    "change, error, match",
    [
        (lambda ds: ds.drop_vars("chi"), TypeError, "lack the variable"),
        (lambda ds: ds.drop_vars(["J_re", "J_im"]), TypeError, "J"),
        (lambda ds: ds.assign(gamma=-0.1), ValueError, "gamma must be > 0"),
        (lambda ds: ds.assign(gamma=0.0), ValueError, "gamma must be > 0"),
        (lambda ds: ds.assign(xi=np.nan), ValueError, "NaN or infinite"),
        (lambda ds: ds.assign(Delta=np.inf), ValueError, "NaN or infinite"),
        (lambda ds: ds.assign(xi=-0.1), ValueError, "xi must be >= 0"),
        (lambda ds: ds.assign(chi="big"), TypeError, "numeric"),
        (lambda ds: ds.assign(chi=1 + 1j), TypeError, "real"),
        (lambda ds: ds.assign(J=0.3 + 0j), ValueError, "one way only"),
    ],
)
def test_bad_inputs(change, error, match):
    with pytest.raises(error, match=match):
        pyspb.solve(change(grid()), cutoff=3)


@pytest.mark.parametrize(
    "cutoff, error",
    [(0, ValueError), (-2, ValueError), (2.5, TypeError), ("4", TypeError), ("Auto", TypeError), (True, TypeError)],
)
def test_bad_cutoff(cutoff, error):
    with pytest.raises(error, match="cutoff"):
        pyspb.solve(grid(), cutoff=cutoff)


def test_unknown_backend_and_non_dataset():
    with pytest.raises(ValueError, match="unknown backend 'fortran'"):
        pyspb.solve(grid(), cutoff=3, backend="fortran")
    with pytest.raises(TypeError, match="xarray.Dataset"):
        pyspb.solve({"Delta": 0.0}, cutoff=3)


def test_probabilities_are_probabilities():
    out = pyspb.solve(grid(), cutoff=4, P=True)
    assert float(out.P.min()) >= 0 and float(out.P.max()) <= 1
    np.testing.assert_allclose(out.P.sum(["n_cw", "n_ccw"]), 1.0, rtol=1e-12)
    assert out.P.dims == ("Delta", "chi", "n_cw", "n_ccw")


def test_native_solve_never_imports_juliacall():
    code = (
        "import sys, pyspb; pyspb.solve(pyspb.Device().rates(), cutoff=3, backend='native'); "
        "assert 'juliacall' not in sys.modules, 'juliacall imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dask_inputs_give_lazy_results_equal_to_the_eager_ones():
    pytest.importorskip("dask")
    inputs = pyspb.Device().rates(phi=np.linspace(0.1, 0.9, 5), r=[0.3, 0.35])
    eager = pyspb.solve(inputs, cutoff=3, P=True)
    lazy = pyspb.solve(inputs.chunk({"phi": 2}), cutoff=3, P=True)
    assert lazy.g2_cw.chunks is not None  # nothing computed yet
    xr.testing.assert_allclose(lazy.compute().drop_attrs(), eager.drop_attrs(), rtol=1e-10)


@pytest.mark.slow
def test_dask_distributed_local_cluster_with_two_workers():
    distributed = pytest.importorskip("dask.distributed")
    inputs = pyspb.Device().rates(phi=np.linspace(0.1, 0.9, 8), r=[0.3, 0.35])
    eager = pyspb.solve(inputs, cutoff=4)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            lazy = pyspb.solve(inputs.chunk({"phi": 2}), cutoff=4)
            computed = client.compute(lazy).result()
            assert len(client.scheduler_info()["workers"]) == 2
    xr.testing.assert_allclose(computed.drop_attrs(), eager.drop_attrs(), rtol=1e-10)


def test_auto_cutoff_settles_the_observables():
    inputs = pyspb.rate_grid(Delta=0.0, J_re=0.2, J_im=0.0, chi=0.3, xi=np.array([0.1, 0.3]), gamma=0.5)
    out = pyspb.solve(inputs, cutoff="auto")
    chosen = out.attrs["cutoff"]
    assert chosen >= 6 and "auto" in out.attrs["cutoff_selection"]
    bigger = pyspb.solve(inputs, cutoff=chosen + 4)
    for name in ("N_cw", "g2_cw", "g3_cw", "g4_cw"):
        np.testing.assert_allclose(out[name], bigger[name], rtol=1e-5)


def test_auto_cutoff_refuses_an_unsettled_model(monkeypatch):
    solve_module = sys.modules["pyspb.solve"]

    monkeypatch.setattr(solve_module, "AUTO_CUTOFFS", (4, 6))
    inputs = pyspb.rate_grid(Delta=0.0, J_re=0.0, J_im=0.0, chi=0.01, xi=1.0, gamma=0.5)  # N ~ 16
    with pytest.raises(ValueError, match="ceiling 6 .*give a larger cutoff explicitly"):
        pyspb.solve(inputs, cutoff="auto")


def test_a_cutoff_that_cannot_fit_in_memory_fails_at_once_with_the_memory_it_needs():
    """Cutoff 200 (d^2 = 1.6e9 elements per point) used to die in a NumPy allocation."""
    with pytest.raises(MemoryError, match=r"cutoff 200 needs about [0-9.]+ GiB .* available"):
        pyspb.solve(pyspb.Device().rates(), cutoff=200)


def test_auto_cutoff_stops_where_the_next_cutoff_would_not_fit(monkeypatch):
    from pyspb.backends import native

    fits_up_to_6 = native.memory_estimate(7)["minimum"]
    monkeypatch.setattr(native, "available_memory", lambda: fits_up_to_6)
    inputs = pyspb.rate_grid(Delta=0.0, J_re=0.0, J_im=0.0, chi=0.01, xi=1.0, gamma=0.5)  # N ~ 16
    with pytest.raises(MemoryError, match="stopped before cutoff 8.*cutoff 8 needs about"):
        pyspb.solve(inputs, cutoff="auto", progress=False)


def test_auto_cutoff_shows_which_cutoff_it_tries(capsys):
    inputs = pyspb.rate_grid(Delta=0.0, J_re=0.2, J_im=0.0, chi=0.3, xi=0.1, gamma=0.5)
    pyspb.solve(inputs, cutoff="auto", progress=True)
    err = capsys.readouterr().err
    assert "cutoff='auto'" in err and "trying cutoff 4" in err


def test_unresolved_ccw_correlations_at_the_paper_tip_point_are_nan_with_a_reason():
    """|J| / gamma = 0.07: g4_ccw is made of populations ~1e-29, varies wildly with cutoff."""
    inputs = pyspb.Device().rates()
    runs = [pyspb.solve(inputs, cutoff=c) for c in (6, 8)]
    for out in runs:
        assert np.isnan(float(out.g4_ccw)) and "not resolved" in out.g4_ccw.attrs["comment"]
        assert np.isfinite(float(out.g2_ccw)) and np.isfinite(float(out.g4_cw))
    # what is reported is stable: g2_ccw and g4_cw agree between the two cutoffs
    for name in ("g2_ccw", "g4_cw"):
        assert float(runs[0][name]) == pytest.approx(float(runs[1][name]), rel=1e-6)


def test_progress_bar_on_request_and_off_with_false(capsys):
    inputs = pyspb.rate_grid(Delta=np.linspace(-0.5, 0.5, 6), J_re=0.3, J_im=0.1, chi=1.0, xi=0.1, gamma=0.4)
    pyspb.solve(inputs, cutoff=3, chunk_size=2, progress=True)
    shown = capsys.readouterr().err
    assert "pyspb.solve (native, cutoff 3)" in shown and "6/6" in shown
    pyspb.solve(inputs, cutoff=3, chunk_size=2, progress=False)
    pyspb.solve(inputs, cutoff=3)  # default: a bar only for grids larger than one chunk
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------- unreliable numbers (issue 9)


def coherent_amplitudes(Delta, J, xi, gamma):
    """chi = 0: both modes are coherent; their amplitudes solve the linear equations of motion."""
    M = np.array([[1j * Delta + gamma / 2, 1j * J], [1j * np.conj(J), 1j * Delta + gamma / 2]])
    return np.linalg.solve(M, [-1j * xi, 0.0])


def test_far_too_small_cutoff_warns_and_gross_points_are_nan():
    """chi = 0, xi = 10 gamma: exact N = 400; cutoff 6 used to return N = 3.0 without a word."""
    xi = np.array([0.05, 0.45, 10.0])
    inputs = pyspb.rate_grid(Delta=0.0, J_re=0.0, J_im=0.0, chi=0.0, xi=xi, gamma=1.0)
    with pytest.warns(pyspb.TruncationWarning) as record:
        out = pyspb.solve(inputs, cutoff=6)
    message = str(record[0].message)
    assert "up to 0.14 at cutoff 6" in message and "at 2 of 3 point(s)" in message
    assert "at 1 point(s) it exceeds 0.01" in message and "Raise cutoff (or use cutoff='auto')" in message
    assert record[0].filename == __file__  # points at the user's call
    N_exact = np.abs([coherent_amplitudes(0.0, 0.0, x, 1.0)[0] for x in xi]) ** 2  # 4 xi^2
    assert float(out.N_cw[0]) == pytest.approx(N_exact[0], rel=1e-9)
    assert float(out.N_cw[1]) == pytest.approx(N_exact[1], rel=1e-2)  # warned: 1e-3 off, reported
    for name in ("N_cw", "g2_cw", "g4_cw"):  # 0.14 in the top level: N would be 3.0 instead of 400
        assert np.isnan(float(out[name][2])) and "truncation_error > 0.01" in out[name].attrs["comment"]
    assert float(out.truncation_error[2]) > 0.1  # the evidence is kept
    assert issubclass(pyspb.TruncationWarning, RuntimeWarning)


def test_enough_cutoff_gives_no_warning():
    inputs = pyspb.rate_grid(Delta=0.0, J_re=0.0, J_im=0.0, chi=0.0, xi=np.array([0.05, 0.45]), gamma=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pyspb.solve(inputs, cutoff=14)


def test_g2_tau_warns_about_truncation_too():
    inputs = pyspb.rate_grid(Delta=0.0, J_re=0.0, J_im=0.0, chi=0.0, xi=10.0, gamma=1.0)
    with pytest.warns(pyspb.TruncationWarning, match="pyspb.g2_tau: truncation error .* at cutoff 4"):
        pyspb.g2_tau(inputs, [0.0, 0.5], cutoff=4)


def test_cli_sweep_warns_about_truncation(tmp_path):
    config = tmp_path / "far.toml"
    config.write_text("[rates]\nDelta = 0.0\nJ_re = 0.0\nJ_im = 0.0\nchi = 0.0\nxi = 10.0\ngamma = 1.0\n")
    run = subprocess.run(
        [sys.executable, "-m", "pyspb.cli", "sweep", str(config), "--out", str(tmp_path / "far.nc"), "--cutoff", "4"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "TruncationWarning: pyspb.solve: truncation error" in run.stderr


@pytest.mark.parametrize("J", [0.07, 1.0])
def test_ccw_at_huge_detuning_is_correct_or_nan(J):
    """chi = 0 (exact: coherent states).  N_ccw used to be rounding noise from Delta / gamma ~ 1e5 on."""
    Delta = np.geomspace(1e2, 3e8, 12)
    out = pyspb.solve(pyspb.rate_grid(Delta=Delta, J_re=J, J_im=0.0, chi=0.0, xi=0.2, gamma=1.0), cutoff=4)
    exact = np.abs([coherent_amplitudes(D, J, 0.2, 1.0) for D in Delta]) ** 2
    np.testing.assert_allclose(out.N_cw, exact[:, 0], rtol=1e-7)
    N_ccw = out.N_ccw.values
    reported = np.isfinite(N_ccw)
    np.testing.assert_allclose(N_ccw[reported], exact[reported, 1], rtol=1e-5)
    # resolved to ~1e-6 up to ~1e3 gamma; from ~1e5 gamma on the old code returned rounding noise
    assert reported[:2].all() and not reported[-6:].any()
    assert "not resolved by the solver" in out.N_ccw.attrs["comment"]
    g2 = out.g2_ccw.values
    np.testing.assert_allclose(g2[np.isfinite(g2)], 1.0, rtol=1e-5)  # coherent: g2 = 1, never 1e8


def test_ccw_at_huge_detuning_with_kerr_matches_the_weak_drive_population():
    """chi = 5 gamma: N_ccw against Eq. (6)'s P01 (exact to O(xi^4)); g2_ccw was 8.4e7 at 3e8 gamma."""
    inputs = pyspb.rate_grid(Delta=np.geomspace(1e2, 3e8, 8), J_re=1.0, J_im=0.0, chi=5.0, xi=0.2, gamma=1.0)
    out = pyspb.solve(inputs, cutoff=4)
    P01 = pyspb.analytic.weak_drive(inputs).P01_ccw.values
    N_ccw = out.N_ccw.values
    reported = np.isfinite(N_ccw)
    assert reported[:2].all()
    np.testing.assert_allclose(N_ccw[reported], P01[reported], rtol=1e-4)
    assert np.isnan(out.g2_ccw.values[-1])


def test_paper_device_keeps_every_number_within_its_detuning_range():
    """The resolution rule grows only beyond |Delta| + 3|chi| = 10 gamma: Fig. 1(c)'s range keeps all numbers."""
    dev = pyspb.Device()
    gamma1 = float(dev.rates(tip=False).gamma1)
    out = pyspb.solve(dev.rates(Delta=np.linspace(-5, 5, 11) * gamma1, tip=False), cutoff=5)
    for name in ("N_cw", "N_ccw", "g2_cw", "g2_ccw"):
        assert np.isfinite(out[name]).all(), name


def test_a_nearly_empty_mode_at_large_kerr_is_exact_or_nan():
    """chi = 151 gamma, Delta = -7.3 gamma: energies ~1e3 gamma cancel in the equations, so the
    ccw mode's small moments carry more rounding than at chi ~ gamma.  With |Delta| alone in the
    resolution rule g4_ccw was reported with an error of 1.5e-4; every reported number must be
    within 1e-6 of a long-double-refined LU (or NaN)."""
    point = dict(Delta=-7.296196927097647, J=3.2500012571590005 - 5.093237501312227j, chi=151.0845917270933)
    point.update(xi=0.06479942363969761, gamma=1.0)
    inputs = pyspb.rate_grid(J_re=point["J"].real, J_im=point["J"].imag, **{k: v for k, v in point.items() if k != "J"})
    out = pyspb.solve(inputs, cutoff=4)
    exact = pyspb.observables.correlations(refined_populations(cutoff=4, **point)[None], resolution=0.0)
    for name in OBSERVABLES:
        value = float(out[name])
        assert np.isnan(value) or abs(value / exact[name][0] - 1) < 1e-6, (name, value, exact[name][0])
    assert np.isfinite(float(out.g2_ccw))  # the rule does not drop what is resolved


def test_saved_result_reproduces_itself(tmp_path):
    inputs = pyspb.Device().rates(phi=np.linspace(0.2, 0.3, 3), r=[0.3, 0.35])
    out = pyspb.solve(inputs, cutoff=4)
    for name in ("chi", "xi"):  # scalars of the device
        assert out[name].ndim == 0 and float(out[name]) == float(inputs[name])
    xr.testing.assert_identical(out.gamma, inputs.gamma)  # over r: not a coord, still recorded
    loaded = pyspb.load(pyspb.save(out, tmp_path / "run.nc"))
    again = pyspb.solve(loaded, cutoff=loaded.attrs["cutoff"], backend=loaded.attrs["backend"])
    xr.testing.assert_allclose(again[list(OBSERVABLES)], out[list(OBSERVABLES)], rtol=1e-12)


@pytest.mark.parametrize("lazy", [False, True], ids=["numpy", "dask"])
def test_a_dim_of_size_zero_gives_an_empty_result(lazy):
    if lazy:
        pytest.importorskip("dask")
    inputs = pyspb.Device().rates(phi=np.array([]), r=[0.3, 0.4])
    out = pyspb.solve(inputs.chunk() if lazy else inputs, cutoff=3).compute()
    assert dict(out.g2_cw.sizes) == {"phi": 0, "r": 2} or dict(out.g2_cw.sizes) == {"r": 2, "phi": 0}
    assert out.N_cw.size == 0


def test_the_attrs_count_the_points_each_solver_finished():
    inputs = pyspb.rate_grid(Delta=0.0, J_re=0.6, J_im=0.2, chi=2.0, xi=np.array([0.05, 0.1, 3.0]), gamma=1.0)
    with pytest.warns(pyspb.TruncationWarning):  # xi = 3 gamma truncates at cutoff 4 (same counts)
        out = pyspb.solve(inputs, cutoff=4)
    counts = [out.attrs[f"points_{path}"] for path in ("level_sweeps", "krylov", "sparse_lu")]
    assert sum(counts) == 3 and counts[0] >= 2 and counts[1] >= 1  # xi = 3 gamma: beyond the sweeps


def test_top_order_correlations_of_a_small_cutoff_warn_with_their_estimated_error():
    # truncation_error is ~1e-15 at cutoff 4 for the paper's device, yet g4 errs by ~1e-4
    # (its moment weighs the top levels by n!): the estimate must say so, and be right
    inputs = pyspb.Device().rates()
    exact = pyspb.solve(inputs, cutoff=10)
    with pytest.warns(pyspb.TruncationWarning, match=r"g4_cw \(up to") as caught:
        small = pyspb.solve(inputs, cutoff=4)
    assert not any("g2_cw" in str(w.message) for w in caught)  # g2 and g3 are fine at cutoff 4
    error = abs(float(small.g4_cw) / float(exact.g4_cw) - 1)
    estimate = small.g4_cw.attrs["truncation_estimate_max"]
    assert error > 1e-5 and error / 3 < estimate < 3 * error
    assert float(small.truncation_error) < 1e-9  # the old check saw nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pyspb.solve(inputs, cutoff=6)  # g4 good to ~1e-13 there: no warning
