"""Direct landing into DuckDB: the warehouse reads the part files itself, one INSERT per file tag.

The Arrow path decodes each file in Python, and dlt writes it out again as Parquet for DuckDB to
read: three passes over the data, one file at a time. Here a resource hands dlt a SQL model instead
(dlt's `.model` job format):

    SELECT <file columns>, <landing columns> FROM read_parquet('<load>/*.parquet') JOIN <file facts>

dlt's DuckDB loader runs it as `INSERT INTO raw_<courier>.<tag> SELECT ...`. DuckDB decodes every
file once, several files in parallel, within its memory limit. dlt still creates and evolves the
table from the column hints, adds `_dlt_load_id`, and commits the resource state (the ETags) with the
rows. The files' record entries are a second model over the same facts (`record_model`).

The model names local files (links to the downloads, and a facts file), so they must outlive the
extract step. `ingest.land_new` deletes them once their load is committed.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from optimizely_courier import compat
from optimizely_courier.errors import DataError, one_line
from optimizely_courier.landing.discovery import DataFile

# The columns read_parquet adds: the file path under a name no file column has (the default,
# `filename`, could be one), and the row number, whose name DuckDB fixes.
PATH_COLUMN = "__courier_path"
ROW_COLUMN = "file_row_number"
# DuckDB's TIMESTAMP range, in microseconds since 1970 (epoch_us of its first and last values).
MIN_MICROS, MAX_MICROS = -9_223_372_022_400_000_000, 9_223_372_036_854_775_806
LANDING_COLUMNS = {"_file": {"name": "_file", "data_type": "text", "nullable": True},
                   "_file_date": {"name": "_file_date", "data_type": "date", "nullable": True},
                   "_file_row": {"name": "_file_row", "data_type": "bigint", "nullable": True}}


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


def model_for(files: list[PartFile], normalize: Callable[[str], str], folder: Path) -> tuple[str, dict]:
    """The `.model` text that lands `files` and the column hints of what it selects.

    The SQL stays the same size for ten files or ten thousand (dlt parses it with sqlglot): the part
    files are linked into `folder` as `<n>.parquet`, read with one glob, and joined to a Parquet file
    of their facts (key, date, Hive values, and what the record keeps). `folder` must outlive the load.

    Args:
        files: the part files of one tag, in load order.
        normalize: dlt's identifier normalizer (column names become what dlt calls them).
        folder: a new, empty directory for the links and the facts.
    """
    runs = schema_runs(files)
    columns: dict = {}
    for run in runs:
        columns.update({name: hint for name, hint in file_columns(run[0].schema).items() if name not in columns})
    partition_names = list(dict.fromkeys(name for part in files for name in part.datafile.partition))
    selects = [f"p.{_quote(name)} AS {_quote(normalize(name))}" for name in columns
               if name not in partition_names]
    for i, name in enumerate(partition_names):
        selects.append(f"{_partition_value(name, i, files)} AS {_quote(normalize(name))}")
        if not _every_file_has(files, name):  # values from the path are text
            columns[name] = {"name": name, "data_type": "text", "nullable": True}
    selects += ["m._file AS _file", "m._file_date AS _file_date", f"p.{ROW_COLUMN} AS _file_row"]
    columns.update(LANDING_COLUMNS)
    facts = _write_facts(files, partition_names, folder)
    # Matching columns by name makes DuckDB open every footer before reading any row (a third of
    # the load for thousands of small files): needed only when the files' columns differ.
    union = "" if len(runs) == 1 else ", union_by_name = true"
    query = (f"SELECT {', '.join(selects)} "
             f"FROM read_parquet({_literal(str(folder / '*.parquet'))}, filename = '{PATH_COLUMN}', "
             f"file_row_number = true, hive_partitioning = false{union}) AS p "
             f"JOIN read_parquet({_literal(str(facts))}) AS m ON p.{PATH_COLUMN} = m._path")
    hints = {normalize(name): {**hint, "name": normalize(name)} for name, hint in columns.items()}
    return compat.sql_model(query), hints


def record_model(folders: list[Path]) -> str:
    """The `.model` text of the record entries of the files `model_for` linked into `folders`."""
    facts = ", ".join(_literal(str(_facts_path(folder))) for folder in folders)
    query = ("SELECT _file AS file, _etag AS etag, _size AS size_bytes, _tag AS tag, _file_date AS file_date, "
             f"_rows AS row_count FROM read_parquet([{facts}])")
    return compat.sql_model(query)


def _facts_path(folder: Path) -> Path:
    return folder.parent / f"{folder.name}.facts.parquet"


def _write_facts(files: list[PartFile], partition_names: list[str], folder: Path) -> Path:
    """Link each part file into `folder` and write their facts beside it; return the facts file.

    DuckDB writes them from Python lists: Arrow would import pandas to build arrays of them (a fifth
    of a second).
    """
    folder.mkdir(parents=True)
    paths = []
    for index, part in enumerate(files):
        link = folder / f"{index}.parquet"
        _link(part.path, link)
        paths.append(str(link))
    facts = {"_path": ("VARCHAR", paths),
             "_file": ("VARCHAR", [part.datafile.key for part in files]),
             "_file_date": ("DATE", [part.datafile.date for part in files]),
             "_etag": ("VARCHAR", [part.datafile.etag for part in files]),
             "_size": ("BIGINT", [part.datafile.size for part in files]),
             "_tag": ("VARCHAR", [part.datafile.tag for part in files]),
             "_rows": ("BIGINT", [part.rows for part in files])}
    for i, name in enumerate(partition_names):
        facts[f"_path_{i}"] = ("VARCHAR", [part.datafile.partition.get(name) for part in files])
        facts[f"_owns_{i}"] = ("BOOLEAN", [name in part.schema.names for part in files])
    columns = ", ".join(f"unnest(?::{sql_type}[]) AS {name}" for name, (sql_type, _) in facts.items())
    target = _facts_path(folder)
    with duckdb.connect() as db:
        db.execute(f"COPY (SELECT {columns}) TO {_literal(str(target))} (FORMAT parquet)",
                   [values for _, values in facts.values()])
    return target


def _link(source: Path, link: Path) -> None:
    """A hard link (a symbolic one, 20 times slower to make here, across file systems)."""
    try:
        os.link(source, link)
    except OSError:
        link.symlink_to(source.resolve())


def _partition_value(name: str, index: int, files: list[PartFile]) -> str:
    """A Hive value from the path, unless the file has a column of that name: the file's own wins."""
    owners = sum(name in part.schema.names for part in files)
    if not owners:
        return f"m._path_{index}"
    if owners == len(files):
        return f"p.{_quote(name)}"
    return f"CASE WHEN m._owns_{index} THEN CAST(p.{_quote(name)} AS VARCHAR) ELSE m._path_{index} END"


def _every_file_has(files: list[PartFile], name: str) -> bool:
    return all(name in part.schema.names for part in files)


def _literal(value: str | None) -> str:
    return "NULL::VARCHAR" if value is None else "'" + value.replace("'", "''") + "'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
