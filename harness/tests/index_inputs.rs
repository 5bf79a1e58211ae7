//! Integer inputs that fit the graph (issue 12, item 4): an input feeding a
//! `Gather`/`GatherElements` as indices is sampled within the gathered axis
//! by default; other integer inputs keep the default range; an index out of
//! range in a user-given input is bad input (exit 2, one line naming the
//! input and the node), not a framework FAIL.

use std::path::Path;

use prost::Message;
use xdiff::onnx;
use xdiff::tensor::Tensor;

mod common;
use common::{write, xdiff};

/// data [5, 7] (input), table [3, 9] (initializer): idx gathers rows of
/// data (axis 0, [0, 5)), cols gathers axis 1 of table ([0, 9)) and `n` is
/// an integer input that indexes nothing.
fn case(extra: &str) -> String {
    format!(
        r#"
seed = 3
[model.graph]
opset = 17
inputs = [
  {{ name = "data", shape = [5, 7] }},
  {{ name = "idx", dtype = "int64", shape = [64] }},
  {{ name = "cols", dtype = "int32", shape = [3, 40] }},
  {{ name = "n", dtype = "int64", shape = [64] }},
]
outputs = ["G", "E", "N"]
[[model.graph.initializers]]
name = "table"
shape = [3, 9]
[[model.graph.nodes]]
name = "rows"
op = "Gather"
inputs = ["data", "idx"]
outputs = ["G"]
[[model.graph.nodes]]
name = "pick"
op = "GatherElements"
inputs = ["table", "cols"]
outputs = ["E"]
attrs = {{ axis = -1 }}
[[model.graph.nodes]]
op = "Neg"
inputs = ["n"]
outputs = ["N"]
{extra}"#
    )
}

fn values(t: &Tensor) -> Vec<i64> {
    let mut v = Vec::new();
    t.for_each_f64(|x| v.push(x as i64));
    v
}

fn distinct(v: &[i64]) -> Vec<i64> {
    let mut d = v.to_vec();
    d.sort();
    d.dedup();
    d
}

#[test]
fn index_inputs_are_sampled_within_the_gathered_axis() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "c.toml", &case(""));
    let c = &xdiff::case::load(&p).unwrap()[0];
    assert_eq!(
        distinct(&values(&c.inputs["idx"])),
        (0..5).collect::<Vec<_>>()
    );
    assert_eq!(
        distinct(&values(&c.inputs["cols"])),
        (0..9).collect::<Vec<_>>()
    );
    // An integer input that indexes nothing keeps the default: {-1, 0, 1}.
    assert_eq!(distinct(&values(&c.inputs["n"])), vec![-1, 0, 1]);
    // The sampled inputs are no bad input (GatherElements may still lack a
    // reference lowering here, which fails the case, exit 1).
    let (code, out, err) = xdiff(&["run", p.to_str().unwrap(), "--backends", "reference"]);
    assert_ne!(code, 2, "{out}{err}");
}

#[test]
fn a_given_distribution_is_kept() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "c.toml",
        &case("[inputs.idx]\ndist = \"uniform\"\nlow = -5\nhigh = 4\n"),
    );
    let c = &xdiff::case::load(&p).unwrap()[0];
    let v = values(&c.inputs["idx"]);
    assert!(v.iter().any(|x| *x < 0), "{v:?}");
    assert!(v.iter().all(|x| (-5..5).contains(x)), "{v:?}");
}

/// Expects exit 2 with one stderr line containing every needle.
fn expect_bad(case: &Path, needles: &[&str]) {
    let (code, _, err) = xdiff(&["run", case.to_str().unwrap(), "--backends", "reference"]);
    assert_eq!(code, 2, "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` missing from: {err}");
    }
}

#[test]
fn an_inline_index_out_of_range_is_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let mut vals = vec![-5i64; 64];
    vals[10] = 5;
    let list = vals.iter().map(|v| v.to_string()).collect::<Vec<_>>();
    let extra = format!("[inputs.idx]\nvalues = [{}]\n", list.join(", "));
    let p = write(d.path(), "c.toml", &case(&extra));
    expect_bad(
        &p,
        &[
            "c.toml",
            "inputs.idx",
            "index 5 at flat index 10",
            "[-5, 5)",
            "`data`",
            "node `rows` (Gather)",
        ],
    );
}

#[test]
fn an_index_file_out_of_range_is_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let mut vals = vec![8i32; 120];
    vals[7] = -10;
    let t = onnx::TensorProto {
        dims: vec![3, 40],
        data_type: onnx::data_type::INT32,
        int32_data: vals,
        ..Default::default()
    };
    std::fs::write(d.path().join("cols.pb"), t.encode_to_vec()).unwrap();
    let p = write(
        d.path(),
        "c.toml",
        &case("[inputs.cols]\nfile = \"cols.pb\"\n"),
    );
    expect_bad(
        &p,
        &[
            "inputs.cols",
            "index -10 at flat index 7",
            "[-9, 9)",
            "axis 1 of `table`",
            "node `pick` (GatherElements)",
        ],
    );
}

#[test]
fn a_distribution_that_leaves_the_axis_is_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "c.toml",
        &case("[inputs.idx]\nlow = 0\nhigh = 50\n"),
    );
    expect_bad(&p, &["inputs.idx", "outside [-5, 5)", "node `rows`"]);
}
