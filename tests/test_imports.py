"""The floor plan's import rules, read from the source: no import circle between modules, and
no module importing another package's private module (``_name``)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("graphnn", "challenge", "topologies")


def _modules():
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(name, path, modules):
    """The project modules ``name`` imports (a package's own ancestors, whose ``__init__``
    Python runs first anyway, left out)."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".")[: len(name.split(".")) - node.level + is_package]
                base = ".".join(here + ([node.module] if node.module else []))
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            targets = subs if len(subs) == len(node.names) else [base, *subs]
        else:
            continue
        ancestors = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
        out |= {t for t in targets if t in modules and t != name and t not in ancestors}
    return out


GRAPH = {name: _imports(name, path, _modules()) for name, path in _modules().items()}


def test_no_module_imports_another_packages_private_module():
    wrong = []
    for name, targets in GRAPH.items():
        for target in targets:
            parts = target.split(".")
            for k, part in enumerate(parts):
                owner = ".".join(parts[:k])
                if part.startswith("_") and not part.startswith("__"):
                    if not (name == owner or name.startswith(owner + ".")):
                        wrong.append(f"{name} imports {target}")
    assert not wrong, wrong


def test_no_import_circle():
    state, circles = {}, []

    def visit(name, stack):
        state[name] = "open"
        for target in sorted(GRAPH.get(name, ())):
            if state.get(target) == "open":
                circles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not circles, circles
