"""The window rule's fast form (`courier_unbuilt`, macros/window.sql) answers as the rule itself does
(`courier_not_built` asked of every landed version), on records that random histories of landings, dropped
tables, taken-back loads and builds in every mode leave behind."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pytest

from optimizely_courier.landing.record import _window_rule

ROOT = Path(__file__).resolve().parent.parent
TAGS = ("decisions", "conversions")
FILES = [f"type=x/date=2026-10-0{day}/part-{index}.parquet" for day in (1, 2, 3) for index in range(4)]
LANDED = ("select file, _dlt_load_id as load_id, etag, file_date from record where tag = $tag "
          "and _dlt_load_id in (select load_id from loads where status = 0)")
NEWEST = ("select file, max(_dlt_load_id) as load_id, arg_max(etag, _dlt_load_id) as etag from record "
          "where tag = $tag and _dlt_load_id in (select load_id from loads where status = 0) "
          "and file_date in (select unnest($days::date[])) group by file")
BUILT = "select file, load_id, etag, definition, excluded from built where feed_id = $feed"
INCREMENTAL = "built.excluded or built.definition = $definition"
ALREADY = "not built.excluded and built.definition = $definition"


def rule():
    return _window_rule(ROOT / "macros" / "window.sql")


def plain(landed: str, counts: str) -> str:
    return f"select landed.* from ({landed}) as landed where {rule().courier_not_built('landed', BUILT, counts)}"


def versions(db: duckdb.DuckDBPyConnection, sql: str, params: dict) -> list[tuple]:
    return sorted(db.execute(f"select file, load_id, etag from ({sql}) as found", params).fetchall())


class History:
    """A record (landed versions, complete loads) and one feed's built versions, changed as the courier
    and the domain models change them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.db = duckdb.connect()
        self.db.execute("create table record (file varchar, etag varchar, tag varchar, file_date date, "
                        "_dlt_load_id varchar)")
        self.db.execute("create table loads (load_id varchar, status integer)")
        self.db.execute("create table built (feed_id varchar, file varchar, load_id varchar, definition varchar, "
                        "excluded boolean, etag varchar)")
        self.loads = 0
        self.etags = {file: 0 for file in FILES}

    def step(self) -> None:
        action = self.rng.choices(["land", "build", "drop", "take back", "die"], [5, 5, 1, 1, 1])[0]
        getattr(self, action.replace(" ", "_"))()

    def land(self, complete: bool = True) -> None:
        """A load of some files of a tag (some rewritten since), the same key landing under one tag only."""
        self.loads += 1
        load_id = f"17000{self.loads:05d}.5"
        tag = self.rng.choice(TAGS)
        files = [f for f in self.rng.sample(FILES, self.rng.randint(1, 6)) if FILES.index(f) % 2 == TAGS.index(tag)]
        for file in files:
            if self.rng.random() < 0.3:
                self.etags[file] += 1
            self.db.execute("insert into record values (?, ?, ?, ?, ?)",
                            [file, f"e{self.etags[file]}", tag, file.split("date=")[1][:10], load_id])
        if complete:
            self.db.execute("insert into loads values (?, 0)", [load_id])

    def die(self) -> None:
        """A run that died mid-load: record rows of a load dlt never completed."""
        self.land(complete=False)

    def drop(self) -> None:
        """`dlt pipeline <courier> drop <tag>`, then `forget_dropped_tables`."""
        self.db.execute("delete from record where tag = ?", [self.rng.choice(TAGS)])

    def take_back(self) -> None:
        loads = [row[0] for row in self.db.execute("select load_id from loads").fetchall()]
        if loads:
            load_id = self.rng.choice(loads)
            self.db.execute("delete from record where _dlt_load_id = ?", [load_id])
            self.db.execute("delete from loads where load_id = ?", [load_id])

    def build(self) -> None:
        """A build of the feed as macros/courier.sql writes its record; its tag (and so its definition) may
        have changed since the last one."""
        tag = self.rng.choice(TAGS)
        definition = f"{tag}-{self.rng.randint(1, 2)}"
        mode = self.rng.choice(["incremental", "incremental", "full", "truncate"])
        params = {"tag": tag, "feed": "df-1"}
        if mode == "truncate":
            day = self.rng.choice(["2026-10-01", "2026-10-02", "2026-10-03"])
            self.db.execute("delete from built where feed_id = 'df-1'")
            self.db.execute(f"insert into built select 'df-1', file, load_id, $definition, file_date <> $day::date, "
                            f"etag from ({LANDED}) as landed", {"definition": definition, "day": day, "tag": tag})
            return
        counts = INCREMENTAL if mode == "incremental" else "built.excluded"
        window = versions(self.db, plain(LANDED, counts), {**params, **({"definition": definition}
                                                                        if mode == "incremental" else {})})
        if mode == "full":
            self.db.execute("delete from built where feed_id = 'df-1' and not excluded")
        else:
            for file, load_id, _ in window:
                self.db.execute("delete from built where feed_id = 'df-1' and file = ? and load_id = ?", [file, load_id])
        for file, load_id, etag in window:
            self.db.execute("insert into built values ('df-1', ?, ?, ?, false, ?)", [file, load_id, definition, etag])


# two histories in make test; four more in make scaleout (CI), for make test's 10 minutes
@pytest.mark.parametrize("seed", [0, 1, *(pytest.param(seed, marks=pytest.mark.long) for seed in range(2, 6))])
def test_the_fast_form_of_the_window_rule_finds_what_the_rule_finds_after_any_history(seed):
    history = History(seed)
    for _ in range(20):
        history.step()
        for tag in TAGS:
            for definition in (f"{tag}-1", f"{tag}-2", f"{TAGS[1 - TAGS.index(tag)]}-1"):
                params = {"tag": tag, "feed": "df-1", "definition": definition}
                for counts in (INCREMENTAL, ALREADY):
                    fast = rule().courier_unbuilt(LANDED, BUILT, counts)
                    assert versions(history.db, fast, params) == versions(history.db, plain(LANDED, counts), params)
                days = {"days": ["2026-10-02", "2026-10-03"]}
                fast = rule().courier_unbuilt(NEWEST, BUILT, ALREADY, every_landed=LANDED)
                assert (versions(history.db, fast, {**params, **days})
                        == versions(history.db, plain(NEWEST, ALREADY), {**params, **days}))
            full = {"tag": tag, "feed": "df-1"}
            assert (versions(history.db, rule().courier_unbuilt(LANDED, BUILT, "built.excluded", judge_all=True), full)
                    == versions(history.db, plain(LANDED, "built.excluded"), full))
