"""Plugins reach the core only through its public surface: ``eportal_core.api`` (production code)
and, in their tests, the harness ``eportal_core.testing``. Walks every module under plugins/ and
examples/, imports inside functions included."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import eportal_core.api as api

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_SURFACE = ("eportal_core.api",)
TEST_SURFACE = RUNTIME_SURFACE + ("eportal_core.testing",)


def is_test_module(path: Path) -> bool:
    return "tests" in path.parts or path.name == "conftest.py" or path.name.startswith("test_")


def plugin_modules() -> list[Path]:
    found = []
    for top in ("plugins", "examples"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if any(part.endswith(".egg-info") or part in ("build", ".venv") for part in path.parts):
                continue
            found.append(path)
    return found


def violations(path: Path, source: str | None = None) -> list[str]:
    """``file:line: what`` for each import of a core name outside the surface."""
    tree = ast.parse(source if source is not None else path.read_text(), filename=str(path))
    allowed = TEST_SURFACE if is_test_module(path) else RUNTIME_SURFACE
    where = path.relative_to(ROOT) if path.is_absolute() else path
    found = []

    def inside(module: str) -> bool:
        return any(module == ok or module.startswith(ok + ".") for ok in allowed)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "eportal_core" and not inside(alias.name):
                    found.append(f"{where}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "eportal_core":
                continue
            if node.module == "eportal_core":
                for alias in node.names:
                    if not inside(f"eportal_core.{alias.name}"):
                        found.append(f"{where}:{node.lineno}: from eportal_core import {alias.name}")
            elif not inside(node.module):
                names = ", ".join(a.name for a in node.names)
                found.append(f"{where}:{node.lineno}: from {node.module} import {names}")
            elif node.module == "eportal_core.api":
                for alias in node.names:
                    if alias.name not in api.__all__:
                        found.append(f"{where}:{node.lineno}: eportal_core.api has no public {alias.name}")
    return found


def test_plugins_and_examples_import_only_the_public_surface():
    modules = plugin_modules()
    assert len(modules) > 40  # both plugins, their tests and the examples were found
    problems = [v for path in modules for v in violations(path)]
    assert problems == [], "imports outside eportal_core.api / eportal_core.testing:\n" + "\n".join(problems)


@pytest.mark.parametrize("source, test_module, expected", [
    ("from eportal_core.services import deploy", False, "from eportal_core.services import deploy"),
    ("def f():\n    from eportal_core.web.rest import api_guard", False, "from eportal_core.web.rest import api_guard"),
    ("import eportal_core.models", False, "import eportal_core.models"),
    ("from eportal_core import make_app", False, "from eportal_core import make_app"),
    ("from eportal_core.api import not_a_public_name", False, "eportal_core.api has no public not_a_public_name"),
    ("from eportal_core.testing import login", False, "from eportal_core.testing import login"),
    ("from eportal_core.testing.live import log_in", True, None),
    ("from eportal_core import testing", True, None),
    ("from eportal_core.api import deploy, hookimpl", False, None),
    ("from . import sibling\nimport pluggy", False, None),
])
def test_the_check_catches_each_kind_of_reach(source, test_module, expected):
    path = Path("plugins/x/tests/test_x.py" if test_module else "plugins/x/eportal_x/web.py")
    found = violations(path, source)
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].endswith(expected), found


def test_every_public_name_exists():
    missing = [name for name in api.__all__ if not hasattr(api, name)]
    assert missing == []
    assert len(set(api.__all__)) == len(api.__all__)


def test_docs_plugins_md_lists_every_hook_and_every_public_name():
    """The guide a stranger writes a plugin from: a hook or a public name it does not mention is a
    hole in it."""
    import inspect

    from eportal_core import hookspecs
    guide = (ROOT / "docs" / "plugins.md").read_text()
    hooks = [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("eportal_")]
    assert len(hooks) == 17
    assert [h for h in hooks if f"| `{h}` |" not in guide] == []
    assert [n for n in api.__all__ if f"`{n}" not in guide] == []
