//! The Reduce* family and ArgMax/ArgMin: which axes they reduce.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__ReduceSum.html> and its
//! siblings (ReduceMax, ReduceMin, ReduceMean, ReduceProd, ReduceL1,
//! ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare), ArgMax and
//! ArgMin. Opset history:
//!
//! - ReduceSum-13 and every other Reduce*-18 move `axes` from an attribute
//!   to an optional int64 input and add `noop_with_empty_axes`: empty axes
//!   reduce everything unless it is 1, when the op is the identity.
//! - `keepdims` (default 1) keeps each reduced axis as a 1.
//! - ArgMax/ArgMin-12 add `select_last_index` (ties give the last index
//!   instead of the first); `axis` default 0, `keepdims` default 1.
//!
//! [`ReduceAttrs::decode`] and [`ArgAttrs::decode`] settle the axes once for
//! the reference, libtorch and candle.

use super::{normalize_axis, HostView, OpCtx, OpResult};

/// The opset from which `op` takes `axes` as an input.
pub fn axes_input_since(op: &str) -> u32 {
    if op == "ReduceSum" {
        13
    } else {
        18
    }
}

/// A decoded Reduce* node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReduceAttrs {
    /// The reduced axes, normalized, distinct and ascending; `None` when the
    /// node is the identity (empty axes with `noop_with_empty_axes`).
    pub axes: Option<Vec<usize>>,
    /// `keepdims`: reduced axes stay as 1.
    pub keep: bool,
}

impl ReduceAttrs {
    /// Decodes `ctx`'s node for data of `rank`, reading the `axes` input
    /// (input 1) from `x` where the opset takes it as an input.
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &[Option<&T>], rank: usize) -> OpResult<Self> {
        let keep = ctx.int("keepdims", 1)? != 0;
        let by_input = ctx.opset >= axes_input_since(&ctx.node.op_type);
        let given = if by_input {
            match x.get(1).copied().flatten() {
                Some(t) => t
                    .host_ints()
                    .map_err(|e| ctx.fail(format!("input `axes`: {e:?}")))?,
                None => Vec::new(),
            }
        } else {
            ctx.ints("axes")?.unwrap_or_default()
        };
        if given.is_empty() {
            let noop = by_input && ctx.int("noop_with_empty_axes", 0)? != 0;
            let axes = (!noop).then(|| (0..rank).collect());
            return Ok(ReduceAttrs { axes, keep });
        }
        let mut axes = Vec::with_capacity(given.len());
        for a in given {
            let k = normalize_axis(a, rank).map_err(|_| {
                ctx.fail(format!("`axes` entry {a} is out of range for rank {rank}"))
            })?;
            if !axes.contains(&k) {
                axes.push(k);
            }
        }
        axes.sort_unstable();
        Ok(ReduceAttrs {
            axes: Some(axes),
            keep,
        })
    }

    /// The output shape for an input of `dims` (the input's when a no-op).
    pub fn out_dims(&self, dims: &[usize]) -> Vec<usize> {
        let Some(axes) = &self.axes else {
            return dims.to_vec();
        };
        (0..dims.len())
            .filter_map(|k| match axes.contains(&k) {
                true => self.keep.then_some(1),
                false => Some(dims[k]),
            })
            .collect()
    }
}

/// A decoded ArgMax/ArgMin node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgAttrs {
    /// `axis`, normalized to [0, rank).
    pub axis: usize,
    pub keep: bool,
    /// `select_last_index` (opset 12): ties give the last index.
    pub last: bool,
}

impl ArgAttrs {
    pub fn decode(ctx: &OpCtx, rank: usize) -> OpResult<Self> {
        let given = ctx.int("axis", 0)?;
        let axis = normalize_axis(given, rank).map_err(|_| {
            ctx.fail(format!(
                "attribute `axis` {given} is out of range for rank {rank}"
            ))
        })?;
        let last = ctx.opset >= 12 && ctx.int("select_last_index", 0)? != 0;
        Ok(ArgAttrs {
            axis,
            keep: ctx.int("keepdims", 1)? != 0,
            last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;
    use crate::tensor::Tensor;
    use ndarray::{ArrayD, IxDyn};

    fn axes(v: &[i64]) -> Tensor {
        Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap())
    }

    #[test]
    fn axes_move_to_an_input_by_op() {
        let a = axes(&[-1, 0, -1]);
        let x = [None, Some(&a)];
        let sum13 = with("ReduceSum", 13, vec![], |c| ReduceAttrs::decode(c, &x, 3));
        assert_eq!(sum13.unwrap().axes, Some(vec![0, 2]));
        // ReduceMax-13 reads the attribute, not the input: all axes.
        let max13 = with("ReduceMax", 13, vec![], |c| ReduceAttrs::decode(c, &x, 3));
        assert_eq!(max13.unwrap().axes, Some(vec![0, 1, 2]));
        let attrs = vec![("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(0))];
        let r = with("ReduceMax", 13, attrs, |c| {
            ReduceAttrs::decode::<Tensor>(c, &[], 3)
        })
        .unwrap();
        assert_eq!(r.out_dims(&[2, 3, 4]), vec![2, 4]);
    }

    #[test]
    fn empty_axes_reduce_all_or_nothing() {
        let e = axes(&[]);
        let x = [None, Some(&e)];
        let noop = vec![("noop_with_empty_axes", Attr::Int(1))];
        let r = with("ReduceL2", 18, noop, |c| ReduceAttrs::decode(c, &x, 2)).unwrap();
        assert_eq!((r.axes.clone(), r.out_dims(&[2, 3])), (None, vec![2, 3]));
        let r = with("ReduceL2", 18, vec![], |c| ReduceAttrs::decode(c, &x, 2)).unwrap();
        assert_eq!(r.out_dims(&[2, 3]), vec![1, 1]);
        let bad = axes(&[2]);
        let r = with("ReduceL2", 18, vec![], |c| {
            ReduceAttrs::decode(c, &[None, Some(&bad)], 2)
        });
        assert!(r.is_err());
    }

    #[test]
    fn select_last_index_needs_opset_12() {
        let attrs = || vec![("select_last_index", Attr::Int(1)), ("axis", Attr::Int(-1))];
        let a = with("ArgMax", 11, attrs(), |c| ArgAttrs::decode(c, 2)).unwrap();
        assert_eq!((a.axis, a.last), (1, false));
        let a = with("ArgMax", 12, attrs(), |c| ArgAttrs::decode(c, 2)).unwrap();
        assert!(a.last && a.keep);
    }
}
