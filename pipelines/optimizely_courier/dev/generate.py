"""A generator of sample Optimizely Enriched Events Export (E3) data, in the real schemas
(`optimizely_courier.landing.e3`), laid out as the export does:

    type=decisions/date=2026-11-27/experiment=<id>/part-00000-<uuid>.c000.snappy.parquet
    type=events/date=2026-11-27/event=<url-quoted name>/part-00000-<uuid>.c000.snappy.parquet
    type=<decisions|events>/date=2026-11-27/_SUCCESS

It is vectorized (numpy + Arrow), deterministic for a seed, and used by `make demo`, the tests and
the benchmarks.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from optimizely_courier.landing.e3 import ATTRIBUTE, DECISIONS_SCHEMA, EVENTS_SCHEMA, EXPERIMENT, TAGS, TIMESTAMP

# Event names as Optimizely writes them: ':' is URL-quoted in the key, "NULL" is a real name.
DEFAULT_EVENTS = ("purchase", "add:cart", "signup", "NULL")
_USER_AGENTS = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36",
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148")
_REFERERS = ("https://www.example.com/", "https://www.example.com/pricing", "https://search.example.org/?q=shoes")
_ENGINES = (("js", "0.200.0"), ("python-sdk", "5.1.0"), ("android-sdk", "4.0.2"))
_ATTRIBUTES = (("plan", ("free", "pro", "enterprise")), ("country", ("US", "DE", "FR", "JP")),
               ("device", ("desktop", "mobile")))
_HEX = np.frombuffer(b"0123456789abcdef", dtype="S1")


@dataclass(frozen=True)
class E3Spec:
    """What to generate.

    Args:
        start: the first partition date.
        days: number of daily partitions.
        experiments: experiments per day (decision partitions).
        events: event names (conversion partitions).
        rows: decision rows per day; conversions get the same number.
        rows_per_file: rows per part file (a partition with more rows gets several parts).
        unready_days: the last N days are written without `_SUCCESS`, as while still exporting.
        account_id: the account written into rows.
        seed: random seed; the same spec always gives the same bytes.
    """

    start: dt.date = dt.date(2026, 11, 25)
    days: int = 3
    experiments: int = 3
    events: tuple[str, ...] = DEFAULT_EVENTS
    rows: int = 1000
    rows_per_file: int = 100_000
    unready_days: int = 0
    account_id: str = "12345"
    seed: int = 0


def generate(spec: E3Spec, out: Path) -> list[Path]:
    """Write an E3 export for `spec` under `out` (the account prefix); return the files written."""
    rng = np.random.default_rng(spec.seed)
    written: list[Path] = []
    for index in range(spec.days):
        day = spec.start + dt.timedelta(days=index)
        ready = index < spec.days - spec.unready_days
        for kind, names, column in (("decisions", _experiment_ids(spec), "experiment"),
                                    ("events", list(spec.events), "event")):
            if not names:
                continue
            shares = _split(spec.rows, len(names))
            for name, rows in zip(names, shares):
                directory = out / f"type={kind}" / f"date={day}" / f"{column}={quote(name, safe='')}"
                for part, part_rows in enumerate(_split(rows, max(1, -(-rows // spec.rows_per_file)))):
                    maker = _decisions if kind == "decisions" else _events
                    table = maker(rng, spec, day, name, part_rows)
                    written.append(_write_part(table, directory, part, rng))
            if ready:
                marker = out / f"type={kind}" / f"date={day}" / "_SUCCESS"
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_bytes(b"")
                written.append(marker)
    return written


@dataclass(frozen=True)
class ExperimentSpec:
    """An A/B experiment whose conversions follow its decisions, with a known effect: each visitor is
    decided once in the first half of a day (half of them into each variation, as planned), and
    purchases within the next twelve hours with its variation's probability.

    Args:
        experiment_id: the experiment; its variations are `<id>01` (the baseline) and `<id>02`.
        visitors: how many visitors are decided.
        purchase_rates: the probability of a purchase in the baseline and in the treatment.
        day: the date of the first decisions.
        days: over how many days from `day` visitors are decided (each day's rows in that day's partition).
        reassigned: the share of the visitors decided once more, three hours after their first decision,
            into the other variation (as a changed traffic split does): multiple exposures.
        seed: random seed; the same spec always gives the same bytes.
    """

    experiment_id: str = "9300000001"
    visitors: int = 4000
    purchase_rates: tuple[float, float] = (0.10, 0.13)
    day: dt.date = dt.date(2026, 11, 25)
    days: int = 1
    reassigned: float = 0.0
    seed: int = 1


def generate_experiment(spec: ExperimentSpec, out: Path) -> list[Path]:
    """Add `spec`'s decisions and purchases to an export under `out` (one part file each)."""
    rng = np.random.default_rng(spec.seed)
    n = spec.visitors
    variation = rng.integers(0, 2, n)
    midnight = int(dt.datetime(spec.day.year, spec.day.month, spec.day.day, tzinfo=dt.UTC).timestamp() * 1000)
    decided = midnight + rng.integers(0, 43_200_000, n)
    # (a generator of its own: a one-day experiment stays the same bytes as before days existed)
    offsets = np.random.default_rng(spec.seed + 1).integers(0, spec.days, n) if spec.days > 1 else np.zeros(n, int)
    decided += offsets * 86_400_000
    visitors = _prefixed(f"visitor_{spec.experiment_id}_", np.arange(n))
    decisions = _decisions(rng, E3Spec(), spec.day, spec.experiment_id, n)
    decisions = _replace(decisions, visitor_id=visitors, timestamp=pa.array(decided).cast(TIMESTAMP),
                         process_timestamp=pa.array(decided + 5_000).cast(TIMESTAMP), is_holdback=pa.array(
                             np.zeros(n, bool)), variation_id=_prefixed(spec.experiment_id + "0", variation + 1))
    decisions, decision_offsets = _reassigned(spec, decisions, decided, variation, offsets)
    buyers = np.flatnonzero(rng.random(n) < np.array(spec.purchase_rates)[variation])
    bought = decided[buyers] + rng.integers(0, 43_200_000, len(buyers))
    purchases = _replace(_events(rng, E3Spec(), spec.day, "purchase", len(buyers)),
                         visitor_id=pc.take(visitors, pa.array(buyers)),
                         timestamp=pa.array(bought).cast(TIMESTAMP),
                         process_timestamp=pa.array(bought + 5_000).cast(TIMESTAMP))
    written = []
    for offset in range(spec.days):
        day = spec.day + dt.timedelta(days=offset)
        written += [_write_part(decisions.filter(pa.array(decision_offsets == offset)),
                                out / "type=decisions" / f"date={day}" / f"experiment={spec.experiment_id}", 0, rng),
                    _write_part(purchases.filter(pa.array(offsets[buyers] == offset)),
                                out / "type=events" / f"date={day}" / "event=purchase", 0, rng)]
    return written


def _reassigned(spec: ExperimentSpec, decisions: pa.Table, decided: np.ndarray, variation: np.ndarray,
                offsets: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    """The decisions with `spec.reassigned` of the visitors decided again, three hours later, into the
    other variation (a generator of its own: without any, the bytes stay as they were); and each row's
    day offset."""
    if not spec.reassigned:
        return decisions, offsets
    moved = np.flatnonzero(np.random.default_rng(spec.seed + 2).random(len(variation)) < spec.reassigned)
    later = decided[moved] + 3 * 3_600_000
    again = _replace(decisions.take(pa.array(moved)), uuid=_prefixed(f"reassigned-{spec.experiment_id}-", moved),
                     timestamp=pa.array(later).cast(TIMESTAMP),
                     process_timestamp=pa.array(later + 5_000).cast(TIMESTAMP),
                     variation_id=_prefixed(spec.experiment_id + "0", 2 - variation[moved]))
    return pa.concat_tables([decisions, again]), np.concatenate([offsets, offsets[moved]])


def _replace(table: pa.Table, **columns: pa.Array) -> pa.Table:
    for name, values in columns.items():
        table = table.set_column(table.schema.get_field_index(name), table.schema.field(name), values)
    return table


def upload(root: Path, client, bucket: str, prefix: str = "", kms_key_id: str | None = None,
           workers: int = 8) -> int:
    """Upload a generated tree to S3 (SSE-KMS when `kms_key_id` is given), as Optimizely stores it."""
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}
    files = sorted(p for p in root.rglob("*") if p.is_file())
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""

    def put(path: Path) -> None:
        key = base + path.relative_to(root).as_posix()
        client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), **extra)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, files))
    return len(files)


def _experiment_ids(spec: E3Spec) -> list[str]:
    return [str(18786493712 + 1000 * i) for i in range(spec.experiments)]


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _write_part(table: pa.Table, directory: Path, part: int, rng: np.random.Generator) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    name = uuid.UUID(bytes=rng.bytes(16), version=4)
    path = directory / f"part-{part:05d}-{name}.c000.snappy.parquet"
    pq.write_table(table, path, compression="snappy", row_group_size=max(1, table.num_rows))
    return path


def _uuids(rng: np.random.Generator, n: int) -> pa.Array:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    chars = np.empty((n, 32), dtype="S1")
    chars[:, 0::2], chars[:, 1::2] = _HEX[raw >> 4], _HEX[raw & 0x0F]
    dash = np.full((n, 1), b"-", dtype="S1")
    parts = [chars[:, 0:8], dash, chars[:, 8:12], dash, chars[:, 12:16], dash, chars[:, 16:20], dash, chars[:, 20:]]
    text = np.ascontiguousarray(np.concatenate(parts, axis=1)).view("S36").ravel()
    return pa.array(text, pa.binary(36)).cast(pa.string())


def _pick(rng: np.random.Generator, pool: tuple | list, n: int) -> pa.Array:
    return pc.take(pa.array(list(pool), pa.string()), pa.array(rng.integers(0, len(pool), n)))


def _prefixed(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")


def _times(rng: np.random.Generator, day: dt.date, n: int) -> tuple[pa.Array, pa.Array]:
    """Processing times within the partition day; client times a little earlier (sometimes later)."""
    midnight = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
    processed = np.sort(midnight + rng.integers(0, 86_400_000, n))
    client = processed - rng.integers(-60_000, 3_600_000, n)
    return pa.array(client).cast(TIMESTAMP), pa.array(processed).cast(TIMESTAMP)


def _constant(value: str, n: int) -> pa.Array:
    return pc.take(pa.array([value], pa.string()), pa.array(np.zeros(n, dtype=np.int32)))


# How each attribute appears: plan and country as custom attributes (a name, type `custom`); device as
# Optimizely Web's built-in audience attributes do (no name, the key in `type`).
_ATTRIBUTE_NAMES = pa.array(["plan", "country", None], pa.string())
_ATTRIBUTE_TYPES = pa.array(["custom", "custom", "device"], pa.string())


def _attributes(rng: np.random.Generator, n: int) -> pa.Array:
    """0-3 attributes per row (plan, country, device), as Optimizely's attribute structs."""
    counts = rng.integers(0, len(_ATTRIBUTES) + 1, n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    total = int(offsets[-1])
    slot = np.arange(total) - np.repeat(offsets[:-1], counts)  # the row's k-th attribute is _ATTRIBUTES[k]
    sizes = np.array([len(values) for _, values in _ATTRIBUTES])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pool = pa.array([value for _, values in _ATTRIBUTES for value in values], pa.string())
    picks = starts[slot] + (rng.random(total) * sizes[slot]).astype(np.int64)
    struct = pa.StructArray.from_arrays(
        [_prefixed("attr_", slot + 100), pc.take(_ATTRIBUTE_NAMES, pa.array(slot)),
         pc.take(_ATTRIBUTE_TYPES, pa.array(slot)), pc.take(pool, pa.array(picks))],
        fields=list(ATTRIBUTE))
    return pa.ListArray.from_arrays(pa.array(offsets), struct, type=pa.list_(ATTRIBUTE))


def _common(rng: np.random.Generator, spec: E3Spec, day: dt.date, n: int) -> dict[str, pa.Array]:
    client, processed = _times(rng, day, n)
    visitors = rng.integers(0, max(1, n // 3), n)
    engines = rng.integers(0, len(_ENGINES), n)
    return {
        "uuid": _uuids(rng, n), "timestamp": client, "process_timestamp": processed,
        "visitor_id": _prefixed("visitor_", visitors), "session_id": pa.nulls(n, pa.string()),
        "account_id": _constant(spec.account_id, n),
        "attributes": _attributes(rng, n),
        "user_ip": _prefixed("203.0.113.", rng.integers(1, 255, n)),
        "user_agent": _pick(rng, _USER_AGENTS, n), "referer": _pick(rng, _REFERERS, n),
        "revision": _prefixed("", rng.integers(100, 110, n)),
        "client_engine": pc.take(pa.array([e[0] for e in _ENGINES]), pa.array(engines)),
        "client_version": pc.take(pa.array([e[1] for e in _ENGINES]), pa.array(engines)),
    }


def _decisions(rng: np.random.Generator, spec: E3Spec, day: dt.date, experiment: str, n: int) -> pa.Table:
    columns = _common(rng, spec, day, n)
    variation = rng.integers(0, 2, n)
    columns.update({
        "campaign_id": _constant(str(int(experiment) - 1), n),
        "experiment_id": _constant(experiment, n),
        "variation_id": _prefixed(experiment + "0", variation + 1),
        "is_holdback": pa.array(rng.random(n) < 0.05),
    })
    return pa.table({f.name: columns[f.name] for f in DECISIONS_SCHEMA}, schema=DECISIONS_SCHEMA)


def _events(rng: np.random.Generator, spec: E3Spec, day: dt.date, event: str, n: int) -> pa.Table:
    columns = _common(rng, spec, day, n)
    purchase = event == "purchase"
    experiments = _experiments(rng, spec, n)
    sku = _prefixed("sku-", rng.integers(1000, 1100, n))
    category = _pick(rng, ("shoes", "shirts", "hats"), n)
    interleave = np.stack([np.arange(n), np.arange(n) + n], axis=1).ravel()
    tag_values = pc.take(pa.concat_arrays([sku, category]), pa.array(interleave))
    tag_keys = pc.take(pa.array(["sku", "category"]), pa.array(np.tile([0, 1], n)))
    columns.update({
        "experiments": experiments,
        "entity_id": _constant(str(zlib.crc32(event.encode())), n),
        "event_type": _constant("other", n),
        "event_name": _constant(event, n),
        "revenue": pa.array(rng.integers(500, 20_000, n)) if purchase else pa.nulls(n, pa.int64()),
        "value": pa.array(np.round(rng.random(n) * 100, 2)) if purchase else pa.nulls(n, pa.float64()),
        "quantity": pa.array(rng.integers(1, 4, n)) if purchase else pa.nulls(n, pa.int64()),
        "tags": pa.MapArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), tag_keys,
                                        tag_values, type=TAGS),
    })
    return pa.table({f.name: columns[f.name] for f in EVENTS_SCHEMA}, schema=EVENTS_SCHEMA)


def _experiments(rng: np.random.Generator, spec: E3Spec, n: int) -> pa.Array:
    ids = _experiment_ids(spec)
    counts = rng.integers(1, min(2, len(ids)) + 1, n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    total = int(offsets[-1])
    chosen = rng.integers(0, len(ids), total)
    experiment_ids = pc.take(pa.array(ids), pa.array(chosen))
    struct = pa.StructArray.from_arrays(
        [pc.take(pa.array([str(int(i) - 1) for i in ids]), pa.array(chosen)), experiment_ids,
         pc.binary_join_element_wise(experiment_ids, pa.array(rng.integers(1, 3, total)).cast(pa.string()), "0"),
         pa.array(rng.random(total) < 0.05)],
        fields=list(EXPERIMENT))
    return pa.ListArray.from_arrays(pa.array(offsets), struct, type=pa.list_(EXPERIMENT))
