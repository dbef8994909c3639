//! Rust guest SDK of the wasm-bpf host.
//!
//! A guest is a `wasm32-wasi` command whose BPF object is embedded by a generated
//! skeleton (`wasm-bpf gen skeleton --lang rust`). The SDK gives it owned handles
//! that release what they hold when dropped, in the style of libbpf-rs:
//!
//! * [`OpenObject`]: the ELF image before load (`.rodata`/`.data` written in place,
//!   `.bss` kept and pushed at load, programs left out with `set_autoload`);
//! * [`Object`]: the loaded object, closed (and every link detached) on drop;
//! * [`Program::attach`] -> [`Link`], detached on drop;
//! * [`Map`] and the typed views [`HashMap`], [`Array`], [`PerCpuHashMap`], [`PerCpuArray`];
//! * [`RingBuffer`]: closures fed from ring buffers and perf event arrays, polled
//!   until the host stops the guest (`-EINTR`, `io::ErrorKind::Interrupted`).
//!
//! Errors are `std::io::Error`s built from the host's negative errno (WASI numbering,
//! so `kind()` and `raw_os_error()` mean what they say).
pub mod sys;

mod buffer;
mod map;
mod object;

pub use buffer::{RingBuffer, RingBufferBuilder};
pub use map::{map_type, num_possible_cpus, Array, HashMap, Keys, Map, PerCpuArray, PerCpuHashMap, MAP_ANY, MAP_EXIST, MAP_NOEXIST};
pub use object::{Link, MapSpec, Object, ObjectSpec, OpenObject, Program, SectionKind, SectionSpec};

use std::io;

/// Plain old data: every bit pattern is a valid value and there is no implicit
/// padding, so values can be copied from and to the bytes the kernel sees.
///
/// # Safety
/// Implement it only for `#[repr(C)]` types made of `Plain` fields with no padding
/// the compiler inserts (the skeleton's generated types assert this at compile time).
pub unsafe trait Plain: Copy + 'static {
    /// The all-zero value.
    fn zeroed() -> Self {
        // SAFETY: every bit pattern, zero included, is a valid Self.
        unsafe { std::mem::zeroed() }
    }
}

macro_rules! plain {
    ($($t:ty),*) => { $(unsafe impl Plain for $t {})* };
}
plain!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

/// The bytes of a plain value.
pub fn bytes_of<T: Plain>(value: &T) -> &[u8] {
    // SAFETY: Plain has no padding, so every byte is initialized.
    unsafe { std::slice::from_raw_parts(value as *const T as *const u8, std::mem::size_of::<T>()) }
}

/// A plain value read from the start of `bytes` (None if they are too short).
pub fn from_bytes<T: Plain>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: long enough, any bit pattern is valid, read_unaligned needs no alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const T) })
}

/// Ok(ret) for ret >= 0, else the error of errno -ret.
pub(crate) fn check(ret: i32) -> io::Result<i32> {
    if ret < 0 {
        Err(io::Error::from_raw_os_error(-ret))
    } else {
        Ok(ret)
    }
}

pub(crate) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

pub(crate) fn c_string(what: &str, s: &str) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(s).map_err(|_| invalid(format!("{what} '{}' contains a NUL byte", s.escape_debug())))
}

/// A byte buffer aligned to 8, so the generated types (u64 members) can be viewed in place.
pub(crate) struct AlignedBuf {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBuf {
    pub(crate) fn zeroed(len: usize) -> Self {
        AlignedBuf { words: vec![0; (len + 7) / 8], len }
    }

    pub(crate) fn copy_of(bytes: &[u8]) -> Self {
        let mut buf = Self::zeroed(bytes.len());
        buf.bytes_mut().copy_from_slice(bytes);
        buf
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: words holds at least len initialized bytes.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const u8, self.len) }
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and we hold the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr() as *mut u8, self.len) }
    }
}

/// `&mut T` over `bytes`, which must be exactly one T at T's alignment.
pub(crate) fn view_mut<'a, T: Plain>(what: &str, bytes: &'a mut [u8]) -> io::Result<&'a mut T> {
    if bytes.len() != std::mem::size_of::<T>() || bytes.as_ptr() as usize % std::mem::align_of::<T>() != 0 {
        return Err(invalid(format!(
            "{what}: {} bytes at offset {:#x} cannot hold a {}-byte type aligned to {}",
            bytes.len(), bytes.as_ptr() as usize, std::mem::size_of::<T>(), std::mem::align_of::<T>())));
    }
    // SAFETY: size and alignment checked; T is Plain.
    Ok(unsafe { &mut *(bytes.as_mut_ptr() as *mut T) })
}

/// Helpers of the skeleton: the size and alignment of a field as declared, from a
/// pointer to it, for the compile-time layout checks (`offset_of!` is not in Rust
/// 1.63), and bitfield reads.
#[doc(hidden)]
pub mod layout {
    pub const fn size_of_pointee<T>(_: *const T) -> usize {
        std::mem::size_of::<T>()
    }

    pub const fn align_of_pointee<T>(_: *const T) -> usize {
        std::mem::align_of::<T>()
    }

    /// The bitfield of `width` (1..=64) bits at `bit_offset` of little-endian
    /// `bytes` (BPF's layout), sign-extended when `signed`; the skeleton's getters
    /// cast it to the field's type.
    pub fn bitfield(bytes: &[u8], bit_offset: usize, width: usize, signed: bool) -> u64 {
        let mut value = 0u64;
        for i in 0..width {
            let bit = bit_offset + i;
            if bytes[bit / 8] >> (bit % 8) & 1 != 0 {
                value |= 1 << i;
            }
        }
        if signed && width < 64 && value >> (width - 1) & 1 != 0 {
            value |= !0u64 << width;
        }
        value
    }
}
