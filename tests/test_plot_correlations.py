import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

import pyspb  # noqa: E402
from pyspb import plot  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def rates():
    return pyspb.rate_grid(Delta=np.array([-0.3, 0.0, 0.3]), J_re=0.3, J_im=0.1, chi=1.2, xi=0.2, gamma=0.5)


def test_g2_tau_map_has_tau_on_x_and_a_log_scale_centred_on_1():
    out = pyspb.g2_tau(rates(), np.linspace(0, 4, 9), cutoff=3)
    figure = plot.g2_tau_map(out.g2_cw_tau)
    axis = figure.axes[0]
    mesh = axis.collections[0]
    assert isinstance(mesh.norm, LogNorm) and mesh.norm(1.0) == pytest.approx(0.5)
    assert "tau" in axis.get_xlabel() or "τ" in axis.get_xlabel()
    with pytest.raises(ValueError, match="tau"):
        plot.g2_tau_map(out.g2_cw_tau.isel(Delta=0))


def test_spectrum_plot_draws_both_modes_or_a_map():
    omega = np.linspace(-3, 3, 31)
    spectra = pyspb.spectrum(rates(), omega, cutoff=3)
    figure = plot.spectrum_plot(spectra.isel(Delta=1))
    lines = figure.axes[0].get_lines()
    assert len(lines) == 2 and np.allclose(lines[0].get_ydata(), spectra.S_cw.isel(Delta=1))
    figure = plot.spectrum_plot(spectra)
    assert figure.axes[0].collections and figure.axes[0].get_ylabel()
    with pytest.raises(ValueError, match="pyspb.spectrum"):
        plot.spectrum_plot(spectra.S_cw)
