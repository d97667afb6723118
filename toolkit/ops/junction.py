"""What ``promote_fk_to_junction`` and ``collapse_junction_to_fk`` share: the junction's shape."""

from __future__ import annotations

from typing import Protocol

from toolkit.ops.base import FROM_RECORD, FromRecord
from toolkit.sql.junction import JunctionShape

#: The default order of links, the first of which a collapse keeps.
DEFAULT_ORDER = ("created_at", "id")


class DescribesJunction(Protocol):
    """The arguments both operations have for the junction."""

    @property
    def junction(self) -> str: ...
    @property
    def table(self) -> str: ...
    @property
    def column(self) -> str: ...
    @property
    def owner_column(self) -> str: ...
    @property
    def referent_column(self) -> str: ...
    @property
    def unique_name(self) -> str | None: ...
    @property
    def index(self) -> bool | FromRecord: ...
    @property
    def schema(self) -> str | None: ...


def shape_of(
    op: DescribesJunction, owner_key: str, ondelete: str | FromRecord | None
) -> JunctionShape:
    """The junction ``op`` describes, its owner referenced through ``owner_key``; what is
    left to the record is the toolkit's own junction (``ON DELETE CASCADE``, indexes)."""
    return JunctionShape(
        name=op.junction,
        owner_table=op.table,
        column=op.column,
        owner_column=op.owner_column,
        referent_column=op.referent_column,
        owner_key=owner_key,
        unique_name=op.unique_name,
        ondelete="CASCADE" if ondelete is FROM_RECORD else ondelete,
        index=True if op.index is FROM_RECORD else op.index,
        schema=op.schema,
    )
