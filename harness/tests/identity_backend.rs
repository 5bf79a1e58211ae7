//! A backend added as its own file, one row of `backend::BACKENDS` and one
//! cargo feature (issue 10): the test-only `identity` graph runtime runs a
//! case through the `xdiff` binary next to the reference. Run with
//! `cargo test --release --features identity-backend --test identity_backend`.
#![cfg(feature = "identity-backend")]

use serde_json::Value;

mod common;
use common::xdiff as run;

/// X -> Identity -> A -> Relu -> B -> Identity -> Y.
const CASE: &str = r#"
name = "identity-lane"
[model.graph]
opset = 17
inputs = [{ name = "X", shape = [2, 3] }]
outputs = ["Y"]
[[model.graph.nodes]]
name = "copy"
op = "Identity"
inputs = ["X"]
outputs = ["A"]
[[model.graph.nodes]]
name = "relu"
op = "Relu"
inputs = ["A"]
outputs = ["B"]
[[model.graph.nodes]]
name = "copy_again"
op = "Identity"
inputs = ["B"]
outputs = ["Y"]

[[expect]]
backend = "identity"
op = "Relu"
verdict = "unsupported"
reason = "the identity runtime runs only Identity nodes"

[[expect]]
backend = "identity"
after = "relu"
verdict = "skipped"
reason = "downstream of the unsupported relu"
"#;

fn verdict<'a>(report: &'a Value, node: &str) -> (&'a str, &'a Value) {
    let nodes = report["cases"][0]["nodes"].as_array().expect("nodes");
    let n = nodes
        .iter()
        .find(|n| n["name"] == node)
        .unwrap_or_else(|| panic!("no node `{node}`"));
    let lane = &n["lanes"]["identity"];
    (lane["verdict"].as_str().expect("a verdict"), lane)
}

#[test]
fn the_identity_lane_runs_identity_nodes_and_reports_the_rest_unsupported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let case = dir.path().join("identity.toml");
    std::fs::write(&case, CASE).expect("write case");
    let args = ["run", case.to_str().unwrap(), "--format", "json"];
    let (code, out, err) = run(&[&args[..], &["--backends", "identity,reference"]].concat());
    // The unsupported node and the node skipped after it are declared:
    // undeclared, they would fail the case (nothing uncompared passes).
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).expect("a JSON report");
    let lanes: Vec<&str> = report["cases"][0]["lanes"]
        .as_array()
        .expect("lanes")
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(lanes, ["reference", "identity"]);

    let (copy, lane) = verdict(&report, "copy");
    assert_eq!(copy, "ok");
    assert_eq!(lane["lowering"], "graph");
    let (relu, lane) = verdict(&report, "relu");
    assert_eq!(relu, "unsupported");
    let why = lane["message"].as_str().unwrap_or_default();
    assert!(why.contains("runs only Identity nodes"), "{why}");
    // Its input came from a node that did not run.
    let (again, lane) = verdict(&report, "copy_again");
    assert_eq!(again, "skipped", "{lane}");
    assert_eq!(lane["message"], "upstream `relu` unsupported");
}

#[test]
fn the_identity_backend_is_listed_and_accepted_by_name() {
    let (code, out, _) = run(&["backends"]);
    assert_eq!(code, 0);
    assert!(out.trim_end().split(',').any(|b| b == "identity"), "{out}");
}
