"""One command at a time per run folder: a lock file that holds the writer's process id.

Every command that writes into a run folder holds ``.ddm-jax.lock`` in it while it runs:
created atomically (``O_CREAT | O_EXCL``) with the process id in it, removed when the
command ends, on errors and interrupts too. A second command refuses in one line naming
the holder's process id, so two commands never mix their files in one folder. A lock whose
process no longer exists (a hard kill, a power loss) is stale and is taken over; taking
over is serialised by an advisory lock on the folder, so two commands that find the same
stale lock cannot both take it.
"""

import contextlib
import functools
import os
import time
from pathlib import Path

from ._folder import RunError

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows): the take-over is then not serialised
    fcntl = None

LOCK_FILE = ".ddm-jax.lock"

_held: dict[Path, int] = {}  # folders this process holds, with their nesting depth


def holds_run_folder(command):
    """Run ``command(run, ...)`` holding the run folder ``run`` (see `hold_folder`)."""

    @functools.wraps(command)
    def wrapper(run, *args, **kwargs):
        with hold_folder(run):
            return command(run, *args, **kwargs)

    return wrapper


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _holder(lock: Path) -> int | None:
    """The process id in ``lock``; None when it has none (yet) or is gone."""
    for _ in range(20):  # a holder writes its id right after creating the file
        try:
            text = lock.read_text().strip()
        except FileNotFoundError:
            return None
        except OSError:
            text = ""
        if text.isdigit():
            return int(text)
        time.sleep(0.05)
    return None  # empty after a second: its creator died between creating and writing


def _create(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
    finally:
        os.close(fd)
    return True


@contextlib.contextmanager
def _folder_mutex(path: Path):
    """An advisory lock on the folder itself, held only while a stale lock is taken over."""
    if fcntl is None:
        yield
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def _refuse(path: Path, pid: int):
    raise RunError(
        f"{path} is in use by another ddm-jax command (process {pid}); wait for it to end "
        "or stop it, or choose another --out."
    )


def _acquire(path: Path) -> None:
    lock = path / LOCK_FILE
    while not _create(lock):
        pid = _holder(lock)
        if pid is not None and pid != os.getpid() and _alive(pid):
            _refuse(path, pid)
        with _folder_mutex(path):  # stale (dead, ours from a former life, or empty)
            if _holder(lock) == pid:  # nobody took it over meanwhile
                lock.unlink(missing_ok=True)
        # then try again: another command may have created it in between


@contextlib.contextmanager
def hold_folder(path: str | os.PathLike, *, create: bool = False):
    """Hold the run folder ``path`` for the duration of the block.

    Args:
        path: the run folder.
        create: create the folder (and its parents) when missing; those created are
            removed again on exit if they are then empty (a failed start leaves no folder).
            Without it a missing folder is not locked (the command's own check reports it).

    Raises:
        RunError: naming the holder's process id, when another live process holds it; when
            ``path`` exists and is not a folder.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunError(f"{path} exists and is not a folder.")
    key = path.resolve()
    if key in _held:  # re-entrant within one process (one command calling another)
        _held[key] += 1
        try:
            yield path
        finally:
            _held[key] -= 1
        return
    made = []
    if not path.is_dir():
        if not create:
            yield path
            return
        for folder in [path, *path.parents]:
            if folder.exists():
                break
            made.append(folder)
        path.mkdir(parents=True, exist_ok=True)
    try:
        _acquire(path)
    except BaseException:
        _remove_empty(made)
        raise
    _held[key] = 1
    try:
        yield path
    finally:
        del _held[key]
        (path / LOCK_FILE).unlink(missing_ok=True)
        _remove_empty(made)


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # innermost first
        try:
            folder.rmdir()
        except OSError:  # not empty (or not ours to remove): leave it and its parents
            return
