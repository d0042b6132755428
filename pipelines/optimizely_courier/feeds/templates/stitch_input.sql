-- generated from feeds with stitch: true ([[ sources ]]); do not edit
{{ config(materialized='view', schema='domain') }}
{% set q = courier_quote %}
-- PII columns of every Stitch feed under canonical names, one row per domain-table row.

[% for part in parts %]
    select
        '[[ part.feed.domain_table ]]' as source,
        _pk,
        _updated,
        [[ part.columns | join(",\n        ") ]]
    from {{ ref('[[ part.feed.model_name ]]') }}
[% if not loop.last %]
    union all
[% endif %]
[% endfor %]
