"""``wsrbench.core.depth`` compiled for the Numba kernels (the same source, ``depth.compile_depth``;
the registry-parametrised tests check that every backend's depth equals the NumPy reference's)."""
from __future__ import annotations

from numba import njit

from ...core.depth import compile_depth

_compiled = compile_depth(njit(cache=True, inline="always"))
lg = _compiled.lg
imminent_round = _compiled.imminent_round
end_cluster = _compiled.end_cluster
search_level = _compiled.search_level
bridge_bound = _compiled.bridge_bound
