"""Every fenced block of README.md and docs/ runs as copied, and shows what the tool prints.

One test per document: its blocks run in order (later blocks build on earlier ones), in a
working directory and a fresh database of their own on the test server (see
``tests/docs/runner.py`` for the rules, ``tests/docs/markdown.py`` for the markers). Every
failing block of the document is reported, not only the first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.markdown import ROOT, blocks, documents
from tests.docs.runner import DocumentRun
from toolkit.postgres import Server

DOCUMENTS = documents()


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(p.relative_to(ROOT)) for p in DOCUMENTS])
def test_document_runs_as_copied(document: Path, lossless_server: Server, tmp_path: Path) -> None:
    found = blocks(document)
    workdir = tmp_path / "work"
    workdir.mkdir()
    with DocumentRun(workdir=workdir, server_url=lossless_server.url) as run:
        for block in found:
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
