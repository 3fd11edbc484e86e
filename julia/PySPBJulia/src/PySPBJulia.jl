"""
    PySPBJulia

Julia backend of pyspb: exact steady states of the driven two-mode Kerr resonator,
computed with QuantumOptics.jl.

The model (pyspb docs/model.md, section 1; rotating frame, ħ = 1) is

    H = Δ (n₁ + n₂) + J a₁†a₂ + J* a₂†a₁ + χ (a₁†²a₁² + a₂†²a₂²) + 2χ n₁n₂ + ξ (a₁† + a₁)

with the jump operators √γ a₁ and √γ a₂. Mode 1 is the clockwise (cw, driven) mode, mode 2
the counter-clockwise (ccw) mode; each keeps the Fock states 0..cutoff (`FockBasis(cutoff)`).

# Method

The Liouvillian is linear in the six real inputs (Δ, Re J, Im J, χ, ξ, γ), so its six
superoperator terms are built once per call (`spre`, `spost`, `liouvillian`) and stored on a
common sparsity pattern; every grid point only combines them with its own coefficients.

The steady state is an exact direct sparse solve with the vacuum population fixed: the
equations of the diagonal elements of ρ are linearly dependent (trace preservation), so the
equation of ρ[vac, vac] is dropped, ρ[vac, vac] = 1 is imposed, its column moves to the
right-hand side, and the reduced square system is solved by sparse LU (UMFPACK); the result
is normalised by its trace afterwards. A dense trace row is avoided on purpose: it fills the
LU factors and costs the small multi-photon populations their accuracy. All points share one
sparsity pattern, so each task analyses it once (symbolic factorisation) and only refactorises
the values (`lu!`) for its further points; at most `ntasks` factorisations live at once.

`steadystate.eigenvector(L)` of QuantumOptics.jl (the eigenvector of eigenvalue 0 of the
sparse Liouvillian, by Arpack) is an alternative for checks. `steadystate.iterative` is not
used: for nonlinear oscillators its result depends on the random start vector
(QuantumOptics.jl issues #428 and #315).

# Storage order

QuantumOpticsBase stores `tensor(A, B).data == kron(B.data, A.data)`: the first factor runs
fastest. With cw the first factor, the joint state |n_cw, n_ccw⟩ has the 1-based index
`1 + n_cw + (cutoff + 1) * n_ccw`. A superoperator's `data` acts on the column-major
`vec(ρ)` (see `*(::SuperOperator, ::Operator)`), so ρ[i, j] sits at `i + (j - 1) * d`: the
vacuum element ρ[1, 1] is entry 1 and ρ[i, i] is entry `(i - 1) * (d + 1) + 1`.

# Entry points (called from Python through juliacall)

  - [`steady_state_populations`](@ref): P[k, n_cw + 1, n_ccw + 1], shape (npts, c + 1, c + 1).
  - [`tau_correlations`](@ref): g2(τ) of both modes and their cross correlation (quantum
    regression theorem, `timeevolution.master`).
  - [`spectra`](@ref): incoherent emission spectra of both modes.
  - [`versions`](@ref): Julia and QuantumOptics.jl versions, Julia threads.

Grid points are spread over Julia's threads (`Threads.@threads`); start Julia with several
threads (juliacall: `PYTHON_JULIACALL_THREADS`) to use them.
"""
module PySPBJulia

using LinearAlgebra: BLAS, issuccess, lu, lu!, mul!, tr
using SparseArrays: SparseMatrixCSC, findnz, nnz, nonzeros, nzrange, rowvals, sparse
using QuantumOptics:
    QuantumOptics,
    DenseOperator,
    FockBasis,
    dagger,
    destroy,
    expect,
    identityoperator,
    liouvillian,
    spost,
    spre,
    tensor,
    timeevolution

export TwoModeKerrModel, steady_state_populations, tau_correlations, spectra, versions

"""Number of real model coefficients: Δ, Re J, Im J, χ, ξ, γ (in this order)."""
const NCOEFFICIENTS = 6

"""
    TwoModeKerrModel(cutoff)

Operators and the vacuum-fixed Liouvillian terms of the two-mode model for one `cutoff`
(largest photon number per mode), shared by every grid point of a call.

Fields: `cutoff`; `basis` (cw ⊗ ccw); `a1`, `a2`, `n1` (sparse operators);
`hamiltonian_terms`, the Hermitian operators multiplying Δ, Re J, Im J, χ and ξ in H;
`nunknowns`, `colptr`, `rowval`, the common sparsity pattern of the reduced system (vacuum
row and column removed); `matrix_terms` (nnz × 6) and `rhs_terms` (nunknowns × 6), the
values of each of the six Liouvillian terms on that pattern and in the right-hand side;
`diagonal`, the positions of ρ[i, i] in `vec(ρ)`.
"""
struct TwoModeKerrModel{B, O}
    cutoff::Int
    basis::B
    a1::O
    a2::O
    n1::O
    hamiltonian_terms::Vector{O}
    nunknowns::Int
    colptr::Vector{Int}
    rowval::Vector{Int}
    matrix_terms::Matrix{ComplexF64}
    rhs_terms::Matrix{ComplexF64}
    diagonal::Vector{Int}
end

function TwoModeKerrModel(cutoff::Integer)
    cutoff >= 1 || throw(ArgumentError("cutoff must be >= 1, got $cutoff"))
    mode = FockBasis(Int(cutoff))
    one_mode = identityoperator(mode)
    # cw is the first tensor factor (fastest index), ccw the second
    a1 = sparse(tensor(destroy(mode), one_mode))
    a2 = sparse(tensor(one_mode, destroy(mode)))
    a1d = sparse(dagger(a1))
    a2d = sparse(dagger(a2))
    n1 = sparse(a1d * a1)
    n2 = sparse(a2d * a2)
    hop = sparse(a1d * a2)
    hop_dagger = sparse(dagger(hop))
    hamiltonian_terms = [
        sparse(n1 + n2),                                                 # × Δ
        sparse(hop + hop_dagger),                                        # × Re J
        sparse(1im * (hop - hop_dagger)),                                # × Im J
        sparse(a1d * a1d * a1 * a1 + a2d * a2d * a2 * a2 + 2 * n1 * n2), # × χ
        sparse(a1d + a1),                                                # × ξ
    ]
    superoperators = [_commutator(H) for H in hamiltonian_terms]
    # dissipator with unit rate (× γ): the Liouvillian of H = 0 with jumps a1, a2
    push!(superoperators, _csc(liouvillian(0 * n1, [a1, a2]).data))
    d = length(a1.basis_l)
    n = d * d
    reduced = [L[2:n, 2:n] for L in superoperators]
    pattern = _union_pattern(reduced)
    matrix_terms = Matrix{ComplexF64}(undef, nnz(pattern), NCOEFFICIENTS)
    rhs_terms = Matrix{ComplexF64}(undef, n - 1, NCOEFFICIENTS)
    for (k, L) in enumerate(superoperators)
        matrix_terms[:, k] = _values_on_pattern(pattern, reduced[k])
        rhs_terms[:, k] = -Vector(L[2:n, 1])
    end
    diagonal = [(i - 1) * (d + 1) + 1 for i in 1:d]
    return TwoModeKerrModel(
        Int(cutoff),
        a1.basis_l,
        a1,
        a2,
        n1,
        hamiltonian_terms,
        n - 1,
        copy(pattern.colptr),
        copy(rowvals(pattern)),
        matrix_terms,
        rhs_terms,
        diagonal,
    )
end

"""The superoperator ``ρ ↦ -i [H, ρ]`` as a sparse matrix acting on `vec(ρ)`."""
_commutator(H) = _csc((spre(-1im * H) + spost(1im * H)).data)

"""`M` as a `SparseMatrixCSC{ComplexF64, Int}`."""
_csc(M) = SparseMatrixCSC{ComplexF64, Int}(sparse(M))

"""Sparsity pattern holding every stored entry of every matrix in `matrices`."""
function _union_pattern(matrices)
    rows = Int[]
    columns = Int[]
    for M in matrices
        r, c, _ = findnz(M)
        append!(rows, r)
        append!(columns, c)
    end
    m, n = size(first(matrices))
    # all values positive, so duplicates add up and no entry cancels
    return sparse(rows, columns, ones(length(rows)), m, n)
end

"""The entries of `M` laid out on the stored entries of `pattern` (zeros elsewhere)."""
function _values_on_pattern(pattern::SparseMatrixCSC, M::SparseMatrixCSC)
    values = zeros(ComplexF64, nnz(pattern))
    pattern_rows = rowvals(pattern)
    rows = rowvals(M)
    entries = nonzeros(M)
    for j in axes(M, 2)
        column = nzrange(pattern, j)
        for q in nzrange(M, j)
            position = column[searchsortedfirst(view(pattern_rows, column), rows[q])]
            values[position] += entries[q]
        end
    end
    return values
end

"""Points as plain Julia vectors, checked; `J` may be real or complex."""
function _points(Delta, J, chi, xi, gamma)
    npts = length(Delta)
    for (name, v) in (("J", J), ("chi", chi), ("xi", xi), ("gamma", gamma))
        length(v) == npts ||
            throw(DimensionMismatch("$name has $(length(v)) points but Delta has $npts"))
    end
    points = (
        Delta = Vector{Float64}(Delta),
        J = Vector{ComplexF64}(J),
        chi = Vector{Float64}(chi),
        xi = Vector{Float64}(xi),
        gamma = Vector{Float64}(gamma),
    )
    for (name, v) in pairs(points)
        all(isfinite, v) || throw(ArgumentError("$name must be finite at every point"))
    end
    all(>(0), points.gamma) ||
        throw(ArgumentError(
            "gamma must be > 0 at every point: without loss there is no unique steady state",
        ))
    return points
end

"""Write the six Liouvillian coefficients of point `k` into `c`."""
function _coefficients!(c::Vector{ComplexF64}, points, k::Integer)
    c[1] = points.Delta[k]
    c[2] = real(points.J[k])
    c[3] = imag(points.J[k])
    c[4] = points.chi[k]
    c[5] = points.xi[k]
    c[6] = points.gamma[k]
    return c
end

"""Hamiltonian of one point from its coefficients (sparse operator)."""
function _hamiltonian(model::TwoModeKerrModel, c::Vector{ComplexF64})
    H = real(c[1]) * model.hamiltonian_terms[1]
    for k in 2:5
        H += real(c[k]) * model.hamiltonian_terms[k]
    end
    return H
end

"""
    _factorise!(factorisation, A)

Sparse LU (UMFPACK) of the reduced Liouvillian `A` of one point. The first call of a task
(`factorisation === nothing`) runs the full analysis (`lu`); later calls refactorise the
values only with `lu!`, reusing the symbolic analysis (ordering, memory estimate) of the
first: every point of a call stores its matrix on the common pattern of the model, which is
what `lu!(F::UmfpackLU, A)` with `reuse_symbolic = true` requires (SparseArrays, branches
release-1.10 to release-1.12 and main, `src/solvers/umfpack.jl`). `check = false`: a
singular point is reported by `issuccess`, not thrown.
"""
function _factorise!(factorisation, A::SparseMatrixCSC{ComplexF64, Int})
    factorisation === nothing && return lu(A; check = false)
    _free_numeric!(factorisation)
    return lu!(factorisation, A; check = false)
end

"""
    _free_numeric!(factorisation)

Release the numeric factors (C memory, hundreds of MiB at large cutoffs) held by an UMFPACK
factorisation now instead of at the next garbage collection. In SparseArrays (release-1.10
to release-1.12 and main) `lu!` replaces the field `numeric` by a new object and leaves the
old one to its finalizer, which runs only when Julia's GC collects it; the GC does not see
the C memory, so without this call the factors of many points could pile up.
"""
_free_numeric!(factorisation) = finalize(factorisation.numeric)

"""Release all C memory (numeric and symbolic) of an UMFPACK factorisation now."""
function _free_factorisation!(factorisation)
    factorisation === nothing && return nothing
    finalize(factorisation.numeric)
    finalize(factorisation.symbolic)
    return nothing
end

"""Trace of the (unnormalised) state whose vacuum population is 1 and the rest is `x`."""
function _trace(model::TwoModeKerrModel, x::Vector{ComplexF64})
    total = 1.0
    for i in 2:length(model.diagonal)
        total += real(x[model.diagonal[i] - 1])
    end
    return total
end

"""Normalised steady-state density operator from the reduced solution `x`."""
function _density_operator(model::TwoModeKerrModel, x::Vector{ComplexF64})
    d = length(model.diagonal)
    data = Matrix{ComplexF64}(undef, d, d)
    data[1] = 1
    copyto!(data, 2, x, 1, length(x))
    data ./= _trace(model, x)
    return DenseOperator(model.basis, model.basis, data)
end

"""
    _chunks(npts, ntasks)

Split `1:npts` into at most `ntasks` contiguous chunks (also at most `Threads.nthreads()` and
`npts`), one task each. Each task holds one UMFPACK factorisation at a time, so `ntasks` bounds
the memory of the factorisations alive at once (the Python side chooses it from an estimate
of the memory per factorisation, `pyspb.backends.julia.concurrent_factorisations`).
"""
function _chunks(npts::Integer, ntasks::Integer)
    nchunks = max(1, min(npts, ntasks, Threads.nthreads()))
    return collect(Iterators.partition(1:npts, cld(npts, nchunks)))
end

"""
    _with_serial_blas(f)

Run `f()` with one BLAS thread when Julia has several threads (the grid points are already
spread over Julia's threads; UMFPACK's BLAS calls would oversubscribe the cores), then
restore the previous BLAS setting.
"""
function _with_serial_blas(f)
    Threads.nthreads() > 1 || return f()
    previous = BLAS.get_num_threads()
    BLAS.set_num_threads(1)
    try
        return f()
    finally
        BLAS.set_num_threads(previous)
    end
end

"""Throw an error naming the points whose reduced system was singular."""
function _check_failed(failed::Vector{Bool}, points)
    any(failed) || return nothing
    bad = findall(failed)
    k = first(bad)
    throw(ErrorException(
        "no unique steady state with a populated vacuum at $(length(bad)) point(s), " *
            "e.g. point $k (Delta=$(points.Delta[k]), J=$(points.J[k]), chi=$(points.chi[k]), " *
            "xi=$(points.xi[k]), gamma=$(points.gamma[k])): the vacuum-fixed system is singular",
    ))
end

"""
    _foreach_steady_state(f, model, points, ntasks)

Solve the steady state of every point, in at most `ntasks` tasks spread over Julia's threads
(one BLAS thread), and call `f(k, x, c)` with the point index `k`, its reduced solution `x`
(unknowns ρ[2:end] in column-major order, vacuum population fixed to 1) and its coefficients
`c` (a buffer of the calling task: use it before returning). Throws, naming the points, if
any reduced system is singular.
"""
function _foreach_steady_state(f, model::TwoModeKerrModel, points, ntasks::Integer)
    ntasks >= 1 || throw(ArgumentError("ntasks must be >= 1, got $ntasks"))
    failed = zeros(Bool, length(points.Delta))
    _with_serial_blas() do
        Threads.@threads for chunk in _chunks(length(points.Delta), ntasks)
            _solve_chunk!(f, failed, model, points, chunk)
        end
    end
    _check_failed(failed, points)
    return nothing
end

"""
    _solve_chunk!(f, failed, model, points, chunk)

The points `chunk` of one task, one after another: assemble each reduced Liouvillian on the
common pattern (vacuum row and column removed, ρ[vac, vac] = 1 on the right-hand side),
factorise it (reusing the symbolic analysis of the task's first point, see
[`_factorise!`](@ref)), solve, and call `f`; mark singular points in `failed`. The task's
factorisation is freed when the chunk ends, also on error.
"""
function _solve_chunk!(f, failed::Vector{Bool}, model::TwoModeKerrModel, points, chunk)
    values = Vector{ComplexF64}(undef, length(model.rowval))
    rhs = Vector{ComplexF64}(undef, model.nunknowns)
    c = Vector{ComplexF64}(undef, NCOEFFICIENTS)
    # the matrix shares `values`, so refilling `values` changes it; the pattern is the model's
    A = SparseMatrixCSC(model.nunknowns, model.nunknowns, model.colptr, model.rowval, values)
    factorisation = nothing
    try
        for k in chunk
            _coefficients!(c, points, k)
            mul!(values, model.matrix_terms, c)
            mul!(rhs, model.rhs_terms, c)
            factorisation = _factorise!(factorisation, A)
            if !issuccess(factorisation)
                failed[k] = true
                continue
            end
            x = factorisation \ rhs
            if all(isfinite, x)
                f(k, x, c)
            else
                failed[k] = true
            end
        end
    finally
        _free_factorisation!(factorisation)
    end
    return nothing
end

"""
    steady_state_populations(Delta, J, chi, xi, gamma; cutoff, ntasks) -> Array{Float64, 3}

Joint photon-number probabilities of the exact steady state of the truncated model, at each
of the `npts` points given by the equal-length vectors `Delta`, `J` (complex), `chi`, `xi`,
`gamma` (one rate unit). Returns `P` of size `(npts, cutoff + 1, cutoff + 1)` with
`P[k, n_cw + 1, n_ccw + 1] = ⟨n_cw, n_ccw| ρ_ss |n_cw, n_ccw⟩` of point `k` (through
juliacall, `numpy.asarray(P)[k, n_cw, n_ccw]`). The points are solved in parallel over
Julia's threads by at most `ntasks` tasks (default `Threads.nthreads()`), each holding one
sparse LU factorisation at a time: the bound on memory at large cutoffs.
"""
function steady_state_populations(
    Delta::AbstractVector{<:Real},
    J::AbstractVector{<:Number},
    chi::AbstractVector{<:Real},
    xi::AbstractVector{<:Real},
    gamma::AbstractVector{<:Real};
    cutoff::Integer,
    ntasks::Integer = Threads.nthreads(),
)
    points = _points(Delta, J, chi, xi, gamma)
    model = TwoModeKerrModel(cutoff)
    npts = length(points.Delta)
    levels = model.cutoff + 1
    out = Array{Float64}(undef, npts, levels, levels)
    npts == 0 && return out
    _foreach_steady_state(model, points, ntasks) do k, x, _
        trace = _trace(model, x)
        for i in eachindex(model.diagonal)
            value = i == 1 ? 1.0 : real(x[model.diagonal[i] - 1])
            n_cw, n_ccw = (i - 1) % levels, (i - 1) ÷ levels
            out[k, n_cw + 1, n_ccw + 1] = value / trace
        end
    end
    return out
end

"""
    versions() -> Tuple{String, String, Int}

Julia version, QuantumOptics.jl version and the number of Julia threads, for provenance.
"""
function versions()
    return (string(VERSION), string(pkgversion(QuantumOptics)), Threads.nthreads())
end

# --- two-time correlations and emission spectra (pyspb.g2_tau, pyspb.spectrum) ---------

using LinearAlgebra: I
using SparseArrays: spzeros

"""
    tau_correlations(Delta, J, chi, xi, gamma, tau; cutoff, ntasks, reltol=1e-10, abstol=1e-12)

Two-time correlation functions of the steady state by the quantum regression theorem, for
every point (rows) and delay `tau[j] >= 0` (columns). With the conditional states
`x_m(τ) = e^{Lτ}(a_m ρ a_m†)` (propagated by `timeevolution.master` from their normalised
form, then multiplied back by their trace) it returns the named tuple

  - `N_cw`, `N_ccw`: ⟨a₁†a₁⟩, ⟨a₂†a₂⟩ (vectors);
  - `G_cw_cw = Tr[n₁ x_cw(τ)]`, `G_cw_ccw = Tr[n₂ x_cw(τ)]`, `G_ccw_ccw = Tr[n₂ x_ccw(τ)]`;
  - `photons_cw = Tr[(n₁ + n₂) x_cw(τ)]`, `photons_ccw` likewise (matrices npts × ntau).

A conditional state with zero trace (an empty mode) gives zeros. At most `ntasks` tasks
(default `Threads.nthreads()`) run side by side, as in [`steady_state_populations`](@ref).
"""
function tau_correlations(
    Delta::AbstractVector{<:Real},
    J::AbstractVector{<:Number},
    chi::AbstractVector{<:Real},
    xi::AbstractVector{<:Real},
    gamma::AbstractVector{<:Real},
    tau::AbstractVector{<:Real};
    cutoff::Integer,
    ntasks::Integer = Threads.nthreads(),
    reltol::Real = 1.0e-10,
    abstol::Real = 1.0e-12,
)
    points = _points(Delta, J, chi, xi, gamma)
    delays = [t == 0 ? 0.0 : Float64(t) for t in tau] # -0.0 becomes 0.0
    all(t -> isfinite(t) && t >= 0, delays) ||
        throw(ArgumentError("tau must be finite and >= 0"))
    model = TwoModeKerrModel(cutoff)
    npts = length(points.Delta)
    ntau = length(delays)
    N_cw = zeros(npts)
    N_ccw = zeros(npts)
    G = [zeros(npts, ntau) for _ in 1:5] # cw_cw, cw_ccw, ccw_ccw, photons_cw, photons_ccw
    (npts == 0 || ntau == 0) && return _correlation_tuple(N_cw, N_ccw, G)
    tspan = unique!(sort!(vcat(0.0, delays)))
    n2 = sparse(dagger(model.a2) * model.a2)
    _foreach_steady_state(model, points, ntasks) do k, x, c
        rho = _density_operator(model, x)
        N_cw[k] = real(expect(model.n1, rho))
        N_ccw[k] = real(expect(n2, rho))
        H = _hamiltonian(model, c)
        rate = sqrt(real(c[6]))
        jumps = [rate * model.a1, rate * model.a2]
        for (first, a) in enumerate((model.a1, model.a2))
            values = _conditional_photons(a * rho * dagger(a), H, jumps, model.n1, n2, tspan, reltol, abstol)
            for (j, t) in enumerate(delays)
                m1, m2 = values[t]
                if first == 1
                    G[1][k, j] = m1
                    G[2][k, j] = m2
                    G[4][k, j] = m1 + m2
                else
                    G[3][k, j] = m2
                    G[5][k, j] = m1 + m2
                end
            end
        end
    end
    return _correlation_tuple(N_cw, N_ccw, G)
end

"""The named tuple returned by [`tau_correlations`](@ref)."""
function _correlation_tuple(N_cw, N_ccw, G)
    return (
        N_cw = N_cw,
        N_ccw = N_ccw,
        G_cw_cw = G[1],
        G_cw_ccw = G[2],
        G_ccw_ccw = G[3],
        photons_cw = G[4],
        photons_ccw = G[5],
    )
end

"""
    _conditional_photons(start, H, jumps, n1, n2, tspan, reltol, abstol)

`Dict` from each time of `tspan` to `(Tr[n1 x(t)], Tr[n2 x(t)])` with `x(t)` the
master-equation evolution of the (unnormalised) operator `start`.
"""
function _conditional_photons(start, H, jumps, n1, n2, tspan, reltol, abstol)
    norm = real(tr(start))
    at = Dict{Float64, Tuple{Float64, Float64}}()
    if !(norm > 0)
        for t in tspan
            at[t] = (0.0, 0.0)
        end
        return at
    end
    observe = (t, state) -> (real(expect(n1, state)) * norm, real(expect(n2, state)) * norm)
    at[0.0] = observe(0.0, start / norm)
    if length(tspan) > 1
        times, values = timeevolution.master(
            tspan,
            start / norm,
            H,
            jumps;
            fout = observe,
            reltol = reltol,
            abstol = abstol,
        )
        for (t, v) in zip(times, values)
            at[t] = v
        end
    end
    for t in tspan
        haskey(at, t) || error("timeevolution.master returned no state at tau = $t")
    end
    return at
end

"""
    spectra(Delta, J, chi, xi, gamma, omega; cutoff, ntasks)

Incoherent emission spectra of both modes, per point (rows) and frequency (columns):

    S_m(ω) = ∫ dτ e^{-iωτ} ⟨δa_m†(τ) δa_m(0)⟩ = 2 Re Tr[a_m† x],  (L - iω) x = -(a_m ρ - ⟨a_m⟩ ρ),

`ω` the detuning from the drive (rate units). Each frequency is one sparse LU of
`L - iω + |ρ⟩⟨1|` (the rank-one term fixes Tr x = 0, so ω = 0 is regular), `L` the sparse
Liouvillian from QuantumOptics.jl's `liouvillian`. Returns the named tuple `S_cw`, `S_ccw`
(matrices) and `coherent_cw`, `coherent_ccw` (|⟨a⟩|², vectors), `N_cw`, `N_ccw`.
"""
function spectra(
    Delta::AbstractVector{<:Real},
    J::AbstractVector{<:Number},
    chi::AbstractVector{<:Real},
    xi::AbstractVector{<:Real},
    gamma::AbstractVector{<:Real},
    omega::AbstractVector{<:Real};
    cutoff::Integer,
    ntasks::Integer = Threads.nthreads(),
)
    points = _points(Delta, J, chi, xi, gamma)
    frequencies = Vector{Float64}(omega)
    all(isfinite, frequencies) || throw(ArgumentError("omega must be finite"))
    model = TwoModeKerrModel(cutoff)
    npts = length(points.Delta)
    S = [zeros(npts, length(frequencies)) for _ in 1:2]
    coherent = [zeros(npts) for _ in 1:2]
    N = [zeros(npts) for _ in 1:2]
    n2 = sparse(dagger(model.a2) * model.a2)
    npts == 0 && return _spectra_tuple(S, coherent, N)
    _foreach_steady_state(model, points, ntasks) do k, x, c
        rho = _density_operator(model, x)
        rate = sqrt(real(c[6]))
        L = liouvillian(_hamiltonian(model, c), [rate * model.a1, rate * model.a2])
        A = SparseMatrixCSC{ComplexF64, Int}(L.data)
        d = size(rho.data, 1)
        n = d * d
        fix = spzeros(ComplexF64, n, n)
        r = vec(rho.data)
        for i in 1:d
            fix[:, (i - 1) * (d + 1) + 1] = r
        end
        for (m, (a, number)) in enumerate(((model.a1, model.n1), (model.a2, n2)))
            mean = expect(a, rho)
            coherent[m][k] = abs2(mean)
            N[m][k] = real(expect(number, rho))
        end
        sources = hcat((-vec((a * rho - expect(a, rho) * rho).data) for a in (model.a1, model.a2))...)
        weights = hcat((vec(Matrix(a.data)) for a in (model.a1, model.a2))...)
        for (j, w) in enumerate(frequencies)
            solution = lu(A - (1im * w) * I + fix) \ sources
            for m in 1:2
                # 2 Re Tr[a† x] = 2 Re Σ conj(a_ij) x_ij
                S[m][k, j] = 2 * real(sum(conj.(weights[:, m]) .* solution[:, m]))
            end
        end
    end
    return _spectra_tuple(S, coherent, N)
end

"""The named tuple returned by [`spectra`](@ref)."""
function _spectra_tuple(S, coherent, N)
    return (
        S_cw = S[1],
        S_ccw = S[2],
        coherent_cw = coherent[1],
        coherent_ccw = coherent[2],
        N_cw = N[1],
        N_ccw = N[2],
    )
end

end # module PySPBJulia
