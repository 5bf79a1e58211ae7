//! The data of a convention fingerprint's search space (issue 5).
//!
//! When a backend diverges on a node, `fingerprint.rs` re-runs the node on
//! the float64 reference under the attribute values frameworks commonly
//! confuse. *Which* values those are is part of what an op means, so each op
//! file builds its own [`Space`] next to its decode, from the decoded model
//! values; the table [`super::FINGERPRINT_SPACES`] lists them. These types
//! sit below `op/` and speak only host [`Tensor`]s, so the op layer never
//! depends on the search or on the reference that runs it.
//!
//! Several conventions can fit a backend's output equally, because the
//! node's inputs do not tell them apart (5 → 7 at scale 1.5 under nearest
//! rounding maps align_corners-with-out/in, half_pixel_symmetric and
//! asymmetric to the same pixels). Each space therefore also lists
//! [`Probe`]s: other inputs for the same node (another geometry, other
//! values) on which the search checks whether the tied conventions differ,
//! so the report can name the input that would separate them.

use std::collections::BTreeMap;

use super::OpCtx;
use crate::graph::Node;
use crate::tensor::Tensor;

/// How a dimension's value is written into the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    Str,
    /// Not an attribute; the op's `apply` changes the node or its inputs.
    Pseudo,
}

/// One confusable dimension: its name, the model's value and the candidates
/// (the model's value is always among them, first).
#[derive(Debug, Clone)]
pub struct Dim {
    pub name: &'static str,
    pub kind: Kind,
    pub model: String,
    pub values: Vec<String>,
}

impl Dim {
    /// A dim with model value `model` and the distinct `candidates` after it.
    pub fn new(name: &'static str, kind: Kind, model: String, candidates: &[&str]) -> Dim {
        let mut values = vec![model.clone()];
        for c in candidates {
            if !values.iter().any(|v| same(kind, v, c)) {
                values.push(c.to_string());
            }
        }
        Dim {
            name,
            kind,
            model,
            values,
        }
    }
}

/// Whether two spellings of a `kind` value mean the same (`1e-3` = `0.001`).
pub fn same(kind: Kind, a: &str, b: &str) -> bool {
    match kind {
        Kind::Float => matches!((a.parse::<f32>(), b.parse::<f32>()), (Ok(x), Ok(y)) if x == y),
        _ => a == b,
    }
}

/// The values chosen so far for earlier dims, by dim name.
pub type Chosen = BTreeMap<&'static str, String>;

/// Whether a dim matters given the values chosen for earlier dims.
pub type RelevantFn = fn(&str, &Chosen) -> bool;

/// An input a pseudo dim replaces: (input index, new value or `None` for absent).
pub type InputEdit = (usize, Option<Tensor>);

/// Applies a pseudo dim: `(dim, value, node, inputs, backend output shape)`;
/// edits the node in place and returns the inputs to replace, or `None` when
/// the value cannot be expressed for this node.
pub type ApplyFn =
    fn(&str, &str, &mut Node, &[Option<&Tensor>], &[usize]) -> Option<Vec<InputEdit>>;

/// Builds an op's space from its node (through `ctx`) and its input values;
/// `None` when the node does not decode.
pub type SpaceFn = fn(&OpCtx, &[Option<&Tensor>]) -> Option<Space>;

/// Other inputs for the node, labelled by what they change ("input length
/// 5 at scale 1.6 (5→8)"): where tied conventions may come apart.
#[derive(Debug, Clone)]
pub struct Probe {
    pub label: String,
    pub inputs: Vec<Option<Tensor>>,
}

/// Builds a node's probes from the node and its input values.
pub type ProbeFn = fn(&Node, &[Option<&Tensor>]) -> Vec<Probe>;

/// The confusable attribute space of one node.
pub struct Space {
    pub dims: Vec<Dim>,
    /// Whether `dim` matters given the values chosen for earlier dims; an
    /// irrelevant dim stays at the model's value.
    pub relevant: RelevantFn,
    /// Applies a pseudo dim (see [`ApplyFn`]).
    pub apply: ApplyFn,
    /// Inputs on which tied conventions may differ (see [`Probe`]).
    pub probes: ProbeFn,
}

impl Space {
    /// A space of plain attributes: every dim always relevant, no pseudo
    /// dim, value probes ([`value_probes`]).
    pub fn plain(dims: Vec<Dim>) -> Space {
        Space {
            dims,
            relevant: always,
            apply: no_pseudo,
            probes: value_probes,
        }
    }
}

/// A deterministic float32 input of `shape` in [-3, 3] that varies along
/// every axis (a multiplicative hash of the flat index), times `gain`.
pub fn varied(shape: &[usize], gain: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| ((i * 7919 + 13) % 101) as f64 / 100.0 * 6.0 - 3.0)
        .map(|x| x * gain)
        .collect();
    Tensor::from_f64(crate::tensor::DType::F32, shape, &v)
}

/// The first input replaced by `x`, the others kept.
pub fn with_first(inputs: &[Option<&Tensor>], x: Tensor) -> Vec<Option<Tensor>> {
    let mut out: Vec<Option<Tensor>> = inputs.iter().map(|t| t.cloned()).collect();
    match out.first_mut() {
        Some(first) => *first = Some(x),
        None => out.push(Some(x)),
    }
    out
}

/// Value probes for ops whose conventions differ by value, not geometry:
/// the first input (same shape) replaced by varied values, by the same
/// values scaled by 1e-3 (a variance comparable to an epsilon) and by 8
/// (the tails of an activation).
pub fn value_probes(_: &Node, inputs: &[Option<&Tensor>]) -> Vec<Probe> {
    let Some(shape) = inputs
        .first()
        .copied()
        .flatten()
        .map(|t| t.shape().to_vec())
    else {
        return Vec::new();
    };
    [
        (1.0, "varied values in [-3, 3]"),
        (1e-3, "small values (|x| <= 3e-3, a variance near epsilon)"),
        (8.0, "large values (|x| <= 24)"),
    ]
    .into_iter()
    .map(|(gain, label)| Probe {
        label: label.to_string(),
        inputs: with_first(inputs, varied(&shape, gain)),
    })
    .collect()
}

/// The relevance rule of a space whose dims are independent.
pub fn always(_: &str, _: &Chosen) -> bool {
    true
}

fn no_pseudo(
    _: &str,
    _: &str,
    _: &mut Node,
    _: &[Option<&Tensor>],
    _: &[usize],
) -> Option<Vec<InputEdit>> {
    None
}

/// A float dim with model value `v`, labelled with the matching candidate's
/// spelling (`1e-5` rather than `0.00001`).
pub fn float_dim_of(name: &'static str, v: f32, candidates: &[&str]) -> Dim {
    let model = candidates
        .iter()
        .find(|c| c.parse::<f32>().ok() == Some(v))
        .map(|c| c.to_string())
        .unwrap_or_else(|| format!("{v}"));
    Dim::new(name, Kind::Float, model, candidates)
}

/// A 0/1 int dim.
pub fn bool_dim(name: &'static str, model: bool) -> Dim {
    Dim::new(name, Kind::Int, (model as i64).to_string(), &["0", "1"])
}

/// The `axis` dim: the model's (normalized) axis, then every axis of `rank`.
pub fn axis_dim(model: usize, rank: usize) -> Dim {
    let cands: Vec<String> = (0..rank).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = cands.iter().map(String::as_str).collect();
    Dim::new("axis", Kind::Int, model.to_string(), &refs)
}

/// The rank of the first input (0 when absent).
pub fn first_rank(x: &[Option<&Tensor>]) -> usize {
    x.first().copied().flatten().map_or(0, |t| t.shape().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_put_the_model_first_and_drop_equal_spellings() {
        let d = float_dim_of("epsilon", 1e-3, &["1e-5", "0.001", "1e-12"]);
        assert_eq!(d.model, "0.001");
        assert_eq!(d.values, vec!["0.001", "1e-5", "1e-12"]);
        let d = float_dim_of("epsilon", 2e-4, &["1e-5"]);
        assert_eq!(d.values, vec!["0.0002", "1e-5"]);
        assert_eq!(axis_dim(2, 3).values, vec!["2", "0", "1"]);
        assert_eq!(bool_dim("ceil_mode", true).values, vec!["1", "0"]);
        assert!(same(Kind::Float, "1e-3", "0.001"));
        assert!(!same(Kind::Str, "1e-3", "0.001"));
    }
}
