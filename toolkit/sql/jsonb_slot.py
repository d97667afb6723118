"""Where a column's values live while stashed: a key of each row's own JSONB.

``JsonbSlot`` builds every step ``stash_column_in_jsonb`` / ``restore_column_from_jsonb``
and the move operations share: the conditions their checks refuse, writing the values,
remembering which JSONB were SQL NULL (in the stash, per JSONB column: see
``toolkit.sql.stash``), and getting the values, the NULLs and the original key set back.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from toolkit.sql.checks import do_block, missing_referent
from toolkit.sql.idents import (
    Sql,
    column_of,
    ident,
    is_json_type,
    literal,
    qualified,
    type_clause,
)
from toolkit.sql.lookups import regclass
from toolkit.sql.stash import (
    ORIGINAL,
    STASH_TABLE,
    STASHED_KEY,
    WAS_NULL,
    entry,
    row_key_json,
    stash_ref,
)

#: Set (transaction-local) by a restore's online batch: the restore mirrors leave its rows
#: alone (each restore's own batches move its key, and count what they moved).
_BATCH_SETTING = "lossless.online_restore_batch"


def outside_restore_batches() -> Sql:
    """The ``WHEN`` condition of the restore mirrors: not in a restore batch's transaction."""
    return sql.SQL("current_setting({}, true) IS DISTINCT FROM 'on'").format(
        literal(_BATCH_SETTING)
    )


#: While online restores run: the stash's NULL marks by row, for their mirrors' lookups.
MARKS_INDEX = "lossless_online_marks"


def create_marks_index(schema: str | None) -> Sql:
    """Index the stash's NULL marks by row, concurrently, while online restores run (the
    stash has no index: a restore mirror would otherwise read every mark for each
    application write of a marked row, and each batch would too)."""
    return sql.SQL(
        "CREATE INDEX CONCURRENTLY {} ON {} (table_name, column_name, row_key) WHERE kind = {}"
    ).format(ident(MARKS_INDEX), stash_ref(schema), literal(WAS_NULL))


def drop_marks_index(schema: str | None) -> Sql:
    """Drop ``index_marks``'s index (the online restores are over)."""
    return sql.SQL("DROP INDEX IF EXISTS {}").format(qualified(MARKS_INDEX, schema))


def restore_batch_marker() -> Sql:
    """Mark the transaction as a restore batch for the rest of it (see ``_BATCH_SETTING``)."""
    return sql.SQL("SELECT set_config({}, 'on', true)").format(literal(_BATCH_SETTING))


@dataclass(frozen=True)
class JsonbSlot:
    """Where a column's values live while stashed: ``table.jsonb_column -> key``.

    ``column`` is the stashed column (which may not exist at the moment), ``key_columns``
    the table's primary key; the builders alias the table ``t``.
    """

    table: str
    column: str
    jsonb_column: str
    key: str
    key_columns: tuple[str, ...]
    schema: str | None = None

    @property
    def ref(self) -> Sql:
        return qualified(self.table, self.schema)

    @property
    def source(self) -> Sql:
        return sql.SQL("{} AS t").format(self.ref)

    @property
    def jsonb(self) -> Sql:
        return column_of("t", self.jsonb_column)

    @property
    def value(self) -> Sql:
        return column_of("t", self.column)

    @property
    def holds_key(self) -> Sql:
        """Rows whose JSONB is an object holding the key (arrays can "contain" it too);
        never NULL, so that ``NOT holds_key`` selects SQL NULL JSONB too."""
        return sql.SQL("(jsonb_typeof({j}) = 'object' AND {j} ? {k}) IS TRUE").format(
            j=self.jsonb, k=literal(self.key)
        )

    def _and(self, row_filter: Sql | None) -> Sql:
        return sql.SQL(" AND {}").format(row_filter) if row_filter is not None else sql.SQL("")

    def not_object(self, row_filter: Sql | None = None) -> Sql:
        """Condition: a value to stash, but a JSONB that is not an object (array, scalar or
        JSON null) where it must go. Rows already holding the key: ``holds_key``."""
        return sql.SQL(
            "{v} IS NOT NULL{f} AND {j} IS NOT NULL AND jsonb_typeof({j}) <> 'object'"
        ).format(v=self.value, f=self._and(row_filter), j=self.jsonb)

    def orphaned(
        self, type_text: str, referent: tuple[str | None, str, str], row_filter: Sql | None = None
    ) -> Sql:
        """Condition: a stashed value that would come back pointing to no row of
        ``referent`` ``(schema, table, key)``."""
        ref_schema, ref_table, ref_key = referent
        value = sql.SQL("({} ->> {})::{}").format(
            self.jsonb, literal(self.key), type_clause(type_text)
        )
        return sql.SQL("{}{} AND {}").format(
            self.holds_key,
            self._and(row_filter),
            missing_referent(value, ref_table, ref_key, ref_schema),
        )

    def _mark(self, alias: str) -> Sql:
        """Stash rows ``alias`` that are "was NULL" marks of this slot's JSONB column."""
        return entry(WAS_NULL, self.table, self.jsonb_column, alias)

    def _stashed_key(self, alias: str) -> Sql:
        """Stash rows ``alias`` naming a key stashed into this slot's JSONB column."""
        return entry(STASHED_KEY, self.table, self.jsonb_column, alias)

    def mark_null_jsonb(self, row_filter: Sql | None = None) -> Sql:
        """Remember the rows whose JSONB is NULL and is about to receive the key.

        Run after ``forget_marks_if_nothing_stashed`` and ``forget_stale_marks``: a row
        whose JSONB is NULL then has no mark, so none is recorded twice.
        """
        return sql.SQL(
            "INSERT INTO {stash} (kind, table_name, column_name, row_key)"
            " SELECT {kind}, {table}, {jcol}, {row_key} FROM {source}"
            " WHERE {v} IS NOT NULL AND {j} IS NULL{f}"
        ).format(
            stash=stash_ref(self.schema),
            kind=literal(WAS_NULL),
            table=literal(self.table),
            jcol=literal(self.jsonb_column),
            row_key=row_key_json("t", self.key_columns),
            source=self.source,
            v=self.value,
            j=self.jsonb,
            f=self._and(row_filter),
        )

    def register_key(self) -> Sql:
        """Record that ``key`` of the JSONB holds stashed values (until the restore)."""
        return sql.SQL(
            "INSERT INTO {stash} (kind, table_name, column_name, row_key, payload)"
            " VALUES ({kind}, {table}, {jcol}, '[]'::jsonb,"
            " jsonb_build_object('key', {k}, 'column', {column}))"
        ).format(
            stash=stash_ref(self.schema),
            kind=literal(STASHED_KEY),
            table=literal(self.table),
            jcol=literal(self.jsonb_column),
            k=literal(self.key),
            column=literal(self.column),
        )

    def unregister_key(self) -> Sql:
        """Forget that ``key`` holds stashed values (the JSONB's keys are unique: the key,
        not the column, which a reverse may give another name, identifies the slot)."""
        return sql.SQL("DELETE FROM {} AS r WHERE {} AND r.payload ->> 'key' = {}").format(
            stash_ref(self.schema), self._stashed_key("r"), literal(self.key)
        )

    def _keys_left(self) -> Sql:
        return sql.SQL("SELECT FROM {} AS r WHERE {}").format(
            stash_ref(self.schema), self._stashed_key("r")
        )

    def forget_marks_if_nothing_stashed(self) -> Sql:
        """Delete every mark of this JSONB column once no key of it is stashed any more
        (the last restore), without looking at the table."""
        return sql.SQL("DELETE FROM {} AS m WHERE {} AND NOT EXISTS ({})").format(
            stash_ref(self.schema), self._mark("m"), self._keys_left()
        )

    def forget_stale_marks(self) -> Sql:
        """Delete the marks of rows that hold no stashed key of this JSONB any more.

        A mark is needed while its row holds a key some restore will remove. After that
        restore the row is NULL again, or the application wrote other keys and the object
        stays; either way the mark must not apply to a key stashed later, so a stash runs
        this before it marks and writes (restores leave such marks to the last restore,
        which drops them all: see ``forget_marks_if_nothing_stashed``). One anti-join with
        the table: run it without nested loops (see ``nested_loops_off``).
        """
        stash = stash_ref(self.schema)
        # The uncorrelated EXISTS is a one-time filter: no table scan when no key is left.
        return sql.SQL(
            "DELETE FROM {stash} AS m WHERE {mark} AND EXISTS ({keys_left})"
            " AND NOT EXISTS (SELECT FROM {source} WHERE {row_key} = m.row_key"
            " AND jsonb_typeof({j}) = 'object'"
            " AND {j} ?| ARRAY(SELECT r.payload ->> 'key' FROM {stash} AS r WHERE {stashed}))"
        ).format(
            stash=stash,
            mark=self._mark("m"),
            keys_left=self._keys_left(),
            source=self.source,
            row_key=row_key_json("t", self.key_columns),
            j=self.jsonb,
            stashed=self._stashed_key("r"),
        )

    def stashed_value(self, value: Sql | None = None) -> Sql:
        """The column's value as JSON: ``to_jsonb`` (exact text of scalars, arrays as JSON
        arrays), except an array whose lower bound is not 1 (``'[0:2]={7,8,9}'``), which
        a JSON array cannot carry: it is stashed as its text, which keeps the bounds.

        Whether the column is an array (domains over arrays too) is read once per
        statement (an uncorrelated subquery); the text form is computed only for arrays.
        ``value``: another value of the column's type than the column's own.
        """
        return sql.SQL(
            "CASE WHEN (SELECT ty.typcategory = 'A' FROM pg_attribute a"
            " JOIN pg_type ty ON ty.oid = a.atttypid WHERE a.attrelid = {rel}"
            " AND a.attname = {name}) AND left({v}::text, 1) = '['"
            " THEN to_jsonb({v}::text) ELSE to_jsonb({v}) END"
        ).format(
            rel=regclass(self.table, self.schema),
            name=literal(self.column),
            v=self.value if value is None else value,
        )

    def write_values(self, row_filter: Sql | None = None) -> Sql:
        """Put each non-NULL value into the JSONB under the key (``stashed_value``)."""
        return sql.SQL(
            "UPDATE {source} SET {jcol} = COALESCE({j}, '{{}}'::jsonb)"
            " || jsonb_build_object({k}, {value}) WHERE {v} IS NOT NULL{f}"
        ).format(
            source=self.source,
            jcol=ident(self.jsonb_column),
            j=self.jsonb,
            k=literal(self.key),
            value=self.stashed_value(),
            v=self.value,
            f=self._and(row_filter),
        )

    def mirror_put(self, message: str) -> Sql:
        """PL/pgSQL of a BEFORE row trigger putting ``NEW``'s value under the key: a NULL
        JSONB is marked (as ``write_values`` + ``mark_null_jsonb`` would) and becomes an
        object; a JSONB that is not an object fails the write with ``message`` (nothing is
        silently lost). Shared by the stash's mirror and ``move_fk_to_child``'s."""
        return sql.SQL(
            "  IF NEW.{jcol} IS NULL THEN\n"
            "    INSERT INTO {stash} (kind, table_name, column_name, row_key)"
            " VALUES ({kind}, {table}, {jname}, {row_key});\n"
            "  ELSIF jsonb_typeof(NEW.{jcol}) <> 'object' THEN\n"
            "    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = {message};\n"
            "  END IF;\n"
            "  NEW.{jcol} := COALESCE(NEW.{jcol}, '{{}}'::jsonb)"
            " || jsonb_build_object({k}, to_jsonb(NEW.{col}));\n"
        ).format(
            col=ident(self.column),
            jcol=ident(self.jsonb_column),
            stash=stash_ref(self.schema),
            kind=literal(WAS_NULL),
            table=literal(self.table),
            jname=literal(self.jsonb_column),
            row_key=row_key_json("new", self.key_columns),
            message=literal(message),
            k=literal(self.key),
        )

    def mirror_body(self) -> Sql:
        """The body of the BEFORE trigger that stashes each value the application writes
        while online mode fills the JSONB: the key follows the column (``mirror_put``)."""
        put = self.mirror_put(
            f"lossless online: {self.table}.{self.jsonb_column} must be a JSON object (or"
            f" NULL) to receive {self.column} under key {self.key!r}"
        )
        return sql.SQL(
            "IF NEW.{col} IS NOT NULL THEN\n{put}"
            "ELSIF jsonb_typeof(NEW.{jcol}) = 'object' THEN\n"
            "  NEW.{jcol} := NEW.{jcol} - {k};\n"
            "END IF;\nRETURN NEW;"
        ).format(
            col=ident(self.column), jcol=ident(self.jsonb_column), k=literal(self.key), put=put
        )

    def count_mirrored(self, *, missing: bool) -> Sql:
        """How many non-NULL values the JSONB holds (``missing``: does not hold) exactly."""
        return sql.SQL(
            "SELECT count(*) FROM {} WHERE {v} IS NOT NULL AND {} {} to_jsonb({v})"
        ).format(
            self.source,
            sql.SQL("({} -> {})").format(self.jsonb, literal(self.key)),
            sql.SQL("IS DISTINCT FROM" if missing else "="),
            v=self.value,
        )

    def decoded(self, type_text: str, alias: str = "t") -> Sql:
        """The stashed value cast back to ``type_text`` (the column must exist again);
        ``alias``: the row it is read from (``new`` in a trigger).

        Scalars go through their text form, which ``to_jsonb`` wrote exactly (uuid,
        timestamps with their offset, numeric with its scale...), and so do arrays with
        other lower bounds (``stashed_value``). Arrays and composites go
        through ``jsonb_populate_record`` on the table's own row type, JSON types as is.
        """
        j = column_of(alias, self.jsonb_column)
        raw = sql.SQL("({} -> {})").format(j, literal(self.key))
        return self._decode(raw, sql.SQL("({} ->> {})").format(j, literal(self.key)), type_text)

    def _decode(self, raw: Sql, text: Sql, type_text: str) -> Sql:
        """The JSON value ``raw`` (whose text form is ``text``) cast to ``type_text``."""
        type_ = type_clause(type_text)
        if is_json_type(type_text):
            return sql.SQL("{}::{}").format(raw, type_)
        return sql.SQL(
            "CASE WHEN jsonb_typeof({raw}) IN ('object', 'array') THEN"
            " (jsonb_populate_record(NULL::{ref}, jsonb_build_object({col}, {raw}))).{c}"
            " ELSE {text}::{type} END"
        ).format(
            raw=raw,
            ref=self.ref,
            col=literal(self.column),
            c=ident(self.column),
            text=text,
            type=type_,
        )

    def keep_originals(self, type_text: str, row_filter: Sql) -> Sql:
        """Online, before a batch moves the values of the rows ``row_filter`` selects: the
        values under the key that re-stashing the restored value would not write back the
        same (JSON ``null``, another spelling), kept in the stash for an abort."""
        raw = sql.SQL("({} -> {})").format(self.jsonb, literal(self.key))
        return sql.SQL(
            "INSERT INTO {stash} (kind, table_name, column_name, row_key, payload)"
            " SELECT {kind}, {table}, {column}, {row_key}, {raw} FROM {source}"
            " WHERE {holds} AND {f} AND {again} IS DISTINCT FROM {raw}"
        ).format(
            stash=stash_ref(self.schema),
            kind=literal(ORIGINAL),
            table=literal(self.table),
            column=literal(self.column),
            row_key=row_key_json("t", self.key_columns),
            raw=raw,
            source=self.source,
            holds=self.holds_key,
            f=row_filter,
            again=self.stashed_value(self.decoded(type_text)),
        )

    def put_originals_back(self, type_text: str) -> Sql:
        """An abort, after ``write_values``: the values ``keep_originals`` kept go back
        under the key, where the column still holds what they were restored as."""
        payload = sql.SQL("s.payload")
        decoded = self._decode(payload, sql.SQL("(s.payload #>> '{}')"), type_text)
        return sql.SQL(
            "UPDATE {source} SET {jcol} = COALESCE({j}, '{{}}'::jsonb)"
            " || jsonb_build_object({k}, s.payload) FROM {stash} AS s"
            " WHERE {entry} AND s.row_key = {row_key} AND {now} IS NOT DISTINCT FROM {then}"
        ).format(
            source=self.source,
            jcol=ident(self.jsonb_column),
            j=self.jsonb,
            k=literal(self.key),
            stash=stash_ref(self.schema),
            entry=entry(ORIGINAL, self.table, self.column, "s"),
            row_key=row_key_json("t", self.key_columns),
            now=self.stashed_value(),
            then=self.stashed_value(decoded),
        )

    def drop_stash_if_only_this(self) -> Sql:
        """Drop the stash when all it holds is this slot's: the JSONB's marks, the key's
        registration, the column's record, what ``keep_originals`` kept (what the restore
        forgets next): one catalog change instead of a ``DELETE`` of every mark."""
        stash = stash_ref(self.schema)
        mine = sql.SQL("({}) OR ({} AND s.payload ->> 'key' = {}) OR ({}) OR ({})").format(
            self._mark("s"),
            self._stashed_key("s"),
            literal(self.key),
            entry("column", self.table, self.column, "s"),
            entry(ORIGINAL, self.table, self.column, "s"),
        )
        return do_block(
            sql.SQL(
                "BEGIN\n  IF {rel} IS NOT NULL AND NOT EXISTS"
                " (SELECT FROM {stash} AS s WHERE ({mine}) IS NOT TRUE) THEN\n"
                "    DROP TABLE {stash};\n  END IF;\nEND"
            ).format(rel=regclass(STASH_TABLE, self.schema), stash=stash, mine=mine)
        )

    def forget_originals(self) -> Sql:
        """Remove what ``keep_originals`` kept (the run contracted, or was aborted)."""
        return sql.SQL("DELETE FROM {} AS s WHERE {}").format(
            stash_ref(self.schema), entry(ORIGINAL, self.table, self.column, "s")
        )

    def _restored(self, type_text: str, keep_existing: bool) -> Sql:
        value = self.decoded(type_text)
        if keep_existing:
            value = sql.SQL("COALESCE({}, {})").format(self.value, value)
        return value

    def restore_null_jsonb(
        self, type_text: str, *, keep_existing: bool = False, row_filter: Sql | None = None
    ) -> Sql:
        """Restore the value of marked rows that the key's removal leaves exactly ``{}``,
        and give their JSONB back its SQL NULL (run before ``restore_values``, without
        nested loops: see ``nested_loops_off``).

        Exactly ``{}`` means no other stashed key is left (the restore of that key will
        decide) and the application has added none since (the object stays): which
        column's restore gives the NULL back does not depend on the order of restores.
        The mark of a row holding the key is current: the stash that wrote the key first
        forgot the stale ones (``forget_stale_marks``).
        """
        return sql.SQL(
            "UPDATE {source} SET {col} = {value}, {jcol} = NULL FROM {stash} AS s"
            " WHERE {mark} AND s.row_key = {row_key} AND {holds}"
            # the key alone: it leaves {} (and no error on a scalar, whatever the order)
            " AND {j} = jsonb_build_object({k}, {j} -> {k}){f}"
        ).format(
            source=self.source,
            col=ident(self.column),
            value=self._restored(type_text, keep_existing),
            jcol=ident(self.jsonb_column),
            stash=stash_ref(self.schema),
            mark=self._mark("s"),
            row_key=row_key_json("t", self.key_columns),
            holds=self.holds_key,
            j=self.jsonb,
            k=literal(self.key),
            f=self._and(row_filter),
        )

    def restore_values(
        self, type_text: str, *, keep_existing: bool = False, row_filter: Sql | None = None
    ) -> Sql:
        """Move the stashed values back into the column and remove the key.

        ``keep_existing``: a value the column already holds wins over the stashed one.
        """
        return sql.SQL("UPDATE {} SET {} = {}, {} = {} - {} WHERE {}{}").format(
            self.source,
            ident(self.column),
            self._restored(type_text, keep_existing),
            ident(self.jsonb_column),
            self.jsonb,
            literal(self.key),
            self.holds_key,
            self._and(row_filter),
        )

    def restore_mirror_body(self, type_text: str, *, marks: bool) -> Sql:
        """The body of the BEFORE trigger that restores each value the application writes
        under the key while online mode empties it: the row ends as ``restore_null_jsonb``
        + ``restore_values`` would leave it (the value in the column, the key gone, SQL
        NULL back for a marked JSONB left exactly ``{}``). ``marks``: the stash exists (it
        may hold marks). A row written without the key keeps the column it was given.
        Its trigger leaves the restore batches alone (``outside_restore_batches``)."""
        marked: Sql = sql.SQL("FALSE")
        if marks:
            marked = sql.SQL(
                "NEW.{jcol} = jsonb_build_object({k}, NEW.{jcol} -> {k})"
                " AND EXISTS (SELECT FROM {stash} AS s WHERE {mark} AND s.row_key = {row_key})"
            ).format(
                jcol=ident(self.jsonb_column),
                k=literal(self.key),
                stash=stash_ref(self.schema),
                mark=self._mark("s"),
                row_key=row_key_json("new", self.key_columns),
            )
        return sql.SQL(
            "IF jsonb_typeof(NEW.{jcol}) = 'object' AND NEW.{jcol} ? {k} THEN\n"
            "  NEW.{col} := {value};\n"
            "  IF {marked} THEN\n"
            "    NEW.{jcol} := NULL;\n"
            "  ELSE\n"
            "    NEW.{jcol} := NEW.{jcol} - {k};\n"
            "  END IF;\n"
            "END IF;\nRETURN NEW;"
        ).format(
            jcol=ident(self.jsonb_column),
            k=literal(self.key),
            col=ident(self.column),
            value=self.decoded(type_text, "new"),
            marked=marked,
        )

    def holding_count(self) -> Sql:
        """How many rows still hold the key (values not yet back in the column)."""
        return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(self.source, self.holds_key)

    def pending_count(self) -> Sql:
        """How many rows hold a stashed value their (re-added) column does not have yet."""
        return sql.SQL("SELECT count(*) FROM {} WHERE {} AND {} IS NULL").format(
            self.source, self.holds_key, self.value
        )

    def overridden_count(self, type_text: str) -> Sql:
        """How many rows hold a stashed value other than the one their column already got."""
        return sql.SQL(
            "SELECT count(*) FROM {} WHERE {} AND {v} IS NOT NULL AND {v} IS DISTINCT FROM {d}"
        ).format(self.source, self.holds_key, v=self.value, d=self.decoded(type_text))
