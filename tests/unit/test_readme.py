"""The README's quick start and settings table stay true to the code."""

from pathlib import Path

from cargobay.config import Settings

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
