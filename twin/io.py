"""File I/O every layer shares: atomic writes (a reader never sees half a file) and reading a
text file with one clear error when it is not there, not a file, or not UTF-8 text."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


class TextFileError(ValueError):
    """A file that cannot be read as text: ``path`` and ``problem`` (what was found instead);
    ``str()`` is ``path: problem``, one line."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write`` with a temporary path in ``path``'s folder, then rename it over ``path``
    (with the usual permissions); on any error the temporary file is removed and ``path`` is
    left as it was."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_text(path: str | Path, what: str = "file") -> str:
    """The UTF-8 text of ``path`` (a leading byte-order mark dropped); a missing file, a folder,
    binary or undecodable bytes raise :class:`TextFileError` in one line."""
    path = Path(path)
    if not path.exists():
        raise TextFileError(path, f"{what} not found")
    if not path.is_file():
        raise TextFileError(path, f"expected a {what}, found a directory")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TextFileError(path, f"cannot read {what} ({e.strerror})") from None
    if b"\x00" in data:
        raise TextFileError(path, f"expected a text {what}, found binary data")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise TextFileError(path, f"expected UTF-8 text, byte {e.start} is not "
                                  f"(0x{data[e.start]:02x})") from None


__all__ = ["TextFileError", "atomic_write", "read_text"]
