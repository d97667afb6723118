"""SQL expressions that generate a column's values from the series number ``g``.

Deterministic (a function of ``g``, the seed and the column's position), varied (NULLs in
nullable columns, ``{}``, nested and unicode JSON, ties in timestamps, the constants the
check constraints compare a column with, rows repeating the one before them) and injective
in ``g`` where a unique constraint needs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

from toolkit.seeding.reflect import CheckConstraint, ColumnInfo
from toolkit.sql.idents import literal, qualified

_PRIMES = (7919, 104729, 1299709, 15485863, 32452843, 49979687)
_LITERAL = re.compile(r"'((?:[^']|'')*)'")
_ENUM_CHECK = re.compile(r"=\s*ANY\s*\(\s*(?:\()?ARRAY\[", re.IGNORECASE)
# ``col = 'x'::text``, ``(col)::text <> 'x'::text``, ``"Col" >= 10`` as ``pg_get_expr`` shows them.
_COMPARISON = re.compile(
    r"""(?:"(?P<quoted>(?:[^"]|"")+)"|\b(?P<bare>[a-z_][a-z0-9_$]*))\)?(?:::[a-z ]+)?\s*"""
    r"""(?:=|<>|<=|>=|<|>)\s*\(?(?:'(?P<text>(?:[^']|'')*)'|(?P<num>-?\d+(?:\.\d+)?))"""
)
_TEXT_TYPES = {"text", "varchar", "bpchar", "name", "citext"}
_INT_LIMITS = {"int2": 32000, "int4": 2_000_000_000, "int8": 9_000_000_000_000_000_000}
_TEXT_SUFFIXES = ("", " é", " ✓ 漢字", " it's", "  spaced ")
#: ``g`` with every fifth row numbered like the row before it.
REPEATED_G = sql.SQL("(g - (g % 5 = 0)::int)")


class Unsupported(Exception):
    """No generator for this column's type."""


@dataclass(frozen=True)
class ValueContext:
    """What a column's generator depends on besides its type.

    ``allowed``: the only values a check lets through (``col IN (...)``); ``literals``:
    constants checks compare the column with, offered among the generated values so that
    conditions such as ``(kind = 'card') = (card_id IS NOT NULL)`` meet both branches.
    """

    table: str
    position: int
    seed: int
    distinct: bool
    allowed: tuple[str, ...] = ()
    literals: tuple[str, ...] = ()

    @property
    def g(self) -> sql.Composable:
        """The row's number. Outside unique keys every fifth row repeats the one before
        it, so that duplicates (what a dedupe migration deletes) are part of the data."""
        return sql.SQL("g") if self.distinct else REPEATED_G

    @property
    def mix(self) -> sql.Composed:
        """A per-column pseudo-random non-negative integer derived from ``g``: hashed, so
        that the choices of different columns (and NULLs of foreign keys) are independent."""
        prime = _PRIMES[self.position % len(_PRIMES)]
        offset = self.seed * 7 + self.position * 13
        return sql.SQL("(hashint8({} * {} + {}) & 2147483647)").format(
            self.g, sql.Literal(prime), sql.Literal(offset)
        )


def allowed_values(column: str, checks: tuple[CheckConstraint, ...]) -> tuple[str, ...]:
    """The literals of an enum-like check on ``column`` alone (``col = ANY (ARRAY[...])``)."""
    for check in checks:
        if check.columns == (column,) and _ENUM_CHECK.search(check.expression):
            return tuple(v.replace("''", "'") for v in _LITERAL.findall(check.expression))
    return ()


def check_literals(column: str, checks: tuple[CheckConstraint, ...]) -> tuple[str, ...]:
    """The constants checks compare ``column`` with (``col = 'x'``, ``col >= 10``).

    Integers come with their neighbours, so that both sides of a bound are tried.
    """
    found: list[str] = []
    for check in checks:
        if column not in check.columns:
            continue
        for match in _COMPARISON.finditer(check.expression):
            name = match["quoted"].replace('""', '"') if match["quoted"] else match["bare"]
            if name != column:
                continue
            text = match["text"]
            found += _with_neighbours(text.replace("''", "'") if text is not None else match["num"])
    return tuple(dict.fromkeys(found))


def _with_neighbours(value: str) -> list[str]:
    try:
        number = int(value)
    except ValueError:
        return [value]
    return [str(number - 1), value, str(number + 1)]


def value_expression(column: ColumnInfo, ctx: ValueContext) -> sql.Composable:
    """An expression of ``g`` producing this column's value (``Unsupported`` if none)."""
    value = _base_value(column, ctx)
    if ctx.literals and not ctx.allowed and not ctx.distinct:
        # Two rows in three take one of the checks' constants.
        choices = sql.SQL(", ").join(literal(v) for v in ctx.literals)
        value = sql.SQL(
            "CASE WHEN ({mix} / 7) % 3 <> 0"
            " THEN CAST((ARRAY[{choices}])[1 + ({mix} / 3) % {n}] AS {type}) ELSE {value} END"
        ).format(
            mix=ctx.mix,
            choices=choices,
            n=sql.Literal(len(ctx.literals)),
            type=qualified(column.type_name, column.type_schema),
            value=value,
        )
    if column.not_null or ctx.distinct or column.type_name in ("json", "jsonb"):
        return value
    # Every seventh row is NULL, so that NULL handling is exercised too.
    return sql.SQL("CASE WHEN {} % 7 = 3 THEN NULL ELSE {} END").format(ctx.mix, value)


def _base_value(column: ColumnInfo, ctx: ValueContext) -> sql.Composable:
    if ctx.allowed:
        choices = sql.SQL(", ").join(literal(v) for v in ctx.allowed)
        return sql.SQL("(ARRAY[{}])[1 + {} % {}]").format(
            choices, ctx.mix, sql.Literal(len(ctx.allowed))
        )
    if column.type_kind == "e":
        enum = sql.SQL("enum_range(NULL::{})").format(
            qualified(column.type_name, column.type_schema)
        )
        return sql.SQL("({enum})[1 + {mix} % array_length({enum}, 1)]").format(
            enum=enum, mix=ctx.mix
        )
    if column.category == "A":
        return _array_value(column, ctx)
    return _scalar_value(column.type_name, column, ctx)


def _scalar_value(type_name: str, column: ColumnInfo, ctx: ValueContext) -> sql.Composable:
    g_or_mix = sql.SQL("(g + {})").format(sql.Literal(ctx.seed * 1000)) if ctx.distinct else ctx.mix
    if type_name in _INT_LIMITS:
        limit = 100 if not ctx.distinct else _INT_LIMITS[type_name]
        return sql.SQL("({} % {})::{}").format(g_or_mix, sql.Literal(limit), _builtin(type_name))
    if type_name == "numeric":
        return _numeric_value(column, ctx, g_or_mix)
    if type_name in ("float4", "float8"):
        return sql.SQL("(({} % 1000) / 8.0)::{}").format(g_or_mix, _builtin(type_name))
    if type_name == "bool":
        return sql.SQL("({} % 2 = 0)").format(ctx.mix)
    if type_name in _TEXT_TYPES:
        return _text_value(column, ctx)
    if type_name == "uuid":
        return sql.SQL("md5(format('%s:%s:%s:%s', {}, {}, {}, {}))::uuid").format(
            sql.Literal(ctx.seed), literal(ctx.table), literal(column.name), ctx.g
        )
    if type_name == "date":
        return sql.SQL("(date '2024-01-01' + ({} % 1000)::int)").format(g_or_mix)
    if type_name in ("timestamp", "timestamptz"):
        # Pairs of consecutive rows share a timestamp: ties are an edge case to cover.
        base = "timestamp '2024-01-01 08:00:00'"
        if type_name == "timestamptz":
            base = "timestamptz '2024-01-01 08:00:00+00'"
        return sql.SQL(base + " + ({} / 2) * interval '61.125 seconds'").format(ctx.g)
    if type_name == "time":
        return sql.SQL("(time '00:00' + ({} % 86400) * interval '1 second')").format(ctx.mix)
    if type_name == "interval":
        return sql.SQL("(({} % 10000) * interval '1 minute')").format(ctx.mix)
    if type_name in ("json", "jsonb"):
        return _json_value(column, ctx)
    if type_name == "bytea":
        return sql.SQL("decode(md5(format('%s:%s', {}, {})), 'hex')").format(
            literal(column.name), ctx.g
        )
    if type_name in ("inet", "cidr"):
        return sql.SQL(
            "format('10.%s.%s.%s/32', ({g} / 65536) % 256, ({g} / 256) % 256, {g} % 256)::{t}"
        ).format(g=ctx.g, t=_builtin(type_name))
    raise Unsupported(type_name)


def _numeric_value(column: ColumnInfo, ctx: ValueContext, g_or_mix: sql.Composed) -> sql.Composed:
    precision, scale = ((column.typmod - 4) >> 16) & 0xFFFF, (column.typmod - 4) & 0xFFFF
    if column.typmod < 0:
        precision, scale = 12, 3
    integer_limit = 10 ** min(max(precision - scale, 0), 9 if ctx.distinct else 1)
    return sql.SQL("round(({} % {}) + ({} % 8) * 0.125, {})").format(
        g_or_mix, sql.Literal(max(integer_limit, 1)), ctx.mix, sql.Literal(scale)
    )


def _text_value(column: ColumnInfo, ctx: ValueContext) -> sql.Composed:
    suffixes = sql.SQL(", ").join(literal(s) for s in _TEXT_SUFFIXES)
    value = sql.SQL("format('%s %s%s', {}, {}, (ARRAY[{}])[1 + {} % {}])").format(
        literal(column.name), ctx.g, suffixes, ctx.mix, sql.Literal(len(_TEXT_SUFFIXES))
    )
    length = column.typmod - 4 if column.type_name in ("varchar", "bpchar") else -1
    if 0 < length < len(column.name) + 8:
        # Too short for the name: g alone keeps values unique.
        return sql.SQL("left({}::text, {})").format(ctx.g, sql.Literal(length))
    if length > 0:
        return sql.SQL("left({}, {})").format(value, sql.Literal(length))
    return value


def _json_value(column: ColumnInfo, ctx: ValueContext) -> sql.Composed:
    cast = _builtin(column.type_name)
    null_case = sql.SQL("'{}'::jsonb") if column.not_null else sql.SQL("NULL")
    return sql.SQL(
        "(CASE {mix} % 6"
        " WHEN 0 THEN {null_case}"
        " WHEN 1 THEN '{{}}'::jsonb"
        " WHEN 2 THEN jsonb_build_object('k', {g})"
        " WHEN 3 THEN jsonb_build_object('name', 'é ✓ ' || {g},"
        "   'nested', jsonb_build_object('n', {g}, 'list', jsonb_build_array(1, 'two', NULL)))"
        " WHEN 4 THEN jsonb_build_object('flag', true, 'ratio', 0.5, 'empty', '{{}}'::jsonb)"
        " ELSE jsonb_build_object('text', 'line ' || {g}) END)::{cast}"
    ).format(mix=ctx.mix, g=ctx.g, null_case=null_case, cast=cast)


def _array_value(column: ColumnInfo, ctx: ValueContext) -> sql.Composable:
    element = column.element_type or ""
    if element in _INT_LIMITS:
        return sql.SQL("ARRAY[{} % 100, {} % 100]::{}[]").format(ctx.g, ctx.mix, _builtin(element))
    if element in _TEXT_TYPES:
        return sql.SQL("ARRAY['a' || {}, 'b é']::{}[]").format(ctx.g, _builtin(element))
    if element == "uuid":
        return sql.SQL("ARRAY[md5('a' || {})::uuid]").format(ctx.g)
    raise Unsupported(f"{element}[]")


def _builtin(type_name: str) -> sql.Composable:
    return qualified(type_name, "pg_catalog")
