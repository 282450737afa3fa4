"""crawler.dates: web date formats -> ISO 8601, and dates written in URL paths."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.dates import MAX_YEAR, MIN_YEAR, URL_DATE_RE, parse_date, url_date


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2015-07-24T05:36:09+01:00", "2015-07-24T05:36:09+01:00"),
        ("2019-01-03T07:00:02.000Z", "2019-01-03T07:00:02+00:00"),
        ("2017-11-03 03:01:00.000000", "2017-11-03T03:01:00"),
        ("2017-11-16T14:15+0000", "2017-11-16T14:15:00+00:00"),
        ("2021-11-01", "2021-11-01"),
        ("20170113000004", "2017-01-13T00:00:04"),
        ("Thu, 02 Nov 2023 10:00:00 GMT", "2023-11-02T10:00:00+00:00"),
        ("2019/01/03", "2019-01-03"),
        ("03.02.2022 15:34", "2022-02-03"),
        ("17/03/2020", "2020-03-17"),
        ("November 2, 2023", "2023-11-02"),
        ("2 Nov. 2023", "2023-11-02"),
        ("05/06/2020", None),  # day and month cannot be told apart
        ("2023-02-30", None),
        ("1850-01-01", None),
        ("not a date", None),
        ("", None),
    ],
)
def test_parse_date(text: str, expected: str | None) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x.com/2019/01/03/story/", "2019-01-03"),
        ("https://x.com/news/2019-01-03-story", "2019-01-03"),
        ("https://x.com/a/20190103/story", "2019-01-03"),
        ("https://x.com/2019/13/40/story", None),
        ("https://x.com/story-12345", None),
    ],
)
def test_url_date(url: str, expected: str | None) -> None:
    assert url_date(url) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-01-03T07:00:02-08", "2019-01-03T07:00:02-08:00"),  # an hour-only offset
        ("2019-01-03T07:00:02+2500", "2019-01-03T07:00:02"),  # no such offset: time kept, zone not
        ("2019-01-03T25:00", "2019-01-03"),  # no such hour: the day is still right
        ("  2021-11-01  ", "2021-11-01"),
        ("Published 2021-11-01 by staff", "2021-11-01"),
        ("20170113", "2017-01-13"),
        ("Mon, 02 Nov 1970 10:00:00 GMT", None),  # before MIN_YEAR
        ("Thu, 99 Nov 2023 10:00:00 GMT", None),
        ("13/05/2020", "2020-05-13"),  # day > 12 settles the order
        ("05/13/2020", "2020-05-13"),  # month/day, as the day is > 12
        ("3rd March 2020", None),  # ordinals only after the month
        ("March 3rd, 2020", "2020-03-03"),
        ("x" * 201, None),  # longer than any date a page writes
        (None, None),
    ],
)
def test_parse_date_edges(text: str | None, expected: str | None) -> None:
    assert parse_date(text) == expected


def test_years_outside_the_plausible_range_are_refused() -> None:
    assert parse_date(f"{MIN_YEAR - 1}-06-01") is None
    assert parse_date(f"{MIN_YEAR}-06-01") == f"{MIN_YEAR}-06-01"
    assert parse_date(f"{MAX_YEAR}-06-01") == f"{MAX_YEAR}-06-01"
    assert parse_date(f"{MAX_YEAR + 1}-06-01") is None


def test_url_date_ignores_the_host_and_query_and_bad_urls() -> None:
    assert url_date("https://2019.example.com/story?d=/2019/01/03/") is None
    assert url_date("http://[bad/2019/01/03/x") is None
    assert URL_DATE_RE.search("/2019/01/03-x") is not None


@given(st.text(max_size=80))
def test_parse_date_never_raises_and_gives_iso_or_none(text: str) -> None:
    found = parse_date(text)
    assert found is None or (len(found) >= 10 and found[4] == "-" and found[7] == "-")
