"""How numbers and times are written (``pairs_project.common.display``): pure, checked against Python's own
arithmetic and calendar."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pairs_project.common.display import duration_text, iso_utc, json_text, plain_number, ratio_text, utc_text


@pytest.mark.parametrize(
    "value,text",
    [
        (1.8559999999999997, "1.856"),
        (0.1 + 0.2, "0.3"),
        (0.11746164947100605, "0.117461649471"),
        (97123.4, "97123.4"),
        (3.0, "3.0"),
        (-2061.8556701030927, "-2061.8556701"),
        (1e-05, "0.00001"),
        (1.5e-07, "0.00000015"),
        (-1e-13, "-0.0000000000001"),
        (-0.0, "0.0"),
        (123456789.00000001, "123456789.0"),
    ],
)
def test_a_number_is_written_without_float_noise(value, text):
    assert plain_number(value) == text


@settings(max_examples=300)
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15))
def test_a_plain_number_reads_back_as_the_number_to_12_significant_digits(value):
    text = plain_number(value)
    assert "e" not in text.lower()
    assert float(text) == float(f"{value:.12g}")
    # The shortest such text: one digit fewer names another number.
    digits = Decimal(text).normalize().as_tuple().digits
    assert len(digits) <= 12


@pytest.mark.parametrize("ms", [0, 1_767_225_600_000, 1_796_019_307_123, 1_796_019_307_999])
def test_a_ms_time_in_utc_to_the_second_or_the_ms(ms):
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    assert utc_text(ms) == moment.strftime("%Y-%m-%d %H:%M:%S")
    assert utc_text(ms, millis=True) == moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"
    assert datetime.fromisoformat(iso_utc(ms)) == moment
    assert iso_utc(ms).endswith("Z")


def test_iso_times_carry_ms_only_where_the_time_has_them():
    assert iso_utc(1_796_019_307_000) == "2026-11-30T06:15:07Z"
    assert iso_utc(1_796_019_307_120) == "2026-11-30T06:15:07.120Z"


def test_json_to_read_is_indented_with_8_significant_digits():
    text = json_text({"hedge_ratio": 20.123456789, "bars": [1, 2.5], "as_of": 1_767_225_600_000, "ok": None})
    assert json.loads(text) == {"hedge_ratio": 20.123457, "bars": [1, 2.5], "as_of": 1_767_225_600_000, "ok": None}
    assert text.startswith('{\n  "hedge_ratio": 20.123457,')


@pytest.mark.parametrize(
    "value,text",
    [
        (20.0, "20.0000"),
        (19.951, "19.9510"),
        (20.123456789, "20.1235"),
        (0.0512345678, "0.0512346"),
        (-1234.5678, "-1234.57"),
        (0.0, "0.00000"),
    ],
)
def test_a_hedge_ratio_keeps_6_significant_digits_and_its_zeros(value, text):
    assert ratio_text(value) == text


#: (seconds, words): each rounded half up to the smallest unit it shows, then split.
DURATIONS = [
    (None, "—"),
    (-3.0, "0.0 s"),
    (0.25, "0.3 s"),
    (9.94, "9.9 s"),
    (9.96, "10 s"),
    (12.5, "13 s"),
    (59.6, "1m 00s"),
    (84.0, "1m 24s"),
    (239.6, "4m 00s"),
    (3599.6, "1h 00m"),
    (3690.0, "1h 02m"),
    (86_399.0, "24h 00m"),
    (172_799.0, "2d 00h"),
    (200_000.0, "2d 08h"),
]


@pytest.mark.parametrize(("seconds", "words"), DURATIONS)
def test_a_duration_is_rounded_to_what_it_shows_and_never_reads_60(seconds, words):
    assert duration_text(seconds) == words
