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

One compiled kernel (numba, :func:`_propagate_points`) propagates the conditional states of a
batch of points side by side.  The states are stored with the lane (point and state) last and
the real and imaginary parts apart, so that every operation of a pass runs over the lanes
(the points are padded to a multiple of :data:`LANE_POINTS`).  The lane loops read views of
single elements (real and imaginary parts, every lane) and scalars only, so that the compiler
vectorises them (read through four indices inside the loop, they stayed scalar: 18 against 14
ns per element, lane and step on the paper's points, results bit-identical).
Only the upper triangle of the Hermitian states is stored, as a list of elements: ``M`` reads
its ten neighbours there (:func:`_stencil`, tabulated once per propagation; an element below the
diagonal as the conjugate of its mirror image; the Fock states ordered by photon number, so
that neighbours lie close), and the five passes of a step (the four stages and ``M`` of the new
state) each visit it once.
The points of a batch share the step size, the smallest any of them asks for, so a batch
takes the steps of its most demanding point at every time: on the paper's 41 points 1680
steps per point in two batches, against 1400 for batches of four points (both photon-number
runs, below), more than repaid by the lanes.  The batches (at most :data:`BATCH` points, as
many as a multiple of the workers) run in threads.

*Step size.*  ``M`` of the new state gives, besides the next step's first stage, the local
error estimate ``f3 o (M c - M u_new)`` (the difference to the embedded third-order solution
that uses it in place of the last stage).  Per state of every point, its sum over the matrix
elements, relative to the state's trace times its smallest g (the scale of the smallest
correlation it feeds, at least 1e-6), must stay below ``TOLERANCE h / max(tau)``, so that the
summed estimates over 0 .. max(tau) stay below :data:`TOLERANCE`.  So that a weakly populated
mode is as accurate as the other, the estimate is also weighted per mode,
``sqrt(n_m(i) n_m(j)) |e_ij|`` (the error landing on mode m's photons), against that state's
own ``Tr[n_m x]``: with the state's scale alone, a mode with ~1e-3 of the other's photons erred
by 3.5e-6 (detuned by 10 gamma).  Below :data:`~pyspb.observables.DARK_MODE` of the other
mode's photons a mode is left out of the control (rounding of the bright mode dominates its
correlations; ``pyspb.g2_tau`` gives NaN), and so is an empty state.  The step of a batch
follows the largest of these errors over its points; a piece of at most :data:`PIECE` steps
where it exceeds twice the allowance is repeated with smaller steps.  Each interval between
delays is split into equal steps, so every delay is reached exactly.

*Photon numbers.*  At weak drive the conditional states live on the few lowest photon numbers.
The propagation keeps the Fock states with at most ``top`` photons in total (the matrix elements
of the others held at 0), ``top`` the fewest whose higher levels hold below :data:`LEVEL_TAIL`
of the steady state's two-photon population, and is repeated with one photon more until the
correlation functions change by less than :data:`LEVEL_CHECK` (relative) at every delay; the
last (larger) run is returned.  Only the functions ``pyspb.g2_tau`` reports are checked: those
of a mode below :data:`~pyspb.observables.DARK_MODE` of the other's photons are step noise (the
step control leaves them out, and they are NaN), which at the step tolerance's ~1e-7 errors
could ask for photons that change nothing.  The points of a batch that keep the same number of
photons are propagated together.  At ``top = 2 cutoff`` this is the full truncated model.

Measured against dense matrix exponentials of the Liouvillian (``scipy.linalg.expm``) at cutoff
5, propagating the same steady state (the paper's device with tip at phi = 0.20 and 0.27 um and
without tip, a strong drive, a Kerr shift of 20 gamma, a detuned strong drive; 61 delays,
0 .. 30 us, each point alone), the largest relative error of any correlation function at any
delay is 1.1e-7 (4.7e-8 at the paper's points) with TOLERANCE = 3e-5, against 2.3e-8 with 1e-5
(1.4x the steps: 2300 against 1680 per point on the paper's 41 points), 2.9e-9 with 3e-6 and
3.7e-7 with 1e-4 (QuTiP's ``coherence_function_g2`` with atol 1e-12 and rtol 1e-10 differs
from this engine by 1.3e-7 on the paper's points at either tolerance: QuTiP's own error).  On
160 random points at cutoffs 3 and 4 (Delta in +-6, chi up to 50, xi up to 2 gamma; 31 delays
0 .. 15) the largest error is 1.1e-7 at 1e-5 and 3e-5 alike (so not the integrator's; the
steady state or the photon numbers kept).
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
#: measured against dense matrix exponentials are ~300x smaller (module docstring)
TOLERANCE = 3e-5
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
#: points per task (the steady states of a task are solved together, the points propagated
#: side by side)
BATCH = 32
#: the points propagated side by side are padded to a multiple of LANE_POINTS (two lanes each)
LANE_POINTS = 4
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
    """ETDRK4 coefficients ``E, E2, Q, f1, f2, f3`` of a step h (elementwise in ``D h``).

    ``D`` (levels, levels, points) complex; ``out[k, m, n, 0]`` and ``out[k, m, n, 1]`` the real
    and imaginary parts of coefficient k, for both lanes (states) of every point.
    """
    levels = D.shape[0]
    for m in range(levels):
        for n in range(levels):
            for p in range(D.shape[2]):
                z = D[m, n, p] * h
                q1, _, _ = _phi123(0.5 * z)
                p1, p2, p3 = _phi123(z)
                values = (
                    np.exp(z),
                    np.exp(0.5 * z),
                    0.5 * h * q1,
                    h * (p1 - 3.0 * p2 + 4.0 * p3),
                    2.0 * h * (p2 - 2.0 * p3),
                    h * (4.0 * p3 - p2),
                )
                for k in range(6):
                    for lane in (2 * p, 2 * p + 1):
                        out[k, m, n, 0, lane] = values[k].real
                        out[k, m, n, 1, lane] = values[k].imag


@numba.njit(cache=True, nogil=True, inline="always")
def _upper(row, column, weight):  # pragma: no cover (compiled)
    """Element ``(row, column)`` of a Hermitian x as a stored one: ``(r, c, w_real, w_imag)``, r <= c."""
    if row <= column:
        return row, column, weight, weight
    return column, row, weight, -weight  # x[row, column] = conj(x[column, row])


@numba.njit(cache=True, nogil=True, inline="always")
def _stencil(i, j, neighbour, hop, lower, jump):  # pragma: no cover (compiled)
    """The ten stored elements ``(M x)[i, j]`` reads and their weights (see :func:`_M_lanes`).

    Row i of ``H_off`` has ``hop[q, i]`` times ``J``, ``J^*``, ``xi``, ``xi`` at column
    ``neighbour[q, i]`` (``J a1^dag a2``, ``J^* a2^dag a1``, ``xi a1``, ``xi a1^dag``); ``a_b``
    takes row ``lower[b, i]`` with factor ``jump[b, i] = sqrt(n_b + 1)``.  A neighbour outside
    the kept states is the zero row/column ``size``.  Only the upper triangle of x is stored:
    an element below it is read as the conjugate of its mirror image.  Returns rows, columns,
    and the weights of their real and imaginary parts, in the order of :func:`_M_lanes`'s sums
    ``P`` (2), ``Q`` (2), ``R`` (4), ``C`` (2).
    """
    e0 = _upper(neighbour[0, i], j, hop[0, i])
    e1 = _upper(i, neighbour[1, j], -hop[1, j])
    e2 = _upper(neighbour[1, i], j, hop[1, i])
    e3 = _upper(i, neighbour[0, j], -hop[0, j])
    e4 = _upper(neighbour[2, i], j, hop[2, i])
    e5 = _upper(neighbour[3, i], j, hop[3, i])
    e6 = _upper(i, neighbour[2, j], -hop[2, j])
    e7 = _upper(i, neighbour[3, j], -hop[3, j])
    e8 = _upper(lower[0, i], lower[0, j], jump[0, i] * jump[0, j])
    e9 = _upper(lower[1, i], lower[1, j], jump[1, i] * jump[1, j])
    rows = (e0[0], e1[0], e2[0], e3[0], e4[0], e5[0], e6[0], e7[0], e8[0], e9[0])
    columns = (e0[1], e1[1], e2[1], e3[1], e4[1], e5[1], e6[1], e7[1], e8[1], e9[1])
    real = (e0[2], e1[2], e2[2], e3[2], e4[2], e5[2], e6[2], e7[2], e8[2], e9[2])
    imag = (e0[3], e1[3], e2[3], e3[3], e4[3], e5[3], e6[3], e7[3], e8[3], e9[3])
    return rows, columns, real, imag


@numba.njit(cache=True, nogil=True, inline="always")
def _M_lanes(x, source, weight_re, weight_im, rates, out):  # pragma: no cover (compiled)
    """``(M x)`` at one stored element, every lane: ``-i [H_off, x] + gamma sum_b a_b x a_b^dagger``.

    ``x`` (elements + 1, 2, lanes): real and imaginary parts of the stored elements (upper
    triangle; the last one is zero); ``source`` (10,) the elements read and ``weight_re``,
    ``weight_im`` their weights, as :func:`_stencil` gives them; ``rates[:, lane] = (Re J, Im J,
    xi, gamma)``; ``out`` (2, lanes) receives the real and imaginary parts.  With
    ``H_off = J A + J^* A^dag + xi X`` (``A = a1^dag a2``, ``X = a1 + a1^dag``) the commutator
    is ``J P + J^* Q + xi R`` with ``P = A x - x A``, ``Q = A^dag x - x A^dag``,
    ``R = X x - x X`` (real coefficients), so
    ``-i [H_off, x] = Im J (P - Q) - i (Re J (P + Q) + xi R)``; ``C`` are the jumps.

    The lane loop reads views of single elements ``(2, lanes)`` and scalars only, which the
    compiler vectorises (read through four indices inside the loop, as before, it stayed scalar).
    """
    x0, x1, x2, x3, x4 = x[source[0]], x[source[1]], x[source[2]], x[source[3]], x[source[4]]
    x5, x6, x7, x8, x9 = x[source[5]], x[source[6]], x[source[7]], x[source[8]], x[source[9]]
    re0, re1, re2, re3, re4 = weight_re[0], weight_re[1], weight_re[2], weight_re[3], weight_re[4]
    re5, re6, re7, re8, re9 = weight_re[5], weight_re[6], weight_re[7], weight_re[8], weight_re[9]
    im0, im1, im2, im3, im4 = weight_im[0], weight_im[1], weight_im[2], weight_im[3], weight_im[4]
    im5, im6, im7, im8, im9 = weight_im[5], weight_im[6], weight_im[7], weight_im[8], weight_im[9]
    for lane in range(out.shape[1]):
        Pr = re0 * x0[0, lane] + re1 * x1[0, lane]
        Pi = im0 * x0[1, lane] + im1 * x1[1, lane]
        Qr = re2 * x2[0, lane] + re3 * x3[0, lane]
        Qi = im2 * x2[1, lane] + im3 * x3[1, lane]
        Rr = (re4 * x4[0, lane] + re5 * x5[0, lane]) + (re6 * x6[0, lane] + re7 * x7[0, lane])
        Ri = (im4 * x4[1, lane] + im5 * x5[1, lane]) + (im6 * x6[1, lane] + im7 * x7[1, lane])
        Cr = re8 * x8[0, lane] + re9 * x9[0, lane]
        Ci = im8 * x8[1, lane] + im9 * x9[1, lane]
        Jr, Ji, drive, gamma = rates[0, lane], rates[1, lane], rates[2, lane], rates[3, lane]
        out[0, lane] = Jr * (Pi + Qi) + Ji * (Pr - Qr) + drive * Ri + gamma * Cr
        out[1, lane] = Ji * (Pi - Qi) - Jr * (Pr + Qr) - drive * Rr + gamma * Ci


@numba.njit(cache=True, nogil=True, inline="always")
def _combine(c, x, d, y, out):  # pragma: no cover (compiled)
    """``out = c x + d y`` over the lanes; every argument (2, lanes): real and imaginary parts."""
    for lane in range(out.shape[1]):
        vr, vi = _times(c[0, lane], c[1, lane], x[0, lane], x[1, lane])
        wr, wi = _times(d[0, lane], d[1, lane], y[0, lane], y[1, lane])
        out[0, lane] = vr + wr
        out[1, lane] = vi + wi


@numba.njit(cache=True, nogil=True, inline="always")
def _accumulate(c, x, out):  # pragma: no cover (compiled)
    """``out += c x`` over the lanes (arguments as in :func:`_combine`)."""
    for lane in range(out.shape[1]):
        vr, vi = _times(c[0, lane], c[1, lane], x[0, lane], x[1, lane])
        out[0, lane] += vr
        out[1, lane] += vi


@numba.njit(cache=True, nogil=True, inline="always")
def _times(cr, ci, xr, xi):  # pragma: no cover (compiled)
    """The complex product ``c x`` of numbers given by their real and imaginary parts: ``(Re, Im)``."""
    return cr * xr - ci * xi, cr * xi + ci * xr


@numba.njit(cache=True, nogil=True, inline="always")
def _photon_moments(x, diagonal, photons, lane):  # pragma: no cover (compiled)
    """``(Tr x, Tr[n_cw x], Tr[n_ccw x])`` of one lane; ``diagonal[i]``: the element ``(i, i)``."""
    trace = 0.0
    G1 = 0.0
    G2 = 0.0
    for i in range(diagonal.size):
        p = x[diagonal[i], 0, lane]
        trace += p
        G1 += photons[0, i] * p
        G2 += photons[1, i] * p
    return trace, G1, G2


@numba.njit(cache=True, nogil=True)
def _propagate_points(
    start, Delta, J, chi, xi, gamma, cutoff, top, tau, order, N, tolerance, out, failed
):  # pragma: no cover (compiled)
    """Propagate the conditional states of a batch of points side by side, with common steps.

    ``start`` (points, 2, d, d): ``x_s(0)`` of every point in the Fock basis; only the Fock
    states with at most ``top`` photons in total are kept (the matrix elements of the others are
    held at 0).  The states are stored with the lane ``l = 2 p + s`` (point p, state s) last, so
    that every elementwise operation runs over the lanes.  ``order`` visits ``tau``
    increasingly; ``N`` (points, 2) the steady-state photon numbers (error scale).
    ``out[i, p, s, b] = Tr[n_b x_s(tau_i)]`` of point p.  Returns the number of steps taken
    (rejected ones included; common to the batch), or -1 if the step control failed, with the
    point whose error did not fall in ``failed[0]``.
    """
    points = Delta.size
    lanes = 2 * points
    c = cutoff
    o = c + 1
    d = o * o
    # the kept Fock states, in compact indices 0 .. size - 1; index size is a zero row/column
    compact = np.empty((o + 1, o + 1), dtype=np.int64)  # (n_cw, n_ccw) -> compact index
    size = 0
    for n1 in range(o + 1):
        for n2 in range(o + 1):
            compact[n1, n2] = -1
    fock = np.empty(d, dtype=np.int64)
    for total in range(min(top, 2 * c) + 1):  # by photon number: M's neighbours lie close
        for n1 in range(max(0, total - c), min(total, c) + 1):
            compact[n1, total - n1] = size
            fock[size] = n1 * o + total - n1
            size += 1
    for n1 in range(o + 1):
        for n2 in range(o + 1):
            if compact[n1, n2] < 0:
                compact[n1, n2] = size
    photons = np.zeros((2, size + 1))
    level = np.zeros(size + 1, dtype=np.int64)  # n_cw + n_ccw
    neighbour = np.full((4, size + 1), size, dtype=np.int64)
    hop = np.zeros((4, size + 1))
    lower = np.full((2, size + 1), size, dtype=np.int64)
    jump = np.zeros((2, size + 1))
    for i in range(size):
        n1 = fock[i] // o
        n2 = fock[i] % o
        photons[0, i] = n1
        photons[1, i] = n2
        level[i] = n1 + n2
        if n1 >= 1 and n2 < c:  # J a1^dag a2: from (n1 - 1, n2 + 1)
            neighbour[0, i] = compact[n1 - 1, n2 + 1]
            hop[0, i] = np.sqrt(n1 * (n2 + 1.0))
        if n1 < c and n2 >= 1:  # J^* a2^dag a1: from (n1 + 1, n2 - 1)
            neighbour[1, i] = compact[n1 + 1, n2 - 1]
            hop[1, i] = np.sqrt((n1 + 1.0) * n2)
        if n1 < c:  # xi a1: from (n1 + 1, n2); gamma a1 x a1^dag likewise
            neighbour[2, i] = compact[n1 + 1, n2]
            hop[2, i] = np.sqrt(n1 + 1.0)
            lower[0, i] = compact[n1 + 1, n2]
            jump[0, i] = np.sqrt(n1 + 1.0)
        if n1 >= 1:  # xi a1^dag: from (n1 - 1, n2)
            neighbour[3, i] = compact[n1 - 1, n2]
            hop[3, i] = np.sqrt(1.0 * n1)
        if n2 < c:  # gamma a2 x a2^dag: from (n1, n2 + 1)
            lower[1, i] = compact[n1, n2 + 1]
            jump[1, i] = np.sqrt(n2 + 1.0)
    # the stored elements: (i, j) with i <= j, row by row, and a zero element last (for the
    # row and column ``size`` of a neighbour outside the kept states)
    elements = size * (size + 1) // 2
    element = np.full((size + 1, size + 1), elements, dtype=np.int64)
    row = np.empty(elements, dtype=np.int64)
    column = np.empty(elements, dtype=np.int64)
    e = 0
    for i in range(size):
        for j in range(i, size):
            element[i, j] = e
            row[e] = i
            column[e] = j
            e += 1
    diagonal = np.empty(size, dtype=np.int64)
    for i in range(size):
        diagonal[i] = element[i, i]
    # the stored elements (M x) reads at each element, and their weights (_stencil)
    source = np.empty((elements, 10), dtype=np.int64)
    weight_re = np.empty((elements, 10))
    weight_im = np.empty((elements, 10))
    for e in range(elements):
        rows, columns, real, imag = _stencil(row[e], column[e], neighbour, hop, lower, jump)
        for t in range(10):
            source[e, t] = element[rows[t], columns[t]]
            weight_re[e, t] = real[t]
            weight_im[e, t] = imag[t]
    rates = np.empty((4, lanes))  # Re J, Im J, xi, gamma of every lane
    for lane in range(lanes):
        p = lane // 2
        rates[0, lane] = J[p].real
        rates[1, lane] = J[p].imag
        rates[2, lane] = xi[p]
        rates[3, lane] = gamma[p]
    # the split L = D o x + M x (module docstring); D depends on the photon numbers (levels)
    # of row and column only
    D = np.empty((top + 1, top + 1, points), dtype=np.complex128)
    for p in range(points):
        for m in range(top + 1):
            for n in range(top + 1):
                E_m = Delta[p] * m + chi[p] * m * (m - 1) - 0.5j * gamma[p] * m
                E_n = Delta[p] * n + chi[p] * n * (n - 1) - 0.5j * gamma[p] * n
                D[m, n, p] = -1j * (E_m - np.conj(E_n))
    # the states and stages: real and imaginary parts (index 1) of every lane (last), for the
    # stored elements (the upper triangle: the states are Hermitian)
    shape = (elements + 1, 2, lanes)
    u = np.zeros(shape)
    for lane in range(lanes):
        for e in range(elements):
            value = start[lane // 2, lane % 2, fock[row[e]], fock[column[e]]]
            u[e, 0, lane] = value.real
            u[e, 1, lane] = value.imag
    Nu = np.zeros(shape)
    a = np.zeros(shape)
    b = np.zeros(shape)
    cs = np.zeros(shape)
    acc = np.zeros(shape)
    last = np.zeros(shape)
    u_saved = np.zeros(shape)
    Nu_saved = np.zeros(shape)
    # coefficients of the last CACHE step sizes
    sizes = np.full(CACHE, -1.0)
    table = np.empty((CACHE, 6, top + 1, top + 1, 2, lanes))
    next_slot = 0
    scale = np.empty(lanes)
    # per mode m: the error landing on m's photons, sqrt(n_m(i) n_m(j)) |e_ij|, against the
    # state's own correlation G_m (so that a weakly populated mode is as accurate as the other)
    root = np.zeros((2, size + 1))
    for i in range(size):
        root[0, i] = np.sqrt(photons[0, i])
        root[1, i] = np.sqrt(photons[1, i])
    mode_scale = np.zeros((2, lanes))
    estimate = np.zeros(lanes)
    on_cw = np.zeros(lanes)
    on_ccw = np.zeros(lanes)
    error = np.zeros(lanes)
    Mv = np.zeros((2, lanes))  # (M x) at one element, every lane
    y = np.zeros((2, lanes))
    for e in range(elements):
        _M_lanes(u, source[e], weight_re[e], weight_im[e], rates, Nu[e])
    t_end = 0.0
    for index in range(tau.size):
        t_end = max(t_end, tau[index])
    rate = 0.0
    for p in range(points):
        rate = max(rate, 2.0 * min(top, 2 * c) * (gamma[p] + abs(J[p])) + 2.0 * xi[p] * np.sqrt(min(top, c)))
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
            for lane in range(lanes):
                p = lane // 2
                s = lane % 2
                total_N = N[p, 0] + N[p, 1]
                trace, G1, G2 = _photon_moments(u, diagonal, photons, lane)
                # an empty state (e.g. a_ccw rho a_ccw^dagger = 0 where J = 0: rounding noise only,
                # or a lane padding the batch) sets no error scale; its correlations are NaN (empty
                # mode) anyway
                scale[lane] = 0.0
                mode_scale[:, lane] = 0.0
                if not (N[p, s] > EMPTY * total_N and trace > 0):
                    continue
                g_min = 1.0
                if N[p, 0] > EMPTY * total_N:
                    g_min = min(g_min, G1 / (trace * N[p, 0]))
                if N[p, 1] > EMPTY * total_N:
                    g_min = min(g_min, G2 / (trace * N[p, 1]))
                scale[lane] = 1.0 / (trace * max(g_min, G_FLOOR))
                for m in range(2):
                    G_m = G1 if m == 0 else G2
                    # a mode below DARK_MODE of the other's photons: its correlations are NaN
                    if N[p, m] >= DARK_MODE * N[p, 1 - m]:
                        mode_scale[m, lane] = 1.0 / max(G_m, G_FLOOR * trace * N[p, m])
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
                E, E2, Q = table[slot, 0], table[slot, 1], table[slot, 2]
                f1, f2, f3 = table[slot, 3], table[slot, 4], table[slot, 5]
                error[:] = 0.0
                for _ in range(count):
                    # the stored elements (upper triangle) only: every stage is Hermitian, and M
                    # reads an element below it as the conjugate of its mirror image (_stencil)
                    for e in range(elements):
                        m, n = level[row[e]], level[column[e]]
                        _combine(E2[m, n], u[e], Q[m, n], Nu[e], a[e])  # a = E2 u + Q M u
                        _combine(E[m, n], u[e], f1[m, n], Nu[e], acc[e])  # acc = E u + f1 M u
                    for e in range(elements):
                        m, n = level[row[e]], level[column[e]]
                        _M_lanes(a, source[e], weight_re[e], weight_im[e], rates, Mv)
                        _combine(E2[m, n], u[e], Q[m, n], Mv, b[e])  # b = E2 u + Q M a
                        _accumulate(f2[m, n], Mv, acc[e])  # acc += f2 M a
                    for e in range(elements):
                        m, n = level[row[e]], level[column[e]]
                        _M_lanes(b, source[e], weight_re[e], weight_im[e], rates, Mv)
                        for lane in range(lanes):
                            y[0, lane] = 2.0 * Mv[0, lane] - Nu[e, 0, lane]
                            y[1, lane] = 2.0 * Mv[1, lane] - Nu[e, 1, lane]
                        _combine(E2[m, n], a[e], Q[m, n], y, cs[e])  # c = E2 a + Q (2 M b - M u)
                        _accumulate(f2[m, n], Mv, acc[e])  # acc += f2 M b
                    for e in range(elements):
                        m, n = level[row[e]], level[column[e]]
                        _M_lanes(cs, source[e], weight_re[e], weight_im[e], rates, Mv)
                        last[e] = 0.0
                        _accumulate(f3[m, n], Mv, last[e])  # last = f3 M c
                        for lane in range(lanes):  # u_new = acc + f3 M c
                            u[e, 0, lane] = last[e, 0, lane] + acc[e, 0, lane]
                            u[e, 1, lane] = last[e, 1, lane] + acc[e, 1, lane]
                    # M of the new state: the next step's first stage, and the error estimate
                    # f3 (M c - M u_new) (the embedded third-order solution's difference)
                    estimate[:] = 0.0
                    on_cw[:] = 0.0
                    on_ccw[:] = 0.0
                    for e in range(elements):
                        i, j = row[e], column[e]
                        m, n = level[i], level[j]
                        _M_lanes(u, source[e], weight_re[e], weight_im[e], rates, Nu[e])
                        weight = 1.0 if i == j else 2.0
                        weight_cw = weight * root[0, i] * root[0, j]
                        weight_ccw = weight * root[1, i] * root[1, j]
                        f3r, f3i, Nr, Ni, lr, li = f3[m, n, 0], f3[m, n, 1], Nu[e, 0], Nu[e, 1], last[e, 0], last[e, 1]
                        for lane in range(lanes):
                            vr, vi = _times(f3r[lane], f3i[lane], Nr[lane], Ni[lane])
                            size_e = abs(lr[lane] - vr) + abs(li[lane] - vi)
                            estimate[lane] += weight * size_e
                            on_cw[lane] += weight_cw * size_e
                            on_ccw[lane] += weight_ccw * size_e
                    for lane in range(lanes):
                        error[lane] = max(
                            error[lane],
                            estimate[lane] * scale[lane],
                            on_cw[lane] * mode_scale[0, lane],
                            on_ccw[lane] * mode_scale[1, lane],
                        )
                steps += count
                # the step is common to the batch: set by the point whose error is largest
                # (a lane with NaN values, a point the steady state failed at, controls nothing)
                worst = 0
                for lane in range(lanes):
                    if error[lane] > error[worst] or np.isnan(error[worst]):
                        worst = lane
                # error per unit time against tolerance / t_end; the estimate scales as h^4
                ratio = error[worst] / (tolerance * h / t_end)
                factor = SAFETY * ratio ** (-1.0 / 3.0) if ratio > 0 else MAX_GROWTH
                factor = min(MAX_GROWTH, max(MIN_SHRINK, factor))
                h_target = h * factor
                if not ratio > REJECT:  # accepted (or NaN: nothing to control, the values show it)
                    break
                rejected += 1
                if rejected > MAX_REJECTIONS:
                    failed[0] = worst // 2
                    return -1
                u[:] = u_saved  # rejected: the interval again, with smaller steps
                Nu[:] = Nu_saved
            now = tau[index] if interval == tau[index] - now else now + interval
        for lane in range(lanes):
            _, out[index, lane // 2, lane % 2, 0], out[index, lane // 2, lane % 2, 1] = _photon_moments(
                u, diagonal, photons, lane
            )
    return steps


def _propagate_batch(
    Delta, J, chi, xi, gamma, tau: np.ndarray, cutoff: int, tolerance: float, time_tolerance: float
) -> dict[str, np.ndarray]:
    """The correlation functions of a batch of points (steady states solved together, then the
    points with equal ``top`` propagated side by side).
    """
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
    N = np.stack([out["N_cw"], out["N_ccw"]], axis=1)
    # fewest photons that hold the state: the levels above carry < LEVEL_TAIL of 2 photons
    excitation = np.add.outer(np.arange(c + 1), np.arange(c + 1)).ravel()
    top = np.full(npts, 2 * c)
    for p in range(npts):
        level_P = np.bincount(excitation, populations[p].ravel(), minlength=2 * c + 1)
        tail = np.cumsum(level_P[::-1])[::-1]  # tail[K] = P(K or more photons)
        for K in range(MIN_TOP, 2 * c):
            if tail[K + 1] <= LEVEL_TAIL * max(level_P[2], 1e-300):
                top[p] = K
                break
    # the convergence check: one level more must not change the results that are reported
    # (G_cw_cw, G_cw_ccw, G_ccw_ccw of the modes above DARK_MODE of the other's photons: a dark
    # mode's correlations are rounding and step noise, NaN in pyspb.g2_tau); the points that
    # need the same number of photons are propagated together
    bright = (N > 0) & (N >= DARK_MODE * N[:, ::-1])
    checked = bright[:, :, None] & bright[:, None, :] & np.triu(np.ones((2, 2), dtype=bool))
    previous: list[np.ndarray | None] = [None] * npts
    pending = np.ones(npts, dtype=bool)
    while pending.any():
        K = int(top[pending].min())
        group = np.flatnonzero(pending & (top == K))
        G, steps = _run_points(
            start[group], [v[group] for v in (Delta, J, chi, xi, gamma)], c, K, tau, N[group], time_tolerance
        )
        out["steps"][group] += steps
        for k, p in enumerate(group.tolist()):
            G_p = G[:, k]
            converged = K == 2 * c
            if previous[p] is not None:
                scale = np.maximum(np.abs(G_p), RESOLUTION * np.abs(G_p.sum(axis=2, keepdims=True)))
                changed = np.abs(G_p - previous[p]) > LEVEL_CHECK * scale
                converged |= not np.any(changed[:, checked[p]])
            if converged:
                pending[p] = False
                out["G_cw_cw"][p] = G_p[:, 0, 0]
                out["G_cw_ccw"][p] = G_p[:, 0, 1]
                out["G_ccw_ccw"][p] = G_p[:, 1, 1]
                out["photons_cw"][p] = G_p[:, 0].sum(axis=1)
                out["photons_ccw"][p] = G_p[:, 1].sum(axis=1)
            else:
                previous[p] = G_p
                top[p] = K + 1
    out["top"] = top
    return out


def _run_points(start, points, cutoff, top, tau, N, tolerance) -> tuple[np.ndarray, int]:
    """The propagation of points side by side with ``top`` photons at most: G (ntau, points, 2, 2), steps."""
    npts = start.shape[0]
    # padded to a multiple of LANE_POINTS points (whole vectors of lanes) by copies of the last
    # point with empty states: an empty state sets no error scale (it does not change the steps)
    padded = -(-npts // LANE_POINTS) * LANE_POINTS
    pad = np.r_[np.arange(npts), np.full(padded - npts, npts - 1)]
    Delta, J, chi, xi, gamma = (value[pad] for value in points)
    start = np.concatenate([start, np.zeros((padded - npts,) + start.shape[1:], dtype=start.dtype)])
    G = np.zeros((tau.size, padded, 2, 2))
    failed = np.zeros(1, dtype=np.int64)
    order = np.argsort(tau, kind="stable")
    steps = _propagate_points(start, Delta, J, chi, xi, gamma, cutoff, top, tau, order, N[pad], tolerance, G, failed)
    if steps < 0:
        p = failed[0]
        point = f"Delta={Delta[p]:g}, J={J[p]:g}, chi={chi[p]:g}, xi={xi[p]:g}, gamma={gamma[p]:g}"
        raise RuntimeError(
            f"g2(tau): the step control of the exponential integrator failed at {point} (cutoff {cutoff}): the "
            f"local error estimate did not fall with the step size. Please report this point; backend='julia' is "
            f"an independent route"
        )
    return G[:, :npts], steps


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
        Batches propagated at the same time (default: one per core); the points of a batch are
        propagated side by side in one thread.

    Returns
    -------
    dict
        The arrays above, shape (npts, ntau); ``N_cw``, ``N_ccw`` (shape (npts,));
        ``populations`` (npts, cutoff + 1, cutoff + 1), the steady state's ``P(n_cw, n_ccw)``;
        ``steps`` (ETDRK4 steps taken per point, rejected ones and the photon-number checks
        included; the points propagated together share their steps, so this is the count of
        the propagations a point took part in) and ``top`` (photons kept, ket or bra, per point).
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
    # tasks of at most BATCH points, as many as a multiple of the workers (equal shares), as
    # equal as can be
    tasks = -(-max(1, -(-npts // BATCH)) // workers) * workers
    parts = [part for part in np.array_split(np.arange(npts), min(tasks, npts)) if part.size]
    with threadpool_limits(limits=1, user_api="blas"):
        _run(task, parts, workers)
    return results
