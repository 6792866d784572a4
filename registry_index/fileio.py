"""The one place that writes files: atomic file replacement and atomic folder swaps.

A reader, or a process killed half way, finds either the old content or the new
content, never a mix: a file is written beside its target and renamed over it,
and a site folder is built beside its target and swapped in with one rename.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_RENAME_EXCHANGE = 2  # from <linux/fs.h>
_AT_FDCWD = -100


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _load_renameat2():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_renameat2 = _load_renameat2()


def exchange_folders(first: Path, second: Path) -> bool:
    """Swap two folders in one step with Linux renameat2(RENAME_EXCHANGE).

    Return False where the system has no such call (other kernels, other C
    libraries, some file systems), so the caller falls back to two renames.
    """
    if _renameat2 is None:
        return False
    result = _renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    error = ctypes.get_errno()
    log.debug("renameat2 exchange of %s and %s failed: %s", first, second, os.strerror(error))
    return False


def replace_folder(staged: Path, target: Path) -> None:
    """Put the folder `staged` at `target`, replacing any folder there.

    With an exchange the old folder is never absent. Without one there is a
    moment between two renames when `target` does not exist.
    """
    if not target.exists():
        os.rename(staged, target)
        return
    if exchange_folders(staged, target):
        shutil.rmtree(staged)
        return
    # NOTE: no atomic exchange here, so a kill between these two renames leaves
    # the old site at `retired` and nothing at `target`.
    retired = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, retired)
    os.rename(staged, target)
    shutil.rmtree(retired)
