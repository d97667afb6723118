"""What ``move_fk_to_child`` and ``move_fk_to_parent`` share: the parent and child tables."""

from __future__ import annotations

from typing import Protocol

from toolkit.ops import reflect
from toolkit.ops.fk_args import ForeignKeyArgs, GivesForeignKeyOptions
from toolkit.ops.runtime import Runner
from toolkit.sql.ddl import ForeignKeySpec
from toolkit.sql.family import Family


class DescribesFamily(GivesForeignKeyOptions, Protocol):
    """The arguments both operations have for the parent, the child and the referent."""

    @property
    def parent(self) -> str: ...
    @property
    def child(self) -> str: ...
    @property
    def child_fk(self) -> str: ...
    @property
    def referent_table(self) -> str | None: ...
    @property
    def referent_key(self) -> str | None: ...


def family_of(op: DescribesFamily, parent_key: str) -> Family:
    """``op.child.child_fk`` referencing ``op.parent.parent_key``."""
    return Family(op.parent, parent_key, op.child, op.child_fk, op.schema)


def fk_args_of(op: DescribesFamily) -> ForeignKeyArgs:
    """What the arguments say about the foreign key the operation re-creates."""
    return ForeignKeyArgs.of(op, op.referent_table, op.referent_key)


def explicit_referent(op: DescribesFamily) -> ForeignKeySpec | None:
    """The foreign key the arguments describe (``referent_table`` given), else None."""
    return fk_args_of(op).spec()


def parent_key_of(runner: Runner, op: DescribesFamily, given: str | None) -> str:
    """What ``child.child_fk`` references in ``parent``: given, else reflected."""
    if given is not None:
        return given
    for fk in reflect.foreign_keys(runner, op.child, op.child_fk, op.schema):
        if fk.local_columns == 1 and fk.spec.referent_table == op.parent:
            return fk.spec.referent_columns[0]
    return reflect.single_key(runner, op.parent, op.schema)
