"""Julia two-time correlations and spectra (QuantumOptics.jl) against the native engines.

Marked ``julia``: skipped with a reason wherever no Julia executable is found (everywhere this
project's CI runs); the Julia code is linted by ``fatou lint julia``.
"""

import numpy as np
import pytest

from pyspb.backends import julia, native

requires_julia = pytest.mark.skipif(not julia.executable_present(), reason="no Julia executable found")

#: (Delta, J, chi, xi, gamma): the paper's tip at (0.35, 0.20) um, and a strongly driven point
POINTS = tuple(
    np.array(v) for v in zip((0.0, 0.145 - 0.297j, 1.583, 0.0616, 0.297), (0.3, 0.4 + 0.1j, 1.2, 0.5, 0.7), strict=True)
)


def test_julia_backend_offers_the_correlation_functions():
    """Julia-free: the seam pyspb.g2_tau and pyspb.spectrum call exists with the native signature."""
    for name in ("tau_correlations", "spectra", "METHOD_TAU", "METHOD_SPECTRUM"):
        assert hasattr(julia, name) and hasattr(native, name), name


@pytest.mark.julia
@requires_julia
def test_tau_correlations_match_native():
    tau = np.array([2.0, 0.0, 0.5, 10.0, 2.0])  # unsorted, repeated
    ours = julia.tau_correlations(*POINTS, tau, cutoff=4)
    reference = native.tau_correlations(*POINTS, tau, cutoff=4)
    for name, values in reference.items():
        np.testing.assert_allclose(ours[name], values, rtol=1e-6, err_msg=name)


@pytest.mark.julia
@requires_julia
def test_spectra_match_native():
    omega = np.linspace(-3, 3, 7)
    ours = julia.spectra(*POINTS, omega, cutoff=4)
    reference = native.spectra(*POINTS, omega, cutoff=4)
    for name, values in reference.items():
        np.testing.assert_allclose(ours[name], values, rtol=1e-8, atol=1e-12, err_msg=name)
