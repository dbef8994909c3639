//! rust_runqlat: run queue latency as a log2 histogram, read from a BPF hash map
//! every interval (BPF side: ../runqlat/runqlat.bpf.c).
//! Run with: wasm-bpf run rust_runqlat.wasm -- [-m] [interval [count]]
use std::io;
use std::time::{Duration, Instant};

use wasm_bpf::{HashMap, RingBuffer};

#[path = "../../rust_common.rs"]
mod common;

include!(env!("WASM_BPF_SKEL"));
use runqlat_bpf::Hist;

const USAGE: &str = "Usage: rust_runqlat [-m] [-h] [interval [count]]
Summarise run queue latency (how long runnable tasks wait for a CPU)
as a log2 histogram.

  interval       seconds between histograms (default 1)
  count          number of histograms, then exit (default: until Ctrl-C)
  -m, --millis   histogram in milliseconds instead of microseconds
  -h, --help     show this help

Example: wasm-bpf run rust_runqlat.wasm -- 1 5    # five 1-second histograms
";

struct Options {
    millis: bool,
    interval_s: u64,
    count: u64, // 0: until stopped
}

/// The options, or None when the usage was asked for.
fn parse_args() -> Result<Option<Options>, String> {
    let mut opts = Options { millis: false, interval_s: 1, count: 0 };
    let mut positional = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "-m" | "--millis" => opts.millis = true,
            _ if arg.starts_with('-') => return Err(format!("unknown option '{arg}'")),
            _ => positional.push(arg),
        }
    }
    let number = |what: &str, s: &String| match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("invalid {what} '{s}'")),
    };
    match positional.as_slice() {
        [] => {}
        [interval] => opts.interval_s = number("interval", interval)?,
        [interval, count] => {
            opts.interval_s = number("interval", interval)?;
            opts.count = number("count", count)?;
        }
        [_, _, extra, ..] => return Err(format!("unexpected argument '{extra}'")),
    }
    Ok(Some(opts))
}

fn print_log2_hist(slots: &[u64], unit: &str) {
    let last = slots.iter().rposition(|n| *n != 0);
    let max = slots.iter().copied().max().unwrap_or(0);
    println!("{unit:>15}{:9} : count    distribution", "");
    let last = match last {
        Some(last) => last,
        None => return println!("{:10} (no samples)", ""),
    };
    for (i, n) in slots.iter().enumerate().take(last + 1) {
        let low = if i == 0 { 0 } else { 1u64 << i };
        let high = if i == slots.len() - 1 { "inf".to_string() } else { ((1u64 << (i + 1)) - 1).to_string() };
        let stars = if max == 0 { 0 } else { (n * 40 / max) as usize };
        println!("{low:>10} -> {high:<10} : {n:<8} |{:<40}|", "*".repeat(stars));
    }
}

/// Sums and deletes every histogram of the map, and prints the sum.
fn print_and_clear(hists: &HashMap<u32, Hist>, unit: &str) -> io::Result<()> {
    let mut total = <Hist as wasm_bpf::Plain>::zeroed();
    let keys: Vec<u32> = hists.keys()?.collect::<io::Result<_>>()?;
    for key in keys {
        // take: read and delete in one step, so no count is lost between the two
        if let Some(h) = hists.take(&key)? {
            for (t, n) in total.slots.iter_mut().zip(h.slots.iter()) {
                *t += n;
            }
        }
    }
    println!("\n{}", common::clock());
    print_log2_hist(&total.slots, unit);
    Ok(())
}

fn run(opts: &Options) -> io::Result<()> {
    let mut open = runqlat_bpf::open()?;
    open.rodata()?.targ_ms = opts.millis as u8;
    let skel = open.load()?;
    let _links = skel.attach()?;
    let hists = skel.maps().hists()?;

    // A ring buffer the BPF side never writes: polling it is a wait that the host
    // ends with Interrupted on Ctrl-C, SIGTERM or --timeout (sleep() would not).
    let ticks = skel.maps().ticks()?;
    let mut builder = RingBuffer::builder();
    builder.add(&ticks, |_| 0)?;
    let mut wait = builder.build()?;

    println!("Tracing run queue latency... Hit Ctrl-C to end.");
    let unit = if opts.millis { "msecs" } else { "usecs" };
    let mut n = 0;
    while opts.count == 0 || n < opts.count {
        let deadline = Instant::now() + Duration::from_secs(opts.interval_s);
        let mut stopped = false;
        while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            match wait.poll(left.as_millis().min(100) as i32) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    stopped = true;
                    break;
                }
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
        // on Ctrl-C, still show what was collected so far
        print_and_clear(&hists, unit)?;
        if stopped {
            break;
        }
        n += 1;
    }
    Ok(())
}

fn main() {
    common::main("rust_runqlat", USAGE, parse_args, run)
}
