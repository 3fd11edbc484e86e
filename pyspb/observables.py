"""Observables from joint photon-number probabilities (plain arrays, backend independent).

Every backend returns ``P[k, n_cw, n_ccw]``; everything at zero delay follows from it:
``<a^dagger^n a^n> = sum_m m! / (m - n)! p(m)`` over the mode's marginal ``p``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "DARK_MODE",
    "DETUNING_SCALE",
    "KERR_LEVELS",
    "RESOLUTION",
    "TRUNCATION_LIMIT",
    "TRUNCATION_WARNING",
    "TruncationWarning",
    "correlations",
    "cross_correlation",
    "empty_mode",
    "factorial_moments",
    "G_TRUNCATION_WARNING",
    "g_truncation_estimate",
    "level_populations",
    "resolution",
    "truncation_error",
]

#: relative resolution of a factorial moment of one mode.  The steady-state solvers give
#: every population to ~1e-16 of the total population of its photon-number level
#: K = n_cw + n_ccw, so <a^dagger^n a^n> of one mode is known to ~1e-16 of the same moment
#: of the total photon number.  Below RESOLUTION times that moment, g^(n) would carry a
#: relative error above ~1e-6 (up to pure rounding noise): it is reported as NaN.  At order 1
#: this makes a mode "empty" (N below RESOLUTION times the total): its N and g^(n) are NaN.
RESOLUTION = 1e-10

#: detuning (in units of gamma) above which the solvers' resolution degrades in proportion:
#: the equations balance terms of size |Delta| rho to leave terms of size gamma rho, so
#: rounding leaves an error of ~3e-17 |Delta| / gamma of the level's population (measured
#: against the exact chi = 0 solution from |Delta| / gamma = 1e3 to 1e8).  See :func:`resolution`.
DETUNING_SCALE = 10.0

#: Kerr energy per photon that cancels like the detuning, in units of |chi|: ``chi (K - 1)`` at
#: the K = 4 photons of g4.  Measured on 450 random points (cutoff 4, Krylov path, chi up to
#: 500 gamma) against a dense LU refined with long-double residuals: with |Delta| alone in the
#: rule g2..g4 of a nearly empty mode erred by up to 1.5e-4 at chi ~ 150 gamma; with
#: |Delta| + 3 |chi| every reported number is within 6.6e-7.
KERR_LEVELS = 3.0

#: photon number of a mode, relative to the other mode's, below which its two-time
#: correlations (g2(tau) of that mode and the cross correlation) are NaN: the time integrator
#: holds each correlation to ~1e-6 of its own size only down to this ratio (below it the
#: bright mode's rounding and step errors dominate the dark mode's correlations)
DARK_MODE = 1e-3

#: truncation error (population of the top Fock level) above which a RuntimeWarning
#: (:class:`TruncationWarning`) is issued: N is then off by up to ~10x this (chi = 0 check)
TRUNCATION_WARNING = 1e-6
#: truncation error above which N and g^(n) are NaN: N is off by 5 % or more (chi = 0:
#: coherent states truncated with 1e-2 in the top level lose 6-12 % of their photon number)
TRUNCATION_LIMIT = 1e-2


class TruncationWarning(RuntimeWarning):
    """The cutoff is too small for some points: their results are those of the truncated model.

    Raise ``cutoff`` (or use ``cutoff="auto"``).  Silence it with
    ``warnings.simplefilter("ignore", pyspb.TruncationWarning)``.
    """


def resolution(Delta, gamma, chi=0.0):
    """Relative resolution of a mode's factorial moments at detuning ``Delta``, loss ``gamma``, Kerr ``chi``.

    ``RESOLUTION * max(1, (|Delta| + KERR_LEVELS |chi|) / (DETUNING_SCALE * gamma))``: the
    solvers' rounding error grows like the energy per photon that cancels in the equations,
    ``|Delta + chi (K - 1)|`` at K photons (``E_K = Delta K + chi K (K - 1)``), up to the four
    photons of g4 (see :data:`DETUNING_SCALE`, :data:`KERR_LEVELS`), and a mode's moment resolved
    to 1e-6 relative must be correspondingly larger against the total's.

    Parameters
    ----------
    Delta, gamma : array_like
        Detuning and loss rate per mode (same unit).
    chi : array_like, optional
        Kerr shift (same unit); 0 leaves the detuning rule alone.

    Returns
    -------
    ndarray or DataArray
        The resolution per point (dimensionless), broadcast over the inputs.
    """
    # ufuncs only, so that DataArrays (dask-backed too) stay what they are
    energy = np.abs(Delta) + np.multiply(KERR_LEVELS, np.abs(chi))
    return RESOLUTION * np.maximum(1.0, energy / np.multiply(DETUNING_SCALE, gamma))


#: highest correlation order reported
MAX_ORDER = 4


def empty_mode(N, total, resolution: float | np.ndarray = RESOLUTION) -> np.ndarray:
    """Where a mode is empty to the solvers' precision: ``N`` not above ``resolution`` times the
    total photon number ``total`` (NaN counts as empty).  Its g^(n), g2(tau) and S(omega) are 0/0
    or rounding noise: NaN.
    """
    return ~(np.asarray(N) > resolution * np.asarray(total))


def factorial_moments(marginal: np.ndarray, order: int = MAX_ORDER) -> np.ndarray:
    """``<a^dagger^k a^k>`` for k = 1..order from marginals of shape (npts, cutoff + 1)."""
    n = np.arange(marginal.shape[-1], dtype=float)
    weight = np.ones_like(n)
    moments = []
    for k in range(order):
        weight = weight * np.clip(n - k, 0, None)
        moments.append(marginal @ weight)
    return np.stack(moments, axis=-1)


#: estimated relative error of a g^(n) from the populations beyond the cutoff above which
#: pyspb warns (``truncation_error`` can be tiny while g^(n) of the top orders is not: at
#: cutoff 4 the paper's g4 errs by 1.3e-4 with a top-level population of 1e-15)
G_TRUNCATION_WARNING = 1e-6


def g_truncation_estimate(P: np.ndarray) -> dict[str, np.ndarray]:
    """Estimated relative error of each g^(n) of each mode from the truncation, per point.

    Each mode's marginal ``p(m)`` is extended one level beyond the cutoff c geometrically,
    ``p(c + 1) ~ p(c)^2 / p(c - 1)``; the part of ``<a^dagger^n a^n>`` it would add is
    ``p(c + 1) (c + 1)! / (c + 1 - n)!``, and g^(n) = <a^dagger^n a^n> / N^n errs by about
    ``rel_n + n rel_1``.  On the paper's three cavities (against cutoff 10) the estimate is
    within a factor 2.5 of the error of g2..g4 at cutoffs 4-6.

    Parameters
    ----------
    P : ndarray, shape (npts, cutoff + 1, cutoff + 1)
        Joint photon-number probabilities.

    Returns
    -------
    dict
        ``g<n>_<mode>`` -> estimated relative error (npts,), for 2 <= n <= min(4, cutoff);
        0 where a moment is 0 (the mode's g^(n) is NaN there anyway).
    """
    cutoff = P.shape[-1] - 1
    out: dict[str, np.ndarray] = {}
    if cutoff < 2:
        return out
    for mode, marginal in (("cw", P.sum(axis=2)), ("ccw", P.sum(axis=1))):
        top, below = marginal[:, cutoff], marginal[:, cutoff - 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            beyond = np.where(below > 0, top**2 / below, top)
            moments = factorial_moments(marginal, min(MAX_ORDER, cutoff))
            relative = []
            for n in range(1, moments.shape[-1] + 1):
                missing = beyond * math.factorial(cutoff + 1) / math.factorial(cutoff + 1 - n)
                relative.append(np.where(moments[:, n - 1] > 0, missing / moments[:, n - 1], 0.0))
        for n in range(2, len(relative) + 1):
            out[f"g{n}_{mode}"] = relative[n - 1] + n * relative[0]
    return out


def level_populations(P: np.ndarray) -> np.ndarray:
    """Total population of each level K = n_cw + n_ccw, shape (npts, 2 cutoff + 1)."""
    levels = P.shape[-1]
    K = np.add.outer(np.arange(levels), np.arange(levels)).ravel()
    to_level = np.zeros((levels * levels, 2 * levels - 1))
    to_level[np.arange(levels * levels), K] = 1.0
    return P.reshape(P.shape[0], levels * levels) @ to_level


def correlations(P: np.ndarray, resolution: float | np.ndarray = RESOLUTION) -> dict[str, np.ndarray]:
    """Mean photon numbers and g^(n)(0), n = 2..4, of both modes.

    Parameters
    ----------
    P : ndarray, shape (npts, cutoff + 1, cutoff + 1)
        Joint photon-number probabilities.
    resolution : float or ndarray of shape (npts,)
        Relative resolution of a mode's factorial moment against the same moment of the total
        photon number (:data:`RESOLUTION`, or :func:`resolution` per point, set by the solvers'
        accuracy); 0 for exact ``P``.

    Returns
    -------
    dict
        ``N_cw, N_ccw, g2_cw, g3_cw, g4_cw, g2_ccw, g3_ccw, g4_ccw`` and the cross correlation
        ``g2_cross`` (:func:`cross_correlation`) as arrays of shape (npts,).  N and g^(n)
        are NaN where the mode is empty to the solver's precision (N below ``resolution``
        times the total photon number: N is rounding noise, g^(n) 0/0), g^(n) also where
        <a^dagger^n a^n> of the mode is below ``resolution`` times the n-th factorial moment
        of the total photon number (not resolved by the solver), and where ``n > cutoff``
        (the truncated model cannot hold n photons in one mode).
    """
    cutoff = P.shape[-1] - 1
    marginals = {"cw": P.sum(axis=2), "ccw": P.sum(axis=1)}
    moments = {mode: factorial_moments(m) for mode, m in marginals.items()}
    total = factorial_moments(level_populations(P))
    resolution = np.asarray(resolution, dtype=float)
    out = {}
    for mode, m in moments.items():
        N = m[:, 0]
        empty = empty_mode(N, total[:, 0], resolution)  # includes N = 0 (no drive): g^(n) is 0/0
        out[f"N_{mode}"] = np.where(N < resolution * total[:, 0], np.nan, N)
        safe_N = np.where(empty, 1.0, N)
        for order in range(2, MAX_ORDER + 1):
            g = m[:, order - 1] / safe_N**order
            unresolved = m[:, order - 1] < resolution * total[:, order - 1]
            g[empty | unresolved] = np.nan
            if order > cutoff:
                g[:] = np.nan
            out[f"g{order}_{mode}"] = g
    out["g2_cross"] = cross_correlation(P, out["N_cw"], out["N_ccw"], total, resolution)
    return out


def cross_correlation(
    P: np.ndarray,
    N_cw: np.ndarray,
    N_ccw: np.ndarray,
    total: np.ndarray,
    resolution: float | np.ndarray = RESOLUTION,
) -> np.ndarray:
    """Zero-delay cw-ccw cross correlation ``<n_cw n_ccw> / (N_cw N_ccw)``, shape (npts,).

    NaN where either mode is empty (0/0) or where ``2 <n_cw n_ccw>`` is below ``resolution``
    times the second factorial moment of the total photon number (``total[:, 1]``, of which
    it is a part): not resolved.
    """
    levels = np.arange(P.shape[-1], dtype=float)
    joint = np.einsum("nab,a,b->n", P, levels, levels)
    empty = empty_mode(N_cw, total[:, 0], resolution) | empty_mode(N_ccw, total[:, 0], resolution)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = joint / (N_cw * N_ccw)
    g[empty | (2 * joint < resolution * total[:, 1])] = np.nan
    return g


def truncation_error(P: np.ndarray) -> np.ndarray:
    """Population of the top Fock level of either mode, shape (npts,)."""
    return P[:, -1, :].sum(axis=1) + P[:, :, -1].sum(axis=1) - P[:, -1, -1]
