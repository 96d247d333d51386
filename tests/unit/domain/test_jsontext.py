"""Compact JSON for stored scan data: what the standard library reads back as it was written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cargobay.domain import jsontext

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON)
def test_what_is_written_reads_back_the_same(value: Any) -> None:
    assert json.loads(jsontext.dumps(value)) == value
    assert jsontext.dumps_text(value) == jsontext.dumps(value).decode()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (
            {"id": "CVE-2024-1", "score": 9.8, "fixable": True, "aliases": []},
            '{"id":"CVE-2024-1","score":9.8,"fixable":true,"aliases":[]}',
        ),
        (
            {"size": 2**70},
            '{"size":1180591620717411303424}',
        ),  # beyond 64 bits: written by the standard library
        ({1: "a"}, '{"1":"a"}'),  # a key that is not a string, as the standard library writes it
        ({"name": "bsdutils é"}, '{"name":"bsdutils é"}'),
        ({"name": "bad \ud800"}, '{"name":"bad \\ud800"}'),  # a lone surrogate (JSON allows it escaped)
    ],
)
def test_compact_text(value: Any, text: str) -> None:
    assert jsontext.dumps_text(value) == text
