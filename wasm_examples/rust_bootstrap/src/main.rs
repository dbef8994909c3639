//! rust_bootstrap: the bootstrap tool with a Rust user-space half. Prints every
//! exec and exit the BPF side (../bootstrap/bootstrap.bpf.c) reports.
//! Run with: wasm-bpf run rust_bootstrap.wasm -- [-d MS]
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use wasm_bpf::RingBuffer;

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

/// A NUL-terminated byte string of the BPF side.
fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// HH:MM:SS (UTC: the guest has no time zone database).
fn clock() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{:02}:{:02}:{:02}", secs / 3600 % 24, secs / 60 % 60, secs % 60)
}

fn print_event(e: &Event) {
    let (comm, pid, ppid) = (text(&e.comm), e.pid, e.ppid);
    if e.kind == EVENT_EXEC {
        println!("{:<8} {:<5} {:<16} {:<7} {:<7} {}", clock(), "EXEC", comm, pid, ppid, text(&e.filename));
    } else {
        let mut line = format!("{:<8} {:<5} {:<16} {:<7} {:<7} [{}]", clock(), "EXIT", comm, pid, ppid, e.exit_code);
        if e.duration_ns != 0 {
            line += &format!(" ({}ms)", e.duration_ns / 1_000_000);
        }
        println!("{line}");
    }
}

fn run(min_duration_ms: u64) -> io::Result<()> {
    let mut open = bootstrap_bpf::open()?;
    open.rodata()?.min_duration_ns = min_duration_ms * 1_000_000;
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
    let code = match parse_args() {
        Ok(None) => {
            print!("{USAGE}");
            0
        }
        Ok(Some(ms)) => match run(ms) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("rust_bootstrap: {e}");
                1
            }
        },
        Err(msg) => {
            eprintln!("rust_bootstrap: {msg}\n{USAGE}");
            1
        }
    };
    std::process::exit(code);
}
