//! The `onnx-ref` lane (ONNX's Python ReferenceEvaluator, issue 13 item 5)
//! through the `xdiff` binary: it agrees with xdiff's reference on a small
//! graph, and a node ONNX's reference cannot run (Scatter, deprecated at
//! opset 11, has no implementation in onnx 1.19) is an `error` naming the
//! node, while the nodes before it and the other lanes go on. Needs the
//! runtimes venv (ci/setup-runtimes), as the ORT lane does.

use serde_json::Value;

mod common;
use common::{write, xdiff};

/// X -> Relu -> A -> Scatter(A, idx, U) -> B -> Sigmoid -> Y, opset 10.
const CASE: &str = r#"
name = "onnx-ref-lane"
backends = ["onnx-ref", "reference"]
[model.graph]
opset = 10
inputs = [{ name = "X", shape = [2, 3] }, { name = "U", shape = [2, 1] }]
outputs = ["Y"]
[[model.graph.initializers]]
name = "idx"
dtype = "int64"
shape = [2, 1]
values = [2, 0]
[[model.graph.nodes]]
name = "relu"
op = "Relu"
inputs = ["X"]
outputs = ["A"]
[[model.graph.nodes]]
name = "scatter"
op = "Scatter"
inputs = ["A", "idx", "U"]
outputs = ["B"]
attrs = { axis = 1 }
[[model.graph.nodes]]
name = "sigmoid"
op = "Sigmoid"
inputs = ["B"]
outputs = ["Y"]
"#;

/// `CASE` with its outputs cut after `relu`, which ONNX's reference runs.
fn agreeing_case() -> String {
    CASE.replace("outputs = [\"Y\"]", "outputs = [\"A\"]")
        .split("[[model.graph.nodes]]\nname = \"scatter\"")
        .next()
        .unwrap()
        .to_string()
}

fn run(text: &str) -> (i32, Value, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let case = write(dir.path(), "case.toml", text);
    let (code, out, err) = xdiff(&["run", case.to_str().unwrap(), "--format", "json"]);
    let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, report, err)
}

fn lane<'a>(report: &'a Value, node: &str, lane: &str) -> &'a Value {
    let nodes = report["cases"][0]["nodes"].as_array().expect("nodes");
    let n = nodes
        .iter()
        .find(|n| n["name"] == node)
        .unwrap_or_else(|| panic!("no node `{node}`"));
    &n["lanes"][lane]
}

#[test]
fn the_onnx_reference_agrees_with_xdiffs_on_a_relu_and_reports_its_settings() {
    let (code, report, err) = run(&agreeing_case());
    assert_eq!(code, 0, "{err}");
    assert_eq!(lane(&report, "relu", "onnx-ref")["verdict"], "ok");
    let lanes = report["cases"][0]["lanes"].as_array().expect("lanes");
    let onnx_ref = lanes
        .iter()
        .find(|l| l["name"] == "onnx-ref")
        .expect("an onnx-ref lane");
    assert!(
        onnx_ref["settings"]["onnx"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{onnx_ref}"
    );
    assert!(
        onnx_ref["settings"]["python"].as_str().is_some(),
        "{onnx_ref}"
    );
}

#[test]
fn a_node_the_onnx_reference_cannot_run_is_an_error_and_the_run_goes_on() {
    let (code, report, err) = run(CASE);
    // Undeclared, the error fails the case (nothing uncompared passes).
    assert_eq!(code, 1, "{err}");
    assert_eq!(lane(&report, "relu", "onnx-ref")["verdict"], "ok");
    let scatter = lane(&report, "scatter", "onnx-ref");
    assert_eq!(scatter["verdict"], "error", "{scatter}");
    let why = scatter.to_string();
    assert!(
        why.contains("ONNX reference: Scatter `scatter`"),
        "the error names the node: {why}"
    );
    assert_eq!(lane(&report, "sigmoid", "onnx-ref")["verdict"], "skipped");
    // xdiff's reference ran every node.
    for node in ["relu", "scatter", "sigmoid"] {
        assert_eq!(lane(&report, node, "reference")["verdict"], "ok", "{node}");
    }
}
