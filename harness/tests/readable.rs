//! Reports a person can read on a large model (issue 11, item 8): a run of
//! nodes a lane skipped after one unsupported node is one line, not one per
//! node; node names are printed in full; a lane that fails as a whole is
//! said once; ONNX Runtime's log lands in the lane's notes, never on stderr.

use std::fmt::Write as _;

use serde_json::Value;

mod common;
use common::{write, xdiff};

/// Node names longer than the 24 characters the table used to cut them at.
const CHAIN: &str = "a_rather_long_node_name_number_";
const HEAD: &str = "grid_cells_range_before_the_chain";
const CHAIN_LEN: usize = 12;

/// A `Bernoulli` (a random op: no lowering in candle nor in the reference,
/// so with no ONNX Runtime lane nothing can bridge it) followed by a chain of
/// `CHAIN_LEN` nodes that candle therefore skips: a Cast, then Abs/Neg.
fn chain_case() -> String {
    let mut s = format!(
        r#"
[model.graph]
opset = 17
inputs = [{{ name = "X", shape = [4] }}]
outputs = ["Y{CHAIN_LEN}"]
[[model.graph.nodes]]
name = "{HEAD}"
op = "Bernoulli"
inputs = ["X"]
outputs = ["Y0"]
[[model.graph.nodes]]
name = "{CHAIN}01"
op = "Cast"
inputs = ["Y0"]
outputs = ["Y1"]
attrs = {{ to = 1 }}
"#
    );
    for i in 2..=CHAIN_LEN {
        let op = if i % 2 == 0 { "Neg" } else { "Abs" };
        let _ = write!(
            s,
            "[[model.graph.nodes]]\nname = \"{CHAIN}{i:02}\"\nop = \"{op}\"\ninputs = [\"Y{}\"]\noutputs = [\"Y{i}\"]\n",
            i - 1
        );
    }
    s
}

fn run(case: &std::path::Path, backends: &str, format: &str) -> (i32, String, String) {
    xdiff(&[
        "run",
        case.to_str().unwrap(),
        "--backends",
        backends,
        "--format",
        format,
    ])
}

#[test]
fn a_skipped_run_is_one_line_and_names_are_whole() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "chain.toml", &chain_case());
    let (code, out, err) = run(&p, "candle,reference", "text");
    assert_eq!(
        code, 1,
        "the reference cannot judge the Bernoulli: {out}{err}"
    );
    // One row for candle's run of skipped nodes, not one per node.
    let candle_lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(CHAIN) && l.contains("candle"))
        .collect();
    assert_eq!(candle_lines.len(), 1, "{out}");
    let run_line =
        format!("candle: {CHAIN_LEN} nodes skipped after `{HEAD}` (Bernoulli) unsupported");
    assert!(
        candle_lines[0].contains(&run_line),
        "{run_line} missing from: {out}"
    );
    // The run row names the ends of the run, in full.
    let ends = format!("`{CHAIN}01` … `{CHAIN}{CHAIN_LEN}`");
    assert!(candle_lines[0].ends_with(&ends), "{out}");
    // The unsupported node's own row carries its whole (33-character) name.
    let row = out
        .lines()
        .find(|l| l.trim_start().starts_with("0 ") && l.contains("unsupported"))
        .unwrap_or_else(|| panic!("no row for node 0: {out}"));
    assert!(row.contains(&format!("{HEAD} ")), "{row}");
}

#[test]
fn markdown_has_one_row_for_a_skipped_run() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "chain.toml", &chain_case());
    let (code, out, err) = run(&p, "candle,reference", "markdown");
    assert_eq!(code, 1, "{out}{err}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with('|') && l.contains(CHAIN) && l.contains("candle"))
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(
        rows[0].starts_with(&format!("| 1–{CHAIN_LEN} | {CHAIN_LEN} nodes |")),
        "{}",
        rows[0]
    );
    assert!(out.contains(&format!("| 0 | `{HEAD}` |")), "{out}");
}

/// `Add` of float32 and int64: ONNX Runtime's session creation fails (a
/// type error), so the whole lane fails; three nodes follow.
const MIXED_ADD: &str = r#"
[model.graph]
opset = 17
inputs = [{ name = "X", shape = [2, 3] }]
outputs = ["D"]
[[model.graph.initializers]]
name = "K"
dtype = "int64"
values = [1, 2, 3]
[[model.graph.nodes]]
name = "a"
op = "Add"
inputs = ["X", "K"]
outputs = ["A"]
[[model.graph.nodes]]
name = "b"
op = "Relu"
inputs = ["A"]
outputs = ["B"]
[[model.graph.nodes]]
name = "c"
op = "Relu"
inputs = ["B"]
outputs = ["C"]
[[model.graph.nodes]]
name = "d"
op = "Relu"
inputs = ["C"]
outputs = ["D"]
"#;

#[test]
fn a_failed_lane_is_said_once() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "mixed.toml", MIXED_ADD);
    let (code, out, err) = run(&p, "ort,reference", "text");
    assert_eq!(code, 1, "{out}{err}");
    let (json_code, json, _) = run(&p, "ort,reference", "json");
    assert_eq!(json_code, 1);
    let doc: Value = serde_json::from_str(&json).unwrap();
    let lanes = doc["cases"][0]["lanes"].as_array().unwrap();
    let ort = lanes.iter().find(|l| l["name"] == "ort").unwrap();
    let error = ort["error"]
        .as_str()
        .expect("the ORT lane failed as a whole");
    // The lane line and the case's failure line; not once per node.
    assert_eq!(out.matches(error).count(), 2, "{out}");
    assert!(
        out.contains("ort: all 4 nodes not run: the lane failed"),
        "{out}"
    );
}

/// An initializer no node uses: ONNX Runtime warns that it removes it.
const UNUSED_INITIALIZER: &str = r#"
[model.graph]
opset = 17
inputs = [{ name = "X", shape = [2, 3] }]
outputs = ["Y"]
[[model.graph.initializers]]
name = "unused_weight"
values = [1.0, 2.0]
[[model.graph.nodes]]
op = "Relu"
inputs = ["X"]
outputs = ["Y"]
"#;

#[test]
fn ort_warnings_go_to_the_lane_notes_not_stderr() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "warn.toml", UNUSED_INITIALIZER);
    let (code, out, err) = run(&p, "ort,reference", "json");
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "", "nothing on stderr");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let lanes = doc["cases"][0]["lanes"].as_array().unwrap();
    let ort = lanes.iter().find(|l| l["name"] == "ort").unwrap();
    let notes: Vec<&str> = ort["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let warning = notes
        .iter()
        .find(|n| n.contains("Removing initializer 'unused_weight'"))
        .unwrap_or_else(|| panic!("no ORT warning in {notes:?}"));
    assert!(warning.starts_with("ORT warning: "), "{warning}");
    assert!(!warning.contains('\u{1b}'), "colour codes: {warning:?}");
    // Said once although the tapped and the plain session both warn.
    assert_eq!(notes.iter().filter(|n| *n == warning).count(), 1);
}
