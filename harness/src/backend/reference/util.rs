//! Helpers shared by the reference ops: axis normalization, multidirectional
//! (numpy) broadcasting, and building test nodes.

use std::collections::BTreeMap;

use ndarray::{ArrayD, IxDyn};

use super::RefTensor;
use crate::backend::interp::{OpError, OpResult};
use crate::graph::{Attr, Node};

/// Normalizes a possibly negative `axis` for a tensor of `rank`.
pub fn axis(axis: i64, rank: usize) -> OpResult<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r.max(1) {
        return Err(OpError::Failed(format!(
            "axis {axis} is out of range for rank {rank}"
        )));
    }
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}

/// The broadcast shape of two shapes (ONNX multidirectional broadcasting).
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> OpResult<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(OpError::Failed(format!(
                    "shapes {a:?} and {b:?} cannot be broadcast"
                )))
            }
        };
    }
    Ok(out)
}

/// Applies `f` elementwise under broadcasting.
pub fn broadcast_map<A: Clone, B: Clone, C>(
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    f: impl Fn(A, B) -> C,
) -> OpResult<ArrayD<C>> {
    let shape = broadcast_shape(a.shape(), b.shape())?;
    let av = a.broadcast(IxDyn(&shape)).expect("broadcastable");
    let bv = b.broadcast(IxDyn(&shape)).expect("broadcastable");
    let v: Vec<C> = av
        .iter()
        .zip(bv.iter())
        .map(|(x, y)| f(x.clone(), y.clone()))
        .collect();
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), v).expect("shape matches"))
}

/// A node for unit tests and the fingerprint search.
pub fn test_node(op: &str, n_inputs: usize, n_outputs: usize, attrs: Vec<(&str, Attr)>) -> Node {
    Node {
        index: 0,
        name: format!("{op}_test"),
        op_type: op.to_string(),
        domain: String::new(),
        inputs: (0..n_inputs).map(|i| format!("in{i}")).collect(),
        outputs: (0..n_outputs).map(|i| format!("out{i}")).collect(),
        attrs: attrs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// A float reference tensor from values (tests).
pub fn f(shape: &[usize], values: &[f64]) -> RefTensor {
    RefTensor::float(
        ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).expect("shape matches values"),
        crate::tensor::DType::F32,
    )
}

/// An int64 reference tensor from values (tests).
pub fn i(shape: &[usize], values: &[i64]) -> RefTensor {
    RefTensor::exact(crate::tensor::Tensor::I64(
        ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).expect("shape matches values"),
    ))
}
