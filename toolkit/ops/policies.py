"""What to do with rows that cannot get their NOT NULL value back (default: refuse)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from toolkit.errors import UsageError
from toolkit.ops.refusals import refusal
from toolkit.sql.checks import CheckSet, RowCheck, missing_referent
from toolkit.sql.idents import Sql, literal, type_clause

ON_MISSING: tuple[str, ...] = ("refuse", "keep_null", "fill")


@dataclass(frozen=True)
class MissingPolicy:
    """``refuse`` (default): raise before any change, naming the rows.
    ``keep_null``: leave those rows NULL and the column nullable (said in the notes).
    ``fill``: give those rows ``fill_value`` (which must exist in the referenced table).
    """

    mode: str = "refuse"
    fill_value: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ON_MISSING:
            raise UsageError(f"on_missing must be one of {ON_MISSING}, got {self.mode!r}")
        if (self.mode == "fill") != (self.fill_value is not None):
            raise UsageError("on_missing='fill' goes with fill_value=... (and only it)")

    def refusal(
        self, code: str, table: str, column: str, condition: Sql, *, applies: bool, **names: Any
    ) -> list[RowCheck]:
        """The check refusing rows with nothing to restore, when the policy is ``refuse``."""
        if not applies or self.mode != "refuse":
            return []
        return [refusal(code, table, column, condition, **names)]

    def fill_checks(
        self, table: str, column: str, type_text: str, referents: list[tuple[str | None, str, str]]
    ) -> CheckSet:
        """The fill value must exist in every referenced ``(schema, table, key)``."""
        value = sql.SQL("t.v")
        checks: tuple[RowCheck, ...] = ()
        if self.fill_value is not None:
            checks = tuple(
                refusal(
                    "fill-value-without-referent",
                    table,
                    column,
                    missing_referent(value, ref_table, ref_key, ref_schema),
                    fill_value=self.fill_value,
                    referent=ref_table,
                    referent_key=ref_key,
                )
                for ref_schema, ref_table, ref_key in referents
            )
        source = sql.SQL("(SELECT {}::{} AS v) AS t").format(
            literal(self.fill_value or ""), type_clause(type_text)
        )
        return CheckSet(source, sql.SQL("t.v::text"), checks)
