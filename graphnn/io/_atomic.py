"""Atomic writes of files and of whole folders that respect the umask, and reading
(optionally gzipped) bytes."""

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
import zlib
from pathlib import Path

from .. import system
from ..errors import FormatError, GraphnnError


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_stale(path):
    """Temporary files or folders of ``path`` left by killed runs (their process is gone)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(tmp) if tmp.is_dir() and not tmp.is_symlink() else tmp.unlink()


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside ``path``; on success rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was; one that a
    killed run left behind (its process gone) is removed by the next write of ``path``. The
    file gets the permissions a plain ``open`` would give (0666 less the umask), not mkstemp's
    0600.
    """
    path = Path(path)
    _remove_stale(path)
    prefix = f".{path.name}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def claim(path):
    """Hold ``path`` as this process's output while the block runs: a claim file
    ``.{name}.claim`` beside it, made with an exclusive create and holding the pid. A claim
    held by another live process is refused at once, naming it; one left by a killed run
    (its process gone) is taken over. The claim is removed on leaving the block."""
    path = Path(path)
    token = path.parent / f".{path.name}.claim"
    for _ in range(2):
        try:
            fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~_umask())
        except FileExistsError:
            try:
                owner = int(token.read_text() or -1)
            except (OSError, ValueError):
                owner = -1  # being written this instant, or damaged: decided on the next try
            if owner == os.getpid():  # this process's own claim: nested, not a second writer
                yield
                return
            if owner > 0 and _alive(owner):
                raise GraphnnError(
                    f"{path} is being written by another graphnn run (pid {owner}): wait for "
                    "it to finish, or choose another output"
                ) from None
            with contextlib.suppress(FileNotFoundError):
                token.unlink()  # a killed run's
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    else:
        raise GraphnnError(f"{path}: cannot claim it as an output ({token} keeps coming back)")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            token.unlink()


_RENAME_EXCHANGE = 2


def _exchange(a, b):
    """Swap the paths ``a`` and ``b`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``);
    False where the system or file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_cwd = -100
    if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(b))


@contextlib.contextmanager
def atomic_folder(path, ours):
    """Write a folder as a whole: yield a fresh temporary folder beside ``path`` to fill; on
    success it takes the place of ``path`` in one step (the earlier folder, if any, removed
    after). On an exception, or a signal the caller turns into one, the temporary folder is
    removed and ``path`` is exactly as it was.

    ``ours(entry)`` tells whether an entry of an existing ``path`` belongs to the kind of
    folder being written; a folder holding anything else is refused rather than replaced
    (it is not this kind of folder, and its files are not ours to remove)."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise GraphnnError(f"{path} is a file, not a folder: give a folder")
        foreign = sorted(p.name for p in path.iterdir() if not ours(p))
        if foreign:
            raise GraphnnError(
                f"{path} holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}, "
                "which this folder would not: give a new or empty folder"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    tmp = Path(
        tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    )
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        if not path.exists():
            os.rename(tmp, path)
        elif not _exchange(tmp, path):  # two renames: the briefest gap, never a mixed folder
            old = tmp.with_name(tmp.name[: -len(".tmp")] + ".old.tmp")
            os.rename(path, old)
            os.rename(tmp, path)
            tmp = old
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)  # the earlier folder, now under the temporary name


def check_size(size, path, what="its contents"):
    """Refuse to read ``size`` bytes for ``path`` where they would not fit the memory
    available (half of it: the parsed values need room too), naming the file."""
    budget = system.available_memory() // 2
    if size > budget:
        raise FormatError(
            f"{path}: {what} would take {size / 2**30:.1f} GiB, more than the "
            f"{budget / 2**30:.1f} GiB this machine can spare now: damaged, or too large here"
        )


def read_bytes(path):
    """The bytes of ``path``, decompressed when it ends in ``.gz`` (in pieces, stopping at
    once where the decompressed size outgrows the memory available: a small file that
    inflates to gigabytes is refused, not read)."""
    path = Path(path)
    data = path.read_bytes()
    if path.suffix != ".gz":
        return data
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    parts, size, rest = [], 0, data
    try:
        while rest:
            part = inflate.decompress(rest, 1 << 24)
            size += len(part)
            check_size(size, path, "decompressed, it")
            parts.append(part)
            rest = inflate.unconsumed_tail
            if inflate.eof:  # a next gzip member, as gzip.decompress reads them
                rest = inflate.unused_data
                inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if rest else inflate
        if not inflate.eof:
            raise EOFError("the stream ends before its end marker")
    except (zlib.error, EOFError) as e:
        raise FormatError(f"{path}: not a readable gzip file ({e})") from None
    return b"".join(parts)
