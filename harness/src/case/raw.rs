//! The case-file schema exactly as written in TOML (`cases/*.toml`).
//!
//! Everything is `deny_unknown_fields` so a typo is an error naming the key;
//! `resolve` turns these raw structs into validated, runnable cases.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCase {
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub seed: u64,
    pub backends: Option<Vec<String>>,
    pub device: Option<String>,
    pub model: RawModel,
    #[serde(default)]
    pub inputs: BTreeMap<String, RawTensor>,
    #[serde(default)]
    pub tolerance: RawTolerance,
    #[serde(default)]
    pub options: RawOptions,
    /// Default values of sweep parameters (`${name}` placeholders).
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub sweep: Vec<RawSweep>,
    #[serde(default)]
    pub expect: Vec<RawExpect>,
    /// Idiomatic-port lanes: `port = ["tch", "candle"]`.
    #[serde(default)]
    pub port: Vec<String>,
    /// Lanes that run the graph with one node's attributes patched: `[[lane]]`.
    #[serde(default)]
    pub lane: Vec<RawLane>,
}

/// `[[lane]]`: a backend running the graph with `patch` applied, rendered
/// `<backend>:<name>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLane {
    /// Defaults to `<node>-<attr>[-<attr>...]`.
    pub name: Option<String>,
    pub backend: String,
    pub patch: RawPatch,
}

/// `patch = { node = "ln1", attrs = { epsilon = 1e-12 } }`: attributes of
/// the node named `node`, replaced or added (values as in inline graphs).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPatch {
    pub node: String,
    pub attrs: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub path: Option<String>,
    pub test_dir: Option<String>,
    pub graph: Option<RawGraph>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGraph {
    #[serde(default = "default_opset")]
    pub opset: i64,
    pub inputs: Vec<RawValue>,
    pub outputs: Vec<String>,
    pub nodes: Vec<RawNode>,
    #[serde(default)]
    pub initializers: Vec<RawTensor>,
}

fn default_opset() -> i64 {
    19
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValue {
    pub name: String,
    #[serde(default = "default_dtype")]
    pub dtype: String,
    /// Dimensions: numbers, or strings for symbolic dimensions.
    pub shape: Vec<toml::Value>,
}

fn default_dtype() -> String {
    "float32".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub name: Option<String>,
    pub op: String,
    #[serde(default)]
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    #[serde(default)]
    pub attrs: BTreeMap<String, toml::Value>,
}

/// A tensor in a case file: an input (`[inputs.X]`) or an inline initializer.
/// Values are given as explicit `values`, a seeded `dist` with its
/// parameters, or a `file` (a `.pb` TensorProto).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTensor {
    /// Initializers only.
    pub name: Option<String>,
    pub shape: Option<Vec<usize>>,
    pub dtype: Option<String>,
    pub values: Option<Vec<f64>>,
    /// uniform | normal | ramp | arange | checkerboard | constant | tails |
    /// ties | denormal | extremes | specials
    pub dist: Option<String>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub value: Option<f64>,
    pub seed: Option<u64>,
    pub file: Option<String>,
    /// `ties`: how many distinct values to draw from.
    pub levels: Option<usize>,
    /// `specials`: the distribution the non-special values come from.
    pub base: Option<String>,
    /// `specials`: the axis whose rows get the special values.
    pub axis: Option<i64>,
    /// `specials`: `{ value = "nan", at = "first" }`, one per row in turn.
    pub specials: Option<Vec<RawSpecial>>,
}

/// A non-finite value planted at one position of each row along an axis.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpecial {
    /// nan | inf | -inf
    pub value: String,
    /// first | middle | last
    pub at: String,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTol {
    pub atol: Option<f64>,
    pub rtol: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTolerance {
    pub float16: Option<RawTol>,
    pub bfloat16: Option<RawTol>,
    pub float32: Option<RawTol>,
    pub float64: Option<RawTol>,
    /// Per-op-type overrides: `[tolerance.op.Resize]`.
    #[serde(default)]
    pub op: BTreeMap<String, RawTol>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOptions {
    /// ONNX Runtime graph optimization: disable | basic | extended | all.
    pub ort_optimization: Option<String>,
    pub tf32: Option<bool>,
    pub threads: Option<usize>,
    /// Allow NaN/Inf in inputs (default: refuse them, exit 2).
    #[serde(default)]
    pub allow_nan: bool,
    /// On a CUDA device, also run every backend on the CPU and compare
    /// (default true; ignored on the CPU).
    pub cross_device: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSweep {
    pub name: Option<String>,
    pub grid: BTreeMap<String, Vec<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    pub backend: String,
    pub node: Option<String>,
    pub op: Option<String>,
    /// With `verdict = "skipped"`: the nodes downstream of this node.
    pub after: Option<String>,
    /// diverged | unsupported | error | skipped
    pub verdict: String,
    /// Sweep parameters this expectation applies to (all must match).
    #[serde(default)]
    pub when: BTreeMap<String, toml::Value>,
    pub reason: String,
}
