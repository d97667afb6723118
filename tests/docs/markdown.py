"""The fenced code blocks of the documentation, and what each one asks of the tests.

Every fenced block of ``README.md`` and ``docs/**/*.md`` is either run by
``tests/docs/test_docs.py`` or explicitly marked as not runnable by an HTML comment on the
line right before its opening fence (blank lines in between are allowed):

- ``<!-- not-run: REASON -->``: not executed; the tests list it with its reason;
- ``<!-- file: NAME -->``: a configuration block; its text is written to ``NAME`` in the
  document's working directory (and checked as the kind of file that name says) before the
  next block runs;
- ``<!-- database: NAME -->`` (may precede either of the above, or stand alone before a
  runnable block): this block and the following ones belong to the document's session
  ``NAME`` instead of the current one. The document starts in session ``main``. Each session
  runs on its own (a test of its own): its blocks in document order, in a fresh database,
  working directory, shell environment and Python namespace of its own.

A block with no marker runs according to its language: ``console``, ``bash``, ``sh``,
``shell`` (commands; output shown after a ``$ `` prompt is compared), ``python`` (executed),
``sql`` (executed on the document's database). Any other unmarked block is an error, so
nothing escapes the tests silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SHELL_LANGUAGES = frozenset({"console", "bash", "sh", "shell"})
RUNNABLE_LANGUAGES = SHELL_LANGUAGES | {"python", "sql"}

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not-run|file|database):\s*(?P<value>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, its text and its marker."""

    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    not_run: str | None = None  # the reason, when marked <!-- not-run: ... -->
    file: str | None = None  # the file name, when marked <!-- file: ... -->
    database: str | None = None  # the database to switch to, when marked <!-- database: -->

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.not_run is None


class MarkdownError(ValueError):
    """A document the tests cannot read unambiguously (unclosed fence, unknown block)."""


def documents() -> list[Path]:
    """README.md and every Markdown file under docs/, in a stable order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of one Markdown file, in order, with their markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        language = opening["info"].strip().split(" ")[0].lower()
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not _closes(lines[end], fence):
            body.append(lines[end][indent:] if lines[end][:indent].isspace() else lines[end])
            end += 1
        if end == len(lines):
            raise MarkdownError(f"{path.relative_to(ROOT)}:{index + 1}: unclosed code fence")
        markers = _markers_before(lines, index)
        found.append(
            Block(
                path=path,
                line=index + 1,
                language=language,
                text="\n".join(body) + "\n",
                not_run=markers.get("not-run"),
                file=markers.get("file"),
                database=markers.get("database"),
            )
        )
        index = end + 1
    for block in found:
        marked = block.not_run is not None or block.file is not None
        if not marked and block.language not in RUNNABLE_LANGUAGES:
            raise MarkdownError(
                f"{block.where}: a {block.language or 'plain'} block is not runnable: "
                "mark it <!-- not-run: REASON --> or <!-- file: NAME -->"
            )
        if block.not_run is not None and not block.not_run:
            raise MarkdownError(f"{block.where}: <!-- not-run: --> needs a reason")
    return found


def sessions(path: Path) -> dict[str, list[Block]]:
    """The blocks of one document by session (see ``<!-- database: NAME -->``), in order."""
    found: dict[str, list[Block]] = {}
    current = "main"
    for block in blocks(path):
        current = block.database or current
        found.setdefault(current, []).append(block)
    return found


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and set(stripped) == {fence[0]}


def _markers_before(lines: list[str], index: int) -> dict[str, str]:
    """The markers on the lines right above a fence (blank lines between are allowed)."""
    found: dict[str, str] = {}
    previous = index - 1
    while previous >= 0:
        if lines[previous].strip():
            match = _MARKER.match(lines[previous])
            if not match:
                break
            found.setdefault(match["kind"], match["value"])
        previous -= 1
    return found
