"""The operation model itself (no database): one definition per operation, typed, short.

- the ``op.<name>`` proxy builds exactly the operation's dataclass;
- ``toolkit/op.pyi`` (what ``mypy --strict`` checks revisions against) is current;
- operations are immutable, and ``reverse()`` asks for the record explicitly;
- no function in ``toolkit/ops`` is longer than 60 lines.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from alembic import op as alembic_op
from alembic.operations import Operations

from toolkit.op import op
from toolkit.ops import (
    FROM_RECORD,
    OPERATIONS,
    CollapseJunctionToFkOp,
    LosslessBatchOp,
    LosslessOperation,
    MoveFkToChildOp,
    MoveFkToParentOp,
    PromoteFkToJunctionOp,
    RestoreColumnFromJsonbOp,
    StashColumnInJsonbOp,
)
from toolkit.ops.stubs import STUB_PATH, render

OPS_DIR = Path(__file__).resolve().parents[2] / "toolkit" / "ops"
MAX_LINES = 60


class Invoked:
    """Stands in for Alembic's ``Operations``: ``invoke`` hands the operation back."""

    def invoke(self, operation: Any) -> Any:
        return operation


def required_arguments(cls: type[LosslessOperation]) -> tuple[list[str], dict[str, str]]:
    """Made-up values for the arguments without a default: positional, keyword-only."""
    positional: list[str] = []
    keywords: dict[str, str] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.default is not dataclasses.MISSING or f.name == "_":
            continue
        if f.kw_only:
            keywords[f.name] = f"{f.name}_value"
        else:
            positional.append(f"{f.name}_value")
    return positional, keywords


@pytest.mark.parametrize("cls", OPERATIONS, ids=lambda c: c.name)
def test_the_proxy_builds_exactly_the_dataclass(cls: type[LosslessOperation]) -> None:
    positional, keywords = required_arguments(cls)
    proxy = getattr(Operations, cls.name)

    built = proxy(Invoked(), *positional, **keywords)

    assert built == cls(*positional, **keywords)
    assert type(built) is cls
    with pytest.raises(TypeError):
        proxy(Invoked(), *positional, **keywords, not_an_argument=1)


def test_the_typed_op_is_alembics_op_and_its_stub_is_current() -> None:
    assert op is alembic_op
    assert STUB_PATH.read_text(encoding="utf-8") == render(), (
        "toolkit/op.pyi is stale: run `python -m toolkit.ops.stubs`"
    )


def test_the_stub_has_every_field_default_and_kind() -> None:
    stub = ast.parse(STUB_PATH.read_text(encoding="utf-8"))
    [typed] = [n for n in stub.body if isinstance(n, ast.ClassDef)]
    methods = {n.name: n for n in typed.body if isinstance(n, ast.FunctionDef)}
    for cls in OPERATIONS:
        args = methods[cls.name].args
        fields = [f for f in dataclasses.fields(cls) if f.name != "_"]  # type: ignore[arg-type]
        positional = [f.name for f in fields if not f.kw_only]
        keyword = [f.name for f in fields if f.kw_only]
        assert [a.arg for a in args.args] == ["self", *positional], cls.name
        assert [a.arg for a in args.kwonlyargs] == keyword, cls.name
        with_default = {f.name for f in fields if f.default is not dataclasses.MISSING}
        stub_defaults = {
            a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None
        }
        stub_defaults |= {a.arg for a in args.args[len(args.args) - len(args.defaults) :]}
        assert stub_defaults == with_default, cls.name
    assert "run_lossless" in methods


def test_operations_are_immutable() -> None:
    stash = StashColumnInJsonbOp("commitments", "goal_id")
    with pytest.raises(dataclasses.FrozenInstanceError):
        stash.column = "other"  # type: ignore[misc]
    collapse = CollapseJunctionToFkOp(
        "j", table="t", column="c", owner_column="o", referent_column="r", order_by=["x"]
    )  # type: ignore[arg-type]
    assert collapse.order_by == ("x",)


def test_reverse_takes_the_definition_from_the_record() -> None:
    restore = StashColumnInJsonbOp("commitments", "goal_id").reverse()
    assert restore == RestoreColumnFromJsonbOp("commitments", "goal_id", key="legacy_goal_id")
    assert isinstance(restore, RestoreColumnFromJsonbOp)
    assert (restore.type_, restore.nullable) == (FROM_RECORD, FROM_RECORD)

    promote = PromoteFkToJunctionOp(
        "targets", "goal_id", junction="j", owner_column="target_id", referent_column="goal_id"
    )
    collapse = promote.reverse()
    assert isinstance(collapse, CollapseJunctionToFkOp)
    assert (collapse.type_, collapse.nullable) == (FROM_RECORD, FROM_RECORD)
    assert collapse.reverse() == promote

    down = MoveFkToChildOp("m", "p", child="i", child_fk="m_id", order_by=("created_at", "id"))
    up = down.reverse()
    assert isinstance(up, MoveFkToParentOp)
    assert (up.nullable, up.type_, up.order_by) == (FROM_RECORD, FROM_RECORD, ("created_at", "id"))
    assert up.reverse() == dataclasses.replace(down, key="legacy_p", child_column="p")


def test_a_batch_reverses_in_reverse_order() -> None:
    first = StashColumnInJsonbOp("a", "x")
    second = StashColumnInJsonbOp("b", "y")
    batch = LosslessBatchOp(first, second)
    assert batch.reverse().operations == (second.reverse(), first.reverse())
    assert batch.describe().splitlines() == [first.describe(), second.describe()]


def _long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]


def test_no_function_in_the_operations_is_longer_than_60_lines() -> None:
    files = sorted(OPS_DIR.glob("*.py"))
    assert len(files) > 10
    assert [f for path in files for f in _long_functions(path)] == []
