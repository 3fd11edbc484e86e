import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import pyspb
from pyspb.backends import native


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
        assert out[name].attrs["units"] == "1" and out[name].attrs["long_name"], name
    assert out.attrs["backend"] == "native" and out.attrs["cutoff"] == 4
    assert out.attrs["pyspb_version"] == pyspb.__version__
    assert out.attrs["tolerance"] == native.DEFAULT_TOLERANCE
    assert out.attrs["numpy_version"] == np.__version__
    assert out.attrs["method"].startswith("level sweeps")


@pytest.mark.parametrize("lazy", [False, True], ids=["numpy", "dask"])
def test_every_input_coord_on_the_grid_dims_is_kept(lazy):
    inputs = grid().assign_coords(
        label=("Delta", ["red", "green", "blue"]),  # non-index coord of one dim
        weight=(("Delta", "chi"), np.arange(6.0).reshape(3, 2)),  # on dims no variable shares
        run="A",  # scalar coord
    )
    out = pyspb.solve(inputs.chunk({"Delta": 2}) if lazy else inputs, cutoff=3)
    for name in ("label", "weight", "run"):
        xr.testing.assert_identical(out[name], inputs[name])


def test_each_grid_point_equals_the_flat_backend_call():
    inputs = grid()
    out = pyspb.solve(inputs, cutoff=4, P=True)
    for Delta in inputs.Delta.values:
        for chi in inputs.chi.values:
            P = native.steady_state_populations(
                np.array([Delta]), np.array([0.3 - 0.1j]), np.array([chi]), np.array([0.06]), np.array([0.25]), cutoff=4
            )[0]
            np.testing.assert_allclose(out.P.sel(Delta=Delta, chi=chi).values, P, rtol=1e-9, atol=1e-20)


def test_complex_J_and_split_J_agree_and_chunks_do_not_matter():
    split = pyspb.solve(grid(), cutoff=3)
    inputs = grid()
    inputs["J"] = inputs.J_re + 1j * inputs.J_im
    joined = pyspb.solve(inputs.drop_vars(["J_re", "J_im"]), cutoff=3, chunk_size=1, progress=False)
    xr.testing.assert_allclose(split.drop_attrs(), joined.drop_attrs(), rtol=1e-9)


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
    assert float(out.N_ccw) < 1e-14 * float(out.N_cw)
    assert np.isnan(float(out.g2_ccw)) and "empty" in out.g2_ccw.attrs["comment"]


def test_small_cutoff_gives_nan_for_higher_orders_with_a_note():
    out = pyspb.solve(grid(), cutoff=2)
    assert np.all(np.isnan(out.g3_cw)) and np.all(np.isnan(out.g4_cw))
    assert "cutoff 2 < 4" in out.g4_cw.attrs["comment"]
    assert np.all(np.isfinite(out.g2_cw))


def test_truncation_error_flags_a_too_small_cutoff():
    inputs = pyspb.rate_grid(Delta=0.0, J_re=0.0, J_im=0.0, chi=0.02, xi=0.25, gamma=0.5)  # N ~ 1
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


def test_checkpoint_with_dask_inputs_is_refused(tmp_path):
    pytest.importorskip("dask")
    with pytest.raises(ValueError, match="dask"):
        pyspb.solve(pyspb.Device().rates(phi=[0.1, 0.2]).chunk({"phi": 1}), cutoff=3, checkpoint=tmp_path / "x.nc")


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
