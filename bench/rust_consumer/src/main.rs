//! The Rust twin of wasm_consumer.c: the same figures, checks and JSON result line.
//!   rust_consumer drain|stream record|batch [COMM]
//! record: one Wasm call per record (wasm_bpf_buffer_poll); batch: one per batch
//! (wasm_bpf_buffer_poll_batch), the closure still sees one record at a time.
//! drain: rounds, one per line on stdin, each answered "drained RECORDS" once the
//! ring is empty; the result's seconds are the drain loops' alone.
use std::cell::Cell;
use std::io::{self, BufRead};
use std::time::Instant;

use wasm_bpf::RingBuffer;

include!(env!("WASM_BPF_SKEL"));
use bench_bpf::BenchEvent;

#[derive(Default)]
struct Tally {
    records: Cell<u64>,
    next_seq: Cell<u64>,
    out_of_order: Cell<u64>,
}

impl Tally {
    fn check(&self, e: &BenchEvent) {
        if e.seq != self.next_seq.get() || e.payload[4] != e.seq * 31 + 4 {
            self.out_of_order.set(self.out_of_order.get() + 1);
        }
        self.next_seq.set(e.seq + 1);
        self.records.set(self.records.get() + 1);
    }
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 || args.len() > 4 {
        eprintln!("usage: rust_consumer drain|stream record|batch [COMM]");
        std::process::exit(2);
    }
    let (stream, batch) = (args[1] == "stream", args[2] == "batch");
    let mut open = bench_bpf::open()?;
    if let Some(comm) = args.get(3) {
        let rodata = open.rodata()?;
        let n = comm.len().min(rodata.driver_comm.len() - 1);
        rodata.driver_comm = [0; 16];
        rodata.driver_comm[..n].copy_from_slice(&comm.as_bytes()[..n]);
    }
    let skel = open.load()?;
    let _links = skel.attach()?;
    let tally = Tally::default();
    let rb = skel.maps().rb()?;
    let mut builder = RingBuffer::builder();
    builder.batch(batch).add(&rb, |data| {
        if let Some(e) = wasm_bpf::from_bytes::<BenchEvent>(data) {
            tally.check(&e);
        }
        0
    })?;
    let mut ring = builder.build()?;
    println!("ready");

    let start = Instant::now();
    let mut err = 0;
    let mut drain_seconds = 0.0;
    if !stream {
        let stdin = io::stdin();
        let mut line = String::new();
        while err == 0 && stdin.lock().read_line(&mut line)? > 0 {
            line.clear();
            let t = Instant::now();
            loop {
                match ring.poll(0) {
                    Err(e) => {
                        err = -e.raw_os_error().unwrap_or(1);
                        break;
                    }
                    Ok(0) => break,
                    Ok(_) => {}
                }
            }
            drain_seconds += t.elapsed().as_secs_f64();
            println!("drained {}", tally.records.get());
        }
    }
    while stream {
        match ring.poll(100) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => break,
            Err(e) => {
                err = -e.raw_os_error().unwrap_or(1);
                break;
            }
            Ok(_) => {}
        }
    }
    let seconds = if stream { start.elapsed().as_secs_f64() } else { drain_seconds };
    // After a stop, collect what is still in the ring.
    while stream && ring.consume().map_or(false, |n| n > 0) {}
    drop(ring);
    let counters = skel.bss()?.counters;
    println!("{{\"records\": {}, \"seconds\": {seconds:.6}, \"out_of_order\": {}, \"emitted\": {}, \"drops\": {}, \"error\": {err}}}",
             tally.records.get(), tally.out_of_order.get(), counters.emitted, counters.drops);
    std::process::exit(if err != 0 { 1 } else { 0 });
}
