-- The obvious alternative to the courier, for bench/e2e.py: both shipped feeds' domain tables built
-- by hand-written DuckDB SQL straight from the export's Parquet files. It does the feeds' work: the
-- casts and renames, the attribute and tag lookups, nested columns as JSON text, the key and its
-- UUID, lineage columns, and newest-wins deduplication on uuid (later date, then later file, then
-- later row). {data} is the directory holding type=decisions/ and type=events/.

create schema if not exists domain;

create or replace table domain.decisions as
select
    uuid,
    "timestamp"::timestamptz as decided_at,
    process_timestamp::timestamptz as processed_at,
    visitor_id,
    session_id,
    account_id,
    campaign_id,
    experiment_id,
    variation_id,
    is_holdback,
    to_json(attributes)::varchar as attributes,
    list_filter(attributes, lambda a: a.name = 'plan')[1].value as plan,
    list_filter(attributes, lambda a: a.name = 'country')[1].value as country,
    list_filter(attributes, lambda a: a.name = 'device')[1].value as device,
    user_ip,
    user_agent,
    referer,
    revision,
    client_engine,
    client_version,
    uuid as _pk,
    md5(uuid)::uuid as _uuid_pk,
    filename as _file,
    "date"::date as _file_date,
    file_row_number as _file_row
from read_parquet('{data}/type=decisions/date=*/experiment=*/*.parquet', filename = true,
                  file_row_number = true, hive_partitioning = true)
where uuid is not null
qualify row_number() over (partition by uuid order by "date" desc, filename desc, file_row_number desc) = 1;

create or replace table domain.conversions as
select
    uuid,
    "timestamp"::timestamptz as converted_at,
    process_timestamp::timestamptz as processed_at,
    visitor_id,
    session_id,
    account_id,
    entity_id,
    event_type,
    event_name,
    revenue as revenue_cents,
    value,
    quantity,
    to_json(experiments)::varchar as experiments,
    to_json(attributes)::varchar as attributes,
    to_json(tags)::varchar as tags,
    tags['sku'] as sku,
    tags['category'] as category,
    list_filter(attributes, lambda a: a.name = 'plan')[1].value as plan,
    user_ip,
    user_agent,
    referer,
    revision,
    client_engine,
    client_version,
    uuid as _pk,
    md5(uuid)::uuid as _uuid_pk,
    filename as _file,
    "date"::date as _file_date,
    file_row_number as _file_row
from read_parquet('{data}/type=events/date=*/event=*/*.parquet', filename = true,
                  file_row_number = true, hive_partitioning = true)
where uuid is not null
qualify row_number() over (partition by uuid order by "date" desc, filename desc, file_row_number desc) = 1;
