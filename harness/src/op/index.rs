//! Index ops: CumSum, Trilu, TopK, Tile and GatherElements — the parameters
//! they take from attributes and from small host inputs.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__CumSum.html>,
//! <https://onnx.ai/onnx/operators/onnx__Trilu.html>,
//! <https://onnx.ai/onnx/operators/onnx__TopK.html>,
//! <https://onnx.ai/onnx/operators/onnx__Tile.html>,
//! <https://onnx.ai/onnx/operators/onnx__GatherElements.html>. Opset history:
//!
//! - CumSum-11/14: `axis` is a scalar int input; `exclusive` shifts by one,
//!   `reverse` sums from the end (14 only widens the types).
//! - Trilu-14: `upper` (default 1), optional scalar input `k` (default 0):
//!   keeps `j - i >= k` (upper) or `j - i <= k` (lower) of the last two axes.
//! - TopK-1: `k` attribute; 10: `k` input; 11: `largest` (default 1) and
//!   `sorted` (default 1), negative `axis`. Equal values keep the lower index
//!   first.
//! - Tile-6/13: `repeats` input, one per axis.
//! - GatherElements-11/13: `axis` (default 0); negative indices count from
//!   the end of that axis.

use super::{normalize_axis, HostView, OpCtx, OpResult};

/// A decoded CumSum node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CumSumAttrs {
    pub axis: usize,
    pub exclusive: bool,
    pub reverse: bool,
}

impl CumSumAttrs {
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &[Option<&T>], rank: usize) -> OpResult<Self> {
        let given = scalar_int(ctx, x, 1, "axis")?;
        let axis = axis_in(ctx, "input `axis`", given, rank)?;
        Ok(CumSumAttrs {
            axis,
            exclusive: ctx.int("exclusive", 0)? != 0,
            reverse: ctx.int("reverse", 0)? != 0,
        })
    }
}

/// A decoded Trilu node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriluAttrs {
    pub upper: bool,
    pub k: i64,
}

impl TriluAttrs {
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &[Option<&T>], rank: usize) -> OpResult<Self> {
        if rank < 2 {
            return Err(ctx.fail(format!("input `input` must have rank >= 2, got {rank}")));
        }
        let k = match super::optional(x, 1) {
            Some(_) => scalar_int(ctx, x, 1, "k")?,
            None => 0,
        };
        Ok(TriluAttrs {
            upper: ctx.int("upper", 1)? != 0,
            k,
        })
    }

    /// Whether element (row `i`, column `j`) of each matrix is kept.
    pub fn keeps(&self, i: usize, j: usize) -> bool {
        let d = j as i64 - i as i64;
        if self.upper {
            d >= self.k
        } else {
            d <= self.k
        }
    }
}

/// A decoded TopK node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopKAttrs {
    pub axis: usize,
    pub k: usize,
    pub largest: bool,
    pub sorted: bool,
}

impl TopKAttrs {
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &[Option<&T>], dims: &[usize]) -> OpResult<Self> {
        let k = if ctx.opset < 10 {
            ctx.int("k", -1)?
        } else {
            scalar_int(ctx, x, 1, "K")?
        };
        let given = ctx.int("axis", -1)?;
        let axis = axis_in(ctx, "attribute `axis`", given, dims.len())?;
        let len = dims.get(axis).copied().unwrap_or(1);
        if k < 0 || k as usize > len {
            return Err(ctx.fail(format!(
                "k = {k} is out of range for axis {axis} of size {len}"
            )));
        }
        let flag = |name| -> OpResult<bool> { Ok(ctx.opset < 11 || ctx.int(name, 1)? != 0) };
        Ok(TopKAttrs {
            axis,
            k: k as usize,
            largest: flag("largest")?,
            sorted: flag("sorted")?,
        })
    }
}

/// Tile's `repeats` (input 1), one non-negative count per axis.
pub fn tile_repeats<T: HostView>(
    ctx: &OpCtx,
    x: &[Option<&T>],
    rank: usize,
) -> OpResult<Vec<usize>> {
    let r = ctx
        .input(x, 1)?
        .host_ints()
        .map_err(|e| ctx.fail(format!("input `repeats`: {e:?}")))?;
    if r.len() != rank || r.iter().any(|&v| v < 0) {
        return Err(ctx.fail(format!(
            "input `repeats` {r:?} must hold one non-negative count per axis of the rank-{rank} input"
        )));
    }
    Ok(r.into_iter().map(|v| v as usize).collect())
}

/// GatherElements' `axis`, normalized for data of `rank`.
pub fn gather_axis(ctx: &OpCtx, rank: usize) -> OpResult<usize> {
    axis_in(ctx, "attribute `axis`", ctx.int("axis", 0)?, rank)
}

/// Indices into an axis of length `dim`, negative ones counted from the end;
/// one out of range is a failure naming it.
pub fn resolve_indices(ctx: &OpCtx, raw: &[i64], dim: usize) -> OpResult<Vec<usize>> {
    let d = dim as i64;
    raw.iter()
        .map(|&v| {
            let w = if v < 0 { v + d } else { v };
            if (0..d).contains(&w) {
                Ok(w as usize)
            } else {
                Err(ctx.fail(format!(
                    "input `indices`: {v} is out of range for an axis of size {dim}"
                )))
            }
        })
        .collect()
}

fn axis_in(ctx: &OpCtx, what: &str, given: i64, rank: usize) -> OpResult<usize> {
    normalize_axis(given, rank)
        .map_err(|_| ctx.fail(format!("{what} {given} is out of range for rank {rank}")))
}

/// A scalar (or one-element) integer input.
fn scalar_int<T: HostView>(ctx: &OpCtx, x: &[Option<&T>], i: usize, name: &str) -> OpResult<i64> {
    let v = ctx
        .input(x, i)?
        .host_ints()
        .map_err(|e| ctx.fail(format!("input `{name}`: {e:?}")))?;
    match v.as_slice() {
        [k] => Ok(*k),
        _ => Err(ctx.fail(format!(
            "input `{name}` must hold one value, got {}",
            v.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;
    use crate::tensor::Tensor;
    use ndarray::{ArrayD, IxDyn};

    fn ints(v: &[i64]) -> Tensor {
        Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap())
    }

    #[test]
    fn topk_k_moves_to_an_input_and_is_checked() {
        let k = ints(&[2]);
        let x = [None, Some(&k)];
        let t = with("TopK", 11, vec![("largest", Attr::Int(0))], |c| {
            TopKAttrs::decode(c, &x, &[3, 4])
        })
        .unwrap();
        assert_eq!((t.axis, t.k, t.largest, t.sorted), (1, 2, false, true));
        let big = ints(&[5]);
        let r = with("TopK", 11, vec![], |c| {
            TopKAttrs::decode(c, &[None, Some(&big)], &[3, 4])
        });
        assert!(r.is_err());
        let t = with(
            "TopK",
            1,
            vec![("k", Attr::Int(1)), ("largest", Attr::Int(0))],
            |c| TopKAttrs::decode::<Tensor>(c, &[], &[3]),
        )
        .unwrap();
        assert!(t.largest, "opset 1 has no `largest`");
    }

    #[test]
    fn trilu_keeps_by_diagonal() {
        let k = ints(&[-1]);
        let t = with("Trilu", 14, vec![("upper", Attr::Int(0))], |c| {
            TriluAttrs::decode(c, &[None, Some(&k)], 2)
        })
        .unwrap();
        assert!(t.keeps(1, 0) && !t.keeps(0, 0));
        let t = with("Trilu", 14, vec![], |c| {
            TriluAttrs::decode::<Tensor>(c, &[None], 2)
        })
        .unwrap();
        assert!(t.keeps(0, 0) && t.keeps(0, 1) && !t.keeps(1, 0));
    }

    #[test]
    fn indices_wrap_once_and_fail_out_of_range() {
        let r = with("GatherElements", 13, vec![], |c| {
            resolve_indices(c, &[-1, 0, 2], 3)
        });
        assert_eq!(r.unwrap(), vec![2, 0, 2]);
        assert!(with("GatherElements", 13, vec![], |c| resolve_indices(
            c,
            &[3],
            3
        ))
        .is_err());
        let ax = ints(&[-1]);
        let c = with("CumSum", 14, vec![("reverse", Attr::Int(1))], |c| {
            CumSumAttrs::decode(c, &[None, Some(&ax)], 3)
        })
        .unwrap();
        assert_eq!((c.axis, c.reverse, c.exclusive), (2, true, false));
    }
}
