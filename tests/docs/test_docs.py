"""Every fenced block of README.md and docs/ runs as copied, and shows what the tool prints.

One test per document and session (``<!-- database: NAME -->``; most documents have one):
its blocks run in order (later blocks build on earlier ones), in a working directory and a
fresh database of their own on the test server (see ``tests/docs/runner.py`` for the rules,
``tests/docs/markdown.py`` for the markers). Every failing block is reported, not only the
first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.launcher import Launcher
from tests.docs.markdown import ROOT, MarkdownError, blocks, documents, sessions
from tests.docs.runner import DocumentRun
from toolkit.postgres import Server

DOCUMENTS = documents()


@pytest.fixture(scope="session")
def launcher() -> Iterator[Launcher]:
    """``lossless`` for the documents' commands, forked from one process (see launcher.py)."""
    started = Launcher()
    try:
        yield started
    finally:
        started.close()


def _sessions(path: Path) -> list[str]:
    """The session names of a document; one dummy for a document the tests cannot read
    (its test then fails with the reason, instead of the whole module failing to load)."""
    try:
        return list(sessions(path))
    except MarkdownError:
        return ["unreadable"]


SESSIONS = [(path, name) for path in DOCUMENTS for name in _sessions(path)]


@pytest.mark.parametrize(
    ("document", "session"),
    SESSIONS,
    ids=[f"{path.relative_to(ROOT)}[{name}]" for path, name in SESSIONS],
)
def test_document_runs_as_copied(
    document: Path, session: str, lossless_server: Server, launcher: Launcher, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    with DocumentRun(
        workdir=workdir, server_url=lossless_server.url, current=session, bin=launcher.bin
    ) as run:
        for block in sessions(document)[session]:
            if block.runnable:
                run.run(block)
    for seconds, where in sorted(run.timings, reverse=True)[:5]:
        print(f"{seconds:6.2f}s  {where}")
    assert not run.failures, f"{len(run.failures)} failure(s):\n\n" + "\n\n".join(run.failures)


def test_every_block_is_run_or_marked_with_a_reason() -> None:
    """The inventory: blocks run, by language, and the blocks marked not-run with why."""
    every = [block for document in DOCUMENTS for block in blocks(document)]
    skipped = [block for block in every if not block.runnable]
    print(f"{len(every)} blocks in {len(DOCUMENTS)} documents; {len(skipped)} not run:")
    for block in skipped:
        print(f"  {block.where} ({block.language or 'plain'}): {block.not_run}")
    assert len(every) > len(skipped) > 0
    assert all(block.not_run for block in skipped)
