"""One release number everywhere: `--version`, the changelog's newest heading and the sandbox patch's pin."""

import re
from pathlib import Path

from databricks.labs.oauth_rotator.__about__ import __version__

ROOT = Path(__file__).resolve().parents[2]


def test_the_changelog_opens_with_this_version():
    headings = re.findall(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), flags=re.MULTILINE)
    assert headings[0] == __version__


def test_the_sandbox_patch_asks_for_this_release():
    patch = (ROOT / "contrib" / "sandbox" / "sandbox.patch").read_text()
    pins = re.findall(r'"databricks-labs-oauth-rotator~=([0-9.]+)"', patch)
    major, minor, _ = __version__.split(".")
    assert pins == [f"{major}.{minor}.0"]
