"""Every refusal an operation can make: a stable code, the sentence, the remedy.

The one message catalog: the online ``DataRefusedError`` and the offline guard (a ``DO``
block raising ``check_violation``) are both built from these entries, and programs read
``DataRefusedError.code`` / ``.remedy`` (never the text): the CLI turns a remedy whose
``argument`` is ``on_missing`` or ``fill_value`` into the ``-x`` options a revision reads.

``reason`` completes "refused: table.column: N row(s) ..." and is formatted with the
arguments ``refusal()`` is given (``column`` is the column the refusal names;
``value_column`` the stashed column, when the refusal names its JSONB column).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from toolkit.errors import Remedy
from toolkit.sql.checks import RowCheck, missing_primary_key_referent, missing_referent
from toolkit.sql.ddl import ForeignKeySpec
from toolkit.sql.idents import Sql, column_of

#: The policy for rows that cannot get their NOT NULL value back, and its choices.
ON_MISSING = "on_missing"
FILL_VALUE = "fill_value"
_NOT_NULL = Remedy(
    "pass on_missing='keep_null' (column left nullable) or on_missing='fill'"
    " with fill_value=... to proceed",
    argument=ON_MISSING,
    choices=("keep_null", "fill"),
)


@dataclass(frozen=True)
class Entry:
    """One kind of refusal."""

    reason: str
    remedy: Remedy


CATALOG: dict[str, Entry] = {
    "jsonb-not-object": Entry(
        "hold a JSONB that is not an object (array, scalar or JSON null) where"
        " {value_column} must be stashed under {key!r}",
        Remedy("fix those values (e.g. wrap them in an object) before the migration"),
    ),
    "jsonb-key-present": Entry(
        "already hold the key {key!r}",
        Remedy("rename or remove that key first, or pass another key=", argument="key"),
    ),
    "value-without-referent": Entry(
        "point to no row of {referent}", Remedy("fix or clear those values first")
    ),
    "stashed-value-without-referent": Entry(
        "hold under {key!r} a {value_column} that {referent}.{referent_key} no longer has",
        Remedy("restore the referenced rows or remove those keys first"),
    ),
    "fill-value-without-referent": Entry(
        "would be filled with {fill_value!r}, which {referent}.{referent_key} lacks",
        Remedy("pass a fill_value that exists", argument=FILL_VALUE),
    ),
    "not-null-without-stashed-value": Entry(
        "have no {key!r} in {jsonb_column} and {column} is NOT NULL", _NOT_NULL
    ),
    "not-null-without-link": Entry(
        "have no link in {junction} and {column} is NOT NULL", _NOT_NULL
    ),
    "not-null-without-child-or-stash": Entry(
        "have no {child} row and no {key!r} in {jsonb_column}, and {column} is NOT NULL",
        _NOT_NULL,
    ),
    "child-without-parent": Entry(
        "have no {parent} row ({column} is NULL or matches no {parent}.{parent_key}),"
        " so {child_column} cannot be NOT NULL there",
        Remedy(
            "give those rows a parent (or delete them) first, or pass nullable=True",
            argument="nullable",
            choices=("True",),
        ),
    ),
    "repeated-link": Entry(
        "repeat a ({owner_column}, {referent_column}) pair, which the promote back cannot"
        " re-insert (it adds UNIQUE ({owner_column}, {referent_column}))",
        Remedy(
            "remove the repeated links first, or collapse without keep_extra_links (the"
            " links beyond the first are then the declared loss)",
            argument="keep_extra_links",
            choices=("False",),
        ),
    ),
    "children-of-parent-without-value": Entry(
        "have no {column} but have {child} rows, whose {child_column} will be NOT NULL",
        Remedy(
            "give those rows a value or pass nullable=True",
            argument="nullable",
            choices=("True",),
        ),
    ),
}


def refusal(code: str, table: str, column: str | None, condition: Sql, **values: Any) -> RowCheck:
    """The check refusing the rows of ``table`` matching ``condition``, named ``code``."""
    entry = CATALOG[code]
    reason = entry.reason.format(column=column, **values)
    return RowCheck(table, column, code, reason, condition, entry.remedy)


def value_without_referent(
    table: str, column: str, referent: ForeignKeySpec, row_filter: Sql | None = None
) -> RowCheck:
    """The refusal of values of ``table.column`` (rows ``t``, those matching ``row_filter``)
    that ``referent`` lacks; a referent named without its key (offline) is matched on its
    primary key, looked up when the script runs."""
    value = column_of("t", column)
    if referent.referent_columns:
        key = referent.referent_columns[0]
        condition = missing_referent(value, referent.referent_table, key, referent.referent_schema)
    else:
        condition = missing_primary_key_referent(
            value, referent.referent_table, referent.referent_schema
        )
    if row_filter is not None:
        condition = sql.SQL("{} AND {}").format(row_filter, condition)
    return refusal(
        "value-without-referent", table, column, condition, referent=referent.referent_table
    )
