//! `xdiff-tch`: the xdiff command line with libtorch linked. It runs the
//! tch lane's workers (`xdiff-tch __lane-worker`) for `xdiff`, and whole
//! runs where `--isolation none` asks for every lane in one process
//! (`xdiff::backend::torch`).

fn main() -> std::process::ExitCode {
    xdiff::backend::torch::link();
    xdiff::entry::main()
}
