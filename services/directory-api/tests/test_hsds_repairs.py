"""The importer's text repairs on their own: clock times and language names as publishers write
them (the end-to-end checks are in test_hsds_messy)."""

from __future__ import annotations

import pytest
from directory_api.hsds.languages import from_name, languages
from directory_api.hsds.times import parse_time


@pytest.mark.parametrize(
    ("text", "value", "repaired"),
    [
        ("09:00", "09:00:00", False),
        ("9:00", "09:00:00", False),
        ("17:00:00", "17:00:00", False),
        ("09:00-05:00", "09:00:00", False),  # HSDS 3 times carry a zone
        ("9:00am", "09:00:00", True),
        ("09:00 AM", "09:00:00", True),
        ("9am", "09:00:00", True),
        ("9 a.m.", "09:00:00", True),
        ("5:30 p.m.", "17:30:00", True),
        ("12pm", "12:00:00", True),
        ("12 AM", "00:00:00", True),
        ("noon", "12:00:00", True),
        ("Midnight", "00:00:00", True),
        ("0800", "08:00:00", True),
    ],
)
def test_times(text: str, value: str, repaired: bool) -> None:
    assert parse_time(text) == (value, repaired)


@pytest.mark.parametrize("text", [None, "", "whenever", "25:00", "13pm", "9:75am", "closed"])
def test_unreadable_times(text: str | None) -> None:
    assert parse_time(text) is None


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Spanish", "es"),
        ("Creole", "ht"),
        ("Haitian Creole", "ht"),
        ("haitian-creole", "ht"),
        ("Vietnamese", "vi"),
        ("Chinese (Mandarin)", "zh"),
        ("Chinese (Cantonese)", "yue"),
        ("ASL", "ase"),
        ("American Sign Language", "ase"),
        ("Somali language", "so"),
        ("Klingon", None),
    ],
)
def test_language_names(name: str, code: str | None) -> None:
    assert from_name(name) == code


def test_language_records() -> None:
    assert languages({"code": "es", "name": "Spanish"}) == [("es", "Spanish", False)]
    assert languages({"name": "English, Spanish"}) == [
        ("en", "English", True),
        ("es", "Spanish", True),
    ]
    assert languages({"code": "Spanish"}) == [("es", "Spanish", True)]  # a name in the code column
    assert languages({"name": "Klingon"}) == [(None, "Klingon", True)]
    assert languages({}) == []
