"""The package's layers, and imports that only point down (lazy ones included).

From the bottom: the bit-exact core (``neuralzip.core``: what decides a file's bytes and
pixels), the zoo of shipped weights, image collections, the Python API, many-file jobs,
training and the benchmark, and on top the command line, which dispatches into all of
them. A module may import its own layer and the ones below; no module takes part in an
import circle.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "neuralzip"
LAYERS = [  # bottom first: (layer, module prefixes)
    ("core", ("neuralzip.core",)),
    ("zoo", ("neuralzip.zoo",)),
    ("images", ("neuralzip.images", "neuralzip.atomic", "neuralzip.interrupt")),
    ("api", ("neuralzip.api", "neuralzip.pillow_plugin")),
    ("jobs", ("neuralzip.jobs", "neuralzip.urls", "neuralzip.batch", "neuralzip.cluster", "neuralzip.inputs",
              "neuralzip.outputs", "neuralzip.tasks")),
    ("training and bench", ("neuralzip.training", "neuralzip.bench")),
    ("command line", ("neuralzip.cli", "neuralzip.__main__", "neuralzip")),
]


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    """The index in LAYERS of the longest prefix that names ``module``."""
    best = max((len(p), i) for i, (_, prefixes) in enumerate(LAYERS) for p in prefixes
               if module == p or module.startswith(p + "."))
    return best[1]


def _imports(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports, at the top or inside functions."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("neuralzip")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            elif node.module and node.module.startswith("neuralzip"):
                target = node.module
            else:
                continue
            for alias in node.names:  # `from . import zoo` imports a module
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _exists(candidate) else target)
    return found


def _exists(module: str) -> bool:
    path = PACKAGE.parent / Path(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


GRAPH = {_module(p): _imports(p) for p in PACKAGE.rglob("*.py")}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down(module):
    upward = [m for m in GRAPH[module] if _layer(m) > _layer(module)]
    assert not upward, f"{module} ({LAYERS[_layer(module)][0]}) imports {upward} from above"


def test_the_core_imports_only_the_core():
    for module, imports in GRAPH.items():
        if module.startswith("neuralzip.core"):
            assert all(m.startswith("neuralzip.core") for m in imports), (module, imports)


def test_no_import_circles():
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for nxt in sorted(GRAPH.get(module, ())):
            if nxt == module or nxt not in GRAPH:
                continue
            assert state.get(nxt) != 1, "import circle: " + " -> ".join([*path, module, nxt])
            if nxt not in state:
                visit(nxt, [*path, module])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [])
