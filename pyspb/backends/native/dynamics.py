"""Native time-domain engine: two-time correlations by an adaptive exponential integrator.

Method
------
g2(tau) needs ``x(tau) = exp(L tau) x(0)`` from the conditional states
``x(0) = a rho a^dagger`` (quantum regression theorem).  Split the Liouvillian in the Fock
basis as ``L x = D o x + M x``:

    D_kl = -i (E_k - E_l^*),   E_k = Delta (n1 + n2) + chi (n1 (n1 - 1) + n2 (n2 - 1) + 2 n1 n2)
                                     - i gamma (n1 + n2) / 2     (elementwise, ``o``)
    M x  = -i [H_off, x] + gamma (a1 x a1^dag + a2 x a2^dag),
    H_off = J a1^dag a2 + J^* a2^dag a1 + xi (a1 + a1^dag)

``D`` holds the Kerr and detuning energies, which make ``L`` stiff, and the no-jump decay;
``M`` (drive, backscattering, jumps) has a norm of a few ``gamma``, ``xi``, ``|J|`` times the
photon number.  The states are propagated with the fourth-order exponential time-differencing
Runge-Kutta scheme of Cox and Matthews (ETDRK4, J. Comput. Phys. 176, 430 (2002)):
``exp(D h)`` and the phi-functions of ``D h`` are elementwise, so the step is limited by ``M``,
not by the Kerr energies.  Like ``L``, every ETDRK4 step maps the steady state to itself, so the
integration error is proportional to the deviation from it.

One compiled kernel (numba, :func:`_propagate_point`) propagates both conditional states of a
point: every ladder operator is a neighbour lookup, the five passes of a step (the four stages
and ``M`` of the new state) each visit the upper triangle of the Hermitian states once, and the
points of a call run in threads.

*Step size.*  ``M`` of the new state gives, besides the next step's first stage, the local
error estimate ``f3 o (M c - M u_new)`` (the difference to the embedded third-order solution
that uses it in place of the last stage).  Its sum over the matrix elements, relative to the
state's trace times its smallest g (the scale of the smallest correlation it feeds, at least
1e-6), must stay below ``TOLERANCE h / max(tau)``, so that the summed estimates over
0 .. max(tau) stay below :data:`TOLERANCE`.  So that a weakly populated mode is as accurate as
the other, the estimate is also weighted per mode, ``sqrt(n_m(i) n_m(j)) |e_ij|`` (the error
landing on mode m's photons), against that state's own ``Tr[n_m x]``: with the state's scale
alone, a mode with ~1e-3 of the other's photons erred by 3.5e-6 (detuned by 10 gamma).  Below
:data:`~pyspb.observables.DARK_MODE` of the other mode's photons a mode is left out of the
control (rounding of the bright mode dominates its correlations; ``pyspb.g2_tau`` gives NaN).
A piece of at most :data:`PIECE` steps whose estimate exceeds twice the allowance is repeated
with smaller steps.  Each interval between delays is
split into equal steps, so every delay is reached exactly.

*Photon numbers.*  At weak drive the conditional states live on the few lowest photon numbers.
The propagation keeps the Fock states with at most ``top`` photons in total (the matrix elements
of the others held at 0), ``top`` the fewest whose higher levels hold below :data:`LEVEL_TAIL`
of the steady state's two-photon population, and is repeated with one photon more until the
correlation functions change by less than :data:`LEVEL_CHECK` (relative) at every delay; the
last (larger) run is returned.  At ``top = 2 cutoff`` this is the full truncated model.

Measured against dense matrix exponentials of the Liouvillian (``scipy.linalg.expm``) at cutoff
5 (the paper's device with and without tip, a strong drive, a detuned point) the relative error
of every correlation function is at most 1e-7 at every delay (61 delays, 0 .. 30 us);
``tests/test_backends_native_dynamics.py`` checks 1e-6 at small cutoffs.
"""

from __future__ import annotations

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from ...observables import DARK_MODE, RESOLUTION

__all__ = ["tau_correlations", "TOLERANCE"]

#: time-integration tolerance: the estimated local errors, summed over 0 .. max(tau), stay
#: below TOLERANCE of the state's trace times its smallest g (module docstring); the errors
#: measured against dense matrix exponentials are 30-1000x smaller
TOLERANCE = 3e-6
#: first step, in units of 1 / rate (the step control adapts it from there)
FIRST_STEP = 0.5
#: step control: safety factor, largest growth and shrink per interval, rejection threshold
SAFETY = 0.9
MAX_GROWTH = 2.0
MIN_SHRINK = 0.2
REJECT = 2.0
#: smallest g the error scale assumes (below it the error is relative to G_FLOOR N)
G_FLOOR = 1e-6
#: a mode with N below EMPTY of the total photon number does not set the error scale
EMPTY = 1e-10
#: rejections of one interval after which the step control gives up (an error is raised)
MAX_REJECTIONS = 12
#: most steps between two step-size updates
PIECE = 32
#: step sizes whose coefficients are kept per point
CACHE = 8
#: points per task (the steady states of a task are solved together)
BATCH = 16
#: |z| below which the phi-functions are summed as a Taylor series
SERIES_RADIUS = 0.5
#: fewest photons (ket or bra, in total) kept when propagating
MIN_TOP = 2
#: the propagation starts with the fewest photons whose higher levels hold below LEVEL_TAIL of
#: the steady state's two-photon population ...
LEVEL_TAIL = 1e-8
#: ... and adds one more until the results change by less than LEVEL_CHECK (relative)
LEVEL_CHECK = 1e-7
#: the correlation functions returned by :func:`tau_correlations`
FUNCTIONS = ("G_cw_cw", "G_cw_ccw", "G_ccw_ccw", "photons_cw", "photons_ccw")
_INVERSE_FACTORIALS = 1.0 / np.cumprod(np.concatenate([[1.0], np.arange(1.0, 25.0)]))


def phi_functions(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``phi_1(z), phi_2(z), phi_3(z)``, ``phi_k(z) = sum_j z^j / (j + k)!``, for an array of z.

    The values the kernel uses (:func:`_phi123`, elementwise): direct formulas
    (``phi_{k+1} = (phi_k - 1/k!) / z``) where ``|z| > SERIES_RADIUS``, the Taylor series (21
    terms, error < 1e-20 relative) inside, so that no cancellation occurs.
    """
    z = np.asarray(z, dtype=complex)
    out = np.empty((3,) + z.shape, dtype=complex)
    _phi_array(z.reshape(-1), out.reshape(3, -1))
    return out[0], out[1], out[2]


@numba.njit(cache=True, nogil=True)
def _phi123(z: complex) -> tuple[complex, complex, complex]:  # pragma: no cover (compiled)
    """``phi_1, phi_2, phi_3`` of one complex z (see :func:`phi_functions`)."""
    if abs(z) <= SERIES_RADIUS:
        s1 = 0j
        s2 = 0j
        s3 = 0j
        for j in range(20, -1, -1):  # Horner: sum_j z^j / (j + k)!
            s1 = s1 * z + _INVERSE_FACTORIALS[j + 1]
            s2 = s2 * z + _INVERSE_FACTORIALS[j + 2]
            s3 = s3 * z + _INVERSE_FACTORIALS[j + 3]
        return s1, s2, s3
    p1 = (np.exp(z) - 1.0) / z
    p2 = (p1 - 1.0) / z
    p3 = (p2 - 0.5) / z
    return p1, p2, p3


@numba.njit(cache=True, nogil=True)
def _phi_array(z, out):  # pragma: no cover (compiled)
    for i in range(z.size):
        out[0, i], out[1, i], out[2, i] = _phi123(z[i])


@numba.njit(cache=True, nogil=True)
def _coefficients(D, h, out):  # pragma: no cover (compiled)
    """ETDRK4 coefficients ``E, E2, Q, f1, f2, f3`` of a step h (elementwise in ``D h``)."""
    size = D.shape[0]
    for i in range(size):
        for j in range(size):
            z = D[i, j] * h
            q1, _, _ = _phi123(0.5 * z)
            p1, p2, p3 = _phi123(z)
            out[0, i, j] = np.exp(z)
            out[1, i, j] = np.exp(0.5 * z)
            out[2, i, j] = 0.5 * h * q1
            out[3, i, j] = h * (p1 - 3.0 * p2 + 4.0 * p3)
            out[4, i, j] = 2.0 * h * (p2 - 2.0 * p3)
            out[5, i, j] = h * (4.0 * p3 - p2)


@numba.njit(cache=True, nogil=True, inline="always")
def _M(x, s, i, j, neighbour, hop, lower, jump, gamma):  # pragma: no cover (compiled)
    """``(M x_s)[i, j]``: ``-i (H_off x - x H_off) + gamma sum_b a_b x a_b^dagger`` (compact indices).

    Row i of ``H_off`` has ``hop[q, i]`` at column ``neighbour[q, i]`` (``J a1^dag a2``,
    ``J^* a2^dag a1``, ``xi a1``, ``xi a1^dag``); ``H_off`` is Hermitian, so ``x H_off`` takes
    the conjugates of row j.  ``a_b`` takes row ``lower[b, i]`` with factor ``jump[b, i] =
    sqrt(n_b + 1)``.  A neighbour outside the kept states is the zero row/column ``size``.
    """
    left = (
        hop[0, i] * x[s, neighbour[0, i], j]
        + hop[1, i] * x[s, neighbour[1, i], j]
        + hop[2, i] * x[s, neighbour[2, i], j]
        + hop[3, i] * x[s, neighbour[3, i], j]
    )
    right = (
        np.conj(hop[0, j]) * x[s, i, neighbour[0, j]]
        + np.conj(hop[1, j]) * x[s, i, neighbour[1, j]]
        + np.conj(hop[2, j]) * x[s, i, neighbour[2, j]]
        + np.conj(hop[3, j]) * x[s, i, neighbour[3, j]]
    )
    jumps = gamma * (
        jump[0, i] * jump[0, j] * x[s, lower[0, i], lower[0, j]]
        + jump[1, i] * jump[1, j] * x[s, lower[1, i], lower[1, j]]
    )
    commutator = left - right
    return complex(commutator.imag, -commutator.real) + jumps  # -i (left - right) + jumps


@numba.njit(cache=True, nogil=True, inline="always")
def _photon_moments(x, s, size, photons):  # pragma: no cover (compiled)
    """``(Tr x_s, Tr[n_cw x_s], Tr[n_ccw x_s])`` from the diagonal of state s (compact indices)."""
    trace = 0.0
    G1 = 0.0
    G2 = 0.0
    for i in range(size):
        p = x[s, i, i].real
        trace += p
        G1 += photons[0, i] * p
        G2 += photons[1, i] * p
    return trace, G1, G2


@numba.njit(cache=True, nogil=True)
def _propagate_point(
    start, Delta, J, chi, xi, gamma, cutoff, top, tau, order, N, tolerance, out
):  # pragma: no cover (compiled)
    """Propagate the conditional states of one point; ``out[i, s, b] = Tr[n_b x_s(tau_i)]``.

    ``start`` (2, d, d): ``x_s(0)`` in the Fock basis; only the Fock states with at most ``top``
    photons in total are kept (the matrix elements of the others are held at 0).  ``order``
    visits ``tau`` increasingly; ``N`` the steady-state photon numbers (error scale).
    Returns the number of steps taken (rejected ones included).
    """
    c = cutoff
    o = c + 1
    d = o * o
    states = start.shape[0]
    # the kept Fock states, in compact indices 0 .. size - 1; index size is a zero row/column
    compact = np.empty((o + 1, o + 1), dtype=np.int64)  # (n_cw, n_ccw) -> compact index
    size = 0
    for n1 in range(o + 1):
        for n2 in range(o + 1):
            compact[n1, n2] = -1
    fock = np.empty(d, dtype=np.int64)
    for n1 in range(o):
        for n2 in range(o):
            if n1 + n2 <= top:
                compact[n1, n2] = size
                fock[size] = n1 * o + n2
                size += 1
    for n1 in range(o + 1):
        for n2 in range(o + 1):
            if compact[n1, n2] < 0:
                compact[n1, n2] = size
    photons = np.zeros((2, size + 1))
    neighbour = np.full((4, size + 1), size, dtype=np.int64)
    hop = np.zeros((4, size + 1), dtype=np.complex128)
    lower = np.full((2, size + 1), size, dtype=np.int64)
    jump = np.zeros((2, size + 1))
    for i in range(size):
        n1 = fock[i] // o
        n2 = fock[i] % o
        photons[0, i] = n1
        photons[1, i] = n2
        if n1 >= 1 and n2 < c:  # J a1^dag a2: from (n1 - 1, n2 + 1)
            neighbour[0, i] = compact[n1 - 1, n2 + 1]
            hop[0, i] = J * np.sqrt(n1 * (n2 + 1.0))
        if n1 < c and n2 >= 1:  # J^* a2^dag a1: from (n1 + 1, n2 - 1)
            neighbour[1, i] = compact[n1 + 1, n2 - 1]
            hop[1, i] = np.conj(J) * np.sqrt((n1 + 1.0) * n2)
        if n1 < c:  # xi a1: from (n1 + 1, n2); gamma a1 x a1^dag likewise
            neighbour[2, i] = compact[n1 + 1, n2]
            hop[2, i] = xi * np.sqrt(n1 + 1.0)
            lower[0, i] = compact[n1 + 1, n2]
            jump[0, i] = np.sqrt(n1 + 1.0)
        if n1 >= 1:  # xi a1^dag: from (n1 - 1, n2)
            neighbour[3, i] = compact[n1 - 1, n2]
            hop[3, i] = xi * np.sqrt(1.0 * n1)
        if n2 < c:  # gamma a2 x a2^dag: from (n1, n2 + 1)
            lower[1, i] = compact[n1, n2 + 1]
            jump[1, i] = np.sqrt(n2 + 1.0)
    # the split L = D o x + M x (module docstring)
    energy = np.empty(size, dtype=np.complex128)
    for i in range(size):
        n1 = photons[0, i]
        n2 = photons[1, i]
        energy[i] = Delta * (n1 + n2) + chi * (n1 * (n1 - 1) + n2 * (n2 - 1) + 2 * n1 * n2) - 0.5j * gamma * (n1 + n2)
    D = np.empty((size, size), dtype=np.complex128)
    for i in range(size):
        for j in range(size):
            D[i, j] = -1j * (energy[i] - np.conj(energy[j]))
    u = np.zeros((states, size + 1, size + 1), dtype=np.complex128)
    for s in range(states):
        for i in range(size):
            for j in range(size):
                u[s, i, j] = start[s, fock[i], fock[j]]
    Nu = np.zeros_like(u)
    a = np.zeros_like(u)
    b = np.zeros_like(u)
    cs = np.zeros_like(u)
    acc = np.zeros_like(u)
    cpart = np.zeros_like(u)
    last = np.zeros_like(u)
    u_saved = np.zeros_like(u)
    Nu_saved = np.zeros_like(u)
    # coefficients of the last CACHE step sizes
    sizes = np.full(CACHE, -1.0)
    table = np.empty((CACHE, 6, size, size), dtype=np.complex128)
    next_slot = 0
    scale = np.empty(states)
    # per mode m: the error landing on m's photons, sqrt(n_m(i) n_m(j)) |e_ij|, against the
    # state's own correlation G_m (so that a weakly populated mode is as accurate as the other)
    root = np.zeros((2, size + 1))
    for i in range(size):
        root[0, i] = np.sqrt(photons[0, i])
        root[1, i] = np.sqrt(photons[1, i])
    mode_scale = np.zeros((states, 2))
    for s in range(states):
        for i in range(size):
            for j in range(size):
                Nu[s, i, j] = _M(u, s, i, j, neighbour, hop, lower, jump, gamma)
    t_end = 0.0
    for index in range(tau.size):
        t_end = max(t_end, tau[index])
    rate = 2.0 * min(top, 2 * c) * (gamma + abs(J)) + 2.0 * xi * np.sqrt(min(top, c))
    h_target = FIRST_STEP / rate
    now = 0.0
    steps = 0
    for index in order:
        while now < tau[index]:
            # a long interval is taken in pieces of at most PIECE steps, so that the step
            # size adapts (and a rejection repeats little work)
            interval = min(tau[index] - now, PIECE * h_target)
            if tau[index] - now <= PIECE * h_target * (1 + 1e-12):
                interval = tau[index] - now
            # the error scale of each state: its trace times its smallest resolved g (floor G_FLOOR)
            total_N = N[0] + N[1]
            for s in range(states):
                trace, G1, G2 = _photon_moments(u, s, size, photons)
                g_min = 1.0
                if N[0] > EMPTY * total_N:
                    g_min = min(g_min, G1 / (trace * N[0]))
                if N[1] > EMPTY * total_N:
                    g_min = min(g_min, G2 / (trace * N[1]))
                # an empty state (e.g. a_ccw rho a_ccw^dagger = 0 where J = 0: rounding noise only)
                # sets no error scale; its correlations are NaN (empty mode) anyway
                empty = not (N[s] > EMPTY * total_N and trace > 0)
                scale[s] = 0.0 if empty else 1.0 / (trace * max(g_min, G_FLOOR))
                for m in range(2):
                    G_m = G1 if m == 0 else G2
                    # a mode below DARK_MODE of the other's photons: its correlations are NaN
                    dark = not (N[m] >= DARK_MODE * N[1 - m])
                    mode_scale[s, m] = 0.0 if (empty or dark) else 1.0 / max(G_m, G_FLOOR * trace * N[m])
            u_saved[:] = u
            Nu_saved[:] = Nu
            rejected = 0
            while True:
                count = int(np.ceil(interval / h_target * (1 - 1e-12)))
                h = interval / count
                slot = -1
                for q in range(CACHE):
                    if sizes[q] == h:
                        slot = q
                if slot < 0:
                    slot = next_slot
                    next_slot = (next_slot + 1) % CACHE
                    _coefficients(D, h, table[slot])
                    sizes[slot] = h
                E = table[slot, 0]
                E2 = table[slot, 1]
                Q = table[slot, 2]
                f1 = table[slot, 3]
                f2 = table[slot, 4]
                f3 = table[slot, 5]
                error = 0.0
                for _ in range(count):
                    # upper triangle (i <= j) only: every stage is Hermitian, and the arrays M
                    # reads (a, b, cs, u) get their lower triangle by conjugation
                    for s in range(states):
                        for i in range(size):
                            for j in range(i, size):
                                value = E2[i, j] * u[s, i, j] + Q[i, j] * Nu[s, i, j]
                                a[s, i, j] = value
                                a[s, j, i] = np.conj(value)
                                acc[s, i, j] = E[i, j] * u[s, i, j] + f1[i, j] * Nu[s, i, j]
                    for s in range(states):
                        for i in range(size):
                            for j in range(i, size):
                                v = _M(a, s, i, j, neighbour, hop, lower, jump, gamma)
                                value = E2[i, j] * u[s, i, j] + Q[i, j] * v
                                b[s, i, j] = value
                                b[s, j, i] = np.conj(value)
                                acc[s, i, j] += f2[i, j] * v
                                cpart[s, i, j] = E2[i, j] * a[s, i, j] - Q[i, j] * Nu[s, i, j]
                    for s in range(states):
                        for i in range(size):
                            for j in range(i, size):
                                v = _M(b, s, i, j, neighbour, hop, lower, jump, gamma)
                                value = cpart[s, i, j] + 2.0 * Q[i, j] * v
                                cs[s, i, j] = value
                                cs[s, j, i] = np.conj(value)
                                acc[s, i, j] += f2[i, j] * v
                    for s in range(states):
                        for i in range(size):
                            for j in range(i, size):
                                v = _M(cs, s, i, j, neighbour, hop, lower, jump, gamma)
                                last[s, i, j] = f3[i, j] * v
                                value = acc[s, i, j] + last[s, i, j]
                                u[s, i, j] = value
                                u[s, j, i] = np.conj(value)
                    # M of the new state: the next step's first stage, and the error estimate
                    # f3 (M c - M u_new) (the embedded third-order solution's difference)
                    for s in range(states):
                        estimate = 0.0
                        on_cw = 0.0
                        on_ccw = 0.0
                        for i in range(size):
                            for j in range(i, size):
                                v = _M(u, s, i, j, neighbour, hop, lower, jump, gamma)
                                Nu[s, i, j] = v
                                e = last[s, i, j] - f3[i, j] * v
                                size_e = (abs(e.real) + abs(e.imag)) * (1.0 if i == j else 2.0)
                                estimate += size_e
                                on_cw += root[0, i] * root[0, j] * size_e
                                on_ccw += root[1, i] * root[1, j] * size_e
                        error = max(error, estimate * scale[s], on_cw * mode_scale[s, 0], on_ccw * mode_scale[s, 1])
                steps += count
                # error per unit time against tolerance / t_end; the estimate scales as h^4
                ratio = error / (tolerance * h / t_end)
                factor = SAFETY * ratio ** (-1.0 / 3.0) if ratio > 0 else MAX_GROWTH
                factor = min(MAX_GROWTH, max(MIN_SHRINK, factor))
                h_target = h * factor
                if not ratio > REJECT:  # accepted (or NaN: nothing to control, the values show it)
                    break
                rejected += 1
                if rejected > MAX_REJECTIONS:
                    return -1
                u[:] = u_saved  # rejected: the interval again, with smaller steps
                Nu[:] = Nu_saved
            now = tau[index] if interval == tau[index] - now else now + interval
        for s in range(states):
            _, out[index, s, 0], out[index, s, 1] = _photon_moments(u, s, size, photons)
    return steps


def _propagate_batch(
    Delta, J, chi, xi, gamma, tau: np.ndarray, cutoff: int, tolerance: float, time_tolerance: float
) -> dict[str, np.ndarray]:
    """The correlation functions of a batch of points (steady states solved together, then point by point)."""
    from . import steady_state_density_matrices

    c = cutoff
    npts, ntau = Delta.size, tau.size
    rho = steady_state_density_matrices(Delta, J, chi, xi, gamma, cutoff=c, tolerance=tolerance)
    d = (c + 1) ** 2
    root = np.sqrt(np.arange(1, c + 1, dtype=float))
    factor = np.multiply.outer(root, root)
    rho5 = rho.reshape(npts, c + 1, c + 1, c + 1, c + 1)
    # both conditional states a rho a^dagger of every point, shape (npts, 2, d, d)
    start = np.zeros((npts, 2) + (c + 1,) * 4, dtype=complex)
    start[:, 0, :-1, :, :-1, :] = factor[None, :, None, :, None] * rho5[:, 1:, :, 1:, :]
    start[:, 1, :, :-1, :, :-1] = factor[None, None, :, None, :] * rho5[:, :, 1:, :, 1:]
    start = start.reshape(npts, 2, d, d)
    levels = np.arange(c + 1, dtype=float)
    populations = np.einsum("nii->ni", rho).real.reshape(npts, c + 1, c + 1)
    out = {name: np.empty((npts, ntau)) for name in FUNCTIONS}
    out["N_cw"] = np.einsum("nab,a->n", populations, levels)
    out["N_ccw"] = np.einsum("nab,b->n", populations, levels)
    out["populations"] = populations
    out["steps"] = np.zeros(npts, dtype=int)
    out["top"] = np.zeros(npts, dtype=int)
    order = np.argsort(tau, kind="stable")
    excitation = np.add.outer(np.arange(c + 1), np.arange(c + 1))
    for p in range(npts):
        N = np.array([out["N_cw"][p], out["N_ccw"][p]])
        point = (float(Delta[p]), complex(J[p]), float(chi[p]), float(xi[p]), float(gamma[p]))
        # fewest photons that hold the state: the levels above carry < LEVEL_TAIL of 2 photons
        level_P = np.bincount(excitation.ravel(), populations[p].ravel(), minlength=2 * c + 1)
        tail = np.cumsum(level_P[::-1])[::-1]  # tail[K] = P(K or more photons)
        top = 2 * c
        for K in range(MIN_TOP, 2 * c):
            if tail[K + 1] <= LEVEL_TAIL * max(level_P[2], 1e-300):
                top = K
                break
        G = _run_point(start[p], point, c, top, tau, order, N, time_tolerance, out, p)
        while top < 2 * c:  # the convergence check: one level more must not change the results
            top += 1
            previous = G
            G = _run_point(start[p], point, c, top, tau, order, N, time_tolerance, out, p)
            scale = np.maximum(np.abs(G), RESOLUTION * np.abs(G.sum(axis=2, keepdims=True)))
            if not np.any(np.abs(G - previous) > LEVEL_CHECK * scale):
                break
        out["top"][p] = top
    return out


def _run_point(start, point, cutoff, top, tau, order, N, tolerance, out, p) -> np.ndarray:
    """One point's propagation with ``top`` photons at most; fills ``out`` row p, returns G (ntau, 2, 2)."""
    G = np.zeros((tau.size, 2, 2))
    Delta, J, chi, xi, gamma = point
    steps = _propagate_point(start, Delta, J, chi, xi, gamma, cutoff, top, tau, order, N, tolerance, G)
    if steps < 0:
        raise RuntimeError(
            f"g2(tau): the step control of the exponential integrator failed at Delta={Delta:g}, J={J:g}, "
            f"chi={chi:g}, xi={xi:g}, gamma={gamma:g} (cutoff {cutoff}): the local error estimate did not fall "
            f"with the step size. Please report this point; backend='julia' is an independent route"
        )
    out["steps"][p] += steps
    out["G_cw_cw"][p] = G[:, 0, 0]
    out["G_cw_ccw"][p] = G[:, 0, 1]
    out["G_ccw_ccw"][p] = G[:, 1, 1]
    out["photons_cw"][p] = G[:, 0].sum(axis=1)
    out["photons_ccw"][p] = G[:, 1].sum(axis=1)
    return G


def tau_correlations(
    Delta,
    J,
    chi,
    xi,
    gamma,
    tau,
    *,
    cutoff: int,
    tolerance: float | None = None,
    time_tolerance: float = TOLERANCE,
    threads: int | None = None,
) -> dict[str, np.ndarray]:
    """Unnormalised two-time correlation functions of the steady state, per point and delay.

    With ``x_m(tau) = exp(L tau)(a_m rho a_m^dagger)`` (quantum regression theorem):

    * ``G_cw_cw = Tr[n_cw x_cw(tau)]`` (``<a1^dagger(0) a1^dagger(tau) a1(tau) a1(0)>``),
    * ``G_cw_ccw = Tr[n_ccw x_cw(tau)]``, ``G_ccw_ccw = Tr[n_ccw x_ccw(tau)]``,
    * ``photons_cw = Tr[(n_cw + n_ccw) x_cw(tau)]``, ``photons_ccw`` likewise: the scale
      against which the propagation's absolute error is small (for the resolution rule).

    Parameters
    ----------
    Delta, chi, xi, gamma : array_like of float, shape (npts,)
    J : array_like of complex, shape (npts,)
    tau : array_like of float, shape (ntau,)
        Delays >= 0 in the inverse rate unit.
    cutoff : int
    tolerance : float, optional
        Steady-state tolerance (default that of :mod:`pyspb.backends.native`).
    time_tolerance : float
        Tolerance of the step control (:data:`TOLERANCE`; module docstring).
    threads : int, optional
        Points propagated side by side (default: one per core).

    Returns
    -------
    dict
        The arrays above, shape (npts, ntau); ``N_cw``, ``N_ccw`` (shape (npts,));
        ``populations`` (npts, cutoff + 1, cutoff + 1), the steady state's ``P(n_cw, n_ccw)``;
        ``steps`` (ETDRK4 steps taken per point, rejected ones and the photon-number checks
        included) and ``top`` (photons kept, ket or bra, per point).
    """
    from . import DEFAULT_TOLERANCE, _run, _workers

    tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
    Delta, chi, xi, gamma = (np.asarray(v, dtype=float).reshape(-1) for v in (Delta, chi, xi, gamma))
    J = np.asarray(J, dtype=complex).reshape(-1)
    J = np.where(np.abs(J) > 1e-250 * gamma, J, 0.0)  # as the steady-state solver does
    tau = np.asarray(tau, dtype=float).reshape(-1)
    npts = Delta.size
    results: dict[str, np.ndarray] = {name: np.empty((npts, tau.size)) for name in FUNCTIONS}
    results.update(
        N_cw=np.empty(npts),
        N_ccw=np.empty(npts),
        populations=np.empty((npts, cutoff + 1, cutoff + 1)),
        steps=np.zeros(npts, dtype=int),
        top=np.zeros(npts, dtype=int),
    )

    def task(part: np.ndarray) -> None:
        values = _propagate_batch(
            Delta[part], J[part], chi[part], xi[part], gamma[part], tau, cutoff, tolerance, time_tolerance
        )
        for name, value in values.items():
            results[name][part] = value

    workers = _workers(threads)
    size = max(1, min(BATCH, -(-npts // workers)))  # at least one task per worker
    parts = [np.arange(start, min(npts, start + size)) for start in range(0, npts, size)]
    with threadpool_limits(limits=1, user_api="blas"):
        _run(task, parts, workers)
    return results
