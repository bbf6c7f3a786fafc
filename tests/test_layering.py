"""The package's module graph: no import cycle of any length, and the layering by role.

The graph is read from the source (``ast``), not from ``sys.modules``, so that an import that a test
run happens not to execute still counts. An edge ``a -> b`` is any of:

- an ``import`` / ``from ... import`` statement anywhere in ``a`` (module level or inside a
  function: a lazy import is a dependency all the same), relative imports resolved;
- a string literal passed to ``importlib.import_module(...)``, ``import_module(...)`` or
  ``__import__(...)`` (relative names with ``package=`` literal resolved);
- a *named reference*: any other string constant (or the literal head of an f-string) that names a
  wsrbench module, such as ``"wsrbench.backends.numba"`` or ``"wsrbench.backends.numpy.gates:fn"``.

How core reaches the backends: the registry (``wsrbench.core.registry``) is the one table that maps
backend and operation names to the modules implementing them; it holds those modules' names as
strings and imports them only on first use. Those strings are named references: table data, read at
call time, and not import edges. They are left out of the cycle search, since a backend that asks
the registry for another backend (torch's ``pava`` runs numba's kernel) is the designed route, not
a cycle of imports; they are constrained instead by the rules below. The layering rule "core
imports no backend" is then:
no core module has an import edge (statement or ``import_module`` string) to ``wsrbench.backends``,
and the only core module with a named reference to a backend is the registry. Everything else in core
that needs a backend's primitive (the CUDA array primitives of ``wsrbench.core.arrays``, the warm
start of ``wsrbench.core.warm_start``) gets it through the registry table at run time.

The layering (a module may use its own layer and those listed; docs/design.md#layout lists the
modules by role):

- ``core``: nothing but core (and the registry's named references to backends);
- ``ops``: core;
- ``backends``: core (and their own backend package);
- ``bench``, ``nn``: the public API (``wsrbench``, ``wsrbench.api``, and the public subpackages
  ``wsrbench.distributed``, the sharded prox), core (the registry included), ``ops`` (public
  operators), their own layer; ``bench`` also ``nn`` (it benchmarks the training step), and
  backends only through the registry (no edge to ``wsrbench.backends``); neither imports ``cli``.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import wsrbench

ROOT = Path(wsrbench.__file__).parent
_NAME = re.compile(r"^(wsrbench(?:\.\w+)*)(?::\w+)?$")
_IMPORTERS = {"import_module", "__import__"}


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(modules, package: str, base: str, level: int) -> str:
    if not level:
        return base
    anchor = package.split(".")
    anchor = anchor[: len(anchor) - level + 1]
    return ".".join(anchor + ([base] if base else []))


def _known(modules, name: str) -> str | None:
    """The longest prefix of ``name`` that is a module of the package."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in modules:
            return cand
        parts.pop()
    return None


def build_graph(root: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(imports, named): the import edges and the named-reference edges of the package at root."""
    top = root.name
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    imports: dict[str, set[str]] = {m: set() for m in modules}
    named: dict[str, set[str]] = {m: set() for m in modules}
    pattern = re.compile(rf"^({re.escape(top)}(?:\.\w+)*)(?::\w+)?$")
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        consumed: set[int] = set()  # string nodes already read as import_module arguments

        def add(table, target, name=name):
            t = _known(modules, target)
            if t is not None and t != name:
                table[name].add(t)

        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    add(imports, a.name)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(modules, package, node.module or "", node.level)
                for a in node.names:  # "from pkg import mod" imports pkg.mod (and pkg)
                    add(imports, base)
                    if f"{base}.{a.name}" in modules:
                        add(imports, f"{base}.{a.name}")
            elif isinstance(node, ast.Call):
                fn = node.func
                fname = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
                if fname in _IMPORTERS and node.args and isinstance(node.args[0], ast.Constant) \
                        and isinstance(node.args[0].value, str):
                    target = node.args[0].value
                    consumed.add(id(node.args[0]))
                    if target.startswith("."):
                        pkg = next((k.value.value for k in node.keywords if k.arg == "package"
                                    and isinstance(k.value, ast.Constant)), package)
                        level = len(target) - len(target.lstrip("."))
                        target = _resolve(modules, pkg, target.lstrip("."), level)
                    add(imports, target)
        for node in ast.walk(tree):
            text = None
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in consumed:
                text = node.value
            elif isinstance(node, ast.JoinedStr) and node.values \
                    and isinstance(node.values[0], ast.Constant):
                text = str(node.values[0].value).rstrip(".")
            if text is not None and (m := pattern.match(text)):
                # a constant names a module exactly ("wsrbench.algorithms", an entry-point group,
                # is no module); an f-string's head names a package
                if isinstance(node, ast.JoinedStr) or m.group(1) in modules:
                    add(named, m.group(1))
    return imports, named


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a self-loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _merged(*tables):
    out: dict[str, set[str]] = {}
    for t in tables:
        for k, v in t.items():
            out.setdefault(k, set()).update(v)
    # a package's __init__ re-exporting its own submodules is how a package is built, not a cycle
    # of ideas: drop edges from a package to the modules inside it
    return {k: {t for t in v if not t.startswith(k + ".")} for k, v in out.items()}


@pytest.fixture(scope="module")
def graph():
    return build_graph(ROOT)


def test_no_import_cycles(graph):
    imports, _ = graph
    found = cycles(_merged(imports))
    assert not found, "import cycles (lazy imports and import_module strings included): " + \
        "; ".join(" <-> ".join(c) for c in found)


def _layer(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "wsrbench"


ALLOWED = {
    "core": {"core"},
    "ops": {"core", "ops"},
    "backends": {"core", "backends"},
    "bench": {"wsrbench", "api", "core", "ops", "bench", "distributed", "nn"},
    "nn": {"wsrbench", "api", "core", "ops", "nn", "distributed"},
}


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layering(graph, layer):
    imports, named = graph
    bad = []
    for mod, targets in imports.items():
        if _layer(mod) != layer:
            continue
        for t in targets:
            if _layer(t) not in ALLOWED[layer]:
                bad.append(f"{mod} -> {t}")
    assert not bad, f"{layer} imports outside its layer: {sorted(bad)}"


def test_backends_use_their_own_package_or_core(graph):
    imports, _ = graph
    bad = [f"{m} -> {t}" for m, ts in imports.items() if _layer(m) == "backends"
           for t in ts if _layer(t) == "backends" and t != "wsrbench.backends"
           and t.split(".")[2] != m.split(".")[2]]
    assert not bad, sorted(bad)


def test_only_the_registry_names_backends_in_core(graph):
    imports, named = graph
    bad = [f"{m} -> {t}" for m, ts in named.items() if _layer(m) == "core"
           and m != "wsrbench.core.registry" for t in ts if _layer(t) not in ("core",)]
    assert not bad, f"core modules naming modules outside core: {sorted(bad)}"
    assert any(_layer(t) == "backends" for t in named["wsrbench.core.registry"]), \
        "the registry's backend table was not read: the named-reference scan is broken"


def test_the_detector_finds_cycles_of_any_length():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "fakepkg"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_the_checker_catches_a_cycle_through_an_import_module_string(tmp_path):
    root = _fake_package(tmp_path, {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "def f():\n    import importlib\n    return importlib.import_module('fakepkg.c')\n",
        "c.py": "def g():\n    return __import__('fakepkg.a')\n",
        "d.py": "import importlib\nimportlib.import_module('.a', package='fakepkg')\n",
    })
    imports, _ = build_graph(root)
    assert imports["fakepkg.d"] == {"fakepkg.a"}
    assert cycles(_merged(imports)) == [["fakepkg.a", "fakepkg.b", "fakepkg.c"]]


def test_the_checker_reads_lazy_imports_and_named_references(tmp_path):
    root = _fake_package(tmp_path, {
        "__init__.py": "",
        "core/__init__.py": "",
        "core/table.py": "TABLE = {'x': 'fakepkg.back.impl:run'}\n"
                         "def f(b):\n    return f'fakepkg.back.{b}'\n",
        "back/__init__.py": "",
        "back/impl.py": "def run():\n    from ..core import table\n    return table\n",
    })
    imports, named = build_graph(root)
    assert imports["fakepkg.back.impl"] == {"fakepkg.core", "fakepkg.core.table"}
    assert named["fakepkg.core.table"] == {"fakepkg.back.impl", "fakepkg.back"}
    assert cycles(_merged(imports)) == []  # a named reference is no import edge


def test_the_checker_resolves_a_lazy_relative_import_into_a_cycle(tmp_path):
    root = _fake_package(tmp_path, {
        "__init__.py": "",
        "core/__init__.py": "",
        "core/low.py": "def f():\n    from ..ops import high\n    return high\n",
        "ops/__init__.py": "",
        "ops/high.py": "from ..core.low import f\n",
    })
    imports, _ = build_graph(root)
    assert cycles(_merged(imports)) == [["fakepkg.core.low", "fakepkg.ops.high"]]
