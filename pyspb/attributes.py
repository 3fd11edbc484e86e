"""One table of ``long_name`` and ``units`` for every variable pyspb writes (CF habits).

Rates are in 1e6 s^-1 (the paper's "MHz"), lengths in micrometres; dimensionless
quantities have units "1".
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from typing import TypeVar

import xarray as xr

#: a Dataset or a DataArray (annotate returns what it is given)
Labelled = TypeVar("Labelled", xr.Dataset, xr.DataArray)

__all__ = ["VARIABLES", "RATE_UNITS", "annotate"]

#: units of every rate (angular frequencies and loss rates)
RATE_UNITS = "1e6 s-1"

#: name -> (long_name, units)
VARIABLES: dict[str, tuple[str, str | None]] = {
    # model inputs (docs/model.md, section 1)
    "Delta": ("detuning of both modes from the drive", RATE_UNITS),
    "J": ("backscattering coupling J between cw and ccw modes", RATE_UNITS),
    "J_re": ("real part of the backscattering coupling J", RATE_UNITS),
    "J_im": ("imaginary part of the backscattering coupling J", RATE_UNITS),
    "chi": ("Kerr coefficient", RATE_UNITS),
    "xi": ("drive amplitude of the cw mode", RATE_UNITS),
    "gamma": ("total loss rate of each mode", RATE_UNITS),
    # device parameters (docs/model.md, section 2)
    "omega0": ("resonance angular frequency", RATE_UNITS),
    "gamma0": ("intrinsic loss rate omega0 / Q", RATE_UNITS),
    "gamma_ex": ("cavity-waveguide coupling rate", RATE_UNITS),
    "gamma1": ("loss rate without tip gamma0 + gamma_ex", RATE_UNITS),
    "gamma_tip": ("tip-induced loss rate", RATE_UNITS),
    "J0": ("intrinsic backscattering coupling", RATE_UNITS),
    "J0_over_gamma1": ("intrinsic backscattering coupling over gamma1", "1"),
    "J_tip_re": ("real part of the tip-induced coupling", RATE_UNITS),
    "J_tip_im": ("imaginary part of the tip-induced coupling", RATE_UNITS),
    "J_abs": ("modulus of the total backscattering coupling |J|", RATE_UNITS),
    "Theta": ("relative phase of intrinsic scatterer and tip", "rad"),
    "k_opt": ("optical wavenumber", "um-1"),
    "r": ("radial distance of the tip", "um"),
    "phi": ("azimuthal distance between scatterer and tip", "um"),
    "wavelength": ("vacuum wavelength", "um"),
    "Q": ("intrinsic quality factor", "1"),
    "Veff": ("effective mode volume", "um3"),
    "chi3": ("Kerr susceptibility chi(3) / eps_r^2", "m2 V-2"),
    "Pin": ("input power", "W"),
    "n0": ("refractive index", "1"),
    "theta": ("initial phase of the intrinsic scatterer", "rad"),
    "theta_t": ("radial phase of the tip shape", "rad um-1"),
    "a_t": ("tip coupling amplitude", RATE_UNITS),
    "decay_t": ("decay length of the tip coupling 1 / (2 beta_t)", "um"),
    "a_gamma": ("tip loss amplitude", RATE_UNITS),
    "decay_gamma": ("decay length of the tip loss 1 / (2 beta_gamma)", "um"),
    # observables (docs/model.md, section 3)
    "N_cw": ("mean photon number of the cw mode <a1+ a1>", "1"),
    "N_ccw": ("mean photon number of the ccw mode <a2+ a2>", "1"),
    "g2_cw": ("second-order correlation g2(0) of the cw mode", "1"),
    "g3_cw": ("third-order correlation g3(0) of the cw mode", "1"),
    "g4_cw": ("fourth-order correlation g4(0) of the cw mode", "1"),
    "g2_ccw": ("second-order correlation g2(0) of the ccw mode", "1"),
    "g3_ccw": ("third-order correlation g3(0) of the ccw mode", "1"),
    "g4_ccw": ("fourth-order correlation g4(0) of the ccw mode", "1"),
    "P": ("joint photon-number probability <n_cw, n_ccw| rho |n_cw, n_ccw>", "1"),
    "n_cw": ("photon number of the cw mode", "1"),
    "n_ccw": ("photon number of the ccw mode", "1"),
    "truncation_error": ("population of the top Fock level of either mode", "1"),
    "g2_cross": ("second-order cw-ccw cross correlation g2(0) <n_cw n_ccw> / (N_cw N_ccw)", "1"),
    "g2_cw_tau": ("second-order correlation g2(tau) of the cw mode", "1"),
    "g2_ccw_tau": ("second-order correlation g2(tau) of the ccw mode", "1"),
    "g2_cross_tau": (
        "cw-ccw cross correlation <a_cw+(0) a_ccw+(tau) a_ccw(tau) a_cw(0)> / (N_cw N_ccw)",
        "1",
    ),
    "tau": ("delay", "1e-6 s"),
    "omega": ("angular frequency detuning of the emitted light from the drive", RATE_UNITS),
    "S_cw": ("incoherent emission spectrum of the cw mode (per unit angular frequency)", "1e-6 s"),
    "S_ccw": ("incoherent emission spectrum of the ccw mode (per unit angular frequency)", "1e-6 s"),
    "coherent_cw": ("coherent photon number |<a_cw>|^2 (the delta peak at omega = 0)", "1"),
    "coherent_ccw": ("coherent photon number |<a_ccw>|^2 (the delta peak at omega = 0)", "1"),
    # analytic weak-drive results (the paper's Eqs. 5-8)
    "C20_re": ("real part of the weak-drive amplitude C20 (Eq. 5)", "1"),
    "C20_im": ("imaginary part of the weak-drive amplitude C20 (Eq. 5)", "1"),
    "P10_cw": ("weak-drive single-photon probability of the cw mode (Eq. 6)", "1"),
    "P01_ccw": ("weak-drive single-photon probability of the ccw mode (Eq. 6)", "1"),
    "g2_cw_weak": ("weak-drive estimate of g2(0) of the cw mode (Eq. 7)", "1"),
    "R": ("single-photon-blockade efficiency against backscattering (Eq. 8)", "1"),
    # the paper's figures (pyspb.paper)
    "case": ("cavity: ideal (J0 = 0, no tip), without tip or with tip", "1"),
    "Delta_over_gamma1": ("detuning over the loss rate without tip Delta / gamma1", "1"),
    "chi_over_gamma": ("Kerr coefficient over the total loss rate chi / gamma", "1"),
    "J_abs_sq": ("squared modulus of the total backscattering coupling |J|^2", "1e12 s-2"),
    "J_abs_over_gamma": ("modulus of the total backscattering coupling over the loss rate |J| / gamma", "1"),
    "l": ("order l of the cancellation point", "1"),
    "r_cancel": ("tip distance where the tip cancels the intrinsic coupling (J = 0)", "um"),
    "phi_cancel": ("tip azimuthal distance where the tip cancels the intrinsic coupling (J = 0)", "um"),
    "P10_cw_numerical": ("probability <1,0| rho |1,0> of one cw and no ccw photon (steady state)", "1"),
    "P01_ccw_numerical": ("probability <0,1| rho |0,1> of no cw and one ccw photon (steady state)", "1"),
    "g2_cw_ideal": ("g2(0) of the cw mode of the ideal cavity (J0 = 0, no tip)", "1"),
    "g2_cw_weak_ideal": ("weak-drive estimate of g2(0) of the ideal cavity (Eq. 7, J = 0)", "1"),
    "R_weak": ("efficiency R (Eq. 8) from the weak-drive g2 (Eq. 7)", "1"),
    "r_at_min": ("tip distance of the smallest g2(0) over the scanned tip positions", "um"),
    "phi_at_min": ("tip azimuthal distance of the smallest g2(0) over the scanned tip positions", "um"),
    # fitting and design (pyspb.fitting, pyspb.design)
    "param": ("fitted parameter", "1"),
    "param2": ("fitted parameter", "1"),
    # units None: set by pyspb.fit (units "1" where every parameter is dimensionless; else none,
    # each element's units are those of param times those of param2, said in its comment)
    "covariance": ("covariance of the fitted parameters (units: those of param times those of param2)", None),
    "correlation": ("correlation of the fitted parameters", "1"),
    "chi2_reduced": ("reduced chi-squared of the fit", "1"),
    "sample": ("Monte Carlo sample", "1"),
    "quantile": ("quantile over the Monte Carlo samples", "1"),
}


def annotate(obj: Labelled, exclude: Collection[Hashable] = ()) -> Labelled:
    """Set ``long_name`` and ``units`` from :data:`VARIABLES` on every known variable.

    Existing attributes are kept (they take precedence); the object is changed in place
    and returned.  String variables (labels such as ``case``) get no ``units`` (CF), nor do
    variables whose units the table leaves to their producer (None), nor those named in
    ``exclude`` (e.g. inputs recorded as the user gave them).
    """
    items: list[xr.DataArray | xr.Variable] = [obj] if isinstance(obj, xr.DataArray) else list(obj.variables.values())
    names = [obj.name] if isinstance(obj, xr.DataArray) else list(obj.variables)
    for name, var in zip(names, items, strict=True):
        if name in VARIABLES and name not in exclude:
            long_name, units = VARIABLES[name]
            var.attrs.setdefault("long_name", long_name)
            if units is not None and var.dtype.kind not in "OSU":
                var.attrs.setdefault("units", units)
    return obj
