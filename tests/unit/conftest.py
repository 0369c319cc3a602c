"""Unit tests: functions, views and models in one process, Align mocked with responses or the
stand-in started in a thread. Marked `unit` here, once for the folder."""

import pytest

from tests.support.markers import mark_folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_folder(items, __file__, pytest.mark.unit)
