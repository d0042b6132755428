import datetime as dt

import pyarrow.parquet as pq

from optimizely_courier.dev.generate import E3Spec, generate
from optimizely_courier.landing.e3 import DECISIONS_SCHEMA, EVENTS_SCHEMA


def _parquet(files, kind):
    return [f for f in files if f"type={kind}" in str(f) and f.suffix == ".parquet"]


def test_generated_files_have_the_exact_export_schemas(tmp_path):
    files = generate(E3Spec(days=1, rows=50), tmp_path)
    decisions = pq.read_schema(_parquet(files, "decisions")[0])
    events = pq.read_schema(_parquet(files, "events")[0])
    assert len(decisions) == 17 and decisions.equals(DECISIONS_SCHEMA)
    assert len(events) == 21 and events.equals(EVENTS_SCHEMA)
    assert str(decisions.field("timestamp").type) == "timestamp[ms, tz=UTC]"
    assert pq.ParquetFile(_parquet(files, "events")[0]).metadata.row_group(0).column(0).compression == "SNAPPY"


def test_layout_follows_the_export_with_markers_and_quoted_event_names(tmp_path):
    generate(E3Spec(start=dt.date(2026, 11, 25), days=2, experiments=2, rows=40, unready_days=1), tmp_path)
    keys = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert "type=decisions/date=2026-11-25/_SUCCESS" in keys
    assert "type=events/date=2026-11-25/_SUCCESS" in keys
    assert not any(k.endswith("_SUCCESS") and "2026-11-26" in k for k in keys)
    assert any(k.startswith("type=events/date=2026-11-26/event=add%3Acart/part-00000-") for k in keys)
    assert any(k.startswith("type=events/date=2026-11-26/event=NULL/") for k in keys)
    assert len([k for k in keys if k.startswith("type=decisions/date=2026-11-25/experiment=")]) == 2


def test_rows_are_split_into_part_files_and_processing_time_stays_in_the_day(tmp_path):
    files = generate(E3Spec(days=1, experiments=1, rows=250, rows_per_file=100), tmp_path)
    parts = _parquet(files, "decisions")
    assert [pq.read_metadata(p).num_rows for p in parts] == [84, 83, 83]
    table = pq.read_table(parts[0])
    days = {t.date() for t in table.column("process_timestamp").to_pylist()}
    assert days == {dt.date(2026, 11, 25)}
    assert table.column("uuid").null_count == 0


def test_same_seed_gives_identical_bytes_and_a_new_seed_does_not(tmp_path):
    first = generate(E3Spec(days=1, rows=30, seed=7), tmp_path / "a")
    second = generate(E3Spec(days=1, rows=30, seed=7), tmp_path / "b")
    third = generate(E3Spec(days=1, rows=30, seed=8), tmp_path / "c")
    assert [f.read_bytes() for f in first] == [f.read_bytes() for f in second]
    assert [f.read_bytes() for f in first] != [f.read_bytes() for f in third]


def test_uuids_are_unique_version_4(tmp_path):
    files = generate(E3Spec(days=1, experiments=1, rows=5000), tmp_path)
    uuids = pq.read_table(_parquet(files, "decisions")[0]).column("uuid").to_pylist()
    assert len(set(uuids)) == 5000
    assert all(u[14] == "4" and u[19] in "89ab" for u in uuids)


def test_an_experiment_over_several_days_writes_each_days_decisions_and_purchases_in_its_partition(tmp_path):
    from optimizely_courier.dev.generate import ExperimentSpec, generate_experiment

    files = generate_experiment(ExperimentSpec(visitors=3000, days=3), tmp_path)
    assert len(files) == 6
    decided, bought = {}, {}
    for path in files:
        day = dt.date.fromisoformat(path.parent.parent.name.removeprefix("date="))
        rows = pq.read_table(path, columns=["visitor_id", "timestamp"]).to_pylist()
        assert rows and {row["timestamp"].date() for row in rows} == {day}
        target = decided if "type=decisions" in str(path) else bought
        target.update({row["visitor_id"]: row["timestamp"] for row in rows})
    assert len(decided) == 3000  # every visitor decided once, over all three days
    assert all(decided[visitor] <= moment for visitor, moment in bought.items())
