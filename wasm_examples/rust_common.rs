//! What the Rust examples share: the command-line frame and two output helpers.
//! An example includes it with `#[path = "../../rust_common.rs"] mod common;`.
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

/// Runs a tool: `parse` reads its options (None: the usage was asked for), `run`
/// runs it. Exits 0; 1 with "NAME: error" on stderr when the run fails; 2 with the
/// usage as well when the arguments are wrong.
pub fn main<O>(name: &str, usage: &str, parse: fn() -> Result<Option<O>, String>,
               run: fn(&O) -> io::Result<()>) -> ! {
    let code = match parse() {
        Ok(None) => {
            print!("{usage}");
            0
        }
        Ok(Some(opts)) => match run(&opts) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{name}: {e}");
                1
            }
        },
        Err(msg) => {
            eprintln!("{name}: {msg}\n{usage}");
            2
        }
    };
    std::process::exit(code)
}

/// A NUL-terminated byte string of the BPF side.
pub fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// HH:MM:SS now (UTC: the guest has no time zone database).
pub fn clock() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{:02}:{:02}:{:02}", secs / 3600 % 24, secs / 60 % 60, secs % 60)
}
