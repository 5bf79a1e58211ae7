//! Nothing uncompared passes and declarations are checked (issue 11, items
//! 1, 3 and 4): a node the reference cannot run fails the case with "cannot
//! judge" naming it alone, while every other node is judged (the model-zoo
//! `ConstantOfShape` form and `Range`, once blind, are now judged on every
//! lane: issue 12); a run without the reference fails; an
//! undeclared unsupported node fails and the nodes after it are bridged and
//! judged; a declaration naming something the case does not have is bad
//! input, one that never applies fails; a vacuous output is flagged.

use std::path::Path;

use serde_json::Value;

mod common;
use common::{write, xdiff, CUBIC};

/// Runs `case` on `backends` as JSON: the exit code and the one case's report.
fn run_json(case: &Path, backends: &str) -> (i32, Value) {
    let (code, out, err) = xdiff(&[
        "run",
        case.to_str().unwrap(),
        "--backends",
        backends,
        "--format",
        "json",
    ]);
    assert!(matches!(code, 0 | 1), "exit {code}: {err}");
    let doc: Value = serde_json::from_str(&out).expect("JSON report");
    (code, doc["cases"][0].clone())
}

fn failures(report: &Value) -> Vec<String> {
    report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

fn lane<'a>(report: &'a Value, node: usize, lane: &str) -> &'a Value {
    &report["nodes"][node]["lanes"][lane]
}

/// `X -> sin -> A` and `X -> relu -> B`: the reference has no `Bernoulli`
/// (a random op, compared by distribution only).
const NO_REFERENCE_FOR_FIRST: &str = r#"
[model.graph]
opset = 17
inputs = [{ name = "X", shape = [2, 3] }]
outputs = ["A", "B"]
[[model.graph.nodes]]
name = "sin"
op = "Bernoulli"
inputs = ["X"]
outputs = ["A"]
[[model.graph.nodes]]
name = "relu"
op = "Relu"
inputs = ["X"]
outputs = ["B"]
"#;

#[test]
fn a_node_the_reference_cannot_run_fails_with_cannot_judge() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "sin.toml", NO_REFERENCE_FOR_FIRST);
    let (code, r) = run_json(&p, "ort,reference");
    assert_eq!(code, 1);
    assert_eq!(r["passed"], false);
    assert_eq!(
        failures(&r),
        ["reference: cannot judge 1 of 2 nodes: reference has no lowering for `Bernoulli` (`sin`)"]
    );
    // The node the reference could run is still judged.
    assert_eq!(lane(&r, 1, "ort")["verdict"], "ok");
    assert_eq!(lane(&r, 0, "ort")["verdict"], "skipped");
    let ort = r["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "ort");
    assert_eq!(
        ort.unwrap()["coverage"],
        serde_json::json!({"compared": 1, "total": 2})
    );
}

const RELU: &str = r#"
[model.graph]
opset = 17
inputs = [{ name = "X", shape = [2, 3] }]
outputs = ["Y"]
[[model.graph.nodes]]
name = "relu"
op = "Relu"
inputs = ["X"]
outputs = ["Y"]
"#;

#[test]
fn a_run_without_the_reference_fails_saying_nothing_can_be_judged() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "relu.toml", RELU);
    let (code, r) = run_json(&p, "ort");
    assert_eq!(code, 1);
    let f = failures(&r);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].starts_with("reference: nothing can be judged without the reference"),
        "{f:?}"
    );
    assert_eq!(lane(&r, 0, "ort")["verdict"], "skipped");
    // The text report says it in one line.
    let (code, out, _) = xdiff(&["run", p.to_str().unwrap(), "--backends", "ort"]);
    assert_eq!(code, 1);
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("nothing can be judged"))
            .count(),
        1,
        "{out}"
    );
}

#[cfg(feature = "candle-backend")]
#[test]
fn an_undeclared_unsupported_node_fails_and_the_nodes_after_it_are_bridged() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "cubic.toml", CUBIC);
    let (code, r) = run_json(&p, "candle,reference");
    assert_eq!(code, 1);
    let f = failures(&r);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].starts_with("candle: node `resize` (Resize) unsupported"),
        "{f:?}"
    );
    // The resize's outputs came from the reference, so the nodes after it
    // ran on candle and were judged (not skipped).
    assert_eq!(lane(&r, 0, "candle")["bridged"], "reference");
    assert_eq!(lane(&r, 1, "candle")["verdict"], "ok");
    assert_eq!(lane(&r, 2, "candle")["verdict"], "ok");
    assert!(lane(&r, 1, "candle").get("bridged").is_none());
    let candle = r["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "candle");
    let candle = candle.unwrap();
    assert_eq!(
        candle["coverage"],
        serde_json::json!({"compared": 2, "total": 3})
    );
    let notes = candle["notes"].to_string();
    assert!(
        notes.contains("bridged: 1 node") && notes.contains("`resize`"),
        "{notes}"
    );

    // Declared (the unsupported node), it passes.
    let declared = format!(
        "{CUBIC}\n[[expect]]\nbackend = \"candle\"\nop = \"Resize\"\nverdict = \"unsupported\"\nreason = \"no bicubic\"\n"
    );
    let p = write(d.path(), "cubic-declared.toml", &declared);
    let (code, r) = run_json(&p, "candle,reference");
    assert_eq!(failures(&r), Vec::<String>::new());
    assert_eq!(code, 0);
    assert_eq!(lane(&r, 0, "candle")["declared"], "no bicubic");
}

/// The model-zoo form: every weight produced by a `ConstantOfShape` node.
/// `cos_w -> W; conv(X, W) -> relu; cos_s -> S; mul(relu, S)`.
const CONSTANT_OF_SHAPE: &str = r#"
[model.graph]
opset = 17
inputs = [{ name = "X", shape = [1, 2, 5, 5] }]
outputs = ["Y"]
[[model.graph.initializers]]
name = "w_shape"
dtype = "int64"
shape = [4]
values = [3, 2, 3, 3]
[[model.graph.initializers]]
name = "s_shape"
dtype = "int64"
shape = [1]
values = [1]
[[model.graph.nodes]]
name = "cos_w"
op = "ConstantOfShape"
inputs = ["w_shape"]
outputs = ["W"]
attrs = { value = { tensor = { dtype = "float32", shape = [1], values = [0.125] } } }
[[model.graph.nodes]]
name = "conv"
op = "Conv"
inputs = ["X", "W"]
outputs = ["C"]
attrs = { pads = [1, 1, 1, 1] }
[[model.graph.nodes]]
name = "relu"
op = "Relu"
inputs = ["C"]
outputs = ["R"]
[[model.graph.nodes]]
name = "cos_s"
op = "ConstantOfShape"
inputs = ["s_shape"]
outputs = ["S"]
attrs = { value = { tensor = { dtype = "float32", shape = [1], values = [-0.5] } } }
[[model.graph.nodes]]
name = "mul"
op = "Mul"
inputs = ["R", "S"]
outputs = ["Y"]
"#;

/// `range(0, 6, 1) -> cast -> add(X, ·) -> relu`: what a detector's grid
/// code exports to.
const RANGE: &str = r#"
[model.graph]
opset = 17
inputs = [{ name = "X", shape = [2, 6] }]
outputs = ["Y"]
[[model.graph.initializers]]
name = "start"
dtype = "int64"
shape = []
values = [0]
[[model.graph.initializers]]
name = "limit"
dtype = "int64"
shape = []
values = [6]
[[model.graph.initializers]]
name = "delta"
dtype = "int64"
shape = []
values = [1]
[[model.graph.nodes]]
name = "range"
op = "Range"
inputs = ["start", "limit", "delta"]
outputs = ["r"]
[[model.graph.nodes]]
name = "cast"
op = "Cast"
inputs = ["r"]
outputs = ["rf"]
attrs = { to = 1 }
[[model.graph.nodes]]
name = "add"
op = "Add"
inputs = ["X", "rf"]
outputs = ["A"]
[[model.graph.nodes]]
name = "relu"
op = "Relu"
inputs = ["A"]
outputs = ["Y"]
"#;

fn lane_info<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no lane {name}"))
}

/// The model-zoo forms (issue 12): `ConstantOfShape` weights and a
/// detector's `Range` grid are lowered by every lane, so every node is
/// judged on every lane and the case passes.
#[cfg(all(feature = "tch-backend", feature = "candle-backend"))]
#[test]
fn model_zoo_constant_of_shape_and_range_are_judged_on_every_lane() {
    let d = tempfile::tempdir().unwrap();
    for (file, text) in [("cos.toml", CONSTANT_OF_SHAPE), ("range.toml", RANGE)] {
        let p = write(d.path(), file, text);
        let (code, r) = run_json(&p, "ort,tch,candle,reference");
        assert_eq!(failures(&r), Vec::<String>::new(), "{file}");
        assert_eq!(code, 0, "{file}");
        let nodes = r["nodes"].as_array().unwrap().len();
        for l in ["ort", "tch", "candle"] {
            for i in 0..nodes {
                let x = lane(&r, i, l);
                assert_eq!(x["verdict"], "ok", "{file} {l} node {i}: {x}");
            }
            let cov = &lane_info(&r, l)["coverage"];
            assert_eq!(cov["compared"], nodes, "{file} {l}: {cov}");
        }
    }
}

/// One `[[expect]]` appended to [`RELU`] plus a `Neg` node.
fn with_expect(expect: &str) -> String {
    format!(
        "{RELU}[[model.graph.nodes]]\nname = \"neg\"\nop = \"Neg\"\ninputs = [\"X\"]\noutputs = [\"N\"]\n\n[[expect]]\n{expect}\nverdict = \"diverged\"\nreason = \"r\"\n"
    )
}

#[test]
fn a_declaration_naming_what_the_case_does_not_have_is_bad_input() {
    let d = tempfile::tempdir().unwrap();
    for (expect, needle) in [
        ("backend = \"ort\"\nnode = \"nope\"", "node `nope`"),
        ("backend = \"ort\"\nop = \"Conv\"", "op `Conv`"),
        ("backend = \"tf\"", "backend `tf`"),
        ("backend = \"ort\"\nwhen = { mode = \"x\" }", "`mode`"),
    ] {
        let p = write(d.path(), "bad.toml", &with_expect(expect));
        let (code, _, err) = xdiff(&["run", p.to_str().unwrap(), "--backends", "ort,reference"]);
        assert_eq!(code, 2, "{expect}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("expect[0]") && err.contains(needle), "{err}");
    }
}

#[test]
fn a_declaration_that_never_applies_fails() {
    let d = tempfile::tempdir().unwrap();
    // Both names exist, but no node is `relu` *and* a `Neg`.
    let p = write(
        d.path(),
        "never.toml",
        &with_expect("backend = \"ort\"\nnode = \"relu\"\nop = \"Neg\""),
    );
    let (code, r) = run_json(&p, "ort,reference");
    assert_eq!(code, 1);
    let f = failures(&r);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].starts_with("ort: declared divergence never applies"),
        "{f:?}"
    );
}

#[test]
fn a_vacuous_output_is_flagged() {
    let d = tempfile::tempdir().unwrap();
    // Relu of negative inputs is zero everywhere; Neg of them is not.
    let text = format!(
        "{RELU}[[model.graph.nodes]]\nname = \"neg\"\nop = \"Neg\"\ninputs = [\"X\"]\noutputs = [\"N\"]\n\n[inputs.X]\ndist = \"uniform\"\nlow = -2.0\nhigh = -1.0\n"
    );
    let p = write(d.path(), "vacuous.toml", &text);
    let (code, r) = run_json(&p, "ort,reference");
    assert_eq!(code, 0, "vacuous is a warning, not a failure");
    assert_eq!(r["nodes"][0]["outputs"][0]["vacuous"], true);
    assert!(r["nodes"][1]["outputs"][0].get("vacuous").is_none());
    let warnings = r["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].as_str().unwrap().contains("`relu:Y`"),
        "{warnings:?}"
    );
}

/// A backend-test directory with inputs but no `output_*.pb` (how a user
/// runs their own exported model) has no `expected` lane: nothing of it to
/// compare, so nothing that could fail the case.
#[test]
fn a_test_dir_without_outputs_has_no_expected_lane() {
    let d = tempfile::tempdir().unwrap();
    let case = write(
        d.path(),
        "relu.toml",
        r#"
[model.graph]
opset = 17
inputs = [{ name = "X", shape = [2, 3] }]
outputs = ["Y"]
[[model.graph.nodes]]
name = "relu"
op = "Relu"
inputs = ["X"]
outputs = ["Y"]
"#,
    );
    let cases = xdiff::case::load(&case).unwrap();
    let dir = d.path().join("relu_dir");
    std::fs::create_dir_all(dir.join("test_data_set_0")).unwrap();
    std::fs::write(dir.join("model.onnx"), cases[0].graph.to_bytes()).unwrap();
    let x = &cases[0].inputs["X"];
    let pb = prost::Message::encode_to_vec(&x.to_proto("X"));
    std::fs::write(dir.join("test_data_set_0").join("input_0.pb"), pb).unwrap();
    let (code, report) = run_json(&dir, "ort,reference");
    assert_eq!(code, 0, "{:?}", failures(&report));
    let lanes: Vec<&str> = report["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(!lanes.contains(&"expected"), "{lanes:?}");
    assert_eq!(lane(&report, 0, "ort")["verdict"], "ok");
}

/// `Div` → `Round` with the quotient also exposed through an `Identity`,
/// as ONNX's expanded function tests do: x / c is 25.4999999 in real
/// arithmetic (the reference rounds it to 25) and exactly 25.5 in float32
/// (ONNX's expected output rounds that half to even, 26).
const EXPOSED_QUOTIENT: &str = r#"
[model.graph]
opset = 17
inputs = [{ name = "X", shape = [1] }, { name = "C", shape = [1] }]
outputs = ["Q_out", "R"]
[[model.graph.nodes]]
name = "div"
op = "Div"
inputs = ["X", "C"]
outputs = ["Q"]
[[model.graph.nodes]]
name = "expose"
op = "Identity"
inputs = ["Q"]
outputs = ["Q_out"]
[[model.graph.nodes]]
name = "round"
op = "Round"
inputs = ["Q"]
outputs = ["R"]
"#;

/// A backend-test directory for [`EXPOSED_QUOTIENT`] with expected `R`.
fn exposed_quotient_dir(root: &Path, r: f64) -> std::path::PathBuf {
    use xdiff::tensor::{DType, Tensor};
    let case = write(root, "q.toml", EXPOSED_QUOTIENT);
    let graph = &xdiff::case::load(&case).unwrap()[0].graph;
    let dir = root.join(format!("quotient_{r}"));
    let set = dir.join("test_data_set_0");
    std::fs::create_dir_all(&set).unwrap();
    std::fs::write(dir.join("model.onnx"), graph.to_bytes()).unwrap();
    let c = f64::from(0.019_607_844_f32);
    let files = [
        ("input_0.pb", "X", 0.5),
        ("input_1.pb", "C", c),
        ("output_0.pb", "Q_out", f64::from((0.5 / c) as f32)),
        ("output_1.pb", "R", r),
    ];
    for (file, name, v) in files {
        let t = Tensor::from_f64(DType::F32, &[1], &[v]);
        std::fs::write(
            set.join(file),
            prost::Message::encode_to_vec(&t.to_proto(name)),
        )
        .unwrap();
    }
    dir
}

/// The expected lane is judged on ONNX's own intermediate values where an
/// `Identity` exposes them: the reference's Round, fed ONNX's float32
/// quotient, reproduces ONNX's 26, so the one-step difference from its own
/// 25 is carried in (`inherited`), not introduced; an expected value the
/// reference cannot reproduce from those inputs is still introduced.
#[test]
fn expected_data_is_judged_on_its_own_exposed_intermediates() {
    let d = tempfile::tempdir().unwrap();
    let (_, report) = run_json(&exposed_quotient_dir(d.path(), 26.0), "reference");
    let round = lane(&report, 2, "expected");
    assert_eq!(round["verdict"], "diverged", "{round}");
    assert_eq!(round["origin"], "inherited", "{round}");
    assert_eq!(lane(&report, 0, "expected")["verdict"], "ok");
    let (code, report) = run_json(&exposed_quotient_dir(d.path(), 27.0), "reference");
    assert_eq!(code, 1);
    assert_eq!(lane(&report, 2, "expected")["origin"], "introduced");
}

/// Nodes a lane cannot run for the same reason are one failure line, not
/// one per node (a 1,000-node model says each cause once).
#[cfg(feature = "candle-backend")]
#[test]
fn nodes_unsupported_for_one_reason_are_one_failure_line() {
    let d = tempfile::tempdir().unwrap();
    // Two cubic Resizes in a row: candle has no bicubic (the second gets
    // its input bridged from the reference, and is refused too).
    let text = r#"
[model.graph]
opset = 19
inputs = [{ name = "X", shape = [1, 1, 4, 4] }]
outputs = ["W"]
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
name = "resize2"
op = "Resize"
inputs = ["a", "", "scales"]
outputs = ["W"]
attrs = { mode = "cubic" }
"#;
    let p = write(d.path(), "two-cubic.toml", text);
    let (code, r) = run_json(&p, "candle,reference");
    assert_eq!(code, 1);
    let f = failures(&r);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].starts_with("candle: 2 `Resize` nodes unsupported: ")
            && f[0].ends_with("(`resize`, `resize2`)"),
        "{f:?}"
    );
}
