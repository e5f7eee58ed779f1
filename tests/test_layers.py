"""The layers of docs/layers.md, read from the source: which package may import which, no module
import circles, and the runtime's tests need nothing above the runtime."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# package -> the project packages it may import (besides itself); docs/layers.md draws the same.
ALLOWED = {
    "edge_runtime": set(),
    "fer_data": {"edge_runtime"},
    "trainer": {"edge_runtime", "fer_data"},
    "convert": {"edge_runtime", "fer_data"},
    "benchmarks": {"edge_runtime", "fer_data", "convert"},
}
# What a test of the runtime may import: it must run where only the runtime is installed.
RUNTIME_TEST_ALLOWED = {"edge_runtime", "fer_data", "tests"}


def runtime_tests() -> list[Path]:
    return sorted([*ROOT.glob("tests/test_runtime_*.py"), ROOT / "tests" / "test_serve.py"])


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, top_level_only: bool = False) -> set[str]:
    """Every module `path` imports (at any depth of the file, or only at its top level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from edge_runtime.outputs import atomic` imports the module edge_runtime.outputs.atomic
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def package_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_every_package_imports_only_the_layers_below_it():
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in package_files(package):
            for module in imported_modules(path):
                top = module.split(".")[0]
                if top in ALLOWED and top != package and top not in allowed:
                    wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_the_rule_catches_an_import_up(tmp_path):
    # The reader the rule rests on sees imports inside functions too (lazy imports count).
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from trainer.train import train\n    import benchmarks.cli\n")
    assert {"trainer.train", "benchmarks.cli"} <= imported_modules(source)


def test_no_module_import_circle():
    modules = {module_name(path): path for package in ALLOWED for path in package_files(package)}
    graph = {name: {m for m in imported_modules(path, top_level_only=True) if m in modules and m != name}
             for name, path in modules.items()}
    # A package's __init__ that re-exports its own modules is how a package is built, not a circle.
    graph = {name: {m for m in targets if not (name.startswith(m + ".") and graph.get(m, set()) >= {name})}
             for name, targets in graph.items()}
    circle = find_circle(graph)
    assert circle is None, " -> ".join(circle or [])


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (module -> modules it imports), or None."""
    done, path, on_path = set(), [], set()

    def visit(name: str) -> list[str] | None:
        path.append(name)
        on_path.add(name)
        for target in sorted(graph.get(name, ())):
            if target in on_path:
                return path[path.index(target):] + [target]
            if target not in done:
                found = visit(target)
                if found:
                    return found
        on_path.discard(path.pop())
        done.add(name)
        return None

    for name in sorted(graph):
        if name not in done:
            found = visit(name)
            if found:
                return found
    return None


def test_find_circle_finds_one():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None


def test_the_runtime_tests_import_nothing_above_the_runtime():
    wrong, seen, pending = [], set(), list(runtime_tests())
    while pending:  # the test helpers they import are held to the same rule
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in ALLOWED and top not in RUNTIME_TEST_ALLOWED:
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
            helper = ROOT / (module.replace(".", "/") + ".py")
            if top == "tests" and helper.is_file():
                pending.append(helper)
    assert runtime_tests() and not wrong, "\n".join(wrong)
