"""Contract tests: the stand-in and the dashboard's reading of Align's published contract
(../shared/align-customers-openapi.json, copied beside this file). Marked `contract` here."""

import pytest

from tests.support.markers import mark_folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_folder(items, __file__, pytest.mark.contract)
