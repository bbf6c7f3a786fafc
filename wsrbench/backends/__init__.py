"""Backends: one module (or subpackage) per backend; the registry is ``wsrbench.registry``.

``wsrbench.backends`` is also the public function of DESIGN.md section 3: calling this package,
``wsrbench.backends()``, returns ``wsrbench.registry.backends()`` (every registered backend, whether it
is available here, and why not). Python binds a subpackage to its parent's attribute on import, so a
plain function of the same name would be replaced the first time a backend is loaded; a callable
package keeps both meanings stable.
"""
import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self):
        from ..registry import backends

        return backends()


sys.modules[__name__].__class__ = _CallablePackage
