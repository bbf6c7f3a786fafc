r"""Orthogonal projections onto parameter-sharing constraints
(docs/design.md#ties-affine-constraints-reparameterization).

Two kinds of constraint sets, both affine subspaces of R^n (n = number of weights):

* **ties** ``{w : w_i = w_j whenever groups_i = groups_j}``. The orthogonal projection replaces
  each weight by the mean of its group (the least-squares fit with one free value per group). The
  set is a linear subspace, so projecting a gradient is the same map.
* **affine** ``{w : A w = c}``. With the thin SVD A = U S V^T restricted to the r numerically
  nonzero singular values, the projection is

  .. math:: P(w) = w - A^T (A A^T)^+ (A w - c) = w - V (V^T w - S^{-1} U^T c),

  the gradient (tangent) projection is g - V V^T g, and the same set is {B v + w0} with B an
  orthonormal basis of null(A) and w0 = A^+ c the minimum-norm solution (reparameterisation).
  Rank-deficient A is handled by the truncated SVD (pseudo-inverse); a c outside the range of A
  (no solution) is a ValueError.

Training projects at every step, so :class:`TieProjector` and :class:`AffineProjector` factor
once (relabelling, SVD, consistency check) and cache the factors per device; ``project_ties`` and
``project_affine`` are one-shot conveniences built on them. Every call dispatches through
``wsrbench.core.registry.operation`` and returns the input's array kind (NumPy, torch on the same
device, CUDA arrays) and float dtype; sums are accumulated in float64.
"""
from __future__ import annotations

import numpy as np

from ..core import arrays, checks, registry
from ..core.checks import as_float_array

EPS64 = float(np.finfo(np.float64).eps)


def scaled_norm(v) -> float:
    """Euclidean (Frobenius) norm of a float64 array without overflow or underflow.

    ||v|| = s ||v / s|| with s = max|v|: every scaled entry is at most 1, so the sum of squares is
    at most v.size and no square underflows unless its entry is below eps s (negligible beside s).
    Returns inf only when the true norm exceeds the float64 range.
    """
    v = np.asarray(v, dtype=np.float64)
    s = float(np.max(np.abs(v), initial=0.0))
    if s == 0.0 or not np.isfinite(s):
        return s
    with np.errstate(over="ignore"):
        return float(s * np.linalg.norm(v / s))


class TieProjector:
    r"""Projection onto ``{w : w_i = w_j whenever groups_i = groups_j}``, labels prepared once.

    .. math:: P(w)_i = \frac{1}{|G(i)|} \sum_{j \in G(i)} w_j, \qquad
              G(i) = \{j : \mathrm{groups}_j = \mathrm{groups}_i\}

    Parameters
    ----------
    groups : array of integers, any shape
        Group label of each weight (any values, e.g. -3, 7, 10**12; not necessarily 0..k-1), the
        shape of the weights it will project. NumPy, torch or CUDA (copied to the host once).

    Attributes
    ----------
    shape : tuple of int
        The shape of ``groups``, which every projected array must have.
    labels : ndarray
        The distinct labels, sorted.
    n_groups : int
        The number of free values (distinct labels).

    Raises
    ------
    TypeError
        If groups is not an integer array.
    ValueError
        If an unsigned label exceeds 2**63 - 1.
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
        """Each weight replaced by its group mean (a float64 sum per group, one rounding).

        Parameters
        ----------
        w : array (NumPy, torch or CUDA) of shape ``self.shape``
            float32 and float64 keep their dtype; integers become float64. Never modified.
        backend : str, default "auto"
            A registered backend, or "auto" to follow w's array kind.
        check : bool, default True
            False skips the input checks (dtype, finiteness, shape): for hot loops on arrays
            already known to be valid.

        Returns
        -------
        array of w's kind, shape and dtype

        Raises
        ------
        ValueError
            If w's shape is not ``self.shape`` or w has a non-finite entry (with check=True).
        TypeError
            If w's dtype is not float32, float64 or integer (with check=True).
        """
        return self._apply(w, "w", backend, check)

    def project_gradient(self, g, *, backend="auto", check=True):
        """Projection of a gradient onto the tied subspace: the same group-mean map as
        :meth:`project` (the subspace is linear). Same parameters, returns and errors."""
        return self._apply(g, "g", backend, check)

    def values(self, w, *, backend="auto"):
        """The free values: the group means of w, in the order of ``labels``.

        Parameters
        ----------
        w : array (NumPy, torch or CUDA) of shape ``self.shape``
        backend : str, default "auto"

        Returns
        -------
        ndarray of shape (n_groups,), w's dtype, on the host
        """
        return arrays.to_host(self.project(w, backend=backend)).reshape(-1)[self._first]


def project_ties(w, groups, *, backend="auto"):
    r"""Orthogonal projection of w onto the tied subspace: every weight becomes its group's mean.

    .. math:: \operatorname{argmin}_{v:\ v_i = v_j \text{ when groups}_i = \text{groups}_j}
              \|v - w\|_2, \qquad v_i = \operatorname{mean}\{w_j : \text{groups}_j =
              \text{groups}_i\}

    For repeated projections with the same groups (training), build a :class:`TieProjector` once.

    Parameters
    ----------
    w : array (NumPy, torch or CUDA), any shape
        float32 and float64 keep their dtype; integers become float64. Never modified.
    groups : array of integers, the shape of w
        Group label of each weight (arbitrary values).
    backend : str, default "auto"
        A registered backend, or "auto" to follow w's array kind.

    Returns
    -------
    array of w's kind, shape and dtype

    Raises
    ------
    ValueError
        If the shapes differ or w has a non-finite entry.
    TypeError
        If w's dtype is not float32, float64 or integer, or groups is not an integer array.
    """
    w = checks.as_float(w, "w")
    proj = TieProjector(groups)
    if tuple(w.shape) != proj.shape:
        raise ValueError(f"groups must have the shape of w: w has shape {tuple(w.shape)}, "
                         f"groups has shape {proj.shape}")
    return proj.project(w, backend=backend, check=False)


class AffineProjector:
    r"""Projection onto ``{w : A w = c}`` with the SVD of A and the consistency check done once.

    With the thin SVD A = U S V^T truncated to its r numerically nonzero singular values,

    .. math:: P(w) = w - A^T (A A^T)^+ (A w - c) = w - V (V^T w - S^{-1} U^T c).

    Parameters
    ----------
    A : array (NumPy, torch or CUDA) of shape (m, n)
        One constraint per row. Factored in float64 on the host.
    c : array of shape (m,) or (m, 1), optional
        Right-hand side; default 0 (the linear subspace null(A)).
    rcond : float, optional
        Singular values below ``rcond * s_max`` count as zero. Default ``max(m, n) * eps`` of A's
        dtype (NumPy's matrix_rank rule).

    Attributes
    ----------
    m, n : int
        A's shape. Weights of any shape with n entries are projected through their C-order
        flattening.
    rank : int
        The numerical rank r.
    singular_values : ndarray
        All singular values of A (float64, descending).
    residual : float
        ||c - U_r U_r^T c||: the part of c outside range(A) (rounding only, once accepted).

    Raises
    ------
    ValueError
        If A is not 2-D, c does not have one entry per row, an entry is not finite, or the
        constraints are inconsistent: c has a component outside range(A) larger than
        ``4 max(m, n) eps (||c|| + ||A||_F ||A^+ c||)``, the error of forming c = A x in floating
        point for the minimum-norm x.
    TypeError
        If A's or c's dtype is not float32, float64 or integer.
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
        # Norms scaled by their largest entry: a plain sum of squares overflows for entries near
        # 1e155 and underflows to 0 near 1e-160, which accepted inconsistent constraints at both
        # ends (docs/design.md#the-other-operators-over-the-whole-range).
        residual = scaled_norm(c64 - Ur @ Utc)
        a_norm = scaled_norm(A64)
        tol = 4.0 * max(m, n, 1) * eps * (scaled_norm(c64) + a_norm * scaled_norm(self._b))
        if residual > tol:
            raise ValueError(
                f"the constraints A w = c are inconsistent (no w satisfies them): c has a "
                f"component of norm {residual:.3g} outside the range of A (rank {r} of {m} rows), "
                f"above the rounding tolerance {tol:.3g}; fix c or drop the conflicting rows of A")
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
        """Nearest point of {w : A w = c} (Euclidean): w - V (V^T w - S^-1 U^T c).

        Parameters
        ----------
        w : array (NumPy, torch or CUDA) with n entries, any shape
            float32 and float64 keep their dtype; integers become float64. Never modified.
        backend : str, default "auto"
            A registered backend, or "auto" to follow w's array kind.
        check : bool, default True
            False skips the dtype and finiteness checks (hot loops); the size is always checked.

        Returns
        -------
        array of w's kind, shape and dtype

        Raises
        ------
        ValueError
            If w does not have n entries, or has a non-finite one (with check=True).
        TypeError
            If w's dtype is not float32, float64 or integer (with check=True).
        """
        return self._apply(w, "w", backend, check, gradient=False)

    def project_gradient(self, g, *, backend="auto", check=True):
        """g - A^+ A g = g - V V^T g: the component of g in null(A), the directions that keep
        A w = c. Same parameters, returns and errors as :meth:`project`."""
        return self._apply(g, "g", backend, check, gradient=True)

    def residual_of(self, w) -> float:
        """||A w - c||_2 (float64, host), to check a point."""
        w64 = arrays.to_host(w).reshape(-1).astype(np.float64)
        return scaled_norm(self._A @ w64 - self._c)


def project_affine(w, A, c, *, backend="auto"):
    r"""Nearest point to w with A w = c.

    .. math:: P(w) = w - A^T (A A^T)^+ (A w - c)

    Rank-deficient A works (pseudo-inverse, truncated SVD). Build an :class:`AffineProjector` once
    to project repeatedly.

    Parameters
    ----------
    w : array (NumPy, torch or CUDA) with n entries, any shape
        Flattened in C order. float32 and float64 keep their dtype; integers become float64.
        Never modified.
    A : array of shape (m, n)
    c : array of shape (m,), or None for 0
    backend : str, default "auto"
        A registered backend, or "auto" to follow w's array kind.

    Returns
    -------
    array of w's kind, shape and dtype

    Raises
    ------
    ValueError
        If the constraints are inconsistent (see :class:`AffineProjector`), the shapes do not
        match, or an entry is not finite.
    TypeError
        If a dtype is not float32, float64 or integer.
    """
    w = checks.as_float(w, "w")
    return AffineProjector(A, c).project(w, backend=backend, check=False)


def null_space(A):
    """Orthonormal basis of null(A): B with A B = 0 and B^T B = I.

    Parameters
    ----------
    A : array (NumPy, torch or CUDA) of shape (m, n)

    Returns
    -------
    B : array of A's kind, float64, shape (n, n - rank)
        The last n - rank right singular vectors of A.

    Raises
    ------
    ValueError
        If A is not 2-D or has a non-finite entry.
    TypeError
        If A's dtype is not float32, float64 or integer.
    """
    proj = AffineProjector(A)
    return arrays.like(proj.null_space(), A)


def reparameterize(A, c):
    r"""The affine set as a free parameterisation: optimise v without constraints.

    .. math:: \{w : A w = c\} = \{B v + w_0 : v \in \mathbb{R}^{n - r}\}, \qquad
              w_0 = A^+ c, \quad B^T w_0 = 0

    Parameters
    ----------
    A : array (NumPy, torch or CUDA) of shape (m, n)
    c : array of shape (m,), or None for 0

    Returns
    -------
    B : array of A's kind, float64, shape (n, n - rank)
        Orthonormal basis of null(A).
    w0 : array of A's kind, float64, shape (n,)
        The minimum-norm solution A^+ c.

    Raises
    ------
    ValueError
        If the constraints are inconsistent (see :class:`AffineProjector`), the shapes do not
        match, or an entry is not finite.
    TypeError
        If a dtype is not float32, float64 or integer.
    """
    proj = AffineProjector(A, c)
    return arrays.like(proj.null_space(), A), arrays.like(proj.w0, A)


def project_gradient(g, *, groups=None, A=None, projector=None, backend="auto"):
    """Project a gradient onto the tangent space of a constraint set (projected gradient descent).

    A step w - lr * project_gradient(g, ...) from a feasible w stays feasible.

    Parameters
    ----------
    g : array (NumPy, torch or CUDA)
        The gradient; float32 and float64 keep their dtype. Never modified.
    groups : array of integers, the shape of g, optional
        Ties: each entry of g becomes its group's mean.
    A : array of shape (m, n), optional
        Affine constraints: g - A^+ A g, the part of g in null(A) (g has n entries).
    projector : TieProjector or AffineProjector, optional
        A prepared projector (factored once, for training loops).
    backend : str, default "auto"
        A registered backend, or "auto" to follow g's array kind.

    Give exactly one of ``groups``, ``A`` and ``projector``.

    Returns
    -------
    array of g's kind, shape and dtype

    Raises
    ------
    ValueError
        If not exactly one of groups, A and projector is given, the shapes do not match, or an
        entry is not finite.
    TypeError
        If projector is of another type, or a dtype is not float32, float64 or integer.
    """
    options = (("groups", groups), ("A", A), ("projector", projector))
    given = [n for n, v in options if v is not None]
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
