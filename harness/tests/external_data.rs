//! ONNX external data (issue 12, item 4): a model whose initializers live in
//! side files (`location`/`offset`/`length`, as `onnx.external_data_helper`
//! writes them) gives the same report as the same model in one file, and a
//! side file that escapes the model's folder, is missing or is too short is
//! one line naming the tensor and the file, exit 2.

use std::path::Path;

use prost::Message;
use xdiff::graph::Weights;
use xdiff::onnx::{self, data_type, TensorProto};

mod common;
use common::{write, xdiff};

fn vi(name: &str, dims: &[i64]) -> onnx::ValueInfoProto {
    onnx::ValueInfoProto {
        name: name.into(),
        r#type: Some(onnx::TypeProto {
            value: Some(onnx::type_proto::Value::TensorType(
                onnx::type_proto::Tensor {
                    elem_type: data_type::FLOAT,
                    shape: Some(onnx::TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|&n| onnx::Dimension {
                                value: Some(onnx::dimension::Value::DimValue(n)),
                                denotation: String::new(),
                            })
                            .collect(),
                    }),
                },
            )),
            denotation: String::new(),
        }),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str) -> onnx::NodeProto {
    onnx::NodeProto {
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    }
}

/// A float initializer with its values as little-endian raw bytes.
fn init(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: data_type::FLOAT,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// `Y = Relu(X·W + B) * K`, X [2,4], W [4,3], B [3], K [3].
fn model() -> onnx::ModelProto {
    let w: Vec<f32> = (0..12).map(|i| (i as f32 - 5.5) / 7.0).collect();
    onnx::ModelProto {
        ir_version: 8,
        opset_import: vec![onnx::OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(onnx::GraphProto {
            node: vec![
                node("MatMul", &["X", "W"], "M"),
                node("Add", &["M", "B"], "A"),
                node("Relu", &["A"], "R"),
                node("Mul", &["R", "K"], "Y"),
            ],
            initializer: vec![
                init("W", &[4, 3], &w),
                init("B", &[3], &[0.1, -0.2, 0.3]),
                init("K", &[3], &[2.0, 0.5, -1.5]),
            ],
            input: vec![vi("X", &[2, 4])],
            output: vec![vi("Y", &[2, 3])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn entry(key: &str, value: impl ToString) -> onnx::StringStringEntryProto {
    onnx::StringStringEntryProto {
        key: key.into(),
        value: value.to_string(),
    }
}

/// Moves initializer `i`'s bytes to `location` at `offset` (padding the file
/// with zeros up to it), as `onnx.external_data_helper` does.
fn externalize(m: &mut onnx::ModelProto, dir: &Path, i: usize, location: &str, offset: usize) {
    let t = &mut m.graph.as_mut().unwrap().initializer[i];
    let path = dir.join(location);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = std::fs::read(&path).unwrap_or_default();
    file.resize(offset, 0);
    file.extend_from_slice(&t.raw_data);
    std::fs::write(&path, file).unwrap();
    t.external_data = vec![
        entry("location", location),
        entry("offset", offset),
        entry("length", t.raw_data.len()),
    ];
    t.data_location = 1;
    t.raw_data.clear();
}

const CASE: &str = "name = \"tiny\"\nseed = 7\n[model]\npath = \"model.onnx\"\n";

/// Writes the single-file model and case in `dir`.
fn single(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("model.onnx"), model().encode_to_vec()).unwrap();
    write(dir, "case.toml", CASE)
}

/// Writes the model with W and B in `weights.bin` (B after a gap, at an
/// aligned offset) and K in `sub/k.bin`: several side files.
fn external(dir: &Path) -> std::path::PathBuf {
    let mut m = model();
    externalize(&mut m, dir, 0, "weights.bin", 0);
    externalize(&mut m, dir, 1, "weights.bin", 64);
    externalize(&mut m, dir, 2, "sub/k.bin", 0);
    std::fs::write(dir.join("model.onnx"), m.encode_to_vec()).unwrap();
    write(dir, "case.toml", CASE)
}

fn digest(case: &Path) -> String {
    let cases = xdiff::case::load(case).unwrap_or_else(|e| panic!("{e}"));
    let reports: Vec<_> = cases
        .iter()
        .map(|c| xdiff::run::run_case(c, &c.backends).unwrap().report)
        .collect();
    xdiff::report::digest::digest_reports(&reports)
}

#[test]
fn external_data_gives_the_report_of_the_single_file_model() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (one, split) = (single(a.path()), external(b.path()));
    let ga = &xdiff::case::load(&one).unwrap()[0];
    let gb = &xdiff::case::load(&split).unwrap()[0];
    assert_eq!(ga.graph.initializers, gb.graph.initializers);
    assert_eq!(ga.inputs, gb.inputs);
    let (da, db) = (digest(&one), digest(&split));
    assert!(da.contains("PASS") || da.contains("pass"), "{da}");
    assert_eq!(da, db);
    // Every lane (ORT included: it gets the model with the data read in).
    let (code, out, err) = xdiff(&["run", split.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    for lane in ["ort", "tch", "candle"] {
        assert!(out.contains(&format!("lane {lane}")), "{lane}: {out}");
    }
    assert!(out.contains("4/4 compared"), "{out}");
}

/// Runs a case on the reference only: exit 2, one stderr line with every needle.
fn expect_bad(case: &Path, needles: &[&str]) {
    let (code, _, err) = xdiff(&["run", case.to_str().unwrap(), "--backends", "reference"]);
    assert_eq!(code, 2, "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` missing from: {err}");
    }
}

/// The external model with initializer `i`'s `location` replaced.
fn relocated(dir: &Path, i: usize, location: &str) -> std::path::PathBuf {
    let case = external(dir);
    let path = dir.join("model.onnx");
    let mut m = onnx::decode_model(&std::fs::read(&path).unwrap()).unwrap();
    m.graph.as_mut().unwrap().initializer[i].external_data[0] = entry("location", location);
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    case
}

#[test]
fn a_location_outside_the_model_folder_is_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let inner = d.path().join("m");
    std::fs::create_dir(&inner).unwrap();
    std::fs::write(d.path().join("w.bin"), [0u8; 64]).unwrap();
    let case = relocated(&inner, 0, "../w.bin");
    expect_bad(&case, &["model.onnx", "tensor `W`", "`../w.bin`", "folder"]);
    let abs = d.path().join("w.bin");
    let case = relocated(&inner, 0, abs.to_str().unwrap());
    expect_bad(&case, &["tensor `W`", "w.bin", "folder"]);
}

#[test]
fn a_missing_side_file_is_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let case = relocated(d.path(), 2, "gone.bin");
    expect_bad(
        &case,
        &["model.onnx", "tensor `K`", "`gone.bin`", "cannot open"],
    );
}

#[test]
fn a_short_side_file_is_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let case = external(d.path());
    // B lies at 64..76 of weights.bin: cut the file inside it.
    let path = d.path().join("weights.bin");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..70]).unwrap();
    expect_bad(
        &case,
        &[
            "tensor `B`",
            "`weights.bin`",
            "70 bytes",
            "offset 64 + length 12",
        ],
    );
}

#[test]
fn external_data_without_the_model_path_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    external(d.path());
    let bytes = std::fs::read(d.path().join("model.onnx")).unwrap();
    let e = xdiff::graph::Graph::from_bytes(&bytes).unwrap_err();
    assert!(e.to_string().contains("external data"), "{e}");
    let g = xdiff::graph::Graph::load(&d.path().join("model.onnx")).unwrap();
    assert_eq!(g.initializers.len(), 3);
}

/// torch 2.11's default exporter (`cases/models/gen_torch_external.py`)
/// writes `model.onnx.data`: the committed export runs as exported.
#[test]
fn the_torch_default_export_runs_on_every_lane() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases/torch-external.toml");
    let (code, out, err) = xdiff(&["run", case.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    for lane in ["reference", "ort", "tch", "candle"] {
        assert!(
            out.lines()
                .any(|l| l.contains(&format!("lane {lane} ")) && l.contains("6/6 compared")),
            "{lane}: {out}"
        );
    }
}

/// A lane worker reads a model loaded from a file from that file itself
/// (no weights through its pipe): `Graph::reload` gives the graph the
/// parent loaded (its weights checked, and converted where read; as filed
/// for ORT), and refuses a file changed since.
#[test]
fn a_worker_reloads_the_model_file_and_refuses_a_changed_one() {
    let d = tempfile::tempdir().unwrap();
    let case = external(d.path());
    let loaded = &xdiff::case::load(&case).unwrap()[0].graph;
    let file = loaded.file.as_deref().expect("loaded from a file");
    assert_eq!(file.path, d.path().join("model.onnx"));
    let names = |g: &xdiff::graph::Graph| -> Vec<String> {
        g.nodes
            .iter()
            .map(|n| format!("{}:{}", n.name, n.op_type))
            .collect()
    };
    let full = xdiff::graph::Graph::reload(file, Weights::Tensors).unwrap();
    // The weights are checked at load and converted where read.
    assert_eq!(full.initializers.kept(), 0);
    assert_eq!(full.initializers, loaded.initializers);
    assert_eq!(full.initializers.kept(), full.initializers.len());
    assert_eq!(names(&full), names(loaded));
    assert_eq!(full.model, loaded.model, "the side files' weights read in");
    // For ORT, which maps the side files itself: the model as filed.
    assert!(file.external);
    let filed = xdiff::graph::Graph::reload(file, Weights::AsFiled).unwrap();
    let inits = &filed.model.graph.as_ref().unwrap().initializer;
    assert!(inits
        .iter()
        .all(|t| t.raw_data.is_empty() && t.data_location == 1));
    assert_eq!(names(&filed), names(loaded));
    assert_eq!(
        full.inputs.iter().map(|v| &v.name).collect::<Vec<_>>(),
        ["X"]
    );
    // A model built in memory has no file to reload.
    let built = xdiff::graph::Graph::from_model(model()).unwrap();
    assert!(built.file.is_none());
    // The file rewritten since: refused, naming it.
    let mut m = model();
    m.doc_string = "edited".into();
    std::fs::write(d.path().join("model.onnx"), m.encode_to_vec()).unwrap();
    let err = xdiff::graph::Graph::reload(file, Weights::Tensors)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.onnx") && err.contains("changed"),
        "{err}"
    );
}
