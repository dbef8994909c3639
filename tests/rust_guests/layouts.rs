// Reads one initialized instance of every kind of member (tests/sdk_fixtures/layouts.h)
// through the Rust skeleton's types, from the object's .data before load.
include!(env!("WASM_BPF_SKEL"));

fn main() {
    let mut open = layouts_bpf::open().expect("open");
    let d = open.data().expect(".data").lt_image;
    let tight = d.tight; // a packed struct: fields are read by value
    let (tight_c, tight_i, tight_l) = (tight.c, tight.i, tight.l);
    println!("c {}", d.c as char);
    println!("l {} ul {:#x} str {:#x} fn {:#x}", d.l, d.ul, d.str, d.fn_);
    println!("in {} {} {}", d.in_.a, d.in_.b, d.in_.c);
    println!("arr1 {} {} {}", d.arr[1].a, d.arr[1].b, d.arr[1].c);
    // SAFETY: plain integers of initialized unions.
    println!("num {:#x} u {:#x}", unsafe { d.num.i }, unsafe { d.anon1.u });
    println!("anon_named {} {}", d.anon_named.sx, d.anon_named.sy);
    println!("tight {} {:#x} {}", tight_c as char, tight_i, tight_l);
    let b = d.bits;
    println!("bits {} {} {} {:#x} {} {} {} {} {}", b.a(), b.b(), b.c(), b.d(), b.e(), b.f(), b.g(), b.h(), b.i());
    println!("col {} sm {} bg {:#x}", d.col, d.sm, d.bg);
    println!("t {:#x} lt {}", d.t, d.lt);
    println!("pairs {} {} {} {}", d.pairs[0][0].x, d.pairs[0][0].y, d.pairs[1][2].x, d.pairs[1][2].y);
    println!("matrix {} {} {}", d.matrix[0][0][0], d.matrix[1][2][3], d.matrix[1][0][0]);
    println!("name {}", String::from_utf8_lossy(&d.name[..12]));
    println!("flag {} last {:#x} d {} ptr_in {:#x}", d.flag, d.last, d.d, d.ptr_in);
    println!("consts {} {} {}", layouts_bpf::LT_BLUE, layouts_bpf::LT_S_B, layouts_bpf::LT_BIG_B);
    println!("sizes {} {} {}", std::mem::size_of::<layouts_bpf::LtAll>(), std::mem::size_of::<layouts_bpf::LtTight>(),
             std::mem::size_of::<layouts_bpf::LtNum>());
}
