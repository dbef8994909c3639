//! rust_xdpcount: packets and bytes per IP protocol arriving on an interface,
//! counted by XDP in a per-CPU array (BPF side: ../xdpcount/xdpcount.bpf.c).
//! Run with: wasm-bpf run rust_xdpcount.wasm -- -i IFNAME [-m generic|native] [-d SECONDS] [-c COUNT]
use std::io;

use wasm_bpf::{PerCpuArray, RingBuffer};

#[path = "../../rust_common.rs"]
mod common;

include!(env!("WASM_BPF_SKEL"));
use xdpcount_bpf::ProtoCount;

const USAGE: &str = "Usage: rust_xdpcount -i IFNAME [-m generic|native] [-d SECONDS] [-c COUNT]
Packets and bytes per IP protocol arriving on IFNAME, every SECONDS (default 1).
  -i IFNAME   the interface
  -m MODE     XDP mode: generic (skb) or native (driver); default: the kernel's choice
  -d SECONDS  report interval
  -c COUNT    stop after COUNT reports
";

struct Options {
    ifname: String,
    mode: Option<String>,
    interval_ms: i32,
    count: Option<u64>,
}

fn parse_args() -> Result<Option<Options>, String> {
    let (mut ifname, mut mode, mut interval_ms, mut count) = (None, None, 1000, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().ok_or(format!("option {arg} needs {what}"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "-i" => ifname = Some(value("an interface")?),
            "-m" => match value("a mode")?.as_str() {
                m @ ("generic" | "native") => mode = Some(m.to_string()),
                m => return Err(format!("unknown XDP mode '{m}' (generic or native)")),
            },
            "-d" => {
                let v = value("seconds")?;
                interval_ms = match v.parse::<f64>() {
                    Ok(s) if s > 0.0 && s < 2e6 => (s * 1000.0) as i32,
                    _ => return Err(format!("invalid interval '{v}'")),
                };
            }
            "-c" => {
                let v = value("a count")?;
                count = Some(v.parse().map_err(|_| format!("invalid count '{v}'"))?);
            }
            other => return Err(format!("unexpected argument '{other}'")),
        }
    }
    let ifname = ifname.ok_or("-i IFNAME is required")?;
    Ok(Some(Options { ifname, mode, interval_ms, count }))
}

fn proto_name(proto: u32) -> &'static str {
    match proto {
        0 => "HOPOPT",
        1 => "ICMP",
        6 => "TCP",
        17 => "UDP",
        58 => "ICMPv6",
        255 => "non-IP",
        _ => "other",
    }
}

/// One line per protocol seen so far: the sum over the CPUs' slots.
fn report(counts: &PerCpuArray<ProtoCount>) -> io::Result<()> {
    let when = common::clock();
    let mut printed = false;
    for proto in 0..counts.len() as u32 {
        let per_cpu = counts.get(proto)?;
        let packets: u64 = per_cpu.iter().map(|c| c.packets).sum();
        let bytes: u64 = per_cpu.iter().map(|c| c.bytes).sum();
        if packets > 0 {
            println!("{when:<8} {:<6} {proto:>3} {packets:>10} {bytes:>12}", proto_name(proto));
            printed = true;
        }
    }
    if !printed {
        println!("{when:<8} (no packets)");
    }
    Ok(())
}

fn run(opts: &Options) -> io::Result<()> {
    let skel = xdpcount_bpf::open()?.load()?;
    let target = match &opts.mode {
        Some(mode) => format!("{},mode={mode}", opts.ifname),
        None => opts.ifname.clone(),
    };
    let _link = skel.progs().xdp_count().attach_to(&target)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot attach to {target}: {e}")))?;
    let counts = skel.maps().counts()?;

    // Never written by the BPF side: a wait the host ends on Ctrl-C.
    let ticks = skel.maps().ticks()?;
    let mut builder = RingBuffer::builder();
    builder.add(&ticks, |_| 0)?;
    let mut wait = builder.build()?;

    println!("{:<8} {:<6} {:>3} {:>10} {:>12}", "TIME", "PROTO", "NR", "PACKETS", "BYTES");
    let mut left = opts.count;
    while left != Some(0) {
        match wait.poll(opts.interval_ms) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => break,
            Err(e) => return Err(e),
            Ok(_) => report(&counts)?,
        }
        left = left.map(|n| n - 1);
    }
    Ok(())
}

fn main() {
    common::main("rust_xdpcount", USAGE, parse_args, run)
}
