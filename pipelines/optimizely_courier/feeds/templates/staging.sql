[[ header ]]
{{ courier_require_landed('[[ feed.courier ]]', '[[ feed.tag ]]') }}
{% set q = courier_quote %}
-- [[ feed.domain_table ]]: raw_[[ feed.courier ]].[[ feed.tag ]] rows extracted, cast, keyed and checked.
-- A view (the courier_staging materialization); while compiling, courier_require_landed asks whether
-- anything has been landed (if not, the build stops with what to run first).

with source as (
    select * from {{ source('raw_[[ feed.courier ]]', '[[ feed.tag ]]') }}
),

extracted as (
    select
[% for c in columns %]
        [[ c.value ]] as [[ c.src ]],
[% endfor %]
        _dlt_load_id as _load_id,
        _file,
        _file_date,
        _file_row
    from source[[ unnest ]]
),

typed as (
    select
        extracted.*,
[% for c in columns %]
        [[ c.cast ]] as [[ c.name ]][[ "," if not loop.last ]]
[% endfor %]
    from extracted
),

-- the feed's columns, the raw values they came from (for the rejected rows), the key and lineage
final as (
    select
        typed.*,
        {{ courier_pk([[ keys ]]) }} as _pk,
        {{ courier_uuid(courier_pk([[ keys ]])) }} as _uuid_pk,
        {{ courier_load_time('_load_id') }} as _updated,
[% if checks %]
        nullif(substr(concat(
[% for check in checks %]
            coalesce('; ' || [[ check ]], '')[[ "," if not loop.last ]]
[% endfor %]
        ), 3), '') as _reject_reason
[% else %]
        cast(null as {{ dbt.type_string() }}) as _reject_reason
[% endif %]
    from typed
)

select * from final
