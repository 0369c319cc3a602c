"""The README is a front door: short, and its configuration table names every variable settings read."""

import re

from django.conf import settings

README = settings.BASE_DIR / "README.md"
README_LIMIT_BYTES = 12 * 1024
# dashboard/settings.py reads every variable through its typed helpers: env_str("NAME", ...).
VARIABLE_READ = re.compile(r"\benv_[a-z_]+\(\s*\"([A-Z][A-Z0-9_]+)\"")
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)\s]*)?\)")


def test_the_readme_stays_a_front_door():
    assert len(README.read_bytes()) <= README_LIMIT_BYTES


def test_the_configuration_table_has_a_row_for_every_variable_the_settings_read():
    variables = set(VARIABLE_READ.findall((settings.BASE_DIR / "dashboard" / "settings.py").read_text()))
    rows = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", README.read_text(), flags=re.MULTILINE))
    assert variables
    assert variables - rows == set()


def test_every_link_between_the_pages_leads_to_a_file():
    pages = [
        README,
        settings.BASE_DIR / "bench" / "README.md",
        *sorted((settings.BASE_DIR / "docs").glob("*.md")),
    ]
    broken = [
        f"{page.name}: {target}"
        for page in pages
        for target in MARKDOWN_LINK.findall(page.read_text())
        if "://" not in target and not (page.parent / target).exists()
    ]
    assert broken == []
