"""What the browser tests share beside their fixtures: Debian's Chromium and where screenshots go."""

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Each browser test leaves a screenshot of where it ended here, as evidence (make clean removes it).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
