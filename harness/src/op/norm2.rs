//! GlobalMaxPool, SpaceToDepth, InstanceNormalization and LpNormalization:
//! their attributes and output plans, decoded once.
//!
//! Specs: <https://onnx.ai/onnx/operators/onnx__GlobalMaxPool.html> (1: max
//! over every axis from 2), <https://onnx.ai/onnx/operators/onnx__SpaceToDepth.html>
//! (1/13: `blocksize`; output channel `(bh·b + bw)·C + c`, i.e. reshape to
//! (N, C, H/b, b, W/b, b), move the two block axes before C, reshape),
//! <https://onnx.ai/onnx/operators/onnx__InstanceNormalization.html> (1/6/22:
//! per (n, c) mean and population variance over the spatial axes, `epsilon`
//! default 1e-5, per-channel scale and bias),
//! <https://onnx.ai/onnx/operators/onnx__LpNormalization.html> (1/22: `axis`
//! default -1, `p` 1 or 2 (default 2); y = x / ‖x‖ₚ along the axis).

use super::{normalize_axis, OpCtx, OpResult};

/// The permutation SpaceToDepth applies to (N, C, H/b, b, W/b, b).
pub const SPACE_TO_DEPTH_PERM: [usize; 6] = [0, 3, 5, 1, 2, 4];

/// A decoded SpaceToDepth node for an input of `dims` (N, C, H, W).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceToDepthPlan {
    /// The input viewed as (N, C, H/b, b, W/b, b).
    pub split: [usize; 6],
    /// The output (N, C·b², H/b, W/b).
    pub out: [usize; 4],
}

impl SpaceToDepthPlan {
    pub fn decode(ctx: &OpCtx, dims: &[usize]) -> OpResult<Self> {
        let b = ctx.int("blocksize", 0)?;
        let [n, c, h, w] = <[usize; 4]>::try_from(dims)
            .map_err(|_| ctx.fail(format!("input `input` must be 4-D, got {dims:?}")))?;
        if b < 1 || h % b as usize != 0 || w % b as usize != 0 {
            return Err(ctx.attr_error(
                "blocksize",
                format!("{b} must be >= 1 and divide H = {h} and W = {w}"),
            ));
        }
        let b = b as usize;
        Ok(SpaceToDepthPlan {
            split: [n, c, h / b, b, w / b, b],
            out: [n, c * b * b, h / b, w / b],
        })
    }
}

/// InstanceNormalization's `epsilon`, the f32 attribute widened exactly.
pub fn instance_norm_epsilon(ctx: &OpCtx, rank: usize) -> OpResult<f64> {
    if rank < 3 {
        return Err(ctx.fail(format!("input `input` must have rank >= 3, got {rank}")));
    }
    Ok(f64::from(ctx.float("epsilon", 1e-5)?))
}

/// A decoded LpNormalization node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LpNormAttrs {
    pub axis: usize,
    /// 1 or 2.
    pub p: i64,
}

impl LpNormAttrs {
    pub fn decode(ctx: &OpCtx, rank: usize) -> OpResult<Self> {
        let given = ctx.int("axis", -1)?;
        let axis = normalize_axis(given, rank).map_err(|_| {
            ctx.fail(format!(
                "attribute `axis` {given} is out of range for rank {rank}"
            ))
        })?;
        let p = ctx.int("p", 2)?;
        if p != 1 && p != 2 {
            return Err(ctx.attr_error("p", format!("{p} (the spec allows 1 or 2)")));
        }
        Ok(LpNormAttrs { axis, p })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;

    #[test]
    fn space_to_depth_plan_and_checks() {
        let p = with("SpaceToDepth", 13, vec![("blocksize", Attr::Int(2))], |c| {
            SpaceToDepthPlan::decode(c, &[1, 3, 4, 6])
        })
        .unwrap();
        assert_eq!((p.split, p.out), ([1, 3, 2, 2, 3, 2], [1, 12, 2, 3]));
        let bad = with("SpaceToDepth", 13, vec![("blocksize", Attr::Int(4))], |c| {
            SpaceToDepthPlan::decode(c, &[1, 3, 4, 6])
        });
        assert!(bad.is_err());
    }

    #[test]
    fn lp_norm_p_is_one_or_two() {
        let a = with("LpNormalization", 1, vec![("p", Attr::Int(1))], |c| {
            LpNormAttrs::decode(c, 3)
        });
        assert_eq!(a.unwrap(), LpNormAttrs { axis: 2, p: 1 });
        let bad = with("LpNormalization", 1, vec![("p", Attr::Int(3))], |c| {
            LpNormAttrs::decode(c, 3)
        });
        assert!(bad.is_err());
    }
}
