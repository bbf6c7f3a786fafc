"""The benchmark and validation suite: input families, property checks, timing, the comparison,
the validator, reports and the GPU cost model. It uses only the public API, the registry and
``wsrbench.core`` (docs/design.md#layout)."""
