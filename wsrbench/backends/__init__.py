"""The backend implementations: one package per backend (docs/design.md#the-backends).

The registry (``wsrbench.core.registry``) lists them and imports each lazily;
``wsrbench.list_backends()`` says which are usable here. Importing this package imports no backend.
"""
