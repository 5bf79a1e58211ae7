//! Every class of bad input gets one clear line naming the file and key, and
//! exit code 2 — never a panic or a backtrace (issue 2, item 13).

use std::path::Path;

use prost::Message;
use xdiff::onnx;

mod common;
use common::{write, xdiff};

/// Runs a case on the reference only and expects exit 2 with one stderr line containing every `needle`.
fn expect_bad(case: &Path, needles: &[&str]) {
    let (code, _, err) = xdiff(&["run", case.to_str().unwrap(), "--backends", "reference"]);
    assert_eq!(code, 2, "stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected, got: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    for n in needles {
        assert!(err.contains(n), "`{n}` missing from: {err}");
    }
}

const GOOD: &str = r#"
[model.graph]
opset = 17
inputs = [{ name = "X", shape = [2, 3] }]
outputs = ["Y"]
[[model.graph.nodes]]
op = "Relu"
inputs = ["X"]
outputs = ["Y"]
"#;

#[test]
fn good_case_passes_on_the_reference() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "good.toml", GOOD);
    let (code, out, err) = xdiff(&["run", p.to_str().unwrap(), "--backends", "reference"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn malformed_toml() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "bad.toml", "[model\nname = 3");
    expect_bad(&p, &["bad.toml", "line"]);
}

#[test]
fn unknown_key_with_suggestion() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "typo.toml",
        &format!("bakends = [\"ort\"]\n{GOOD}"),
    );
    expect_bad(
        &p,
        &[
            "typo.toml",
            "unknown key `bakends`",
            "did you mean `backends`",
        ],
    );
}

#[test]
fn missing_case_file() {
    let d = tempfile::tempdir().unwrap();
    expect_bad(&d.path().join("nope.toml"), &["nope.toml", "no such file"]);
}

#[test]
fn missing_model_file() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "m.toml", "[model]\npath = \"absent.onnx\"\n");
    expect_bad(&p, &["m.toml", "model.path", "absent.onnx"]);
}

fn relu_model() -> Vec<u8> {
    let vi = |name: &str| onnx::ValueInfoProto {
        name: name.into(),
        r#type: Some(onnx::TypeProto {
            value: Some(onnx::type_proto::Value::TensorType(
                onnx::type_proto::Tensor {
                    elem_type: 1,
                    shape: Some(onnx::TensorShapeProto {
                        dim: [("N", 0), ("", 4)]
                            .iter()
                            .map(|(p, n)| onnx::Dimension {
                                value: Some(if p.is_empty() {
                                    onnx::dimension::Value::DimValue(*n)
                                } else {
                                    onnx::dimension::Value::DimParam(p.to_string())
                                }),
                                denotation: String::new(),
                            })
                            .collect(),
                    }),
                },
            )),
            denotation: String::new(),
        }),
        ..Default::default()
    };
    onnx::ModelProto {
        ir_version: 8,
        opset_import: vec![onnx::OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(onnx::GraphProto {
            node: vec![onnx::NodeProto {
                op_type: "Relu".into(),
                input: vec!["X".into()],
                output: vec!["Y".into()],
                ..Default::default()
            }],
            input: vec![vi("X")],
            output: vec![vi("Y")],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn truncated_onnx() {
    let d = tempfile::tempdir().unwrap();
    let bytes = relu_model();
    std::fs::write(d.path().join("cut.onnx"), &bytes[..bytes.len() / 2]).unwrap();
    let p = write(
        d.path(),
        "cut.toml",
        "[model]\npath = \"cut.onnx\"\n[inputs.X]\nshape = [2, 4]\n",
    );
    expect_bad(&p, &["cut.onnx", "not a valid ONNX model"]);
}

#[test]
fn symbolic_dimension_is_fixed_by_the_case() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("m.onnx"), relu_model()).unwrap();
    let p = write(
        d.path(),
        "ok.toml",
        "[model]\npath = \"m.onnx\"\n[inputs.X]\nshape = [3, 4]\n",
    );
    let (code, out, err) = xdiff(&["run", p.to_str().unwrap(), "--backends", "reference"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn input_shape_contradicts_model() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("m.onnx"), relu_model()).unwrap();
    let p = write(
        d.path(),
        "shape.toml",
        "[model]\npath = \"m.onnx\"\n[inputs.X]\nshape = [2, 5]\n",
    );
    expect_bad(
        &p,
        &["shape.toml", "inputs.X.shape", "contradicts", "dimension 1"],
    );
}

#[test]
fn symbolic_dimension_left_open() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("m.onnx"), relu_model()).unwrap();
    let p = write(d.path(), "open.toml", "[model]\npath = \"m.onnx\"\n");
    expect_bad(&p, &["open.toml", "inputs.X.shape", "symbolic"]);
}

#[test]
fn unknown_op() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "op.toml",
        &GOOD.replace("op = \"Relu\"", "op = \"Frobnicate\""),
    );
    expect_bad(&p, &["op.toml", "Frobnicate", "not an ONNX operator"]);
}

#[test]
fn nan_in_inputs_refused_unless_allowed() {
    let d = tempfile::tempdir().unwrap();
    let nan = format!("{GOOD}\n[inputs.X]\nvalues = [1.0, nan, 3.0, 4.0, 5.0, 6.0]\n");
    let p = write(d.path(), "nan.toml", &nan);
    expect_bad(&p, &["nan.toml", "inputs.X", "NaN", "allow_nan"]);
    let ok = write(
        d.path(),
        "nan-ok.toml",
        &format!("[options]\nallow_nan = true\n{nan}"),
    );
    let (code, out, err) = xdiff(&["run", ok.to_str().unwrap(), "--backends", "reference"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn unknown_backend_and_device() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "good.toml", GOOD);
    let (code, _, err) = xdiff(&["run", p.to_str().unwrap(), "--backends", "tensorflow"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown backend `tensorflow`"), "{err}");
    let (code, _, err) = xdiff(&["run", p.to_str().unwrap(), "--device", "tpu"]);
    assert_eq!(code, 2);
    assert!(err.contains("--device"), "{err}");
}

#[test]
fn wrong_value_count() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "n.toml",
        &format!("{GOOD}\n[inputs.X]\nvalues = [1.0, 2.0]\n"),
    );
    expect_bad(
        &p,
        &["n.toml", "inputs.X.values", "2 values for shape [2, 3]"],
    );
}

#[test]
fn a_directory_run_reports_a_bad_case_and_runs_the_others() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a_good.toml", GOOD);
    write(d.path(), "b_malformed.toml", "[model\nname = 3");
    write(
        d.path(),
        "c_missing.toml",
        "[model]\npath = \"absent.onnx\"\n",
    );
    write(d.path(), "d_good.toml", GOOD);
    let dir = d.path().to_str().unwrap();
    let (code, out, err) = xdiff(&["run", dir, "--backends", "reference"]);
    assert_eq!(code, 2, "bad input at the end: {out}{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("2 case file(s) could not be loaded")
            && err.contains("b_malformed.toml")
            && err.contains("c_missing.toml"),
        "{err}"
    );
    // Each bad file is its own result line; both good cases ran.
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("ERROR ")).collect();
    assert_eq!(errors.len(), 2, "{out}");
    assert!(errors[0].contains("b_malformed.toml") && errors[0].contains("line"));
    assert!(errors[1].contains("c_missing.toml") && errors[1].contains("absent.onnx"));
    assert!(
        out.contains("PASS a_good") && out.contains("PASS d_good"),
        "{out}"
    );
    assert!(out.contains("2 passed, 0 failed, 2 not loaded"), "{out}");

    let (code, json, _) = xdiff(&["run", dir, "--backends", "reference", "--format", "json"]);
    assert_eq!(code, 2);
    let doc: serde_json::Value = serde_json::from_str(&json).expect("a JSON report");
    assert_eq!(doc["cases"].as_array().unwrap().len(), 2);
    let not_loaded = doc["summary"]["not_loaded"].as_array().unwrap();
    assert_eq!(not_loaded.len(), 2);
    assert!(not_loaded[0]["file"]
        .as_str()
        .unwrap()
        .ends_with("b_malformed.toml"));
}

#[test]
fn a_bad_file_named_on_the_command_line_stops_the_run() {
    let d = tempfile::tempdir().unwrap();
    let good = write(d.path(), "good.toml", GOOD);
    let bad = write(d.path(), "bad.toml", "[model\nname = 3");
    let (code, out, err) = xdiff(&[
        "run",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
        "--backends",
        "reference",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(out, "", "nothing runs");
    assert!(err.contains("bad.toml"), "{err}");
}

/// A `[[sweep]]` is read once, apart from the variants it expands to:
/// each of its mistakes is still one line naming the key.
#[test]
fn malformed_sweeps_name_the_key() {
    let d = tempfile::tempdir().unwrap();
    let sweep = |body: &str| format!("{GOOD}\n[params]\nk = 1\n\n[[sweep]]\n{body}\n");
    for (file, body, key) in [
        (
            "name.toml",
            "name = 3\n[sweep.grid]\nk = [1, 2]",
            "sweep[0].name",
        ),
        (
            "key.toml",
            "nmae = \"a\"\n[sweep.grid]\nk = [1]",
            "sweep[0].nmae",
        ),
        ("grid.toml", "name = \"a\"\ngrid = 3", "sweep[0].grid"),
        ("values.toml", "[sweep.grid]\nk = []", "sweep[0].grid.k"),
    ] {
        let p = write(d.path(), file, &sweep(body));
        expect_bad(&p, &[file, key]);
    }
}
