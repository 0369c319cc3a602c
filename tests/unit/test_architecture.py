"""Layout rules import-linter cannot see (its contracts are in pyproject.toml, run by make lint)."""

import ast
from pathlib import Path

from django.conf import settings

PRODUCTION_PACKAGES = ("customers", "dashboard")


def production_modules() -> list[Path]:
    return [
        path
        for package in PRODUCTION_PACKAGES
        for path in sorted((settings.BASE_DIR / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def imports_inside_functions(source: str) -> list[tuple[str, int]]:
    """(function, line) of every import inside a function, except an AppConfig's ready().

    ready() is where Django says to connect signals and registries once every app is loaded;
    anywhere else an import inside a function hides a dependency, usually one that runs the wrong way.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name == "ready":
            continue
        found += [
            (node.name, inner.lineno)
            for inner in ast.walk(node)
            if isinstance(inner, ast.Import | ast.ImportFrom)
        ]
    return found


def test_production_code_imports_at_module_level_only():
    tucked = {
        str(path.relative_to(settings.BASE_DIR)): imports_inside_functions(path.read_text())
        for path in production_modules()
    }
    assert {path: found for path, found in tucked.items() if found} == {}


def test_an_import_inside_a_function_is_found():
    source = "def lookup():\n    from customers.services import audit\n    return audit\n"
    assert imports_inside_functions(source) == [("lookup", 2)]


def test_an_app_config_may_import_in_ready():
    source = "class Config:\n    def ready(self):\n        from customers import checks\n"
    assert imports_inside_functions(source) == []
