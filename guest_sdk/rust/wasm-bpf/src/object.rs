//! Objects (before and after load), programs and links.
use std::io;
use std::marker::PhantomData;
use std::ptr;

use crate::map::Map;
use crate::{c_string, check, invalid, sys, view_mut, AlignedBuf, Plain};

/// Which data section a [`SectionSpec`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionKind {
    /// `.rodata*`: constants, written before load, frozen after.
    Rodata,
    /// `.data*`: initialized globals.
    Data,
    /// `.bss`: zero-initialized globals.
    Bss,
    /// `.kconfig`: values libbpf fills at load; read-only.
    Kconfig,
}

/// A data section of the object: where its initial value lies in the ELF image.
#[derive(Clone, Copy, Debug)]
pub struct SectionSpec {
    /// The section name, also its map's name for the host (`.rodata`, `.bss`...).
    pub name: &'static str,
    pub kind: SectionKind,
    /// Offset of the section's bytes in the ELF image (0 for `.bss`/`.kconfig`).
    pub elf_offset: usize,
    pub size: usize,
}

/// A map of the object, as its BTF definition declares it.
#[derive(Clone, Copy, Debug)]
pub struct MapSpec {
    /// The name the host knows (for data sections: the section name).
    pub name: &'static str,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

/// Everything the SDK knows of one BPF object; the skeleton generator writes it.
#[derive(Debug)]
pub struct ObjectSpec {
    pub name: &'static str,
    /// The BPF ELF object.
    pub elf: &'static [u8],
    pub maps: &'static [MapSpec],
    pub progs: &'static [&'static str],
    pub sections: &'static [SectionSpec],
}

/// An object before load: a private copy of the ELF image, so writes to `.rodata`
/// and `.data` become the programs' initial values, and a buffer for `.bss`.
pub struct OpenObject {
    spec: &'static ObjectSpec,
    elf: AlignedBuf,
    bss: Vec<(&'static str, AlignedBuf)>,
    no_load: Vec<&'static str>,
}

impl OpenObject {
    /// Copies the image; nothing reaches the host before [`OpenObject::load`].
    pub fn new(spec: &'static ObjectSpec) -> io::Result<OpenObject> {
        let mut bss = Vec::new();
        for s in spec.sections {
            match s.kind {
                SectionKind::Rodata | SectionKind::Data => {
                    if s.elf_offset.checked_add(s.size).map_or(true, |end| end > spec.elf.len()) {
                        return Err(invalid(format!("{}: section {} lies outside the ELF image", spec.name, s.name)));
                    }
                }
                SectionKind::Bss => bss.push((s.name, AlignedBuf::zeroed(s.size))),
                SectionKind::Kconfig => {}
            }
        }
        Ok(OpenObject { spec, elf: AlignedBuf::copy_of(spec.elf), bss, no_load: Vec::new() })
    }

    pub fn spec(&self) -> &'static ObjectSpec {
        self.spec
    }

    /// The bytes of a `.rodata*`, `.data*` or `.bss` section, to set before load.
    pub fn section_bytes_mut(&mut self, name: &str) -> io::Result<&mut [u8]> {
        let s = section_spec(self.spec, name)?;
        match s.kind {
            SectionKind::Rodata | SectionKind::Data => Ok(&mut self.elf.bytes_mut()[s.elf_offset..s.elf_offset + s.size]),
            SectionKind::Bss => Ok(self.bss.iter_mut().find(|(n, _)| *n == name).unwrap().1.bytes_mut()),
            SectionKind::Kconfig => Err(invalid(format!("{}: {name} is filled by libbpf at load", self.spec.name))),
        }
    }

    /// A section as its generated type (e.g. the skeleton's `Rodata`).
    pub fn section_mut<T: Plain>(&mut self, name: &str) -> io::Result<&mut T> {
        view_mut(name, self.section_bytes_mut(name)?)
    }

    /// Whether `prog` is loaded (default: every program). Off, it needs this host's
    /// `wasm_bpf_ext.wasm_load_bpf_object_ex`.
    pub fn set_autoload(&mut self, prog: &str, load: bool) -> io::Result<()> {
        let name = *self.spec.progs.iter().find(|p| **p == prog)
            .ok_or_else(|| invalid(format!("{}: no program '{prog}'", self.spec.name)))?;
        self.no_load.retain(|p| *p != name);
        if !load {
            self.no_load.push(name);
        }
        Ok(())
    }

    /// Loads every program and map into the kernel, then pushes `.bss` values set before load.
    pub fn load(self) -> io::Result<Object> {
        let image = self.elf.bytes();
        let size = i32::try_from(image.len()).map_err(|_| invalid(format!("{}: object too large", self.spec.name)))?;
        // SAFETY: the host reads [ptr, ptr + size) of our memory during the call.
        let handle = unsafe {
            if self.no_load.is_empty() {
                sys::wasm_load_bpf_object(image.as_ptr(), size)
            } else {
                let names: Vec<u8> = self.no_load.iter().flat_map(|n| n.bytes().chain([0])).collect();
                sys::wasm_load_bpf_object_ex(image.as_ptr(), size, names.as_ptr(), names.len() as i32)
            }
        };
        if handle == 0 {
            return Err(invalid(format!(
                "the host refused to load BPF object '{}' (its reason is on the host's stderr)", self.spec.name)));
        }
        let obj = Object { spec: self.spec, handle, no_load: self.no_load };
        for (name, buf) in &self.bss {
            if buf.bytes().iter().any(|b| *b != 0) {
                obj.map(name)?.update(&0u32.to_ne_bytes(), buf.bytes(), crate::MAP_ANY)?;
            }
        }
        Ok(obj)
    }
}

fn section_spec(spec: &'static ObjectSpec, name: &str) -> io::Result<&'static SectionSpec> {
    spec.sections.iter().find(|s| s.name == name)
        .ok_or_else(|| invalid(format!("{}: no data section '{name}'", spec.name)))
}

/// A loaded object. Dropping it detaches every link and closes it in the host.
pub struct Object {
    spec: &'static ObjectSpec,
    handle: u64,
    no_load: Vec<&'static str>,
}

impl Object {
    /// The host's handle, for the raw imports of [`crate::sys`].
    pub fn handle(&self) -> u64 {
        self.handle
    }

    pub fn spec(&self) -> &'static ObjectSpec {
        self.spec
    }

    /// Program `name`.
    pub fn program(&self, name: &str) -> io::Result<Program<'_>> {
        let name = *self.spec.progs.iter().find(|p| **p == name)
            .ok_or_else(|| invalid(format!("{}: no program '{name}'", self.spec.name)))?;
        Ok(Program { obj: self, name })
    }

    /// Attaches every loaded program as its `SEC()` says; the links detach when dropped.
    pub fn attach_all(&self) -> io::Result<Vec<Link<'_>>> {
        self.spec.progs.iter().filter(|p| !self.no_load.contains(p))
            .map(|p| Program { obj: self, name: p }.attach()
                .map_err(|e| io::Error::new(e.kind(), format!("program '{p}': cannot attach: {e}"))))
            .collect()
    }

    /// Map `name` (data sections by their section name, e.g. `.bss`).
    pub fn map(&self, name: &str) -> io::Result<Map<'_>> {
        let spec = self.spec.maps.iter().find(|m| m.name == name)
            .ok_or_else(|| invalid(format!("{}: no map '{name}'", self.spec.name)))?;
        let cname = c_string("map name", name)?;
        // SAFETY: cname is NUL-terminated and outlives the call.
        let fd = check(unsafe { sys::wasm_bpf_map_fd_by_name(self.handle, cname.as_ptr()) })?;
        Ok(Map::new(self, spec, fd))
    }

    /// The kernel's current value of a data section, as its generated type.
    pub fn read_section<T: Plain>(&self, name: &str) -> io::Result<T> {
        section_spec(self.spec, name)?;
        let mut value = T::zeroed();
        let map = self.map(name)?;
        map.check_value_size(std::mem::size_of::<T>())?;
        map.lookup(&0u32.to_ne_bytes(), crate::map::bytes_of_mut(&mut value))?;
        Ok(value)
    }

    /// Writes a `.data`/`.bss` section in the kernel (`.rodata` is frozen: `EPERM`).
    pub fn write_section<T: Plain>(&self, name: &str, value: &T) -> io::Result<()> {
        section_spec(self.spec, name)?;
        self.map(name)?.update(&0u32.to_ne_bytes(), crate::bytes_of(value), crate::MAP_ANY)
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: our handle, closed once.
        unsafe { sys::wasm_close_bpf_object(self.handle) };
    }
}

/// A program of a loaded object.
#[derive(Clone, Copy)]
pub struct Program<'a> {
    obj: &'a Object,
    name: &'static str,
}

impl<'a> Program<'a> {
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Attaches as its `SEC()` says (tracepoints, kprobes, fentry, ...).
    pub fn attach(&self) -> io::Result<Link<'a>> {
        self.link(None)
    }

    /// Attaches to `target`: an interface for xdp (`"eth0"`, `"veth0,mode=native"`),
    /// `"tc:IFACE:ingress"`/`"tcx:..."`, a cgroup directory, `"binary:function"` for
    /// uprobes... (every form in host_abi/ABI.md).
    pub fn attach_to(&self, target: &str) -> io::Result<Link<'a>> {
        self.link(Some(target))
    }

    fn link(&self, target: Option<&str>) -> io::Result<Link<'a>> {
        let name = c_string("program name", self.name)?;
        let target = target.map(|t| c_string("attach target", t)).transpose()?;
        let target_ptr = target.as_ref().map_or(ptr::null(), |t| t.as_ptr());
        // SAFETY: both strings are NUL-terminated and outlive the call.
        let handle = unsafe { sys::wasm_bpf_attach_link(self.obj.handle, name.as_ptr(), target_ptr) };
        if handle < 0 {
            return Err(io::Error::from_raw_os_error(-handle as i32));
        }
        Ok(Link { handle, _obj: PhantomData })
    }

    /// The program's fd, for a prog-array (tail call) or devmap/cpumap value.
    pub fn fd(&self) -> io::Result<i32> {
        let name = c_string("program name", self.name)?;
        // SAFETY: NUL-terminated, outlives the call.
        check(unsafe { sys::wasm_bpf_prog_fd_by_name(self.obj.handle, name.as_ptr()) })
    }

    /// The next output bytes of an iterator program (`SEC("iter/...")`); 0 at the end
    /// of an iteration.
    pub fn iter_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let name = c_string("program name", self.name)?;
        let len = i32::try_from(buf.len()).unwrap_or(i32::MAX);
        // SAFETY: the host writes at most len bytes into buf.
        check(unsafe { sys::wasm_bpf_iter_read(self.obj.handle, name.as_ptr(), buf.as_mut_ptr(), len) })
            .map(|n| n as usize)
    }
}

/// An attachment. Dropping it detaches the program; it cannot outlive its object.
#[must_use = "dropping a Link detaches the program"]
pub struct Link<'a> {
    handle: i64,
    _obj: PhantomData<&'a Object>,
}

impl Link<'_> {
    /// Detaches now, reporting the host's error (drop ignores it).
    pub fn detach(self) -> io::Result<()> {
        let handle = self.handle;
        std::mem::forget(self);
        // SAFETY: our link handle, destroyed once.
        check(unsafe { sys::wasm_bpf_link_destroy(handle) }).map(|_| ())
    }
}

impl Drop for Link<'_> {
    fn drop(&mut self) {
        // SAFETY: as in detach.
        unsafe { sys::wasm_bpf_link_destroy(self.handle) };
    }
}
