"""Say plainly when the project's own code raised: which file, which revision, what it said.

An exception from ``env.py`` (or from a module it imports, e.g. a settings object that
fails validation) is a set-up problem: exit 2. An exception from a revision's own code is
a failed step: exit 1. Either way the message names the file and line and carries the
exception's message on one line, instead of "unexpected error".
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

from toolkit.errors import ToolkitError

MESSAGE_LIMIT = 300
_TOOLKIT_DIR = Path(__file__).resolve().parent


class ProjectCodeError(ToolkitError):
    """The project's ``env.py`` or one of its revisions raised an exception."""

    def __init__(self, message: str, *, revision: str | None, exit_code: int) -> None:
        super().__init__(message)
        self.revision = revision
        self.exit_code = exit_code


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, clipped."""
    text = " ".join(str(exc).split())
    shown = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return shown if len(shown) <= MESSAGE_LIMIT else shown[: MESSAGE_LIMIT - 3] + "..."


def from_project_code(
    exc: BaseException,
    code_dirs: Sequence[Path],
    revision_files: Mapping[Path, str],
) -> ProjectCodeError | None:
    """A ``ProjectCodeError`` if ``exc`` was raised in the project's code, else ``None``.

    ``code_dirs``: folders of the project's code; ``revision_files``: each revision
    file and its id.
    """
    frames = [
        (Path(f.filename).resolve(), f.lineno)
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename and not f.filename.startswith("<")
    ]
    ours = [(p, n) for p, n in frames if _is_project_file(p, code_dirs)]
    if not ours:
        return None
    path, line = ours[-1]
    revision = next((revision_files[p] for p, _ in reversed(ours) if p in revision_files), None)
    where = f"{shown_path(path)} line {line}"
    if revision is not None:
        return ProjectCodeError(
            f"revision {revision} failed in its own code: {where} raised {one_line(exc)}",
            revision=revision,
            exit_code=1,
        )
    env = next((p for p, _ in ours if p.name == "env.py"), None)
    via = f" (while running {shown_path(env)})" if env is not None and env != path else ""
    return ProjectCodeError(
        f"the project's code raised an exception: {where}{via}: {one_line(exc)}",
        revision=None,
        exit_code=2,
    )


def _is_project_file(path: Path, code_dirs: Sequence[Path]) -> bool:
    if "site-packages" in path.parts or path.is_relative_to(_TOOLKIT_DIR):
        return False
    return any(path.is_relative_to(d) for d in code_dirs)


def shown_path(path: Path) -> str:
    """``path`` relative to the working folder when it lies below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
