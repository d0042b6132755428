"""Part files before they land: what their footers say, and whether their types agree with the raw table.

Both landing paths apply the same rules (see `landing.source` for the bad-file policy): a file that is
not readable Parquet, has a timestamp DuckDB cannot hold, or gives a column another type than the raw
table has is rejected; a column that is new decides its type by the majority of a load's files.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from optimizely_courier import compat
from optimizely_courier.errors import DataError, one_line
from optimizely_courier.landing.discovery import DataFile, TagStats

# DuckDB's TIMESTAMP range, in microseconds since 1970 (epoch_us of its first and last values).
MIN_MICROS, MAX_MICROS = -9_223_372_022_400_000_000, 9_223_372_036_854_775_806


@dataclass(frozen=True)
class PartFile:
    """A part file ready to land: where it is on disk and what its footer says."""

    datafile: DataFile
    path: Path
    schema: pa.Schema
    rows: int


def open_part_file(path: Path, url: str) -> pq.ParquetFile:
    """Open a part file, reading its footer: a truncated or non-Parquet object fails here, before any row."""
    try:
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        raise DataError(f"{url} is not a readable Parquet file ({exc})") from None


def read_footer(datafile: DataFile, path: Path, url: str) -> PartFile:
    """What a part file's footer says (see `open_part_file` and `check_timestamps` for what fails here)."""
    parquet = open_part_file(path, url)
    check_timestamps(parquet, path, url)
    return PartFile(datafile, path, parquet.schema_arrow, parquet.metadata.num_rows)


def check_timestamps(parquet: pq.ParquetFile, path: Path, url: str) -> None:
    """Reject a file whose timestamps DuckDB cannot hold, before any of its rows is loaded.

    DuckDB keeps microseconds in 64 bits (years 290309 BC to 294247); Parquet's millisecond timestamps
    reach 292 million years. Loading such a value fails the whole load, so the day's good files would
    never land. The footer's statistics answer without reading a row; a file written without them is
    read through once by DuckDB.
    """
    metadata, unchecked = parquet.metadata, False
    for index in range(metadata.num_columns):
        column = parquet.schema.column(index)
        if column.logical_type.type != "TIMESTAMP" or '"milliseconds"' not in column.logical_type.to_json():
            continue
        for group in range(metadata.num_row_groups):
            stats = metadata.row_group(group).column(index).statistics
            if stats is None or not stats.has_min_max:
                unchecked = True
                continue
            for value in (stats.min_raw, stats.max_raw):  # raw: pyarrow's datetime ends at year 9999
                if not MIN_MICROS <= value * 1000 <= MAX_MICROS:
                    raise DataError(f"{url}: column `{column.path}` holds a timestamp around year "
                                    f"{_year(value)}, which DuckDB cannot store (years 290309 BC to 294247); "
                                    "the file is rejected until it is rewritten")
    if unchecked:
        try:
            with duckdb.connect() as db:
                db.execute("SELECT count(*) FROM read_parquet(?) AS p WHERE hash(p) IS NOT NULL", [str(path)])
        except duckdb.Error as exc:
            raise DataError(f"{url} holds a value DuckDB cannot read ({one_line(exc)}); the file is rejected "
                            "until it is rewritten") from None


def _year(milliseconds: int) -> str:
    year = 1970 + milliseconds // 31_556_952_000  # milliseconds in an average Gregorian year
    return f"{year}" if year > 0 else f"{1 - year} BC"


@functools.lru_cache(maxsize=256)
def file_columns(schema: pa.Schema) -> dict:
    """dlt column hints of a file's typed columns; all-null columns carry no type and are left out.

    Cached: the part files of a tag nearly always share one schema, and thousands of them are common.
    """
    typed = pa.schema([f.with_nullable(True) for f in schema if not pa.types.is_null(f.type)])
    return compat.arrow_columns(typed)


def schema_runs(parts: list[PartFile]) -> list[list[PartFile]]:
    """`parts` in runs of consecutive files with the same columns, of the same types, in the same order.

    Thousands of files share a few schemas: comparing two schemas is cheap, hashing one (a dict key) is not.
    """
    runs: list[list[PartFile]] = []
    for part in parts:
        if runs and part.schema.equals(runs[-1][0].schema):
            runs[-1].append(part)
        else:
            runs.append([part])
    return runs


def accept_parts(parts: list[PartFile], known: dict[str, dict], stats: dict[str, TagStats],
                 url: Callable[[str], str]) -> dict[str, list[PartFile]]:
    """The part files whose types agree with what is expected of their tag, per tag.

    Expected are the raw table's types (and a known schema's, see `pipeline.expected_columns`). A
    column that is new decides its type by the majority of this load's files that have it (ties:
    the type of more rows, then the type's name), never by which file comes first. A file that
    disagrees is rejected into its tag's stats; what a load accepts is expected of later loads.
    """
    accepted: dict[str, list[PartFile]] = {}
    for tag in dict.fromkeys(part.datafile.tag for part in parts):
        tag_parts = [part for part in parts if part.datafile.tag == tag]
        runs = schema_runs(tag_parts)
        columns = known.setdefault(tag, {})
        seen = dict(columns)  # the columns before each accepted file: what it adds is new
        columns.update(_majority_types(runs, columns))
        # The first run of files of a schema checks it and notes its new columns (a later one brings none).
        agreed: set[pa.Schema] = set()
        for run in runs:
            schema = run[0].schema
            if schema not in agreed:
                conflict = type_conflict(schema, columns)
                if conflict is not None:
                    stats[tag].rejected += [{"file": part.datafile.key,
                                             "reason": f"{url(part.datafile.key)}: {conflict}"} for part in run]
                    continue
                agreed.add(schema)
                stats[tag].note_new_columns(schema, seen)
                seen.update(file_columns(schema))
            accepted.setdefault(tag, []).extend(run)
    return accepted


def _majority_types(runs: list[list[PartFile]], columns: dict) -> dict:
    """For each column none of `columns` has, the hint of the type most files of `runs` give it."""
    schemas: dict[pa.Schema, list[int]] = {}  # schema -> [files, rows]
    for run in runs:
        counts = schemas.setdefault(run[0].schema, [0, 0])
        counts[0], counts[1] = counts[0] + len(run), counts[1] + sum(part.rows for part in run)
    votes: dict[str, dict[str, list]] = {}  # column -> data type -> [files, rows, hint]
    for schema, (files, rows) in schemas.items():
        for name, hint in file_columns(schema).items():
            if name not in columns:
                vote = votes.setdefault(name, {}).setdefault(hint["data_type"], [0, 0, hint])
                vote[0], vote[1] = vote[0] + files, vote[1] + rows
    return {name: max(by_type.items(), key=lambda item: (item[1][0], item[1][1], item[0]))[1][2]
            for name, by_type in votes.items()}


def check_types(schema: pa.Schema, columns: dict, url: str) -> None:
    """Reject a file whose column has another type than the raw table's column of that name."""
    conflict = type_conflict(schema, columns)
    if conflict is not None:
        raise DataError(f"{url}: {conflict}")


def type_conflict(schema: pa.Schema, columns: dict) -> str | None:
    """Why a file of `schema` is rejected (`check_types`), or None when its types agree with `columns`."""
    for name, hint in file_columns(schema).items():
        existing, found = columns.get(name, {}).get("data_type"), hint["data_type"]
        if existing is not None and found != existing:
            return (f"column `{name}` is {found} here but {existing} in the raw table; "
                    f"the file is rejected until it is rewritten with {existing} values")
    return None
