//! Ring buffers and perf event arrays, read through closures.
use std::io;

use crate::map::{map_type, Map};
use crate::{check, invalid, sys, AlignedBuf};

/// A record callback: the record's bytes (valid during the call only). A negative
/// result stops the poll, which returns it as an error.
type Callback<'a> = Box<dyn FnMut(&[u8]) -> i32 + 'a>;

/// Default size of the buffer records are copied into; longer ones are truncated.
pub const DEFAULT_RECORD_SIZE: usize = 64 * 1024;

struct Source<'a> {
    obj: u64,
    fd: i32,
    // The closure's own address (what the host passes back as ctx), and the entry
    // points made for its type: the closure is called directly, and inlined into the
    // batch loop, not through a vtable per record.
    ctx: u32,
    on_record: i32,
    on_batch: i32,
    // Owns the closure (ctx points into this allocation, which a move of the Box
    // leaves in place) and drops it with the source.
    _callback: Callback<'a>,
}

/// Builds a [`RingBuffer`] from maps and their callbacks.
pub struct RingBufferBuilder<'a> {
    sources: Vec<Source<'a>>,
    record_size: usize,
    batch: bool,
}

impl<'a> RingBufferBuilder<'a> {
    /// Calls `callback` with every record of `map`, a `RINGBUF` or `PERF_EVENT_ARRAY`.
    pub fn add<F: FnMut(&[u8]) -> i32 + 'a>(&mut self, map: &Map<'a>, callback: F) -> io::Result<&mut Self> {
        if !matches!(map.map_type(), map_type::RINGBUF | map_type::PERF_EVENT_ARRAY) {
            return Err(invalid(format!("map '{}' (type {}) is neither a ring buffer nor a perf event array",
                map.name(), map.map_type())));
        }
        let mut callback = Box::new(callback);
        let ctx = &mut *callback as *mut F as usize as u32;
        self.sources.push(Source {
            obj: map.object().handle(),
            fd: map.fd(),
            ctx,
            on_record: on_record::<F> as usize as i32,
            on_batch: on_batch::<F> as usize as i32,
            _callback: callback,
        });
        Ok(self)
    }

    /// The size of the buffer records are copied into (default 64 KiB); longer
    /// records are truncated to it.
    pub fn record_size(&mut self, bytes: usize) -> &mut Self {
        self.record_size = bytes;
        self
    }

    /// Whether the host delivers records in batches, one Wasm call per batch instead
    /// of one per record (this host's `wasm_bpf_buffer_poll_batch`); the callbacks
    /// still see one record at a time. A callback's negative result then also drops
    /// the rest of its batch.
    pub fn batch(&mut self, on: bool) -> &mut Self {
        self.batch = on;
        self
    }

    pub fn build(self) -> io::Result<RingBuffer<'a>> {
        if self.sources.is_empty() {
            return Err(invalid("a ring buffer needs at least one map".to_string()));
        }
        // The batch header is 8 bytes: a record needs room for it as well.
        let min = if self.batch { 16 } else { 1 };
        if self.record_size < min || i32::try_from(self.record_size).is_err() {
            return Err(invalid(format!("record size {} is out of range", self.record_size)));
        }
        Ok(RingBuffer { sources: self.sources, data: AlignedBuf::zeroed(self.record_size), batch: self.batch })
    }
}

/// Consumes records of one or more ring buffers / perf event arrays.
pub struct RingBuffer<'a> {
    sources: Vec<Source<'a>>,
    data: AlignedBuf,
    batch: bool,
}

extern "C" fn on_record<F: FnMut(&[u8]) -> i32>(ctx: u32, data: u32, size: u32) -> i32 {
    // SAFETY: ctx is the closure (of type F) we passed to this very poll, which is
    // still running; [data, data + size) is our record buffer, filled by the host.
    unsafe {
        let callback = &mut *(ctx as usize as *mut F);
        callback(std::slice::from_raw_parts(data as usize as *const u8, size as usize))
    }
}

extern "C" fn on_batch<F: FnMut(&[u8]) -> i32>(ctx: u32, data: u32, used: u32, count: u32) -> i32 {
    // SAFETY: as on_record; the host wrote `count` records { u32 size, u32 original
    // size, bytes padded to 8 } into the first `used` bytes.
    unsafe {
        let callback = &mut *(ctx as usize as *mut F);
        let batch = std::slice::from_raw_parts(data as usize as *const u8, used as usize);
        let mut off = 0usize;
        for _ in 0..count {
            let size = match batch.get(off..off + 4) {
                Some(b) => u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize,
                None => break,
            };
            let record = match batch.get(off + 8..off + 8 + size) {
                Some(r) => r,
                None => break,
            };
            let ret = callback(record);
            if ret < 0 {
                return ret;
            }
            off += 8 + (size + 7) / 8 * 8;
        }
        0
    }
}

impl<'a> RingBuffer<'a> {
    pub fn builder() -> RingBufferBuilder<'a> {
        RingBufferBuilder { sources: Vec::new(), record_size: DEFAULT_RECORD_SIZE, batch: false }
    }

    /// Delivers the available records to the callbacks, waiting up to `timeout_ms`
    /// for the first map's first record (0: never wait, < 0: until one arrives);
    /// the other maps are then drained without waiting. Returns the number of
    /// records. When the host stops the guest (Ctrl-C, SIGTERM, `--timeout`) the
    /// error is `io::ErrorKind::Interrupted` (`-EINTR`): end the loop and clean up.
    pub fn poll(&mut self, timeout_ms: i32) -> io::Result<usize> {
        let mut total = 0;
        let max = self.data.bytes().len() as i32;
        for (i, s) in self.sources.iter_mut().enumerate() {
            let timeout = if i == 0 { timeout_ms } else { 0 };
            let data = self.data.bytes_mut().as_mut_ptr();
            // SAFETY: the host calls our callback synchronously with ctx and writes at
            // most max bytes at data; both outlive the call.
            let ret = unsafe {
                if self.batch {
                    sys::wasm_bpf_buffer_poll_batch(s.obj, s.fd, s.on_batch, s.ctx, data, max, timeout)
                } else {
                    sys::wasm_bpf_buffer_poll(s.obj, s.fd, s.on_record, s.ctx, data, max, timeout)
                }
            };
            total += check(ret)? as usize;
        }
        Ok(total)
    }

    /// Delivers what is available now, without waiting.
    pub fn consume(&mut self) -> io::Result<usize> {
        self.poll(0)
    }

    /// Polls (every `timeout_ms`) until the host stops the guest, which is `Ok`;
    /// any other error (including a callback's negative result) ends it as `Err`.
    pub fn run(&mut self, timeout_ms: i32) -> io::Result<()> {
        loop {
            match self.poll(timeout_ms) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
    }
}
