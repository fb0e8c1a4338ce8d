// A Rust process: rustc's legacy mangling is Itanium's plus a `17h<hash>E`
// suffix, which the symbolizer strips to main::workload::hot_rust_function.
mod workload {
    #[inline(never)]
    pub fn hot_rust_function(x: u64) -> u64 {
        x.wrapping_mul(3).wrapping_add(1)
    }
}

fn main() {
    let mut sink = 0u64;
    loop {
        sink = workload::hot_rust_function(sink);
        std::thread::sleep(std::time::Duration::from_millis(100));
        if sink == 7 {
            println!("{}", sink);
        }
    }
}
