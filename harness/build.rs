//! Keeps libtorch out of the `xdiff` executable (`src/backend/torch.rs`).
//! The library links torch-sys's C++ wrapper; its inline functions are
//! exported by default, and an exported symbol that libtorch also defines
//! stays live and keeps libtorch a load-time dependency, even though
//! nothing in `xdiff`'s `main` calls it. `--exclude-libs ALL` keeps
//! archive members' symbols local, so the linker's garbage collection and
//! `--as-needed` drop libtorch: `xdiff` starts in milliseconds instead of
//! ~0.3 s. `xdiff-tch` links libtorch as before.
fn main() {
    println!("cargo::rustc-link-arg-bin=xdiff=-Wl,--exclude-libs,ALL");
}
