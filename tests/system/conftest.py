"""System tests: the dashboard as it is deployed, under gunicorn, behind nginx, on PostgreSQL and
Redis started for the test. Marked `system` here, once for the folder."""

import pytest

from tests.support.markers import mark_folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_folder(items, __file__, pytest.mark.system)
