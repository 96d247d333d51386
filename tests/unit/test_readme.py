"""The README's quick start, settings table and console screenshots stay true to the code."""

import re
from pathlib import Path

from cargobay.config import Settings
from cargobay.storage.s3 import S3_PARAMETERS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_quick_start_is_make_run_and_make_test() -> None:
    assert "make run" in README and "make test" in README


def test_every_setting_is_documented() -> None:
    missing = [
        f"CARGOBAY_{name.upper()}"
        for name in Settings.model_fields
        if f"`CARGOBAY_{name.upper()}`" not in README
    ]
    assert not missing, f"README settings table lacks {missing}"


def test_every_s3_storage_url_parameter_is_documented() -> None:
    missing = [name for name in sorted(S3_PARAMETERS) if f"{name}=" not in README]
    assert not missing, f"README does not explain the S3 storage URL parameters {missing}"


def test_the_web_console_section_links_every_screenshot_the_browser_tests_make() -> None:
    root = Path(__file__).resolve().parents[2]
    linked = set(re.findall(r"\(docs/screenshots/([\w-]+\.png)\)", README))
    made = {p.name for p in (root / "docs" / "screenshots").glob("*.png")}
    assert linked, "README has no Web console screenshots"
    assert linked <= made, f"README links screenshots that are not there: {sorted(linked - made)}"
    unlinked = made - linked
    assert not unlinked, f"screenshots the README does not show: {sorted(unlinked)}"
