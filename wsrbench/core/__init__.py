"""The operator and its guarantees: numerics, input checks, the backend contract, the registry,
the certificate, the bridge step and the warm-started prox (docs/design.md#layout)."""
