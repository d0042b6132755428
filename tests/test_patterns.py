import datetime as dt

import pytest

from optimizely_courier.config.patterns import FilePattern, PatternError, is_data_file

DAY = dt.date(2026, 11, 27)
DECISIONS = FilePattern.parse("'type=decisions/date='yyyy-MM-dd'/experiment=*/'")


def test_date_tokens_outside_quotes_render_for_the_day():
    assert DECISIONS.render(DAY) == "type=decisions/date=2026-11-27/experiment=*/"
    assert FilePattern.parse("'files/'yyyy'/'MM'/'dd'/customers-*.csv'").render(dt.date(2020, 4, 10)) == \
        "files/2020/04/10/customers-*.csv"


def test_literal_prefix_stops_at_the_first_wildcard():
    assert DECISIONS.literal_prefix(DAY) == "type=decisions/date=2026-11-27/experiment="


def test_directory_pattern_matches_part_files_one_level_below_only():
    regex = DECISIONS.key_regex(DAY)
    assert DECISIONS.is_directory
    assert regex.fullmatch("type=decisions/date=2026-11-27/experiment=123/part-00000-a.c000.snappy.parquet")
    assert not regex.fullmatch("type=decisions/date=2026-11-27/experiment=123/sub/part-00000.parquet")
    assert not regex.fullmatch("type=decisions/date=2026-11-26/experiment=123/part-00000.parquet")


@pytest.mark.parametrize("key, matches", [
    ("files/2020/04/10/customers-.csv", True),
    ("files/2020/04/10/customers-1.csv", True),
    ("files/2020/04/10/customers-hello-world.csv", True),
    ("files/2020/04/10/customers-.csv.0", False),
    ("files/2020/04/10/customers-0.json", False),
    ("files/2020/04/10/customers-0/1/file.csv", False),
    ("files/2020/04/10/customers.csv", False),
])
def test_wildcard_matches_within_one_path_segment(key, matches):
    pattern = FilePattern.parse("'files/'yyyy'/'MM'/'dd'/customers-*.csv'")
    assert bool(pattern.key_regex(dt.date(2020, 4, 10)).fullmatch(key)) is matches


def test_doubled_single_quote_is_a_literal_quote():
    assert FilePattern.parse("'it''s/'yyyy-MM-dd").render(DAY) == "it's/2026-11-27"


@pytest.mark.parametrize("text, message", [
    ("type=decisions/'yyyy", "unquoted text at position 1"),
    ("'type=decisions/date=yyyy-MM-dd", "unbalanced single quote"),
    ("'a//b/'yyyy-MM-dd", "empty path segment"),
    ("", "non-empty string"),
])
def test_malformed_patterns_are_rejected_with_the_reason(text, message):
    with pytest.raises(PatternError, match=message):
        FilePattern.parse(text)


def test_hive_values_are_url_decoded_and_null_stays_a_value():
    events = FilePattern.parse("'type=events/date='yyyy-MM-dd'/event=*/'")
    assert events.hive_values("type=events/date=2026-11-27/event=add%3Acart/part-0.parquet") == {"event": "add:cart"}
    assert events.hive_values("type=events/date=2026-11-27/event=NULL/part-0.parquet") == {"event": "NULL"}


def test_date_of_reads_the_date_from_a_key_head():
    assert DECISIONS.date_of("type=decisions/date=2026-02-03/") == dt.date(2026, 2, 3)
    assert DECISIONS.date_of("type=decisions/date=2026-02-31/") is None
    assert DECISIONS.date_of("type=events/date=2026-02-03/") is None


def test_repeated_date_token_must_agree():
    pattern = FilePattern.parse("'d/'yyyy'/x_'yyyyMMdd'.csv'")
    assert pattern.key_regex(DAY).fullmatch("d/2026/x_20261127.csv")
    assert pattern.date_of("d/2026/x_20261127.csv") == DAY
    assert pattern.date_of("d/2025/x_20261127.csv") is None


@pytest.mark.parametrize("name, size, is_data", [
    ("part-00000-x.c000.snappy.parquet", 10, True),
    ("part-00000-x.c000.snappy.parquet", 0, False),
    ("_SUCCESS", 0, False),
    ("_committed_123", 5, False),
    ("_started_123", 5, False),
    (".part-00000.crc", 5, False),
    ("part-00000.parquet.crc", 5, False),
])
def test_markers_bookkeeping_and_empty_objects_are_not_data(name, size, is_data):
    assert is_data_file(name, size) is is_data
