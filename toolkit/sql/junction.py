"""Junction tables: build one from an FK column (bulk load, then constraints) and back.

``JunctionShape`` is everything about a junction both directions need; the builders
return SQL for each step so that the operations, the offline output and the benchmark's
idea of "the same job" stay the same text.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from toolkit.sql.ddl import (
    ForeignKeySpec,
    add_foreign_key,
    add_primary_key,
    add_primary_key_using_index,
    add_unique,
    create_index,
    drop_table,
)
from toolkit.sql.idents import Sql, column_of, ident, literal, qualified
from toolkit.sql.ordering import first_per_group, order_sql
from toolkit.sql.stash import entry, row_key_json, stash_ref

ID_COLUMN = "id"
CREATED_AT_COLUMN = "created_at"


@dataclass(frozen=True)
class JunctionShape:
    """A junction ``name(id, owner_column, referent_column, created_at)``.

    ``owner_table.owner_key`` is what ``owner_column`` references, ``column`` the FK column
    of ``owner_table`` the junction replaces.
    """

    name: str
    owner_table: str
    column: str
    owner_column: str
    referent_column: str
    owner_key: str
    unique_name: str | None = None
    ondelete: str | None = "CASCADE"
    index: bool = True
    schema: str | None = None

    @property
    def ref(self) -> Sql:
        return qualified(self.name, self.schema)

    @property
    def owner_ref(self) -> Sql:
        return qualified(self.owner_table, self.schema)

    @property
    def unique_constraint(self) -> str:
        return self.unique_name or f"uq_{self.name}_{self.owner_column}_{self.referent_column}"

    def index_name(self, column: str) -> str:
        return f"ix_{self.name}_{column}"

    def fk_name(self, column: str) -> str:
        return f"{self.name}_{column}_fkey"

    # -- promote ---------------------------------------------------------------------------

    def create_bare(self) -> Sql:
        """The junction without any constraint, its column types taken from the source columns.

        ``created_at`` is a ``timestamptz``: the "first link" a collapse keeps follows it,
        and a ``timestamp`` filled by ``now()`` would hold each inserting session's local
        time (a link added later from a session west of another sorts first).

        ``CREATE TABLE ... AS ... WITH NO DATA`` copies the owner key's and the FK column's
        exact types (typmods, collations, domains) with no reflection, online or offline.
        """
        return sql.SQL(
            "CREATE TABLE {ref} AS SELECT gen_random_uuid() AS {id}, t.{key} AS {owner},"
            " t.{col} AS {referent}, now() AS {created} FROM {owner_ref} AS t"
            " WITH NO DATA"
        ).format(
            ref=self.ref,
            id=ident(ID_COLUMN),
            key=ident(self.owner_key),
            owner=ident(self.owner_column),
            col=ident(self.column),
            referent=ident(self.referent_column),
            created=ident(CREATED_AT_COLUMN),
            owner_ref=self.owner_ref,
        )

    def shape_columns(self) -> Sql:
        """Defaults and NOT NULL, set while the table is still empty (instant)."""
        cols = [ID_COLUMN, self.owner_column, self.referent_column, CREATED_AT_COLUMN]
        parts = [sql.SQL("ALTER COLUMN {} SET DEFAULT gen_random_uuid()").format(ident(ID_COLUMN))]
        parts += [sql.SQL("ALTER COLUMN {} SET NOT NULL").format(ident(c)) for c in cols]
        parts.append(sql.SQL("ALTER COLUMN {} SET DEFAULT now()").format(ident(CREATED_AT_COLUMN)))
        return sql.SQL("ALTER TABLE {} {}").format(self.ref, sql.SQL(", ").join(parts))

    def load_from_column(self, *, skip_kept: bool, row_filter: Sql | None = None) -> Sql:
        """Copy every non-NULL ``(owner key, column)`` pair into the bare junction.

        ``skip_kept``: leave out owners whose links a collapse kept (loaded verbatim instead);
        ``row_filter``: only owners ``t`` matching it (a batch of online mode).
        """
        skip: Sql = sql.SQL("")
        if skip_kept:
            skip = sql.SQL(" AND NOT EXISTS (SELECT FROM {} AS s WHERE {})").format(
                stash_ref(self.schema), self._kept("t")
            )
        if row_filter is not None:
            skip = sql.SQL("{} AND {}").format(skip, row_filter)
        return sql.SQL(
            "INSERT INTO {ref} ({owner}, {referent}) SELECT t.{key}, t.{col}"
            " FROM {owner_ref} AS t WHERE t.{col} IS NOT NULL{skip}"
        ).format(
            ref=self.ref,
            owner=ident(self.owner_column),
            referent=ident(self.referent_column),
            key=ident(self.owner_key),
            col=ident(self.column),
            owner_ref=self.owner_ref,
            skip=skip,
        )

    def _kept(self, alias: str) -> Sql:
        """Stash entries ``s`` holding kept links of owner ``alias`` that are still current:
        the owner's column still holds the link the collapse put there."""
        return sql.SQL(
            "s.kind = 'link' AND s.table_name = {table} AND s.column_name = {column}"
            " AND s.row_key = {row_key} AND s.payload -> 'first' = to_jsonb({value})"
        ).format(
            table=literal(self.owner_table),
            column=literal(self.column),
            row_key=row_key_json(alias, (self.owner_key,)),
            value=column_of(alias, self.column),
        )

    def load_kept_links(
        self, referent: ForeignKeySpec, referent_key: str, row_filter: Sql | None = None
    ) -> Sql:
        """Re-insert, verbatim, the links a collapse kept for owners still pointing at the
        same first link; links whose referent has since been deleted go, as a cascade would.
        ``row_filter``: only owners ``t`` matching it (a batch of online mode)."""
        return sql.SQL(
            "INSERT INTO {ref} SELECT r.* FROM {stash} AS s JOIN {owner_ref} AS t ON {kept}"
            " CROSS JOIN LATERAL jsonb_populate_record(NULL::{ref}, s.payload -> 'row') AS r"
            " WHERE EXISTS (SELECT FROM {referent} AS x WHERE x.{rkey} = r.{rcol}){filter}"
        ).format(
            filter=sql.SQL("") if row_filter is None else sql.SQL(" AND {}").format(row_filter),
            ref=self.ref,
            stash=stash_ref(self.schema),
            owner_ref=self.owner_ref,
            kept=self._kept("t"),
            referent=qualified(referent.referent_table, referent.referent_schema),
            rkey=ident(referent_key),
            rcol=ident(self.referent_column),
        )

    def constrain(self, owner: ForeignKeySpec, referent: ForeignKeySpec) -> list[Sql]:
        """Primary key, unique pair, indexes, then the two foreign keys (after the load)."""
        return self.keys_and_indexes() + [sql for _, sql in self.foreign_keys(owner, referent)]

    @property
    def primary_key_name(self) -> str:
        return f"{self.name}_pkey"

    def keys_and_indexes(self) -> list[Sql]:
        """Primary key, unique pair and (with ``index``) one index per column."""
        steps = [
            add_primary_key(self.name, [ID_COLUMN], self.primary_key_name, schema=self.schema),
            self.unique_pair(),
        ]
        return steps + [create for _, create in self._column_indexes(concurrently=False)]

    def unique_pair(self) -> Sql:
        """The unique ``(owner, referent)`` constraint."""
        pair = [self.owner_column, self.referent_column]
        return add_unique(self.name, pair, self.unique_constraint, schema=self.schema)

    def indexes_built_later(self) -> list[tuple[str, Sql]]:
        """Online mode: the other indexes of ``keys_and_indexes``, each ``(name, CREATE INDEX
        CONCURRENTLY)``, built once the backfill is done: one sort each, instead of an
        insert at a random place (a random ``id``, a random referent) for every link the
        batches write. The mirror and the batches look owners up by the unique pair alone."""
        pkey = self.primary_key_name
        key = create_index(
            self.name, [ID_COLUMN], pkey, schema=self.schema, unique=True, concurrently=True
        )
        return [(pkey, key), *self._column_indexes(concurrently=True)]

    def _column_indexes(self, *, concurrently: bool) -> list[tuple[str, Sql]]:
        """With ``index``: one index per column, each ``(name, CREATE INDEX)``."""
        if not self.index:
            return []
        return [
            (
                self.index_name(c),
                create_index(
                    self.name,
                    [c],
                    self.index_name(c),
                    schema=self.schema,
                    concurrently=concurrently,
                ),
            )
            for c in (self.owner_column, self.referent_column)
        ]

    def attach_primary_key(self) -> Sql:
        """Online mode: the primary key made from its index built concurrently."""
        return add_primary_key_using_index(self.name, self.primary_key_name, schema=self.schema)

    def foreign_keys(
        self, owner: ForeignKeySpec, referent: ForeignKeySpec
    ) -> list[tuple[str, Sql]]:
        """The two foreign keys, each with its name."""
        return [
            (
                self.fk_name(c),
                add_foreign_key(self.name, [c], self.fk_name(c), spec, schema=self.schema),
            )
            for c, spec in ((self.owner_column, owner), (self.referent_column, referent))
        ]

    # -- online mode ---------------------------------------------------------------------

    def drop(self) -> Sql:
        """Drop the junction (an online run given up before its contract)."""
        return drop_table(self.name, schema=self.schema)

    def owners_without_links(self) -> Sql:
        """Condition on owners ``t``: no link at all yet (a batch fills only those).

        Probed owner by owner through the junction's unique pair index: ``OFFSET 0`` keeps
        the planner from making it an anti-join, which would read the whole junction,
        growing with every batch, once per batch (quadratic over the backfill)."""
        return sql.SQL("NOT EXISTS (SELECT FROM {} AS j WHERE j.{} = t.{} OFFSET 0)").format(
            self.ref, ident(self.owner_column), ident(self.owner_key)
        )

    def mirror_body(self) -> Sql:
        """The body of the AFTER trigger on the owner table that keeps the junction equal to
        its column while online mode fills it: an owner's links follow its value."""
        return sql.SQL(
            "IF TG_OP = 'UPDATE' AND NEW.{col} IS NOT DISTINCT FROM OLD.{col}"
            " AND NEW.{key} IS NOT DISTINCT FROM OLD.{key} THEN\n  RETURN NULL;\nEND IF;\n"
            "IF TG_OP <> 'INSERT' THEN\n  DELETE FROM {ref} WHERE {owner} = OLD.{key};\nEND IF;\n"
            "IF TG_OP <> 'DELETE' AND NEW.{col} IS NOT NULL THEN\n"
            "  INSERT INTO {ref} ({owner}, {referent}) VALUES (NEW.{key}, NEW.{col});\nEND IF;\n"
            "RETURN NULL;"
        ).format(
            col=ident(self.column),
            key=ident(self.owner_key),
            ref=self.ref,
            owner=ident(self.owner_column),
            referent=ident(self.referent_column),
        )

    def count_mirrored(self, *, missing: bool) -> Sql:
        """How many owners with a value have (``missing``: lack) the link to it."""
        return sql.SQL(
            "SELECT count(*) FROM {owner_ref} AS t WHERE t.{col} IS NOT NULL AND {neg}EXISTS"
            " (SELECT FROM {ref} AS j WHERE j.{owner} = t.{key} AND j.{referent} = t.{col})"
        ).format(
            owner_ref=self.owner_ref,
            col=ident(self.column),
            neg=sql.SQL("NOT " if missing else ""),
            ref=self.ref,
            owner=ident(self.owner_column),
            key=ident(self.owner_key),
            referent=ident(self.referent_column),
        )

    # -- collapse --------------------------------------------------------------------------

    def keep_links(self, order_by: tuple[str, ...]) -> Sql:
        """Stash every link of owners that have more than one, with the first one marked.

        The first link comes back verbatim too: re-created fresh, its ``created_at`` would
        sort it after the others and the next collapse would pick another one. So the
        stash holds one more link per owner than the extra ones (``count_kept_extras``).
        """
        owner = sql.SQL("j.{}").format(ident(self.owner_column))
        ranked = sql.SQL(
            "SELECT j.*, count(*) OVER (PARTITION BY {owner}) AS lossless_n,"
            " first_value(j.{referent}) OVER (PARTITION BY {owner} ORDER BY {order})"
            " AS lossless_first FROM {ref} AS j"
        ).format(
            owner=owner,
            referent=ident(self.referent_column),
            order=order_sql("j", order_by, self.referent_column),
            ref=self.ref,
        )
        return sql.SQL(
            "INSERT INTO {stash} (kind, table_name, column_name, row_key, payload)"
            " SELECT 'link', {table}, {column}, jsonb_build_array(k.{owner}),"
            " jsonb_build_object('row', to_jsonb(k) - 'lossless_n' - 'lossless_first',"
            " 'first', to_jsonb(k.lossless_first)) FROM ({ranked}) AS k WHERE k.lossless_n > 1"
        ).format(
            stash=stash_ref(self.schema),
            table=literal(self.owner_table),
            column=literal(self.column),
            owner=ident(self.owner_column),
            ranked=ranked,
        )

    def count_kept_extras(self) -> Sql:
        """How many links ``keep_links`` kept beyond the first of each owner (the links a
        collapse without the stash would lose): every kept link but one per owner."""
        return sql.SQL("SELECT count(*) - count(DISTINCT s.row_key) FROM {} AS s WHERE {}").format(
            stash_ref(self.schema), entry("link", self.owner_table, self.column)
        )

    def first_links(self, order_by: tuple[str, ...], row_filter: Sql | None = None) -> Sql:
        """``(g, v)``: each owner's first link in ``order_by`` order (the referent breaks
        remaining ties); with ``row_filter`` (on owner rows ``t``), those owners' only."""
        groups = None
        if row_filter is not None:
            groups = sql.SQL("SELECT t.{} FROM {} AS t WHERE {}").format(
                ident(self.owner_key), self.owner_ref, row_filter
            )
        return first_per_group(self.ref, self.owner_column, self.referent_column, order_by, groups)

    def set_first_links(self, order_by: tuple[str, ...], row_filter: Sql | None = None) -> Sql:
        """Set the owner's column to its first link in ``order_by`` order (deterministic);
        with ``row_filter`` (on owner rows ``t``), of those owners only (an online batch:
        the first links are those owners' only, each joined back by its key)."""
        return sql.SQL("UPDATE {} AS t SET {} = f.v FROM ({}) AS f WHERE t.{} = f.g").format(
            self.owner_ref,
            ident(self.column),
            self.first_links(order_by, row_filter),
            ident(self.owner_key),
        )

    def count_links(self) -> Sql:
        """How many links the junction holds."""
        return sql.SQL("SELECT count(*) FROM {}").format(self.ref)

    def repeated_pair(self) -> Sql:
        """Condition on junction rows ``t``: another row holds the same pair."""
        return sql.SQL(
            "EXISTS (SELECT FROM {} AS d WHERE d.{o} = t.{o} AND d.{r} = t.{r}"
            " AND d.ctid <> t.ctid)"
        ).format(self.ref, o=ident(self.owner_column), r=ident(self.referent_column))

    def count_payload(self, columns: tuple[str, ...]) -> Sql:
        """How many links hold a value in one of the payload ``columns``."""
        values = sql.SQL(", ").join(column_of("t", c) for c in columns)
        return sql.SQL("SELECT count(*) FROM {} AS t WHERE NOT (ROW({}) IS NULL)").format(
            self.ref, values
        )

    def owners_without_link(self) -> Sql:
        """Condition on owner rows ``t``: no link at all."""
        return sql.SQL("NOT EXISTS (SELECT FROM {} AS j WHERE j.{} = t.{})").format(
            self.ref, ident(self.owner_column), ident(self.owner_key)
        )
