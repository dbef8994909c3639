"""The log of one instance: its stdout, stderr and host messages as numbered lines,
bounded in count and length, read from a cursor (app.py follows it for SSE)."""
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Deque, List, Optional, Tuple

MAX_LINE = 4096  # bytes of one line kept; the rest is cut


@dataclass(frozen=True)
class LogLine:
    seq: int  # 0, 1, 2... over the instance's life: the cursor of the next read is the last seq + 1
    time: float
    stream: str  # "stdout", "stderr" or "host"
    text: str


class LogBuffer:
    """The last `capacity` lines; older ones are dropped (and counted)."""

    def __init__(self, capacity: int) -> None:
        self._lines: Deque[LogLine] = deque(maxlen=capacity)
        self._next = 0
        self._partial = {"stdout": bytearray(), "stderr": bytearray()}
        self._lock = threading.RLock()  # _feed() holds it across its add()s

    @property
    def dropped(self) -> int:
        """Lines no longer kept (the buffer is full)."""
        with self._lock:
            return self._next - len(self._lines)

    def add(self, stream: str, text: str) -> None:
        with self._lock:
            self._lines.append(LogLine(self._next, time.time(), stream, text[:MAX_LINE]))
            self._next += 1

    def writer(self, stream: str) -> "StreamWriter":
        return StreamWriter(self, stream)

    def _feed(self, stream: str, data: bytes) -> None:
        """Bytes of a guest's output: whole lines are added, the rest waits for its newline."""
        with self._lock:
            pending = self._partial[stream]
            pending += data
            *lines, rest = pending.split(b"\n")
            for line in lines:
                self.add(stream, line.decode(errors="replace"))
            pending[:] = rest[:MAX_LINE]

    def flush(self) -> None:
        """The unfinished last line of each output, at the end of a run."""
        with self._lock:
            for stream, pending in self._partial.items():
                if pending:
                    self.add(stream, pending.decode(errors="replace"))
                    pending.clear()

    def read(self, cursor: int = 0, limit: int = 1000) -> Tuple[List[LogLine], int]:
        """Lines from `cursor` on (or from the oldest kept), at most `limit`, and the
        cursor of the next read."""
        with self._lock:
            first = self._next - len(self._lines)
            start = max(cursor, first) - first
            lines = list(self._lines)[start:start + limit]
            return lines, lines[-1].seq + 1 if lines else min(max(cursor, first), self._next)

    def last(self, streams: Tuple[str, ...]) -> Optional[str]:
        """The newest kept line of one of `streams`."""
        with self._lock:
            return next((line.text for line in reversed(self._lines) if line.stream in streams), None)


class StreamWriter:
    """A guest output as a file-like sink: bytes (WASI) or text (kernel-only runs)."""

    def __init__(self, log: LogBuffer, stream: str) -> None:
        self._log, self._stream = log, stream

    def extend(self, data: bytes) -> None:  # bytes of a guest's output, as they come
        self._log._feed(self._stream, bytes(data))

    def write(self, text: str) -> int:
        self._log._feed(self._stream, text.encode())
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False
