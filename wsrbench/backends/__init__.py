"""The backend implementations: one package per backend (docs/design.md#the-backends).

The registry (``wsrbench.core.registry``) lists them and imports each lazily; ``wsrbench.list_backends()``
says which are usable here. Calling this package, ``wsrbench.backends()``, still works for old code
but is deprecated: a package and a function of the same name was a trap (importing a backend
rebinds the attribute).
"""
import sys
import types
import warnings


class _DeprecatedCallablePackage(types.ModuleType):
    def __call__(self):
        warnings.warn("wsrbench.backends() is deprecated; use wsrbench.list_backends()",
                      DeprecationWarning, stacklevel=2)
        from ..core.registry import backends

        return backends()


sys.modules[__name__].__class__ = _DeprecatedCallablePackage
