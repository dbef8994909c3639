// Exercises the wasm-bpf crate against the host: typed maps, data sections before
// and after load, autoload, links. One line per check, for tests/test_rust_sdk.py.
use std::io;

use wasm_bpf::{HashMap, MAP_ANY, MAP_NOEXIST};

include!(env!("WASM_BPF_SKEL"));
use maps_bpf::Kv;

fn kv(a: u32, b: u64) -> Kv {
    Kv { a, _pad0: [0; 4], b }
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
    let _again = prog.attach()?;
    println!("attach, detach, attach: ok");
    println!("not loaded: {}", skel.progs().never_loaded().attach().map(|_| ()).unwrap_err().kind() == io::ErrorKind::InvalidInput);

    let mut bss = skel.bss()?;
    bss.counter = 4242;
    skel.set_bss(&bss)?;
    println!("bss written: {}", skel.bss()?.counter);
    println!("rodata is frozen: {}", skel.obj.write_section(".rodata", &skel.rodata()?).is_err());
    Ok(())
}
