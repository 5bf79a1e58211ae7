//! The `xdiff` binary: the command line (`xdiff::entry`), without
//! libtorch, which only `xdiff-tch` links (`xdiff::backend::torch`).

fn main() -> std::process::ExitCode {
    xdiff::entry::main()
}

/// mimalloc keeps freed memory for the next allocation of the run instead
/// of handing it back to the kernel: on swin_t (ORT and the reference)
/// page faults fell from ~420k to ~150k and the wall time by 10-20 %
/// (docs/performance.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
