"""One module (or subpackage) per backend. Nothing else lives here; the registry is
``wsrbench.registry``."""
