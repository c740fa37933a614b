"""Writing files so that nothing is lost: atomic writes, folder swaps, one writer per folder.

* :func:`atomic_write_text` / :func:`atomic_write_bytes` / :func:`atomic_path` -- a file
  is written to a temporary sibling, flushed to the disk and renamed over the old one:
  a reader sees the old file or the new one, never half of one (``os.replace`` is atomic
  on one file system).
* :func:`swap_in` / :func:`recover` -- a folder written in full beside its old version,
  then exchanged with it in one step (``renameat2(RENAME_EXCHANGE)`` on Linux; two
  renames elsewhere, with :func:`recover` putting the old one back after a crash
  between them).
* :class:`FolderLock` -- one writer per folder: an OS lock (``flock``) on a lock file
  that names the holder's process; the OS releases it when that process dies.
* :class:`WriteError` / :func:`describe` -- a full disk, a folder without permission, a
  read-only file system: one line naming the path and what to do.
* :func:`available_memory` / :func:`free_disk` -- for sizing requests before they run.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import functools
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

OLD_SUFFIX = ".old"  # a folder's previous version during a two-rename swap


class WriteError(OSError):
    """A file or folder could not be written; the message (one line) says what to do."""


class FolderBusyError(RuntimeError):
    """Another process is writing the folder; the message names it and what to do."""


def describe(error: OSError, path: str | Path | None = None, then: str = "") -> str:
    """``error`` as one line: what went wrong where, and what to do (``then`` is added:
    what the interrupted work left behind)."""
    where = path if path is not None else (error.filename or "the folder")
    code = getattr(error, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        text = (
            f"the disk holding {where} is full (no space left on device): free some space "
            "there or choose another folder, then run the same command again"
        )
    elif code in (errno.EACCES, errno.EPERM):
        text = f"permission denied: cannot write {where}; choose a folder you can write"
    elif code == errno.EROFS:
        text = f"{where} is on a read-only file system; choose a folder you can write"
    else:  # not a write problem for certain: the system's words
        reason = error.strerror or " ".join(str(error).split())
        text = f"{where}: {reason}"
    return f"{text}{'. ' + then if then else ''}."


def write_error(error: OSError, path: str | Path | None = None, then: str = "") -> WriteError:
    """A :class:`WriteError` with :func:`describe`'s message, keeping the errno."""
    if isinstance(error, WriteError):
        return error
    result = WriteError(describe(error, path, then))
    result.errno = getattr(error, "errno", None)
    return result


def _temporary_sibling(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place (its suffix kept, so
    writers that choose the format by suffix, such as Keras and NumPy, accept it)."""
    _remove_stale_temporaries(path)
    return path.with_name(f".tmp-{os.getpid()}-{path.name}")


def _remove_stale_temporaries(path: Path) -> None:
    """Delete what writers of ``path`` that were killed left behind (their process is gone)."""
    with contextlib.suppress(OSError):
        for tmp in path.parent.glob(f".tmp-*-{path.name}"):
            pid = tmp.name.split("-", 2)[1]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed to ``path`` when the block ends
    without an error, removed when it fails (``path`` then keeps its old content).

    ::

        with atomic_path(folder / "model.keras") as tmp:
            model.save(tmp)      # the name keeps its suffix: .keras, .png, .npz
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        yield tmp
        with contextlib.suppress(OSError), open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_folder(path.parent)


def atomic_write_bytes(path: str | Path, content: bytes) -> Path:
    """Write ``content`` to ``path`` atomically (the old file stays until the new is whole)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_folder(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


# --------------------------------------------------------------------------
# Folders swapped in whole
# --------------------------------------------------------------------------

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@functools.cache
def _renameat2():
    """Linux's ``renameat2`` from the C library, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = function.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    function.argtypes += [ctypes.c_uint]
    return function


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2``); False where unsupported."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False  # the file system cannot exchange: two renames instead
    raise OSError(code, os.strerror(code), str(b))


def old_version(target: Path) -> Path:
    return target.with_name(target.name + OLD_SUFFIX)


def recover(target: str | Path) -> Path:
    """Put back ``target``'s old version if a swap stopped between its two renames."""
    target = Path(target)
    old = old_version(target)
    if not target.exists() and old.is_dir():
        os.replace(old, target)
    elif target.exists() and old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    return target


def swap_in(staging: str | Path, target: str | Path) -> Path:
    """Make the complete folder ``staging`` the folder ``target``, in one step where the
    system allows; the old ``target`` is deleted. A reader sees the old folder or the new."""
    staging, target = Path(staging), Path(target)
    recover(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.replace(staging, target)
    elif _exchange(staging, target):
        shutil.rmtree(staging)  # it now holds the old version
    else:
        old = old_version(target)
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old)
    _fsync_folder(target.parent)
    return target


# --------------------------------------------------------------------------
# One writer per folder
# --------------------------------------------------------------------------

LOCK_FILE = ".lock"


def _try_lock(fd: int) -> bool:
    """Take an exclusive lock on the open file ``fd`` without waiting; False when another
    process holds it. ``flock`` on POSIX, ``msvcrt.locking`` on Windows: both are
    released by the system when the process ends."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_UN)


class FolderLock:
    """An exclusive OS lock on ``folder`` for one writer at a time.

    ``flock`` on ``folder/.lock``, which holds the holder's PID and command; the OS
    releases it when the process ends, however it ends (a kill included). A second
    writer raises :class:`FolderBusyError` at once, naming the folder and the holder.
    Re-entrant within one process (a lesson's run inside ``pretrain``'s store lock).
    """

    _held: dict[str, int] = {}

    def __init__(self, folder: str | Path, *, what: str = "folder", advice: str = ""):
        self.folder, self.what, self.advice = Path(folder), what, advice
        self.fd: int | None = None

    def __enter__(self) -> FolderLock:
        key = str(self.folder.resolve())
        if key in self._held:
            self._held[key] += 1
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            holder = _read_holder(path)
            os.close(fd)
            raise FolderBusyError(
                f"{self.folder} is in use by {holder}: one {self.what} takes one writer at "
                f"a time. Wait for that process to finish (or stop it){self.advice}."
            ) from None
        command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
        holder = f"process {os.getpid()} ({command[:200]})".encode()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, holder.ljust(256))  # a fixed length: the holder is read while it is held
        os.fsync(fd)
        self.fd = fd
        self._held[key] = 1
        return self

    def __exit__(self, *exc) -> None:
        key = str(self.folder.resolve())
        self._held[key] -= 1
        if self._held[key] or self.fd is None:
            return
        del self._held[key]
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        _unlock(self.fd)
        os.close(self.fd)
        self.fd = None


def _read_holder(path: Path) -> str:
    """What a lock file says of the process holding it."""
    try:
        with open(path, "rb") as handle:  # a second handle: Windows locks the first byte
            return handle.read(1000).decode("utf-8", "replace").strip() or "another process"
    except OSError:
        return "another process"


def remove_lock_files(folder: str | Path) -> None:
    """Remove lock files left in ``folder`` (before it ships: they are not content)."""
    for path in Path(folder).rglob(LOCK_FILE):
        path.unlink(missing_ok=True)


# --------------------------------------------------------------------------
# Sizing
# --------------------------------------------------------------------------


def available_memory() -> int | None:
    """Bytes of memory a new allocation can take without swapping (Linux's
    ``MemAvailable``; elsewhere the free pages), or None when unknown."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/meminfo", encoding="ascii") as handle:
            line = next(row for row in handle if row.startswith("MemAvailable:"))
        return int(line.split()[1]) * 1024
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def free_disk(path: str | Path) -> int | None:
    """Free bytes on the disk that would hold ``path`` (its nearest existing folder)."""
    folder = Path(path).resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def human_bytes(count: float) -> str:
    """``count`` bytes as ``3.2 GiB``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def human_seconds(seconds: float) -> str:
    """``seconds`` as ``45 s``, ``12 min``, ``3.5 h`` or ``31 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"
