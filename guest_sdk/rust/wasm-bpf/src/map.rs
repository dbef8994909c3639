//! Maps: the raw byte-level [`Map`] and typed views whose key and value sizes are
//! checked against the map's BTF definition once, when the view is made.
use std::io;
use std::marker::PhantomData;
use std::os::raw::c_void;
use std::ptr;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::object::{MapSpec, Object};
use crate::{bytes_of, check, invalid, sys, Plain};

/// Create a new element or update an existing one.
pub const MAP_ANY: u64 = 0;
/// Create a new element only.
pub const MAP_NOEXIST: u64 = 1;
/// Update an existing element only.
pub const MAP_EXIST: u64 = 2;

const LOOKUP: i32 = 1;
const UPDATE: i32 = 2;
const DELETE: i32 = 3;
const NEXT_KEY: i32 = 4;
const LOOKUP_AND_DELETE: i32 = 21;
const LOOKUP_BATCH: i32 = 24;

const ENOENT: i32 = 44; // WASI numbering, as the host returns it

/// The kernel's `enum bpf_map_type` values the SDK distinguishes.
pub mod map_type {
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    pub const PERF_EVENT_ARRAY: u32 = 4;
    pub const PERCPU_HASH: u32 = 5;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const LRU_HASH: u32 = 9;
    pub const LRU_PERCPU_HASH: u32 = 10;
    pub const RINGBUF: u32 = 27;
    pub const USER_RINGBUF: u32 = 31;
}

pub(crate) fn bytes_of_mut<T: Plain>(value: &mut T) -> &mut [u8] {
    // SAFETY: Plain: every byte initialized, any bytes written back form a valid T.
    unsafe { std::slice::from_raw_parts_mut(value as *mut T as *mut u8, std::mem::size_of::<T>()) }
}

/// The number of possible CPUs: the slots of a per-CPU value.
pub fn num_possible_cpus() -> io::Result<usize> {
    static CPUS: AtomicI32 = AtomicI32::new(0);
    let cached = CPUS.load(Ordering::Relaxed);
    if cached > 0 {
        return Ok(cached as usize);
    }
    // SAFETY: no arguments.
    let n = check(unsafe { sys::wasm_bpf_num_possible_cpus() })?;
    CPUS.store(n, Ordering::Relaxed);
    Ok(n as usize)
}

/// A map of a loaded object, by its fd; byte-level operations with sizes checked.
#[derive(Clone, Copy)]
pub struct Map<'a> {
    obj: &'a Object,
    spec: &'static MapSpec,
    fd: i32,
}

fn is_per_cpu(map_type: u32) -> bool {
    matches!(map_type, map_type::PERCPU_HASH | map_type::PERCPU_ARRAY | map_type::LRU_PERCPU_HASH)
}

impl<'a> Map<'a> {
    pub(crate) fn new(obj: &'a Object, spec: &'static MapSpec, fd: i32) -> Self {
        Map { obj, spec, fd }
    }

    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    pub fn fd(&self) -> i32 {
        self.fd
    }

    pub fn map_type(&self) -> u32 {
        self.spec.map_type
    }

    pub fn key_size(&self) -> usize {
        self.spec.key_size as usize
    }

    pub(crate) fn object(&self) -> &'a Object {
        self.obj
    }

    /// Bytes of one value: `value_size`, or `round_up(value_size, 8) * CPUs` for per-CPU maps.
    pub fn value_size(&self) -> io::Result<usize> {
        let size = self.spec.value_size as usize;
        if is_per_cpu(self.spec.map_type) {
            Ok((size + 7) / 8 * 8 * num_possible_cpus()?)
        } else {
            Ok(size)
        }
    }

    fn check_key_size(&self, size: usize) -> io::Result<()> {
        if size != self.key_size() {
            return Err(invalid(format!("map '{}': key of {size} bytes, the map's keys have {}", self.name(), self.key_size())));
        }
        Ok(())
    }

    pub(crate) fn check_value_size(&self, size: usize) -> io::Result<()> {
        if size != self.value_size()? {
            return Err(invalid(format!("map '{}': value of {size} bytes, the map's values have {}", self.name(), self.value_size()?)));
        }
        Ok(())
    }

    fn operate(&self, cmd: i32, key: *const u8, value: *mut u8, next: *mut u8, flags: u64) -> io::Result<bool> {
        // SAFETY: callers pass buffers of the map's key and value sizes (checked).
        let ret = unsafe { sys::wasm_bpf_map_operate(self.fd, cmd, key as *const c_void, value as *mut c_void, next as *mut c_void, flags) };
        match ret {
            r if r == -ENOENT => Ok(false),
            r => check(r).map(|_| true),
        }
    }

    /// Copies the value of `key` into `value`; false if there is no such key.
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
        self.check_key_size(key.len())?;
        self.check_value_size(value.len())?;
        self.operate(LOOKUP, key.as_ptr(), value.as_mut_ptr(), ptr::null_mut(), 0)
    }

    /// Sets `key` to `value` (`flags`: [`MAP_ANY`], [`MAP_NOEXIST`], [`MAP_EXIST`]).
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> io::Result<()> {
        self.check_key_size(key.len())?;
        self.check_value_size(value.len())?;
        match self.operate(UPDATE, key.as_ptr(), value.as_ptr() as *mut u8, ptr::null_mut(), flags)? {
            true => Ok(()),
            false => Err(io::Error::from_raw_os_error(ENOENT)),
        }
    }

    /// Deletes `key`; false if there was none.
    pub fn delete(&self, key: &[u8]) -> io::Result<bool> {
        self.check_key_size(key.len())?;
        self.operate(DELETE, key.as_ptr(), ptr::null_mut(), ptr::null_mut(), 0)
    }

    /// Copies the value of `key` into `value` and deletes it; false if there is no such key.
    pub fn lookup_and_delete(&self, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
        self.check_key_size(key.len())?;
        self.check_value_size(value.len())?;
        self.operate(LOOKUP_AND_DELETE, key.as_ptr(), value.as_mut_ptr(), ptr::null_mut(), 0)
    }

    /// The key after `key` (None: the first key) into `next`; false at the end.
    pub fn next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> io::Result<bool> {
        if let Some(k) = key {
            self.check_key_size(k.len())?;
        }
        self.check_key_size(next.len())?;
        self.operate(NEXT_KEY, key.map_or(ptr::null(), |k| k.as_ptr()), ptr::null_mut(), next.as_mut_ptr(), 0)
    }

    /// Every key, in the kernel's order, as typed values.
    pub fn keys<K: Plain>(&self) -> io::Result<Keys<'a, K>> {
        self.check_key_size(std::mem::size_of::<K>())?;
        Ok(Keys { map: *self, prev: None, done: false })
    }

    /// Up to `keys.len()` entries from `cursor` (None: the start) in one host call,
    /// with the kernel's `BPF_MAP_LOOKUP_BATCH`. Returns how many were read and the
    /// cursor for the next call (None: the end was reached).
    pub fn lookup_batch(&self, cursor: Option<u64>, keys: &mut [u8], values: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
        let key_size = self.key_size().max(1);
        let count = keys.len() / key_size;
        if keys.len() % key_size != 0 || values.len() != count * self.value_size()? || self.key_size() > 8 {
            return Err(invalid(format!("map '{}': batch buffers do not match the map's sizes", self.name())));
        }
        let in_batch = cursor.unwrap_or(0);
        let mut out_batch = 0u64;
        let mut n = count as u32;
        // SAFETY: keys/values hold count entries, the tokens are max(key_size, 4) <= 8 bytes.
        let ret = unsafe {
            sys::wasm_bpf_map_batch(self.fd, LOOKUP_BATCH,
                cursor.map_or(ptr::null(), |_| &in_batch as *const u64 as *const c_void),
                &mut out_batch as *mut u64 as *mut c_void,
                keys.as_mut_ptr() as *mut c_void, values.as_mut_ptr() as *mut c_void, &mut n, 0, 0)
        };
        match ret {
            r if r == -ENOENT => Ok((n as usize, None)),
            r => check(r).map(|_| (n as usize, Some(out_batch))),
        }
    }
}

impl Map<'_> {
    /// Publishes `record` to a `USER_RINGBUF` map, for the BPF side's
    /// `bpf_user_ringbuf_drain()`. A full ring is the error `ENOSPC`
    /// (`raw_os_error() == Some(51)`): retry once the BPF side has drained it.
    pub fn submit(&self, record: &[u8]) -> io::Result<()> {
        if self.map_type() != map_type::USER_RINGBUF {
            return Err(invalid(format!("map '{}' (type {}) is not a user ring buffer", self.name(), self.map_type())));
        }
        let size = i32::try_from(record.len()).map_err(|_| invalid(format!("map '{}': record too large", self.name())))?;
        // SAFETY: the host copies [record, record + size) during the call.
        check(unsafe { sys::wasm_bpf_user_ringbuf_submit(self.fd, record.as_ptr(), size) }).map(|_| ())
    }
}

/// Iterator over a map's keys ([`Map::keys`]).
pub struct Keys<'a, K> {
    map: Map<'a>,
    prev: Option<K>,
    done: bool,
}

impl<K: Plain> Iterator for Keys<'_, K> {
    type Item = io::Result<K>;

    fn next(&mut self) -> Option<io::Result<K>> {
        if self.done {
            return None;
        }
        let mut next = K::zeroed();
        let prev = self.prev.as_ref().map(bytes_of);
        match self.map.next_key(prev, bytes_of_mut(&mut next)) {
            Ok(true) => {
                self.prev = Some(next);
                Some(Ok(next))
            }
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn typed<'a>(map: Map<'a>, key: usize, value: usize, per_cpu: bool, what: &str) -> io::Result<Map<'a>> {
    if is_per_cpu(map.map_type()) != per_cpu {
        return Err(invalid(format!("map '{}' (type {}) is {}a per-CPU map: use {what}", map.name(), map.map_type(),
            if per_cpu { "not " } else { "" }, what = if per_cpu { "HashMap/Array" } else { "PerCpuHashMap/PerCpuArray" })));
    }
    map.check_key_size(key)?;
    if value != map.spec.value_size as usize {
        return Err(invalid(format!("map '{}' ({what}): value type of {value} bytes, the map's values have {}",
            map.name(), map.spec.value_size)));
    }
    Ok(map)
}

/// `map()` of a typed view.
macro_rules! underlying_map {
    ($($view:ident<$($param:ident),+>),+) => {$(
        impl<'a, $($param),+> $view<'a, $($param),+> {
            /// The byte-level map behind the view.
            pub fn map(&self) -> &Map<'a> {
                &self.map
            }
        }
    )+};
}
underlying_map!(HashMap<K, V>, PerCpuHashMap<K, V>, Array<V>, PerCpuArray<V>);

/// `len()` and `is_empty()` of an array view: its `max_entries`.
macro_rules! array_len {
    ($($view:ident),+) => {$(
        impl<V> $view<'_, V> {
            pub fn len(&self) -> usize {
                self.map.spec.max_entries as usize
            }

            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
        }
    )+};
}
array_len!(Array, PerCpuArray);

/// A hash map (`HASH`, `LRU_HASH`, or any map keyed by `K`) with values `V`.
pub struct HashMap<'a, K, V> {
    map: Map<'a>,
    _types: PhantomData<(K, V)>,
}

impl<'a, K: Plain, V: Plain> HashMap<'a, K, V> {
    /// The view; fails if `K`/`V` do not have the map's key and value sizes.
    pub fn new(map: Map<'a>) -> io::Result<Self> {
        let map = typed(map, std::mem::size_of::<K>(), std::mem::size_of::<V>(), false, "HashMap")?;
        Ok(HashMap { map, _types: PhantomData })
    }

    pub fn get(&self, key: &K) -> io::Result<Option<V>> {
        let mut value = V::zeroed();
        Ok(self.map.lookup(bytes_of(key), bytes_of_mut(&mut value))?.then(|| value))
    }

    pub fn insert(&self, key: &K, value: &V, flags: u64) -> io::Result<()> {
        self.map.update(bytes_of(key), bytes_of(value), flags)
    }

    /// Deletes `key`; false if there was none.
    pub fn remove(&self, key: &K) -> io::Result<bool> {
        self.map.delete(bytes_of(key))
    }

    /// The value of `key`, deleted in the same step.
    pub fn take(&self, key: &K) -> io::Result<Option<V>> {
        let mut value = V::zeroed();
        Ok(self.map.lookup_and_delete(bytes_of(key), bytes_of_mut(&mut value))?.then(|| value))
    }

    pub fn keys(&self) -> io::Result<Keys<'a, K>> {
        self.map.keys()
    }

    /// Every (key, value); keys deleted while iterating are skipped.
    pub fn iter(&self) -> io::Result<impl Iterator<Item = io::Result<(K, V)>> + '_> {
        Ok(self.keys()?.filter_map(move |k| match k {
            Ok(k) => self.get(&k).map(|v| v.map(|v| (k, v))).transpose(),
            Err(e) => Some(Err(e)),
        }))
    }

    /// Every entry read in batches of `chunk` with `BPF_MAP_LOOKUP_BATCH`: a few host
    /// calls instead of two per entry (keys of at most 8 bytes).
    pub fn entries_batched(&self, chunk: usize) -> io::Result<Vec<(K, V)>> {
        let chunk = chunk.max(1);
        let (mut keys, mut values) = (vec![K::zeroed(); chunk], vec![V::zeroed(); chunk]);
        let (mut out, mut cursor) = (Vec::new(), None);
        loop {
            let (n, next) = self.map.lookup_batch(cursor, slice_bytes_mut(&mut keys), slice_bytes_mut(&mut values))?;
            out.extend(keys[..n].iter().copied().zip(values[..n].iter().copied()));
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }
}

fn slice_bytes_mut<T: Plain>(items: &mut [T]) -> &mut [u8] {
    // SAFETY: as bytes_of_mut, for a slice.
    unsafe { std::slice::from_raw_parts_mut(items.as_mut_ptr() as *mut u8, std::mem::size_of_val(items)) }
}

/// An array map (`ARRAY`) of `V`.
pub struct Array<'a, V> {
    map: Map<'a>,
    _types: PhantomData<V>,
}

impl<'a, V: Plain> Array<'a, V> {
    pub fn new(map: Map<'a>) -> io::Result<Self> {
        let map = typed(map, 4, std::mem::size_of::<V>(), false, "Array")?;
        Ok(Array { map, _types: PhantomData })
    }

    pub fn get(&self, index: u32) -> io::Result<V> {
        let mut value = V::zeroed();
        match self.map.lookup(&index.to_ne_bytes(), bytes_of_mut(&mut value))? {
            true => Ok(value),
            false => Err(io::Error::from_raw_os_error(ENOENT)),
        }
    }

    pub fn set(&self, index: u32, value: &V) -> io::Result<()> {
        self.map.update(&index.to_ne_bytes(), bytes_of(value), MAP_ANY)
    }
}

/// Per-CPU values: one `V` per possible CPU, each in a slot of round_up(size, 8) bytes.
fn per_cpu_values<V: Plain>(bytes: &[u8]) -> Vec<V> {
    let stride = (std::mem::size_of::<V>() + 7) / 8 * 8;
    bytes.chunks(stride).filter_map(crate::from_bytes).collect()
}

fn per_cpu_bytes<V: Plain>(map: &Map, values: &[V]) -> io::Result<Vec<u8>> {
    let stride = (std::mem::size_of::<V>() + 7) / 8 * 8;
    if values.len() != num_possible_cpus()? {
        return Err(invalid(format!("map '{}': {} per-CPU values, there are {} possible CPUs", map.name(), values.len(), num_possible_cpus()?)));
    }
    let mut bytes = vec![0u8; stride * values.len()];
    for (slot, v) in bytes.chunks_mut(stride).zip(values) {
        slot[..std::mem::size_of::<V>()].copy_from_slice(bytes_of(v));
    }
    Ok(bytes)
}

/// A per-CPU hash map (`PERCPU_HASH`, `LRU_PERCPU_HASH`): one `V` per possible CPU.
pub struct PerCpuHashMap<'a, K, V> {
    map: Map<'a>,
    _types: PhantomData<(K, V)>,
}

impl<'a, K: Plain, V: Plain> PerCpuHashMap<'a, K, V> {
    pub fn new(map: Map<'a>) -> io::Result<Self> {
        let map = typed(map, std::mem::size_of::<K>(), std::mem::size_of::<V>(), true, "PerCpuHashMap")?;
        Ok(PerCpuHashMap { map, _types: PhantomData })
    }

    /// The value of every possible CPU (index = CPU number).
    pub fn get(&self, key: &K) -> io::Result<Option<Vec<V>>> {
        let mut bytes = vec![0u8; self.map.value_size()?];
        Ok(self.map.lookup(bytes_of(key), &mut bytes)?.then(|| per_cpu_values(&bytes)))
    }

    pub fn insert(&self, key: &K, values: &[V], flags: u64) -> io::Result<()> {
        self.map.update(bytes_of(key), &per_cpu_bytes(&self.map, values)?, flags)
    }

    pub fn remove(&self, key: &K) -> io::Result<bool> {
        self.map.delete(bytes_of(key))
    }

    pub fn keys(&self) -> io::Result<Keys<'a, K>> {
        self.map.keys()
    }
}

/// A per-CPU array (`PERCPU_ARRAY`): one `V` per possible CPU at each index.
pub struct PerCpuArray<'a, V> {
    map: Map<'a>,
    _types: PhantomData<V>,
}

impl<'a, V: Plain> PerCpuArray<'a, V> {
    pub fn new(map: Map<'a>) -> io::Result<Self> {
        let map = typed(map, 4, std::mem::size_of::<V>(), true, "PerCpuArray")?;
        Ok(PerCpuArray { map, _types: PhantomData })
    }

    /// The value of every possible CPU at `index`.
    pub fn get(&self, index: u32) -> io::Result<Vec<V>> {
        let mut bytes = vec![0u8; self.map.value_size()?];
        match self.map.lookup(&index.to_ne_bytes(), &mut bytes)? {
            true => Ok(per_cpu_values(&bytes)),
            false => Err(io::Error::from_raw_os_error(ENOENT)),
        }
    }

    pub fn set(&self, index: u32, values: &[V]) -> io::Result<()> {
        self.map.update(&index.to_ne_bytes(), &per_cpu_bytes(&self.map, values)?, MAP_ANY)
    }
}
