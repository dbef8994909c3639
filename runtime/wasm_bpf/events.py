"""Records of a ring buffer or perf event array, decoded, for Python code.

A record is a dict {column: value}: the flat row of `wasm-bpf run --json` (nested
struct fields as "outer.inner", errno/signal/address conventions applied unless
raw=True), from the kernel-only decoder. The C shim drains the kernel's buffer;
records reach Python in batches (EventBuffer.take_records())."""
from __future__ import annotations

import asyncio
import select
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Optional

from .buffers import EventBuffer
from .kernel_only.decode import RecordDecoder

Record = Dict[str, Any]


class Events:
    """The records of one event buffer map: read() a batch, iterate (blocking),
    poll(callback), or `async for` in asyncio; fileno() is readable when records wait."""

    def __init__(self, buffer: EventBuffer, decoder: RecordDecoder, owner: object = None) -> None:
        self._buffer = buffer
        self._decoder = decoder
        self._owner = owner  # keeps the object (its links and buffer) alive while records are read
        self._poller = select.poll()
        self._poller.register(buffer.fileno(), select.POLLIN)

    @property
    def name(self) -> str:
        return self._buffer.map_name

    @property
    def columns(self) -> List[str]:
        return [c for c, _ in self._decoder.columns]

    @property
    def lost(self) -> int:
        """Records the kernel dropped (perf buffers; ring buffers do not count them)."""
        return self._buffer.lost

    def fileno(self) -> int:
        return self._buffer.fileno()

    def read(self, timeout: Optional[float] = 0) -> List[Record]:
        """The records available now; when there are none, waits up to timeout
        seconds (None: until some arrive) for the first ones."""
        records = self._take()
        if records or timeout == 0:
            return records
        self._poller.poll(None if timeout is None else max(int(timeout * 1000), 1))
        return self._take()

    def _take(self) -> List[Record]:
        return self._decoder.rows(self._buffer.take_records())  # one batch, decoded as one

    def __iter__(self) -> Iterator[Record]:
        """Every record, waiting for more without end: break out of the loop to stop."""
        while True:
            yield from self.read(None)

    def poll(self, callback: Callable[[Record], object], timeout: Optional[float] = None) -> int:
        """Calls callback(record) for each record read (read(timeout)); returns how many."""
        records = self.read(timeout)
        for r in records:
            callback(r)
        return len(records)

    def __aiter__(self) -> AsyncIterator[Record]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Record]:
        loop = asyncio.get_running_loop()
        while True:
            records = self._take()
            if not records:
                ready: asyncio.Future[None] = loop.create_future()

                def wake() -> None:
                    if not ready.done():
                        ready.set_result(None)

                loop.add_reader(self.fileno(), wake)
                try:
                    await ready
                finally:
                    loop.remove_reader(self.fileno())
                continue
            for r in records:
                yield r
