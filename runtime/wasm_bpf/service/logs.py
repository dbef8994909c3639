"""The log of one instance: its stdout, stderr and host messages as numbered lines,
bounded in count and length, read from a cursor or followed as they come."""
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Deque, List, Tuple

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
        self._changed = threading.Condition()

    @property
    def dropped(self) -> int:
        """Lines no longer kept (the buffer is full)."""
        with self._changed:
            return self._next - len(self._lines)

    def add(self, stream: str, text: str) -> None:
        with self._changed:
            self._lines.append(LogLine(self._next, time.time(), stream, text[:MAX_LINE]))
            self._next += 1
            self._changed.notify_all()

    def writer(self, stream: str) -> "StreamWriter":
        return StreamWriter(self, stream)

    def _feed(self, stream: str, data: bytes) -> None:
        """Bytes of a guest's output: whole lines are added, the rest waits for its newline."""
        with self._changed:  # a reentrant lock: add() takes it too
            pending = self._partial[stream]
            pending += data
            *lines, rest = pending.split(b"\n")
            for line in lines:
                self.add(stream, line.decode(errors="replace"))
            pending[:] = rest[:MAX_LINE]

    def flush(self) -> None:
        """The unfinished last line of each output, at the end of a run."""
        for stream, pending in self._partial.items():
            if pending:
                self.add(stream, pending.decode(errors="replace"))
                pending.clear()

    def read(self, cursor: int = 0, limit: int = 1000) -> Tuple[List[LogLine], int]:
        """Lines from `cursor` on (or from the oldest kept), at most `limit`, and the
        cursor of the next read."""
        with self._changed:
            first = self._next - len(self._lines)
            start = max(cursor, first) - first
            lines = list(self._lines)[start:start + limit]
            return lines, lines[-1].seq + 1 if lines else min(max(cursor, first), self._next)

    def wait(self, cursor: int, timeout: float) -> bool:
        """True when a line at or after `cursor` exists (waits up to `timeout` s)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._next > cursor, timeout)


class StreamWriter:
    """A guest output as a file-like sink: bytes (WASI) or text (kernel-only runs)."""

    def __init__(self, log: LogBuffer, stream: str) -> None:
        self._log, self._stream = log, stream

    def extend(self, data: bytes) -> None:  # the shape of wasmtime's stdout_custom callback
        self._log._feed(self._stream, bytes(data))

    def write(self, text: str) -> int:
        self._log._feed(self._stream, text.encode())
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False
