"""Justified squawk exclusions for the statements the toolkit's own operations print.

``lossless lint`` (and squawk run by hand on ``lossless sql`` output) reports what a
statement risks on a live database. A few of those risks are the point of the operation,
or cannot be avoided inside the one transaction a revision runs in; for those the offline
SQL carries a ``-- squawk-ignore RULE`` line just before the statement, with the reason
(a team's own statements never get one). The reasons are documented in ``docs/live.md``.
"""

from __future__ import annotations

import re

#: Rule -> why the toolkit's statement is allowed to break it.
JUSTIFIED: dict[str, str] = {
    "ban-drop-column": (
        "dropping the column is what the operation is for; its values were moved or stashed "
        "first and come back on downgrade (deploy clients that no longer read it first)"
    ),
    "ban-drop-table": (
        "the link table's rows were folded back into a column first (collapsed, kept in the "
        "stash or refused, never silently dropped)"
    ),
    "adding-not-nullable-field": (
        "the column was created or refilled by this revision, whose table lock is already "
        "ACCESS EXCLUSIVE; CHECK NOT VALID + VALIDATE only helps across two transactions"
    ),
    "constraint-missing-not-valid": (
        "validating the foreign key is the check that every value has a referent; NOT VALID "
        "+ VALIDATE only helps across two transactions (the table is already locked)"
    ),
    "adding-foreign-key-constraint": (
        "validating the foreign key is the check that every value has a referent; NOT VALID "
        "+ VALIDATE only helps across two transactions (the table is already locked)"
    ),
}

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ban-drop-column", re.compile(r"^ALTER TABLE .* DROP COLUMN ", re.S)),
    ("ban-drop-table", re.compile(r"^DROP TABLE (?!IF EXISTS)", re.S)),
    ("adding-not-nullable-field", re.compile(r"^ALTER TABLE .* SET NOT NULL", re.S)),
    ("constraint-missing-not-valid", re.compile(r"^ALTER TABLE .* FOREIGN KEY .*", re.S)),
    ("adding-foreign-key-constraint", re.compile(r"^ALTER TABLE .* FOREIGN KEY .*", re.S)),
)


def justified_rules(statement: str) -> tuple[str, ...]:
    """The rules ``statement`` (one of the toolkit's, as printed) breaks with a reason."""
    text = statement.lstrip()
    if "\n" in text:  # DO blocks and other multi-line statements break none of these
        return ()
    return tuple(rule for rule, pattern in _PATTERNS if pattern.match(text))


def with_lint_note(statement: str) -> str:
    """``statement`` preceded by a ``-- squawk-ignore`` line when it breaks a rule with reason."""
    rules = justified_rules(statement)
    if not rules:
        return statement
    return f"-- squawk-ignore {', '.join(rules)} -- lossless: see docs/live.md\n{statement}"
