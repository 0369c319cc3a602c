"""Markers set once per test folder (tests/<kind>/conftest.py), not repeated in every file."""

from pathlib import Path

import pytest


def mark_folder(items: list[pytest.Item], conftest_file: str, *markers: pytest.MarkDecorator) -> None:
    """Mark every collected test under the conftest's folder.

    A django_db marker is a default: a module or test that sets its own keeps it.
    """
    folder = Path(conftest_file).resolve().parent
    for item in items:
        if folder not in item.path.resolve().parents:
            continue
        for marker in markers:
            if marker.name == "django_db" and item.get_closest_marker("django_db") is not None:
                continue
            item.add_marker(marker)
