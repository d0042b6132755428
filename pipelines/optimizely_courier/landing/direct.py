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
extract step: `land_chunk` deletes them once their load is committed. `ingest.land_new` chooses the
files and fetches them; each chunk of them is one load here (`land_chunk`).
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import dlt
import duckdb

from optimizely_courier import compat
from optimizely_courier.config.sources import Courier, Project
from optimizely_courier.errors import DataError
from optimizely_courier.landing import record
from optimizely_courier.landing.discovery import DataFile, FileCallback, TagStats
from optimizely_courier.landing.parts import PartFile, accept_parts, file_columns, read_footer, schema_runs
from optimizely_courier.landing.pipeline import CommitCallback, run_package
from optimizely_courier.landing.record import RECORD_COLUMNS, RECORD_TABLE
from optimizely_courier.landing.storage import Downloads, ObjectStore, clear_dir

# The columns read_parquet adds: the file path under a name no file column has (the default,
# `filename`, could be one), and the row number, whose name DuckDB fixes.
PATH_COLUMN = "__courier_path"
ROW_COLUMN = "file_row_number"
LANDING_COLUMNS = {"_file": {"name": "_file", "data_type": "text", "nullable": True},
                   "_file_date": {"name": "_file_date", "data_type": "date", "nullable": True},
                   "_file_row": {"name": "_file_row", "data_type": "bigint", "nullable": True}}


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


def direct_source(courier: Courier, parts: dict[str, list[PartFile]], scratch: Path) -> dlt.sources.DltSource:
    """The dlt source that lands `parts` into DuckDB, which reads them in place.

    Args:
        courier: the courier being run (the source is named after it).
        parts: the accepted part files, per tag, in load order (their footers already read).
        scratch: a directory for the model files handed to dlt.
    """
    from optimizely_courier.landing.source import landing_package

    tags = [tag for tag, tag_parts in parts.items() if tag_parts]
    return landing_package.clone(name=courier.name)([_direct_resource(tag, parts[tag], scratch) for tag in tags]
                                                    + [_direct_record_resource(parts, tags, scratch)])


def _direct_resource(tag: str, parts: list[PartFile], scratch: Path) -> dlt.sources.DltResource:
    # The column hints come with the model, in table order (file columns first).
    @dlt.resource(name=tag, table_name=tag, write_disposition="append")
    def files_of_tag() -> Iterator:
        load_id = compat.current_load_id()
        text, columns = model_for(parts, dlt.current.source_schema().naming.normalize_identifier,
                                  _links_folder(scratch, load_id, tag))
        yield from _import_model(scratch / f"{load_id}.{tag}.model", text, columns, sum(part.rows for part in parts))

    return files_of_tag()


def _direct_record_resource(parts: dict[str, list[PartFile]], tags: list[str],
                            scratch: Path) -> dlt.sources.DltResource:
    """The record entries of the files the resources of `tags` land, read from their facts files."""
    @dlt.resource(name=RECORD_TABLE, write_disposition="append")
    def record_entries() -> Iterator:
        load_id = compat.current_load_id()
        text = record_model([_links_folder(scratch, load_id, tag) for tag in tags])
        yield from _import_model(scratch / f"{load_id}.{RECORD_TABLE}.model", text, RECORD_COLUMNS,
                                 sum(len(parts[tag]) for tag in tags))

    return record_entries()


def _links_folder(scratch: Path, load_id: str, tag: str) -> Path:
    """Where `model_for` links a load's part files of `tag`."""
    return scratch / f"{load_id}.{tag}"


def _import_model(path: Path, text: str, columns: dict, rows: int) -> Iterator:
    """Hand dlt the model at `path`, which selects `rows` rows (dlt's extract metrics count them;
    `compat.count_model_rows` gives the counts to the normalize step, which `dlt pipeline trace` shows)."""
    path.write_text(text, encoding="utf-8")
    yield dlt.mark.with_file_import(str(path), "model", items_count=rows, hints=dlt.mark.make_hints(columns=columns))
    path.unlink()  # dlt linked it into the load package


def land_chunk(pipeline: dlt.Pipeline, project: Project, courier: Courier, store: ObjectStore,
               chunk: list[DataFile], downloads: Downloads, stats: dict[str, TagStats], known: dict[str, dict],
               scratch: Path, take_back: Callable[[], None], on_file: FileCallback | None,
               on_commit: CommitCallback | None = None) -> tuple[str | None, list[PartFile]]:
    """One load of the files of `chunk` (fetched by `downloads`); returns its load id and the part files it landed.

    A file whose data DuckDB cannot read is rejected: the load is taken back (`take_back`: what the run
    does to a dead run's load) and the other files land again without it.
    """
    from dlt.pipeline.exceptions import PipelineStepFailed

    parts = []
    for datafile in chunk:
        try:
            parts.append(read_footer(datafile, downloads.path(datafile), store.url(datafile.key)))
        except DataError as exc:
            stats[datafile.tag].rejected.append({"file": datafile.key, "reason": str(exc)})
            continue
        if on_file is not None:
            on_file(datafile, parts[-1].rows)
    while True:
        before = copy.deepcopy((stats, known))
        accepted = accept_parts(parts, known, stats, store.url)
        if not accepted:
            return None, []
        try:
            load_id = run_package(pipeline, direct_source(courier, accepted, scratch), on_commit)
        except PipelineStepFailed as exc:
            failed = compat.failed_load(exc)
            if failed is None:
                raise
            take_back()
            _restore(stats, known, before)
            clear_dir(scratch, f"{failed.load_id}.")
            named = _named_part(failed.reason, accepted)
            if named is None:
                raise DataError(f"loading into {courier.dataset} failed and was taken back, so none of its files "
                                f"landed; the next run tries them again: {failed.reason}") from None
            link, bad = named
            reason = failed.reason.replace(link, store.url(bad.key))
            stats[bad.tag].rejected.append({"file": bad.key, "reason": f"{store.url(bad.key)} is corrupt: {reason}"})
            parts = [part for part in parts if part.datafile.key != bad.key]
            continue
        if load_id is not None:
            clear_dir(scratch, f"{load_id}.")  # the load's model, links and facts
        landed = [part for tag_parts in accepted.values() for part in tag_parts]
        short = _short_tags(project.warehouse, courier.dataset, load_id, landed)
        if short:
            with duckdb.connect(str(project.warehouse)) as db:
                record.take_back_load(db, courier.dataset, load_id)
            raise DataError(f"load {load_id} into {courier.dataset} has fewer rows than its files' footers "
                            f"({'; '.join(short)}), so it was taken back; run again with --debug and report it")
        return load_id, landed


def _named_part(message: str, accepted: dict[str, list[PartFile]]) -> tuple[str, DataFile] | None:
    """The part file a load error names (by its link `<scratch>/<load id>.<tag>/<n>.parquet`, see
    `model_for`), and the path as the message writes it. DuckDB names the file it could not read only in
    its message: this is the one place that reads it."""
    for match in re.finditer(r"[^\s\"']*\.(?P<tag>[^/\s\"']+)/(?P<index>\d+)\.parquet", message):
        parts = accepted.get(match["tag"], [])
        if int(match["index"]) < len(parts):
            return match.group(0), parts[int(match["index"])].datafile
    return None


def _restore(stats: dict[str, TagStats], known: dict[str, dict], before: tuple) -> None:
    """Put back the stats and known columns as they were before a load that was taken back."""
    saved_stats, saved_known = before
    stats.clear()
    stats.update(saved_stats)
    known.clear()
    known.update(saved_known)


def _short_tags(warehouse: Path, dataset: str, load_id: str | None, landed: list[PartFile]) -> list[str]:
    """Tags whose rows in the load differ from what the footers promised (a guard: DuckDB names each
    row's file, and a row whose file name did not match would be dropped without a word)."""
    expected: dict[str, int] = {}
    for part in landed:
        expected[part.datafile.tag] = expected.get(part.datafile.tag, 0) + part.rows
    if load_id is None or not expected:
        return []
    with duckdb.connect(str(warehouse), read_only=True) as db:
        found = {tag: db.execute(f'select count(*) from "{dataset}"."{tag}" where _dlt_load_id = ?',
                                 [load_id]).fetchall()[0][0] for tag in expected}
    return [f"{tag}: {found[tag]:,} of {rows:,}" for tag, rows in expected.items() if found[tag] != rows]
