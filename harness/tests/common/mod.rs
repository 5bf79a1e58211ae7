//! Helpers shared by the integration tests that drive the `xdiff` binary:
//! running it, writing case files, and a case more than one crate runs.
//! Each test crate uses a subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the `xdiff` binary: exit code, stdout, stderr.
pub fn xdiff(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xdiff"))
        .args(args)
        .output()
        .expect("run xdiff");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `X -> resize (cubic) -> relu -> neg`: candle has no bicubic.
pub const CUBIC: &str = r#"
[model.graph]
opset = 19
inputs = [{ name = "X", shape = [1, 1, 4, 4] }]
outputs = ["Z"]
[[model.graph.initializers]]
name = "scales"
shape = [4]
values = [1.0, 1.0, 2.0, 2.0]
[[model.graph.nodes]]
name = "resize"
op = "Resize"
inputs = ["X", "", "scales"]
outputs = ["a"]
attrs = { mode = "cubic" }
[[model.graph.nodes]]
name = "relu"
op = "Relu"
inputs = ["a"]
outputs = ["b"]
[[model.graph.nodes]]
name = "neg"
op = "Neg"
inputs = ["b"]
outputs = ["Z"]
"#;
