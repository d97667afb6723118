"""The foreign-key arguments of an operation that re-creates a foreign key.

``referent_table``/``referent_key`` and the options ``ondelete``, ``onupdate``,
``deferrable``, ``initially`` and ``match``: each None when not given. Online, what is
not given comes from the record (or is reflected); offline, where nothing can be read,
they are the only way to say what the foreign key was, so every option PostgreSQL has
for a foreign key has an argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Protocol

from toolkit.errors import UsageError
from toolkit.sql.ddl import ForeignKeySpec, fk_action

_INITIALLY = ("DEFERRED", "IMMEDIATE")
_MATCH = ("SIMPLE", "FULL")
#: The options at the end of ``pg_get_constraintdef`` text of a foreign key.
_OPTIONS = re.compile(
    r"(?: MATCH (?P<match>FULL|SIMPLE|PARTIAL))?"
    r"(?: ON UPDATE (?P<onupdate>NO ACTION|RESTRICT|CASCADE|SET NULL|SET DEFAULT))?"
    r"(?: ON DELETE (?P<ondelete>NO ACTION|RESTRICT|CASCADE|SET NULL|SET DEFAULT)(?: \([^)]*\))?)?"
    r"(?P<deferrable> DEFERRABLE)?(?P<deferred> INITIALLY DEFERRED)?(?: NOT VALID)?$"
)


def _word(value: str, known: tuple[str, ...], argument: str) -> str:
    word = " ".join(value.upper().split())
    if word not in known:
        raise UsageError(f"{argument} must be one of {known}, got {value!r}")
    return word


class GivesForeignKeyOptions(Protocol):
    """An operation with the foreign-key option arguments (read-only, as on its dataclass)."""

    @property
    def fk_name(self) -> str | None: ...
    @property
    def ondelete(self) -> str | None: ...
    @property
    def onupdate(self) -> str | None: ...
    @property
    def deferrable(self) -> bool | None: ...
    @property
    def initially(self) -> str | None: ...
    @property
    def match(self) -> str | None: ...
    @property
    def schema(self) -> str | None: ...


@dataclass(frozen=True)
class ForeignKeyArgs:
    """What an operation's arguments say about the foreign key it re-creates."""

    referent_table: str | None = None
    referent_key: str | None = None
    name: str | None = None
    ondelete: str | None = None
    onupdate: str | None = None
    deferrable: bool | None = None
    initially: str | None = None
    match: str | None = None
    schema: str | None = None

    @classmethod
    def of(
        cls, op: GivesForeignKeyOptions, referent_table: str | None, referent_key: str | None
    ) -> ForeignKeyArgs:
        """What ``op``'s arguments say about the foreign key it re-creates."""
        return cls(
            referent_table,
            referent_key,
            op.fk_name,
            op.ondelete,
            op.onupdate,
            op.deferrable,
            op.initially,
            op.match,
            op.schema,
        )

    def __post_init__(self) -> None:
        self.options()  # a bad option is a usage error when the operation is built
        if self.deferrable is False and self.options().get("initially") == "DEFERRED":
            raise UsageError("initially='DEFERRED' needs a deferrable foreign key")

    def options(self) -> dict[str, str]:
        """The options given, by argument name, in the words ``recorded_options`` uses."""
        found: dict[str, str] = {}
        for argument in ("ondelete", "onupdate"):
            value = getattr(self, argument)
            if value is not None:
                found[argument] = fk_action(value).as_string(None)
        if self.deferrable is not None:
            found["deferrable"] = "DEFERRABLE" if self.deferrable else "NOT DEFERRABLE"
        if self.initially is not None:
            found["initially"] = _word(self.initially, _INITIALLY, "initially")
        if self.match is not None:
            found["match"] = _word(self.match, _MATCH, "match")
        return found

    def override(self, spec: ForeignKeySpec) -> ForeignKeySpec:
        """``spec`` with the options given here instead of its own."""
        given = self.options()
        deferred = given.get("initially")
        deferrable = self.deferrable if self.deferrable is not None else spec.deferrable
        if deferred == "DEFERRED":
            deferrable = True
        return replace(
            spec,
            ondelete=self.ondelete if self.ondelete is not None else spec.ondelete,
            onupdate=self.onupdate if self.onupdate is not None else spec.onupdate,
            deferrable=deferrable,
            initially_deferred=(
                deferred == "DEFERRED" if deferred is not None else spec.initially_deferred
            )
            and deferrable,
            match=given.get("match", spec.match),
        )

    def spec(self, default_key: str | None = None) -> ForeignKeySpec | None:
        """The foreign key the arguments describe (``referent_table`` given), else None.

        ``referent_key`` defaults to ``default_key`` (None: the referent's primary key,
        ``REFERENCES table`` with no column list)."""
        if self.referent_table is None:
            return None
        key = self.referent_key or default_key
        spec = ForeignKeySpec.to(self.referent_table, (key,) if key else (), self.schema)
        return self.override(spec)


def recorded_options(definition: str) -> dict[str, str]:
    """The options of a foreign key from its ``pg_get_constraintdef`` text, by argument name
    (every option, defaults included, so that any given one can be compared)."""
    found = _OPTIONS.search(definition)
    groups = found.groupdict() if found else {}
    return {
        "ondelete": groups.get("ondelete") or "NO ACTION",
        "onupdate": groups.get("onupdate") or "NO ACTION",
        "deferrable": "DEFERRABLE" if groups.get("deferrable") else "NOT DEFERRABLE",
        "initially": "DEFERRED" if groups.get("deferred") else "IMMEDIATE",
        "match": groups.get("match") or "SIMPLE",
    }
