//! `--repro DIR` (issue 11 item 7): every introduced divergence becomes an
//! ONNX backend-test directory holding the node, the tensors the lane fed
//! it and the reference's outputs on them, and `xdiff run` on that
//! directory gives the same introduced verdict. Checked on a plain ONNX
//! Runtime lane (MaxPool with `auto_pad = VALID, ceil_mode = 1`, see
//! `cases/ops-pool.toml`) and on libtorch's idiomatic-port lane, whose
//! repro holds the port's own (already wrong) upstream values and
//! reproduces under the same patch (`--port tch`).
#![cfg(feature = "tch-backend")]

use std::path::{Path, PathBuf};

use serde_json::Value;
use xdiff::tensor::Tensor;

mod common;
use common::{write, xdiff};

/// X -> Relu -> MaxPool 3x3 / 2, `auto_pad = VALID`, `ceil_mode = 1` on a
/// 6x10 map: the spec's VALID length is 2x4, ORT computes 3x5.
const POOL: &str = r#"
name = "valid ceil"
seed = 3

[model.graph]
opset = 19
inputs = [{ name = "X", shape = [1, 1, 6, 10] }]
outputs = ["Y"]

[[model.graph.nodes]]
name = "relu"
op = "Relu"
inputs = ["X"]
outputs = ["R"]

[[model.graph.nodes]]
name = "pool/max"
op = "MaxPool"
inputs = ["R"]
outputs = ["Y"]
attrs = { kernel_shape = [3, 3], strides = [2, 2], auto_pad = "VALID", ceil_mode = 1 }

[inputs.X]
dist = "uniform"
low = -3.0
high = 3.0
"#;

/// Resize -> Relu -> Resize with a `tch:port` lane (see the fixture's header).
const PORT: &str = include_str!("fixtures/port-chain.toml");

/// `xdiff run <args> --format json`: the exit code and the one case's report.
fn run_json(args: &[&str]) -> (i32, Value) {
    let args = [&["run"], args, &["--format", "json"]].concat();
    let (code, out, err) = xdiff(&args);
    assert!(matches!(code, 0 | 1), "exit {code}: {err}");
    let doc: Value = serde_json::from_str(&out).expect("JSON report");
    (code, doc["cases"][0].clone())
}

fn lane<'a>(report: &'a Value, node: &str, lane: &str) -> &'a Value {
    let nodes = report["nodes"].as_array().expect("nodes");
    let n = nodes.iter().find(|n| n["name"] == node).expect("node");
    &n["lanes"][lane]
}

fn pb(path: &Path) -> Tensor {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let proto = xdiff::onnx::decode_tensor(&bytes).expect("TensorProto");
    Tensor::from_proto(&proto).expect("tensor")
}

/// The repro directories under `dir`, sorted by name.
fn dirs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("repro dir")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The reproduced lane is introduced at the node, and the expected data
/// (the reference's outputs written at repro time) is exactly what the
/// reference computes again (local error 0: zero difference, zero ulps).
fn assert_reproduced(report: &Value, node: &str, on: &str) {
    let x = lane(report, node, on);
    assert_eq!(x["verdict"], "diverged", "{x}");
    assert_eq!(x["origin"], "introduced", "{x}");
    let expected = lane(report, node, "expected");
    assert_eq!(expected["verdict"], "ok", "{expected}");
    let (_, out) = expected["outputs"]
        .as_object()
        .and_then(|o| o.iter().next())
        .expect("an expected output");
    let m = &out["comparison"];
    assert_eq!(m["kind"], "metrics", "{out}");
    assert_eq!(m["max_abs"], 0.0, "{out}");
    assert_eq!(m["max_ulp"], 0, "{out}");
}

#[test]
fn a_plain_ort_divergence_reproduces_from_its_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let case = write(tmp.path(), "pool.toml", POOL);
    let rp = tmp.path().join("rp");
    let (code, report) = run_json(&[
        path(&case),
        "--backends",
        "ort,reference",
        "--repro",
        path(&rp),
    ]);
    assert_eq!(code, 1);
    assert_eq!(lane(&report, "pool/max", "ort")["origin"], "introduced");
    // Only introduced divergences get a directory: ORT's Relu is exact.
    assert_eq!(dirs(&rp), ["valid_ceil--pool_max--ort"]);
    let dir: PathBuf = rp.join("valid_ceil--pool_max--ort");
    let recorded = lane(&report, "pool/max", "ort")["repro"]
        .as_str()
        .map(PathBuf::from);
    assert_eq!(recorded.as_ref(), Some(&dir));
    let set = dir.join("test_data_set_0");
    assert!(dir.join("model.onnx").is_file());
    assert!(!set.join("input_1.pb").exists(), "one input: R");
    // ORT's Relu is exact, so what it fed the pool is the reference's R.
    let r = pb(&set.join("input_0.pb"));
    assert_eq!(r.shape(), [1, 1, 6, 10]);
    let mut negative = false;
    r.for_each_f64(|v| negative |= v < 0.0);
    assert!(!negative, "a Relu output");
    // The reference's output on it, in the graph's float32: 2x4 windows.
    let y = pb(&set.join("output_0.pb"));
    assert_eq!(
        (y.dtype().name(), y.shape()),
        ("float32", &[1, 1, 2, 4][..])
    );

    // Same case, same bytes.
    let rp2 = tmp.path().join("rp2");
    run_json(&[
        path(&case),
        "--backends",
        "ort,reference",
        "--repro",
        path(&rp2),
    ]);
    let dir2 = rp2.join("valid_ceil--pool_max--ort");
    for f in [
        "model.onnx",
        "test_data_set_0/input_0.pb",
        "test_data_set_0/output_0.pb",
    ] {
        let read = |d: &Path| std::fs::read(d.join(f)).unwrap();
        assert_eq!(read(&dir), read(&dir2), "{f}");
    }

    let (code, again) = run_json(&[path(&dir), "--backends", "ort,reference"]);
    assert_eq!(code, 1);
    assert_reproduced(&again, "pool/max", "ort");
    let got = &lane(&again, "pool/max", "ort")["outputs"]["Y"]["comparison"];
    assert_eq!(got["kind"], "shape_mismatch", "{got}");
    assert_eq!(got["got"], serde_json::json!([1, 1, 3, 5]), "{got}");
}

#[test]
fn a_port_divergence_reproduces_under_the_same_patch_on_the_lanes_own_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let case = write(tmp.path(), "port.toml", PORT);
    let rp = tmp.path().join("rp");
    let out = tmp.path().join("out");
    let args = [
        path(&case),
        "--backends",
        "tch,reference",
        "--repro",
        path(&rp),
    ];
    let (code, _) = run_json(&[&args[..], &["--out", path(&out)]].concat());
    assert_eq!(code, 1);
    assert_eq!(dirs(&rp), ["port--up--tch_port", "port--up2--tch_port"]);

    // The second Resize got the port's own upstream values, not the
    // reference's: relu(reference's `up` output) differs from them.
    let up = rp.join("port--up--tch_port/test_data_set_0");
    let up2 = rp.join("port--up2--tch_port/test_data_set_0");
    let reference_r: Vec<f64> = pb(&up.join("output_0.pb"))
        .to_f64_vec()
        .into_iter()
        .map(|v| v.max(0.0))
        .collect();
    let port_r = pb(&up2.join("input_0.pb"));
    assert_eq!(port_r.shape(), [1, 1, 5, 5]);
    assert_ne!(port_r.to_f64_vec(), reference_r);
    // The initializer the node reads is a graph input too.
    let scales = [1.0f32, 1.0, 1.7, 1.7].map(f64::from);
    assert_eq!(pb(&up2.join("input_1.pb")).to_f64_vec(), scales);

    let dir = rp.join("port--up2--tch_port");
    let (code, again) = run_json(&[path(&dir), "--backends", "tch,reference", "--port", "tch"]);
    assert_eq!(code, 1);
    assert_reproduced(&again, "up2", "tch:port");
    assert_eq!(lane(&again, "up2", "tch")["verdict"], "ok");
    // Without the patch the faithful lowering agrees: the repro holds the
    // node as the case has it, not the port's rewrite.
    let (code, _) = run_json(&[path(&dir), "--backends", "tch,reference"]);
    assert_eq!(code, 0);

    // Reports point at the directories: one text line each, and Markdown
    // links relative to the report's folder.
    let txt = std::fs::read_to_string(out.join("report.txt")).unwrap();
    for d in ["port--up--tch_port", "port--up2--tch_port"] {
        let line = format!("  repro: {}", rp.join(d).display());
        assert!(txt.lines().any(|l| l == line), "{line} in\n{txt}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("[repro](../rp/port--up2--tch_port)"), "{md}");
}

#[test]
fn an_unwritable_repro_folder_is_one_line_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let case = write(tmp.path(), "pool.toml", POOL);
    let file = write(tmp.path(), "not-a-dir", "");
    let args = [
        "run",
        path(&case),
        "--backends",
        "ort,reference",
        "--repro",
        path(&file),
    ];
    let (code, _, err) = xdiff(&args);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("xdiff: --repro: "), "{err}");
}
