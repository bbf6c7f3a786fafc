r"""Orthogonal projections onto parameter-sharing constraints (DESIGN.md 2.3).

Two kinds of constraint sets, both affine subspaces of R^n (n = number of weights):

* **ties** ``{w : w_i = w_j whenever groups_i = groups_j}``. The orthogonal projection replaces each
  weight by the mean of its group (the least-squares fit with one free value per group). The set is
  a linear subspace, so projecting a gradient is the same map.
* **affine** ``{w : A w = c}``. With the thin SVD A = U S V^T restricted to the r numerically nonzero
  singular values, the projection is

  .. math:: P(w) = w - A^T (A A^T)^+ (A w - c) = w - V (V^T w - S^{-1} U^T c),

  the gradient (tangent) projection is g - V V^T g, and the same set is {B v + w0} with B an
  orthonormal basis of null(A) and w0 = A^+ c the minimum-norm solution (reparameterisation).
  Rank-deficient A is handled by the truncated SVD (pseudo-inverse); a c outside the range of A
  (no solution) is a ValueError.

Training projects at every step, so :class:`TieProjector` and :class:`AffineProjector` factor
once (relabelling, SVD, consistency check) and cache the factors per device; ``project_ties`` and
``project_affine`` are one-shot conveniences built on them. Every call dispatches through
``wsrbench.registry.operation`` and returns the input's array kind (NumPy, torch on the same device,
CUDA arrays) and float dtype; sums are accumulated in float64.
"""
from __future__ import annotations

import numpy as np

from . import arrays, checks, registry
from .checks import as_float_array

EPS64 = float(np.finfo(np.float64).eps)


class TieProjector:
    """Projection onto ``{w : w_i = w_j whenever groups_i = groups_j}`` with the labels prepared once.

    groups: integer array (any values, e.g. -3, 7, 10**12; not necessarily 0..k-1), the shape of the
    weights it will project. ``n_groups`` is the number of free values (distinct labels).
    """

    def __init__(self, groups):
        labels = checks.as_labels(groups, "groups")
        self.shape = tuple(labels.shape)
        uniq, first, inverse, counts = np.unique(labels.reshape(-1), return_index=True,
                                                 return_inverse=True, return_counts=True)
        self._first = first
        self.labels = uniq
        self.n_groups = int(uniq.shape[0])
        self._inverse = inverse.reshape(-1).astype(np.int64)
        self._counts = counts.astype(np.float64)
        self._cache: dict = {}

    def _consts(self, w):
        key = arrays.device_key(w)
        if key not in self._cache:
            self._cache[key] = (arrays.like(self._inverse, w), arrays.like(self._counts, w))
        return self._cache[key]

    def _apply(self, w, name, backend, check):
        if check:
            w = checks.as_float(w, name)
            if tuple(w.shape) != self.shape:
                raise ValueError(f"groups must have the shape of {name}: {name} has shape "
                                 f"{tuple(w.shape)}, groups has shape {self.shape}")
        fn, _ = registry.operation("project_ties", backend, w)
        inverse, counts = self._consts(w)
        return arrays.match_kind(fn(arrays.flat(w), inverse, counts).reshape(tuple(w.shape)), w)

    def project(self, w, *, backend="auto", check=True):
        """Each weight replaced by its group mean. ``check=False`` skips validation (hot loops)."""
        return self._apply(w, "w", backend, check)

    def project_gradient(self, g, *, backend="auto", check=True):
        """The tied subspace is linear: the gradient projection is the same group-mean map."""
        return self._apply(g, "g", backend, check)

    def values(self, w, *, backend="auto"):
        """The n_groups free values (group means, in the order of ``labels``) as a host array."""
        return arrays.to_host(self.project(w, backend=backend)).reshape(-1)[self._first]


def project_ties(w, groups, *, backend="auto"):
    """Orthogonal projection of w onto the tied subspace: every weight becomes its group's mean.

    w: float32/float64 array of any shape (NumPy, torch or CUDA); groups: integer labels of the same
    shape (arbitrary values). Returns w's kind, dtype and shape; w is never modified. For repeated
    projections with the same groups (training), build a :class:`TieProjector` once.
    """
    w = checks.as_float(w, "w")
    proj = TieProjector(groups)
    if tuple(w.shape) != proj.shape:
        raise ValueError(f"groups must have the shape of w: w has shape {tuple(w.shape)}, "
                         f"groups has shape {proj.shape}")
    return proj.project(w, backend=backend, check=False)


class AffineProjector:
    r"""Projection onto ``{w : A w = c}`` with the SVD of A and the consistency check done once.

    A: (m, n) real matrix; c: length-m vector (default 0: the linear subspace null(A)). Weights
    of any shape with n entries are projected through their C-order flattening.

    rcond: singular values below ``rcond * s_max`` count as zero (default ``max(m, n) * eps`` of A's
    dtype, NumPy's matrix_rank rule). The constraints are inconsistent, and the constructor raises,
    when c has a component outside range(A) larger than ``4 max(m, n) eps (||c|| + ||A||_F ||A^+ c||)``:
    the error of forming c = A x in floating point for the minimum-norm x.
    """

    def __init__(self, A, c=None, *, rcond=None):
        A_host = as_float_array(arrays.to_host(A) if arrays.array_kind(A) != "numpy" else A, "A")
        if A_host.ndim != 2:
            raise ValueError(f"A must be a 2-D matrix (one constraint per row), got shape "
                             f"{A_host.shape}")
        m, n = A_host.shape
        eps = float(np.finfo(A_host.dtype).eps)
        if c is None:
            c_host = np.zeros(m)
        else:
            c_host = as_float_array(arrays.to_host(c) if arrays.array_kind(c) != "numpy" else c, "c")
            eps = max(eps, float(np.finfo(c_host.dtype).eps))
            if c_host.shape not in ((m,), (m, 1)):
                raise ValueError(f"c must have one entry per row of A: A has shape {(m, n)}, "
                                 f"c has shape {c_host.shape}")
            c_host = c_host.reshape(m)
        A64 = A_host.astype(np.float64)
        c64 = c_host.astype(np.float64)
        self.m, self.n = m, n
        if A64.size:
            U, s, Vt = np.linalg.svd(A64, full_matrices=False)
        else:  # no constraints (m = 0) or no weights (n = 0): nothing to factor
            U, s, Vt = np.zeros((m, 0)), np.zeros(0), np.zeros((0, n))
        rcond = max(m, n) * eps if rcond is None else float(rcond)
        s_max = float(s[0]) if s.size else 0.0
        r = int(np.sum(s > rcond * s_max)) if s_max > 0 else 0
        self.rank = r
        self.singular_values = s
        Ur, sr = U[:, :r], s[:r]
        self._V = np.ascontiguousarray(Vt[:r].T)  # (n, r): orthonormal basis of the row space
        Utc = Ur.T @ c64
        self._b = Utc / sr  # S^-1 U^T c, so that V^T P(w) = b
        residual = float(np.linalg.norm(c64 - Ur @ Utc))
        a_norm = float(np.linalg.norm(A64))
        tol = 4.0 * max(m, n, 1) * eps * (float(np.linalg.norm(c64))
                                          + a_norm * float(np.linalg.norm(self._b)))
        if residual > tol:
            raise ValueError(
                f"the constraints A w = c are inconsistent (no w satisfies them): c has a component "
                f"of norm {residual:.3g} outside the range of A (rank {r} of {m} rows), above the "
                f"rounding tolerance {tol:.3g}; fix c or drop the conflicting rows of A")
        self.residual = residual
        self._A = A64
        self._c = c64
        self._zeros = np.zeros(r)
        self._cache: dict = {}

    # -- factors -----------------------------------------------------------------------------
    @property
    def w0(self) -> np.ndarray:
        """Minimum-norm solution A^+ c (float64, host)."""
        return self._V @ self._b

    def null_space(self) -> np.ndarray:
        """Orthonormal basis B (n, n - rank) of null(A), float64, host: A B = 0, B^T B = I."""
        Vt = np.linalg.svd(self._A, full_matrices=True)[2] if self._A.size else np.eye(self.n)
        return np.ascontiguousarray(Vt[self.rank:].T)

    def _consts(self, w, gradient):
        key = arrays.device_key(w)
        if key not in self._cache:
            self._cache[key] = tuple(arrays.like(a, w) for a in (self._V, self._b, self._zeros))
        V, b, zeros = self._cache[key]
        return V, (zeros if gradient else b)

    def _apply(self, w, name, backend, check, gradient):
        if check:
            w = checks.as_float(w, name)
        size = int(np.prod(tuple(w.shape), dtype=np.int64))
        if size != self.n:
            raise ValueError(f"{name} must have one entry per column of A: A has {self.n} columns, "
                             f"{name} has shape {tuple(w.shape)} ({size} entries)")
        fn, _ = registry.operation("project_affine", backend, w)
        V, b = self._consts(w, gradient)
        return arrays.match_kind(fn(arrays.flat(w), V, b).reshape(tuple(w.shape)), w)

    def project(self, w, *, backend="auto", check=True):
        """Nearest point of {w : A w = c} (Euclidean). ``check=False`` skips validation."""
        return self._apply(w, "w", backend, check, gradient=False)

    def project_gradient(self, g, *, backend="auto", check=True):
        """g - A^+ A g: the component of g in null(A), the directions that keep A w = c."""
        return self._apply(g, "g", backend, check, gradient=True)

    def residual_of(self, w) -> float:
        """||A w - c||_2 (float64, host), to check a point."""
        return float(np.linalg.norm(self._A @ arrays.to_host(w).reshape(-1).astype(np.float64) - self._c))


def project_affine(w, A, c, *, backend="auto"):
    """Nearest point to w with A w = c: w - A^T (A A^T)^+ (A w - c).

    A: (m, n); c: (m,); w: any shape with n entries (flattened in C order), NumPy, torch or CUDA.
    Rank-deficient A works (pseudo-inverse); inconsistent constraints raise ValueError. Returns w's
    kind, shape and dtype. Build an :class:`AffineProjector` once to project repeatedly.
    """
    w = checks.as_float(w, "w")
    return AffineProjector(A, c).project(w, backend=backend, check=False)


def null_space(A):
    """Orthonormal basis B (n, n - rank) of null(A), in A's array kind (float64)."""
    proj = AffineProjector(A)
    return arrays.like(proj.null_space(), A)


def reparameterize(A, c):
    """(B, w0) with {w : A w = c} = {B v + w0 : v free}: optimise v without constraints.

    B: orthonormal basis of null(A) (n, n - rank); w0 = A^+ c, the minimum-norm solution (so
    B^T w0 = 0). Both float64 in A's array kind. Inconsistent constraints raise ValueError.
    """
    proj = AffineProjector(A, c)
    return arrays.like(proj.null_space(), A), arrays.like(proj.w0, A)


def project_gradient(g, *, groups=None, A=None, projector=None, backend="auto"):
    """Project a gradient onto the tangent space of a constraint set (projected gradient descent).

    Give exactly one of: ``groups`` (ties: group means of g), ``A`` (g - A^+ A g, the part of g in
    null(A)), or a prepared ``projector`` (:class:`TieProjector` or :class:`AffineProjector`).
    A step w - lr * project_gradient(g, ...) from a feasible w stays feasible.
    """
    given = [n for n, v in (("groups", groups), ("A", A), ("projector", projector)) if v is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of groups=, A= or projector=; got {given or 'none'}")
    g = checks.as_float(g, "g")
    if projector is None:
        projector = TieProjector(groups) if groups is not None else AffineProjector(A)
    elif not isinstance(projector, (TieProjector, AffineProjector)):
        raise TypeError(f"projector must be a TieProjector or AffineProjector, got "
                        f"{type(projector).__name__}")
    if isinstance(projector, TieProjector) and tuple(g.shape) != projector.shape:
        raise ValueError(f"groups must have the shape of g: g has shape {tuple(g.shape)}, "
                         f"groups has shape {projector.shape}")
    return projector.project_gradient(g, backend=backend, check=False)
