//! `xdiff` does not link libtorch (`src/backend/torch.rs`): loading it costs
//! every process ~0.3 s before `main`, so only `xdiff-tch`, which runs the
//! tch lane, links it. The dynamic loader says what each program loads
//! (`LD_TRACE_LOADED_OBJECTS`, what `ldd` uses).

use std::process::Command;

/// The shared libraries `exe` loads at start-up, one per line.
fn loaded(exe: &str) -> String {
    let out = Command::new(exe)
        .env("LD_TRACE_LOADED_OBJECTS", "1")
        .output()
        .expect("run the program under the loader's trace");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn xdiff_starts_without_libtorch_and_xdiff_tch_with_it() {
    let xdiff = loaded(env!("CARGO_BIN_EXE_xdiff"));
    assert!(xdiff.contains("libc.so"), "no loader trace: {xdiff}");
    for lib in ["libtorch_cpu", "libc10", "libgomp"] {
        assert!(!xdiff.contains(lib), "xdiff loads {lib}:\n{xdiff}");
    }
    let tch = loaded(env!("CARGO_BIN_EXE_xdiff-tch"));
    assert!(tch.contains("libtorch_cpu"), "{tch}");
}

#[test]
fn xdiff_ops_lists_the_tch_lowerings() {
    // `xdiff` hands `ops` to `xdiff-tch`, which holds the tch registry.
    let out = Command::new(env!("CARGO_BIN_EXE_xdiff"))
        .arg("ops")
        .output()
        .expect("xdiff ops");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let conv = text
        .lines()
        .find(|l| l.starts_with("| Conv | tch |"))
        .unwrap_or_else(|| panic!("no tch row for Conv:\n{text}"));
    assert!(conv.contains("native"), "{conv}");
}

#[test]
fn a_missing_xdiff_tch_is_one_line_and_exit_2() {
    for isolation in ["lane", "none"] {
        let out = Command::new(env!("CARGO_BIN_EXE_xdiff"))
            .arg("run")
            .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases/quantize.toml"))
            .args(["--backends", "tch,reference"])
            .args(["--isolation", isolation])
            .env("XDIFF_TCH_EXE", "/nonexistent/xdiff-tch")
            .output()
            .expect("xdiff run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{isolation}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("/nonexistent/xdiff-tch"), "{err}");
    }
}
