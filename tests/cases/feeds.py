"""Feed case tables: a feed text each, varied from the feed `feeds/order_ids.yml`, and what validation says."""

from tests.cases import ORDER_IDS_FEED as BASE

# (feed text, expected message, line, key): a feed with one problem, which validation reports first
INVALID_FEEDS = [
    (BASE.replace("id: df-aaaaaa\n", ""), "is required", 1, "id"),
    (BASE.replace("df-aaaaaa", "orders-1"), "expected a feed id like df-7k2m9q", 1, "id"),
    (BASE + "colour: blue\n", "unknown key; valid keys are: id, source, name", 9, "colour"),
    (BASE.replace("name: Orders", "name: Or'ders; drop"), "letters, digits and _", 3, "name"),
    (BASE + "  - {name: total, type: Money}\n", "expected one of Boolean, Date, Datetime, Decimal, Float, Integer, "
                                                 "String", 9, "columns[1].type"),
    (BASE + "  - {name: total, type: Decimal, scale: 40}\n", "expected a number from 0 to 37", 9, "columns[1].scale"),
    (BASE + "  - {name: total, type: Float, scale: 2}\n", "only Decimal columns take a scale", 9, "columns[1].scale"),
    (BASE + "  - {name: total, type: String, rename_to: total-amount}\n", "letters, digits and _ only", 9,
     "columns[1].rename_to"),
    (BASE + "  - {name: total amount, type: String}\n", "letters, digits and _ only", 9, "columns[1].name"),
    (BASE + "  - {name: plan, type: String, from: \"attributes[pl'an]\"}\n", "expected a raw column, `column[key]` or "
                                                                         "`column.field`", 9, "columns[1].from"),
    (BASE.replace("[order_id]", "[order_no]"), "`order_no` is not a column of this feed", 6, "primary_key"),
    (BASE + "last_updated: created_on\n", "`created_on` is not a column of this feed", 9, "last_updated"),
    (BASE.replace("primary_key", "last_updated: order_id\nprimary_key"), "the last-updated field must be Datetime or "
                                                                         "Integer", 6, "last_updated"),
    (BASE + "  - {name: mail, type: String, semantic: emial}\n", "unknown semantic tag `emial`: did you mean "
                                                                 "`email`?", 9, "columns[1].semantic"),
    (BASE + "  - {name: mail, type: String, semantic: loyalty-tier}\n", "a custom tag starting with `custom-`", 9,
     "columns[1].semantic"),
    (BASE + "  - {name: a, type: String, semantic: given-name}\n  - {name: b, type: String, semantic: given-name}\n",
     "`given-name` may tag one column per feed", 10, "semantic"),
    (BASE + "  - {name: born, type: Datetime, semantic: birthdate}\n", "`birthdate` requires type Date", 9,
     "semantic"),
    (BASE + "  - {name: tel, type: Integer, semantic: phone}\n", "`phone` requires type String", 9, "semantic"),
    (BASE + "  - {name: sku, type: String, semantic: pk}\n", "tagged pk but is not in primary_key", 9, "semantic"),
    (BASE + "  - {name: order_id, type: Integer}\n", "column `order_id` appears twice", 9, "columns[1].name"),
    (BASE + "error_threshold: 5\n", "expected a number from 0.0 to 1.0", 9, "error_threshold"),
    (BASE + "file: orders\n", "the old name of `tag`; keep only `tag`", 9, "file"),
]
