//! The `xdiff` binary: the command line (`xdiff::entry`), without
//! libtorch, which only `xdiff-tch` links (`xdiff::backend::torch`).

fn main() -> std::process::ExitCode {
    xdiff::entry::main()
}
