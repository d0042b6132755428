[[ header ]]
{{ config(alias=courier_alias('[[ feed.domain_table ]]__rejected'), unique_key=['_load_id', '_file', '_file_row']) }}
{%- set feed = courier_feed('[[ feed.id ]]', '[[ feed.courier ]]', '[[ feed.tag ]]') %}
{% set q = courier_quote %}
-- [[ feed.domain_table ]]: rows that failed a cast or missed a required value, with the raw values as text.
-- Built by the courier_rejected materialization (macros/materializations.sql: the build's mode, the record).
-- Queries run while dbt compiles this model (macros/courier.sql), each deciding its SQL:
--   courier_rejected_in_window   any rejected rows in the window? If none, the model reads nothing
--   courier_in_window            the window's load ids, written as literals the scan prunes on
--   courier_incremental_rows     on Spark only: the date partitions the new rows touch

with incoming as (
select
    _reject_reason,
[% for c in columns %]
    {{ courier_text([[ c.src_arg ]]) }} as [[ c.name ]],
[% endfor %]
    _load_id,
    _file,
    _file_date,
    _file_row
from {{ ref('stg_[[ feed.model_name ]]') }}
where {{ courier_rejected_in_window(feed, ref('stg_[[ feed.model_name ]]')) }}
),

-- (on Spark, an incremental build adds the rest of the date partitions it touches, which it overwrites)
final as (
    {{ courier_incremental_rows('incoming', ['_load_id', '_file', '_file_row']) }}
)

select * from final
