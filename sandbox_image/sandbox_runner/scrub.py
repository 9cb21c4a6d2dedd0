"""Emptying the places an execution could write to, whatever it left there.

User code runs under the runner's own uid, so it can leave anything that uid can make: a
directory it chmod'ed to 000 (unreadable, so a plain walk skips it), a chain of 1,500 nested
directories (``shutil.rmtree`` recurses and holds an fd per level), names that are not UTF-8,
symbolic links pointing out. ``remove_entries`` handles all of them with a flat loop: every
directory met is first made ours again (0700), then moved up next to the top one under a fresh
name, so the depth never grows and at most two directory fds are open at once. Nothing here
follows a link. Runs only after every process of the execution is dead, so nothing races it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Iterable

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_dir(name: str, parent_fd: int) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except PermissionError:
        os.chmod(name, 0o700, dir_fd=parent_fd)  # ours, and no process of the user is alive to swap it
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)


def _is_dir(name: str, parent_fd: int) -> bool:
    return stat.S_ISDIR(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode)


def remove_entries(directory: str, names: Iterable[str | bytes]) -> None:
    """Remove ``names`` (and everything below them) from ``directory``. Raises OSError on what
    could not be removed; the caller then treats the sandbox as tainted."""
    top = os.open(directory, _DIR_FLAGS)
    try:
        pending: list[str | bytes] = []
        for name in names:
            if _is_dir(name, top):
                pending.append(name)
            else:
                os.unlink(name, dir_fd=top)
        while pending:
            name = pending.pop()
            fd = _open_dir(name, top)
            try:
                os.fchmod(fd, 0o700)
                for entry in list(os.scandir(fd)):
                    if entry.is_dir(follow_symlinks=False):
                        # Up next to the top: depth stays one, and we never hold a chain of fds.
                        # Renaming a directory to another parent needs write permission on it.
                        with contextlib.suppress(PermissionError):
                            os.chmod(entry.name, 0o700, dir_fd=fd)
                        flat = f".scrub-{uuid.uuid4().hex}"
                        os.rename(entry.name, flat, src_dir_fd=fd, dst_dir_fd=top)
                        pending.append(flat)
                    else:
                        os.unlink(entry.name, dir_fd=fd)
            finally:
                os.close(fd)
            os.rmdir(name, dir_fd=top)
    finally:
        os.close(top)


def leftovers(directory: str, keep: set[str]) -> list[str]:
    """Names in ``directory`` beyond ``keep`` (raw bytes names decoded as the OS does)."""
    return sorted(os.fsdecode(name) for name in os.listdir(os.fsencode(directory)) if os.fsdecode(name) not in keep)


def empty_except(directory: str, keep: set[str]) -> None:
    """Remove every entry of ``directory`` not named in ``keep``."""
    names = [name for name in os.listdir(os.fsencode(directory)) if os.fsdecode(name) not in keep]
    remove_entries(directory, names)
