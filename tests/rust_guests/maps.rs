// Exercises the wasm-bpf crate against the host: typed maps, data sections before
// and after load, autoload, links. One line per check, for tests/test_rust_sdk.py.
use std::io;

use std::cell::Cell;

use wasm_bpf::{HashMap, RingBuffer, MAP_ANY, MAP_NOEXIST};

include!(env!("WASM_BPF_SKEL"));
use maps_bpf::Kv;

fn kv(a: u32, b: u64) -> Kv {
    Kv { a, b, ..Default::default() }
}

fn main() -> io::Result<()> {
    let mut open = maps_bpf::open()?;
    open.rodata()?.limit = 9;
    open.data()?.seed = 5;
    open.bss()?.counter = 100;
    open.obj.set_autoload("never_loaded", false)?;
    println!("unknown program: {}", open.obj.set_autoload("nope", false).unwrap_err());
    let skel = open.load()?;
    println!("after load: limit {} seed {} counter {}", skel.rodata()?.limit, skel.data()?.seed, skel.bss()?.counter);

    let hash = skel.maps().hash()?;
    for k in 1..=5u32 {
        hash.insert(&k, &kv(k * 10, u64::from(k) << 40), MAP_ANY)?;
    }
    let three = hash.get(&3)?.expect("key 3");
    println!("get 3: {} {:#x}; get 9: {:?}", three.a, three.b, hash.get(&9)?.map(|v| v.a));
    println!("insert existing with NOEXIST: {:?}", hash.insert(&1, &kv(0, 0), MAP_NOEXIST).map_err(|e| e.kind()));
    println!("remove 2: {}, again: {}", hash.remove(&2)?, hash.remove(&2)?);
    let took = hash.take(&4)?.map(|v| v.a);
    let mut keys: Vec<u32> = hash.keys()?.collect::<io::Result<_>>()?;
    keys.sort_unstable();
    println!("take 4: {took:?}; keys {keys:?}");
    let mut entries: Vec<(u32, u32)> = hash.iter()?.map(|e| e.map(|(k, v)| (k, v.a))).collect::<io::Result<_>>()?;
    entries.sort_unstable();
    let mut batched: Vec<(u32, u32)> = hash.entries_batched(2)?.into_iter().map(|(k, v)| (k, v.a)).collect();
    batched.sort_unstable();
    println!("iter {entries:?}; batched {batched:?}");
    match HashMap::<u64, Kv>::new(skel.obj.map("hash")?) {
        Err(e) => println!("wrong key type: {e}"),
        Ok(_) => println!("wrong key type accepted"),
    }

    let arr = skel.maps().arr()?;
    arr.set(2, &0xabcd)?;
    println!("array len {} [2] {:#x} [0] {} [4] {:?}", arr.len(), arr.get(2)?, arr.get(0)?,
             arr.get(4).map_err(|e| e.kind()));

    let cpus = wasm_bpf::num_possible_cpus()?;
    let pca = skel.maps().pca()?;
    let values: Vec<u32> = (0..cpus as u32).map(|c| c + 1).collect();
    pca.set(1, &values)?;
    println!("percpu array ok: {}", pca.get(1)? == values && pca.get(0)?.iter().all(|v| *v == 0));
    println!("percpu wrong count: {}", pca.set(0, &[1]).is_err());
    let pch = skel.maps().pch()?;
    pch.insert(&77, &vec![5u64; cpus], MAP_ANY)?;
    println!("percpu hash sum: {}", pch.get(&77)?.expect("key 77").iter().sum::<u64>() == 5 * cpus as u64);

    let prog = skel.progs().on_getppid();
    let link = prog.attach()?;
    link.detach()?;
    let again = prog.attach()?;
    println!("attach, detach, attach: ok");
    // Any process's getppid() adds to .bss counter while this link lives: detached
    // here, so the value written below is the value read back.
    again.detach()?;
    println!("not loaded: {}", skel.progs().never_loaded().attach().map(|_| ()).unwrap_err().kind() == io::ErrorKind::InvalidInput);

    // Our own println! is a write of the host process: a record in each buffer.
    let _writes = skel.progs().on_write().attach()?;
    for batch in [false, true] {
        let (ring_seen, perf_seen, comm_ok) = (Cell::new(0), Cell::new(0), Cell::new(true));
        let check = |seen: &Cell<u32>, data: &[u8]| {
            comm_ok.set(comm_ok.get() && data.len() == 20 && &data[4..13] == b"wasm-bpf\0");
            seen.set(seen.get() + 1);
            0
        };
        let (ring, perf) = (skel.maps().ring()?, skel.maps().perf()?);
        let mut builder = RingBuffer::builder();
        builder.batch(batch).add(&ring, |d| check(&ring_seen, d))?.add(&perf, |d| check(&perf_seen, d))?;
        let mut buffers = builder.build()?;
        println!("polling (batch {batch})");
        for _ in 0..50 {
            if ring_seen.get() > 0 && perf_seen.get() > 0 {
                break;
            }
            buffers.poll(100)?;
        }
        println!("records in ring and perf buffer: {} {}, comm right: {}", ring_seen.get() > 0, perf_seen.get() > 0,
                 comm_ok.get());
    }
    let commands = skel.maps().commands()?;
    commands.submit(&40u64.to_ne_bytes())?;
    commands.submit(&2u64.to_ne_bytes())?;
    println!("submitted"); // a write: on_write drains the user ring buffer
    println!("user ring buffer drained: {}", skel.bss()?.commands_sum);

    let not_a_buffer = skel.obj.map("hash")?;
    println!("not a buffer: {}", RingBuffer::builder().add(&not_a_buffer, |_| 0).map(|_| ()).unwrap_err());

    let mut bss = skel.bss()?;
    bss.counter = 4242;
    skel.set_bss(&bss)?;
    println!("bss written: {}", skel.bss()?.counter);
    println!("rodata is frozen: {}", skel.obj.write_section(".rodata", &skel.rodata()?).is_err());
    Ok(())
}
