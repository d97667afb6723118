"""Shell blocks as commands and the output they show, and how shown output is compared.

A block with ``$ `` prompt lines is a transcript: each prompt line is a command (a line
ending in ``\\`` continues on the next), and the lines up to the next prompt are the output
it shows (stdout and stderr together, as on a terminal). A block without prompts is a
script: each line is a command whose output is not shown.

Shown and real output are compared after ``normalise``: it replaces what differs from run
to run or machine to machine (timings, rates, versions, URLs, database names, uuids,
dates, pids, the working directory) by placeholders, and ignores column alignment. In the
shown output a line ``...`` stands for any number of lines, and ``...`` inside a line for
any text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One command of a shell block and, in a transcript, the output shown for it."""

    line: int  # 1-based, within the document
    text: str
    shown: str | None  # None: the block shows no output for it (a script, or nothing shown)


def commands(text: str, first_line: int) -> list[Command]:
    """The commands of a shell block whose first text line is document line ``first_line``."""
    lines = text.splitlines()
    transcript = any(line.startswith("$ ") or line == "$" for line in lines)
    found: list[Command] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        start = index
        if transcript and not (line.startswith("$ ") or line == "$"):
            raise ValueError(f"line {first_line + index}: output before any command")
        command = line[2:] if transcript else line
        while command.endswith("\\") and index + 1 < len(lines):
            index += 1
            command = command[:-1] + "\n" + lines[index]
        index += 1
        shown: list[str] = []
        if transcript:
            while index < len(lines) and not lines[index].startswith("$ "):
                shown.append(lines[index])
                index += 1
        if not command.strip() or command.lstrip().startswith("#"):
            continue
        output = "\n".join(shown).strip("\n")
        found.append(Command(first_line + start, command, output or None))
    return found


_ELLIPSIS = "..."

#: (pattern, replacement) in order; applied to shown and real output alike.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"postgresql(\+psycopg)?://[^\s)'\"]*", "<URL>"),
        (r"PostgreSQL \d+(\.\d+)*", "PostgreSQL <V>"),
        (r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<UUID>"),
        (r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?( ?UTC|[+-]\d\d(:?\d\d)?)?", "<DATE>"),
        (r"\bpid \d+", "pid <PID>"),
        (r"\blossless_(scratch|test|docs)_[0-9a-f]+\b", "<SCRATCH>"),
        (r"\b\d+\.\d+", "<T>"),  # seconds (versions were replaced above)
        (r"\b\d[\d,]* rows/s\b", "<R> rows/s"),
        (r"<T>(\s+)\d[\d,]*\s*$", r"<T>\1<R>"),  # a table's "seconds  rows/s" cells
        (r"-{2,}", "--"),
        (r"[ \t]+", " "),
    )
)


def normalise(output: str, *, workdir: str | None = None, names: Iterable[str] = ()) -> str:
    """``output`` with the run-dependent parts replaced (see the module docstring).

    ``names`` are database names to replace by ``<DB>`` where quoted (``'app'``).
    """
    if workdir:
        output = output.replace(workdir, ".")
    for name in names:
        output = output.replace(f"'{name}'", "'<DB>'")
    lines = []
    for line in output.splitlines():
        for pattern, replacement in _RULES:
            line = pattern.sub(replacement, line)
        lines.append(line.strip())
    return "\n".join(lines).strip("\n")


def matches(shown: str, real: str) -> bool:
    """Whether normalised ``real`` output is what normalised ``shown`` output shows."""
    parts = []
    for line in shown.splitlines():
        if line == _ELLIPSIS:
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            pieces = line.split(_ELLIPSIS)
            parts.append(r"[^\n]*?".join(re.escape(piece) for piece in pieces) + r"\n")
    return re.fullmatch("".join(parts), real + "\n", flags=re.DOTALL) is not None


def difference(shown: str, real: str) -> str:
    """A readable account of a mismatch: both normalised texts."""
    return f"--- shown (normalised)\n{shown}\n--- real (normalised)\n{real}"
