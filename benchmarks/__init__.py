"""asv benchmark suites of wsrbench (see asv.conf.json at the repository root and the README).

Every suite is parametrised over the registry (``wsrbench.list_backends()`` /
``wsrbench.list_algorithms()``, plugins included) and over the input families of
``wsrbench.bench.cases``; combinations that cannot or should not run here (an unavailable backend,
an algorithm a backend lacks, a size above an explicit cap) raise NotImplementedError in setup,
which asv reports as skipped ("n/a").
"""
