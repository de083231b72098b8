"""Output directories: checked (created, writable) before any work, and locked while a sweep writes them."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from backtest.errors import UserError

LOCK = ".sweep.lock"
_HELD: set[str] = set()  # sweep directories this process has locked


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create `out_dir` (and its parents) and prove it writable, so a bad --out fails before a backtest."""
    d = Path(out_dir)
    what = f"output directory {d} (--out or report.out)"
    if d.exists() and not d.is_dir():
        raise UserError(f"{what}: exists and is not a directory")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"{what}: cannot be created: a part of the path is a file") from None
    except OSError as exc:
        raise UserError(f"{what}: cannot be created ({exc.strerror})") from None
    try:
        with tempfile.NamedTemporaryFile(dir=d, prefix=".write_test_"):
            pass
    except OSError as exc:
        raise UserError(f"{what}: not writable ({exc.strerror})") from None
    return d


@contextlib.contextmanager
def sweep_lock(out_dir: Path) -> Iterator[None]:
    """Exclusive lock on a sweep directory for the whole run; a second sweep into it is refused.

    `flock` is released by the kernel when the process ends, so a killed sweep leaves no stale lock.
    """
    key = str(Path(out_dir).resolve())
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (documented in docs/sweeps.md)
        fcntl = None
    if fcntl is None or key in _HELD:  # re-entrant: the CLI holds it around run_sweep and the report
        yield
        return
    path = out_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UserError(f"another sweep is writing {out_dir} (pid {pid}); wait for it to finish "
                            "or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
    finally:
        os.close(fd)
