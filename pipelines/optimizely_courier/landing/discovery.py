"""Which files a run lands: run dates, ready markers, and listing bounded by each day's prefix.

A one-day run lists only under the literal prefix of each pattern for that day (for example
`type=decisions/date=2026-11-27/experiment=`) and asks for the ready marker by name; `--all`
lists the date level only, never the files of every day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from optimizely_courier.config.patterns import FilePattern, is_data_file, segment_literal_head, segment_regex
from optimizely_courier.config.sources import Courier, Entity
from optimizely_courier.errors import CourierError, NotReadyError

if TYPE_CHECKING:  # storage imports botocore (a fifth of a second): not needed to name the run's dates
    from optimizely_courier.landing.storage import ObjectStore


@dataclass(frozen=True)
class RunDates:
    """The dates a run asks for: one day, a range (end exclusive) or every date present."""

    start: dt.date | None = None
    end: dt.date | None = None  # exclusive

    @classmethod
    def one(cls, day: dt.date) -> RunDates:
        return cls(day, day + dt.timedelta(days=1))

    @classmethod
    def between(cls, start: dt.date, end: dt.date) -> RunDates:
        if end <= start:
            raise CourierError(f"--to {end} must be after --from {start} (the end date is exclusive)")
        return cls(start, end)

    @classmethod
    def everything(cls) -> RunDates:
        return cls()

    @property
    def is_all(self) -> bool:
        return self.start is None

    def days(self) -> list[dt.date]:
        if self.start is None or self.end is None:
            return []
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days)]

    def describe(self) -> str:
        if self.is_all:
            return "all dates"
        days = self.days()
        return str(days[0]) if len(days) == 1 else f"{days[0]} to {days[-1]}"


def parse_date(text: str, option: str) -> dt.date:
    """Parse YYYY-MM-DD, naming the option on failure."""
    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise CourierError(f"{option}: expected a date as YYYY-MM-DD, got {text!r}") from None


@dataclass(frozen=True)
class DataFile:
    """One part file to land."""

    tag: str
    key: str
    size: int
    etag: str
    date: dt.date
    partition: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Plan:
    """What a run will land, per file tag, in load order (date, then key)."""

    dates: list[dt.date]
    files: dict[str, list[DataFile]]
    skipped: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for files in self.files.values() for f in files)


@dataclass
class TagStats:
    """What one run landed for one file tag."""

    files: int = 0
    rows: int = 0
    bytes: int = 0
    already_landed: int = 0
    rejected: list = field(default_factory=list)  # {"file": key, "reason": ...}
    new_columns: list = field(default_factory=list)  # columns this run added to the raw table

    def add(self, datafile: DataFile, rows: int) -> None:
        """One more file landed."""
        self.files, self.rows, self.bytes = self.files + 1, self.rows + rows, self.bytes + datafile.size

    def note_new_columns(self, schema, columns: dict) -> None:  # noqa: ANN001 - a pyarrow Schema
        """Remember the columns of `schema` the raw table (`columns`) does not have yet."""
        if columns:
            self.new_columns += [f.name for f in schema if f.name not in columns and f.name not in self.new_columns]


# Called with each new file and its rows once it is fetched and checked (progress; it lands when its
# load commits).
FileCallback = Callable[[DataFile, int], None]
# Called once per prefix listed, with the data files found under it (progress).
ListCallback = Callable[[int], None]


def plan_run(courier: Courier, store: ObjectStore, dates: RunDates, skip_missing: bool = False,
             on_listed: ListCallback | None = None) -> Plan:
    """List the files of each entity for the requested dates, checking ready markers (`on_listed` is
    called after each day's prefix is listed).

    Raises:
        NotReadyError: when a required entity has a missing or unready day (unless `skip_missing`),
            naming the ready marker object that was not found.
    """
    files: dict[str, list[DataFile]] = {}
    skipped: list[str] = []
    missing: list[str] = []
    not_ready: dict[str, list[dt.date]] = {}  # tag -> the days --skip-missing would skip
    unmarked: list[tuple[Entity, dt.date]] = []  # days whose ready marker is missing
    all_days: set[dt.date] = set()
    for entity in courier.entities:
        if dates.is_all:
            days, not_dates = discover_dates(store, entity.pattern)
            skipped += [f"{entity.tag}: {store.url(folder)} does not name a date of the pattern: skipped"
                        for folder in not_dates]
        else:
            days = dates.days()
        all_days.update(days)
        files[entity.tag] = []
        for day in days:
            found, reason, empty = _files_for_day(store, entity, day)
            if on_listed is not None:
                on_listed(len(found))
            skipped += [f"{entity.tag} {day}: empty object {store.url(key)} skipped (0 bytes)" for key in empty]
            if reason is None:
                files[entity.tag] += found
            elif entity.optional or skip_missing:
                why = "optional entity" if entity.optional else "--skip-missing"
                skipped.append(f"{entity.tag} {day}: {reason} (skipped: {why})")
            else:
                missing.append(f"{entity.tag} {day}: {reason}")
                not_ready.setdefault(entity.tag, []).append(day)
                if entity.ready_marker is not None and reason.startswith("ready marker"):
                    unmarked.append((entity, day))
    if missing:
        raise NotReadyError(missing, _not_ready_advice(not_ready, bool(unmarked)) + _marker_hint(store, unmarked[:3]))
    return Plan(sorted(all_days), files, skipped)


def _not_ready_advice(not_ready: dict[str, list[dt.date]], unmarked: bool) -> str:
    """When to run again first, then what `--skip-missing` would skip: the flag lands the other days and
    leaves these out, so a user reads what it costs before reading the flag."""
    appears = "the export's ready marker appears" if unmarked else "the export has written those days' files"
    skipped = ", ".join(f"{tag} on {_days(days)}" for tag, days in not_ready.items())
    return (f". Run again after {appears}. --skip-missing would skip {skipped} now (landing the rest; a later "
            f"run lands them once ready); `object/optional: true` on an entity skips its missing days in every run")


def _days(days: list[dt.date]) -> str:
    """`2026-11-26`, `2026-11-26 and 2026-11-27`, or a count with the first and last day."""
    if len(days) <= 2:
        return " and ".join(map(str, days))
    return f"{len(days)} days from {days[0]} to {days[-1]}"


def _marker_hint(store: ObjectStore, unmarked: list[tuple[Entity, dt.date]]) -> str:
    """When data files are there without their ready marker, the export may never write one."""
    for entity, day in unmarked:
        without_marker = dataclasses.replace(entity, ready_marker=None)
        if _files_for_day(store, without_marker, day)[0]:
            return (f"; {entity.tag} {day} has data files but no ready marker: if this export never writes one, "
                    f"remove `object/ready-marker` from the entity")
    return ""


def _files_for_day(store: ObjectStore, entity: Entity, day: dt.date) -> tuple[list[DataFile], str | None, list]:
    """The day's data files, why the day is not ready (None when it is), and empty part files skipped."""
    if entity.ready_marker is not None:
        marker = entity.ready_marker.render(day)
        if not store.exists(marker):
            return [], f"ready marker {store.url(marker)} not found", []
    pattern = entity.pattern
    regex = pattern.key_regex(day)
    found, empty = [], []
    for info in store.list_objects(pattern.literal_prefix(day)):
        name = info.key.rsplit("/", 1)[-1]
        if not regex.fullmatch(info.key) or not is_data_file(name, max(info.size, 1)):
            continue  # not this pattern, or a marker / bookkeeping file
        if info.size == 0:
            empty.append(info.key)
        else:
            found.append(DataFile(entity.tag, info.key, info.size, info.etag, day, pattern.hive_values(info.key)))
    if entity.ready_marker is None and not found:
        return [], f"no files match {store.url(pattern.render(day))}", empty
    return sorted(found, key=lambda f: f.key), None, empty


def discover_dates(store: ObjectStore, pattern: FilePattern) -> tuple[list[dt.date], list[str]]:
    """Every date present for a pattern, found by listing the date levels only; and the folders at
    the date level that name no valid date (`date=notadate`, `date=2026-13-45`)."""
    prefixes, not_dates = [""], []
    for segment in pattern.date_segments():
        if all(token.kind == "text" for token in segment):
            prefixes = [p + segment[0].value + "/" for p in prefixes] if segment else prefixes
            continue
        regex, head = segment_regex(segment), segment_literal_head(segment)
        matching = []
        for prefix in prefixes:
            for name in store.list_dirs(prefix + head):
                if regex.fullmatch(name[len(prefix):].rstrip("/")):
                    matching.append(name if name.endswith("/") else name + "/")
                elif name.endswith("/"):
                    not_dates.append(name)
        prefixes = matching
    days = {p: pattern.date_of(p) for p in prefixes}
    return (sorted({day for day in days.values() if day is not None}),
            sorted(not_dates + [p for p, day in days.items() if day is None]))
