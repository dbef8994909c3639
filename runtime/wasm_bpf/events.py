"""Records of a ring buffer or perf event array, decoded, for Python code.

A record is a dict {column: value}: the flat row of `wasm-bpf run --json` (nested
struct fields as "outer.inner", errno/signal/address conventions applied unless
raw=True), from the kernel-only decoder. The C shim drains the kernel's buffer;
records reach Python in chunks of whole records (EventBuffer.take_chunks()), and a
chunk whose records are all of one size is decoded by one struct.iter_unpack and one
generated comprehension building the rows (_Rows)."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import select
import struct
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Optional

from .buffers import EventBuffer, split_records
from .kernel_only.decode import RecordDecoder

Record = Dict[str, Any]
RowsFunction = Callable[[bytes], List[Record]]


class _Rows:
    """Chunks of framed records ([u32 size][record][padding to 8]) -> rows. For each
    record size met, one function generated from the decoder's Plan: iter_unpack over
    the whole chunk (the frame's header and padding skipped by the format), a dict
    display per record. Other chunks (mixed sizes, short records, columns read from
    the bytes) take the decoder's rows(), record by record."""

    def __init__(self, decoder: RecordDecoder) -> None:
        self._decoder = decoder
        self._by_size: Dict[int, Optional[RowsFunction]] = {}
        plan = decoder.plan
        self._make: Optional[Callable[[Callable[[bytes], Iterator[Any]]], RowsFunction]] = None
        if plan.needs_data:
            return
        # an integer array as a list display of its items: no slice, no list() call
        items = [f"{name!r}: " + (f"[{', '.join(plan.elems[i])}]" if i in plan.elems else expr)
                 for i, ((name, _), expr) in enumerate(zip(decoder.columns, plan.exprs))]
        src = f"def make(it):\n    return lambda data: [{{{', '.join(items)}}} for t in it(data)]\n"
        env = dict(plan.env)
        exec(compile(src, f"<rows {decoder.type.get('name', '')}>", "exec"), env)
        self._make = env["make"]

    def _function(self, size: int) -> Optional[RowsFunction]:
        if size not in self._by_size:
            plan = self._decoder.plan
            fn = None
            if self._make is not None and size >= plan.struct.size:
                stride = 4 + ((size + 7) & ~7)
                fmt = f"<4x{plan.format[1:]}{stride - 4 - plan.struct.size}x"
                fn = self._make(struct.Struct(fmt).iter_unpack)
            self._by_size[size] = fn
        return self._by_size[size]

    def __call__(self, chunk: bytes) -> List[Record]:
        if len(chunk) < 4:
            return []
        size = int.from_bytes(chunk[:4], "little")
        stride = 4 + ((size + 7) & ~7)
        count, rest = divmod(len(chunk), stride)
        fn = self._function(size)
        # every record of the chunk has this size: each header byte, sliced with the stride
        if fn is None or rest or any(chunk[k::stride] != chunk[k:k + 1] * count for k in range(4)):
            return self._decoder.rows(split_records(chunk))
        with _collector_paused():
            return fn(chunk)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The rows hold no cycles: collecting while they are built (a generation-0 pass
    per 700 lists made, older passes as they pile up) costs more than building them,
    so the collector waits until a batch is done. Nested uses leave it to the outer."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Events:
    """The records of one event buffer map: read() a batch, iterate (blocking),
    poll(callback), or `async for` in asyncio; fileno() is readable when records wait."""

    def __init__(self, buffer: EventBuffer, decoder: RecordDecoder, owner: object = None) -> None:
        self._buffer = buffer
        self._decoder = decoder
        self._rows = _Rows(decoder)
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
        records = self._all()
        if records or timeout == 0:
            return records
        self._wait(timeout)
        return self._all()

    def _all(self) -> List[Record]:
        records: List[Record] = []
        with _collector_paused():  # over every chunk, not a wait: the rows are all kept
            for batch in self._batches(0):
                records += batch
        return records

    def _wait(self, timeout: Optional[float]) -> None:
        self._poller.poll(None if timeout is None else max(int(timeout * 1000), 1))

    def _batches(self, timeout: Optional[float]) -> Iterator[List[Record]]:
        """The records available now, one decoded chunk (up to 1 MiB of records) at a
        time, so that a consumer that drops each batch before the next keeps only one
        alive; when there are none, waits up to timeout seconds for the first ones."""
        waited = False
        while True:
            got = False
            for chunk in self._buffer.take_chunks():
                got = True
                yield self._rows(chunk)
            if got or waited or timeout == 0:
                return
            self._wait(timeout)
            waited = True

    def __iter__(self) -> Iterator[Record]:
        """Every record, waiting for more without end: break out of the loop to stop."""
        while True:
            for batch in self._batches(None):
                yield from batch

    def poll(self, callback: Callable[[Record], object], timeout: Optional[float] = None) -> int:
        """Calls callback(record) for each record available now (waiting up to
        timeout seconds for the first ones, as read() does); returns how many."""
        count = 0
        for batch in self._batches(timeout):
            for r in batch:
                callback(r)
            count += len(batch)
        return count

    def __aiter__(self) -> AsyncIterator[Record]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Record]:
        loop = asyncio.get_running_loop()
        while True:
            got = False
            for batch in self._batches(0):
                got = True
                for r in batch:
                    yield r
            if got:
                continue
            ready: asyncio.Future[None] = loop.create_future()

            def wake() -> None:
                if not ready.done():
                    ready.set_result(None)

            loop.add_reader(self.fileno(), wake)
            try:
                await ready
            finally:
                loop.remove_reader(self.fileno())
