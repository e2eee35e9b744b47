"""The package's import graph, read from its source with `ast`: no circle,
no import of the package's own modules inside a function (the usual way to
hide one; third-party imports that cost seconds, such as TFDS, may wait
there), and the sampling loop imports no model (models own their
incremental steps)."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "pixel_models"


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package's modules an import statement names (`from a import b`:
    `a.b` when that is a module, else `a`)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        names = [
            f"{node.module}.{alias.name}"
            if f"{node.module}.{alias.name}" in MODULES
            else node.module
            for alias in node.names
        ]
    return [name for name in names if name in MODULES]


def imports(name: str) -> tuple[set[str], list[str]]:
    """`(the package's modules imported outside functions, `if TYPE_CHECKING:`
    included; where the package's modules are imported inside a def)`."""
    tree = ast.parse(MODULES[name].read_text())
    functions = [
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    inside = {id(node) for function in functions for node in ast.walk(function)}
    statements = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    top = {m for node in statements if id(node) not in inside for m in imported(node)}
    nested = [
        f"{name}:{node.lineno}" for node in statements if id(node) in inside and imported(node)
    ]
    return top, nested


GRAPH = {name: imports(name)[0] for name in MODULES}


def reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for module in GRAPH[todo.pop()] - seen:
            seen.add(module)
            todo.append(module)
    return seen


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_itself_through_others(name):
    assert name not in reachable(name), f"{name} is in an import circle"


def test_no_import_of_the_package_inside_a_function():
    nested = [where for name in MODULES for where in imports(name)[1]]
    assert not nested, f"imports inside functions: {nested}"


def test_the_sampling_loop_imports_no_model():
    sampling = [name for name in MODULES if name.startswith("pixel_models.sampling")]
    for name in sampling:
        models = sorted(m for m in reachable(name) if m.startswith("pixel_models.models"))
        assert not models, f"{name} imports {models}"


def test_the_graph_is_read():
    # A check of the reader itself: known edges are found.
    assert "pixel_models.interface" in GRAPH["pixel_models.models.pixelcnn"]
    assert "pixel_models.sampling.sampler" in GRAPH["pixel_models.sampling"]
