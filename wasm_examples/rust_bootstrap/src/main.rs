//! rust_bootstrap: the bootstrap tool with a Rust user-space half. Prints every
//! exec and exit the BPF side (../bootstrap/bootstrap.bpf.c) reports.
//! Run with: wasm-bpf run rust_bootstrap.wasm -- [-d MS]
use std::io;

use wasm_bpf::RingBuffer;

#[path = "../../rust_common.rs"]
mod common;

include!(env!("WASM_BPF_SKEL"));
use bootstrap_bpf::{Event, EVENT_EXEC};

const USAGE: &str = "Usage: rust_bootstrap [-d MS] [-h]
Trace process start (exec) and exit, with the process lifetime.

  -d, --duration MS  only report exits of processes that lived at least
                     MS milliseconds (exec events are then not shown)
  -h, --help         show this help

Example: wasm-bpf run rust_bootstrap.wasm -- -d 100
";

/// Some(min duration in ms), or None when the usage was asked for.
fn parse_args() -> Result<Option<u64>, String> {
    let mut args = std::env::args().skip(1);
    let mut min_duration_ms = 0;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "-d" | "--duration" => {
                let value = args.next().ok_or("option -d needs a value")?;
                min_duration_ms = value.parse().map_err(|_| format!("invalid duration '{value}'"))?;
            }
            other => return Err(format!("unexpected argument '{other}'")),
        }
    }
    Ok(Some(min_duration_ms))
}

fn print_event(e: &Event) {
    let (comm, pid, ppid) = (common::text(&e.comm), e.pid, e.ppid);
    if e.kind == EVENT_EXEC {
        println!("{:<8} {:<5} {:<16} {:<7} {:<7} {}", common::clock(), "EXEC", comm, pid, ppid, common::text(&e.filename));
    } else {
        let mut line = format!("{:<8} {:<5} {:<16} {:<7} {:<7} [{}]", common::clock(), "EXIT", comm, pid, ppid, e.exit_code);
        if e.duration_ns != 0 {
            line += &format!(" ({}ms)", e.duration_ns / 1_000_000);
        }
        println!("{line}");
    }
}

fn run(min_duration_ms: &u64) -> io::Result<()> {
    let mut open = bootstrap_bpf::open()?;
    open.rodata()?.min_duration_ns = *min_duration_ms * 1_000_000;
    let skel = open.load()?;
    let _links = skel.attach()?;

    let events = skel.maps().events()?;
    let mut builder = RingBuffer::builder();
    builder.add(&events, |data| {
        if let Some(e) = wasm_bpf::from_bytes::<Event>(data) {
            print_event(&e);
        }
        0
    })?;
    let mut ring = builder.build()?;

    println!("{:<8} {:<5} {:<16} {:<7} {:<7} {}", "TIME", "EVENT", "COMM", "PID", "PPID", "FILENAME/EXIT CODE");
    // Until Ctrl-C, SIGTERM or --timeout; then the links and the object are dropped.
    ring.run(100)
}

fn main() {
    common::main("rust_bootstrap", USAGE, parse_args, run)
}
