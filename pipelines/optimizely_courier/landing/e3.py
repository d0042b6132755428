"""Optimizely Enriched Events Export (E3): the real schemas of its Parquet part files.

They are those of the footers Optimizely writes: 17 decision columns, 21 event columns, all
nullable, timestamps as INT64 TIMESTAMP_MILLIS in UTC. Landing types raw tables by them
(`object/schema`); the sample-data generator (`optimizely_courier.dev.generate`) writes them.
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("ms", tz="UTC")
ATTRIBUTE = pa.struct([("id", pa.string()), ("name", pa.string()), ("type", pa.string()), ("value", pa.string())])
EXPERIMENT = pa.struct([("campaign_id", pa.string()), ("experiment_id", pa.string()),
                        ("variation_id", pa.string()), ("is_holdback", pa.bool_())])
TAGS = pa.map_(pa.field("key", pa.string(), nullable=False), pa.field("value", pa.string()))

DECISIONS_SCHEMA = pa.schema([
    ("uuid", pa.string()), ("timestamp", TIMESTAMP), ("process_timestamp", TIMESTAMP),
    ("visitor_id", pa.string()), ("session_id", pa.string()), ("account_id", pa.string()),
    ("campaign_id", pa.string()), ("experiment_id", pa.string()), ("variation_id", pa.string()),
    ("attributes", pa.list_(ATTRIBUTE)), ("user_ip", pa.string()), ("user_agent", pa.string()),
    ("referer", pa.string()), ("is_holdback", pa.bool_()), ("revision", pa.string()),
    ("client_engine", pa.string()), ("client_version", pa.string()),
])
EVENTS_SCHEMA = pa.schema([
    ("uuid", pa.string()), ("timestamp", TIMESTAMP), ("process_timestamp", TIMESTAMP),
    ("visitor_id", pa.string()), ("session_id", pa.string()), ("account_id", pa.string()),
    ("experiments", pa.list_(EXPERIMENT)), ("entity_id", pa.string()), ("attributes", pa.list_(ATTRIBUTE)),
    ("user_ip", pa.string()), ("user_agent", pa.string()), ("referer", pa.string()),
    ("event_type", pa.string()), ("event_name", pa.string()), ("revenue", pa.int64()), ("value", pa.float64()),
    ("quantity", pa.int64()), ("tags", TAGS), ("revision", pa.string()), ("client_engine", pa.string()),
    ("client_version", pa.string()),
])

# The schemas `object/schema` (config.KNOWN_SCHEMAS) names: a part file that deviates from them is rejected.
KNOWN_SCHEMAS = {"optimizely-decisions": DECISIONS_SCHEMA, "optimizely-events": EVENTS_SCHEMA}
