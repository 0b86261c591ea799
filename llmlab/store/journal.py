"""The journal: each writing process appends finished records to its own segment files.

A segment is ``<host>-<pid>-<start>-<seq>.active`` while its writer appends to it and is renamed
to ``.jsonl`` when sealed. Every record is written to the OS with one ``write()`` before the call
that produced it returns, so a process killed with SIGKILL loses nothing it journaled; fsync runs
in groups on a background thread (``fsync_interval``), which only matters for power loss.

``<start>`` is the process start time (Linux ``/proc``), so a recycled PID does not make a dead
writer's open segment look alive; such segments are sealed by whichever flusher finds them.
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .schema import UsageRecord

ACTIVE_SUFFIX = ".active"
SEALED_SUFFIX = ".jsonl"
_HOST = socket.gethostname().replace("-", "_") or "host"


def _start_token(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None off Linux / if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces, so split after its ')'.
    return stat[stat.rindex(b")") + 2:].split()[19].decode()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class SegmentName:
    host: str
    pid: int
    start: str
    seq: int

    @classmethod
    def parse(cls, path: Path) -> "SegmentName | None":
        parts = path.name.split(".")[0].split("-")
        if len(parts) != 4:
            return None
        try:
            return cls(parts[0], int(parts[1]), parts[2], int(parts[3]))
        except ValueError:
            return None

    def stem(self) -> str:
        return f"{self.host}-{self.pid}-{self.start}-{self.seq:08d}"

    def owner_alive(self) -> bool:
        """Whether the writer of this segment may still append to it."""
        if self.host != _HOST:
            return True  # another machine on a shared disk: only it may seal its segments
        if not _pid_alive(self.pid):
            return False
        now = _start_token(self.pid)
        return now is None or self.start == "x" or now == self.start


class JournalWriter:
    """Appends records to this process's current segment; thread-safe."""

    def __init__(self, journal_dir: Path, *, fsync_interval: float = 0.2,
                 max_segment_bytes: int = 64 << 20):
        self.dir = Path(journal_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fsync_interval = fsync_interval
        self.max_segment_bytes = max_segment_bytes
        self._pid = os.getpid()
        self._start = _start_token(self._pid) or "x"
        self._seq = self._next_seq()
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._dirty = False
        self._closed = False
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        atexit.register(self.close)

    def _next_seq(self) -> int:
        prefix = f"{_HOST}-{self._pid}-{self._start}-"
        seqs = [SegmentName.parse(p) for p in self.dir.glob(prefix + "*")]
        return max((s.seq for s in seqs if s), default=-1) + 1

    def _open_segment(self) -> None:
        name = SegmentName(_HOST, self._pid, self._start, self._seq)
        self._seq += 1
        self._path = self.dir / (name.stem() + ACTIVE_SUFFIX)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = 0
        if self._syncer is None and self.fsync_interval > 0:
            self._syncer = threading.Thread(target=self._sync_loop, name="llmlab-journal-fsync",
                                            daemon=True)
            self._syncer.start()

    def append(self, record: UsageRecord | bytes) -> None:
        """Write one record to the OS now; it survives the death of this process."""
        line = record if isinstance(record, bytes) else record.to_json_line()
        with self._lock:
            if self._closed:
                raise RuntimeError("journal writer is closed")
            if os.getpid() != self._pid:  # forked child: never share the parent's segment
                self.__init__(self.dir, fsync_interval=self.fsync_interval,
                              max_segment_bytes=self.max_segment_bytes)
            if self._fd is None:
                self._open_segment()
            os.write(self._fd, line)
            self._size += len(line)
            self._dirty = True
            if self._size >= self.max_segment_bytes:
                self._seal_locked()

    def append_many(self, records) -> int:
        n = 0
        buf = []
        for r in records:
            buf.append(r if isinstance(r, bytes) else r.to_json_line())
            n += 1
            if len(buf) >= 1000:
                self.append(b"".join(buf))
                buf.clear()
        if buf:
            self.append(b"".join(buf))
        return n

    def seal(self) -> Path | None:
        """Close the current segment so a flusher may ingest it; return its sealed path."""
        with self._lock:
            return self._seal_locked()

    def _seal_locked(self) -> Path | None:
        if self._fd is None or self._path is None:
            return None
        os.fsync(self._fd)
        os.close(self._fd)
        sealed = self._path.with_suffix(SEALED_SUFFIX)
        os.rename(self._path, sealed)
        _fsync_dir(self.dir)
        self._fd, self._path, self._dirty = None, None, False
        return sealed

    @property
    def pending_bytes(self) -> int:
        return self._size if self._fd is not None else 0

    def _sync_loop(self) -> None:
        while not self._stop.wait(self.fsync_interval):
            with self._lock:
                if not self._dirty or self._fd is None:
                    continue
                # fsync a duplicate outside the lock: a group fsync can take milliseconds and
                # appends (the request path) must not wait for it. The duplicate keeps the file
                # open even if the segment is sealed meanwhile.
                fd = os.dup(self._fd)
                self._dirty = False
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._seal_locked()
            self._closed = True
        self._stop.set()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def seal_orphans(journal_dir: Path) -> list[Path]:
    """Seal the open segments of writers that are gone (killed, crashed)."""
    sealed = []
    for path in sorted(Path(journal_dir).glob("*" + ACTIVE_SUFFIX)):
        name = SegmentName.parse(path)
        if name is None or name.owner_alive():
            continue
        target = path.with_suffix(SEALED_SUFFIX)
        try:
            os.rename(path, target)
        except FileNotFoundError:
            continue
        sealed.append(target)
    return sealed


def sealed_segments(journal_dir: Path) -> list[Path]:
    return sorted(Path(journal_dir).glob("*" + SEALED_SUFFIX))


@dataclass
class Backlog:
    segments: int
    bytes: int
    oldest_age_s: float | None


def waiting_segments(journal_dir: Path) -> list[Path]:
    """The segments not ingested yet, open and sealed (in no particular order)."""
    try:
        entries = list(Path(journal_dir).iterdir())
    except FileNotFoundError:
        return []
    return [p for p in entries if p.suffix in (ACTIVE_SUFFIX, SEALED_SUFFIX)]


def waiting_records(journal_dir: Path, *, max_bytes: int = 64 << 20) -> int:
    """Records in the journal (lines of its waiting segments), reading at most ``max_bytes``."""
    n = read = 0
    for p in waiting_segments(journal_dir):
        try:
            data = p.read_bytes()
        except OSError:
            continue
        n += data.count(b"\n")
        read += len(data)
        if read > max_bytes:
            break
    return n


def backlog(journal_dir: Path) -> Backlog:
    """What waits in the journal (sealed and open segments) to be ingested."""
    n = size = 0
    oldest = None
    now = time.time()
    for p in waiting_segments(journal_dir):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        if st.st_size == 0:
            continue
        n += 1
        size += st.st_size
        oldest = st.st_mtime if oldest is None else min(oldest, st.st_mtime)
    return Backlog(n, size, None if oldest is None else max(0.0, now - oldest))
