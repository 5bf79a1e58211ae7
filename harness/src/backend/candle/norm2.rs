//! candle lowerings: GlobalMaxPool, SpaceToDepth, InstanceNormalization and
//! LpNormalization (decodes in `op::norm2`), composed from candle's
//! reductions and shape ops: candle has none of them as one op.

use candle_core::Tensor;

use super::Ce;
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::norm2::{instance_norm_epsilon, LpNormAttrs, SpaceToDepthPlan, SPACE_TO_DEPTH_PERM};

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.op(
        "GlobalMaxPool",
        global_max_pool,
        spec!("GlobalMaxPool"),
        cov![
            "all attributes" => Composed(GLOBAL_MAX),
        ],
    );
    r.op(
        "SpaceToDepth",
        space_to_depth,
        spec!("SpaceToDepth"),
        cov![
            "all attributes" => Composed("reshape, permute, reshape"),
        ],
    );
    r.op("InstanceNormalization", instance_norm, spec!("InstanceNormalization"), cov![
        "all attributes" => Composed("mean_keepdim, broadcast_sub, sqr, mean_keepdim, sqrt, broadcast_div, scale, bias"),
    ]);
    r.op(
        "LpNormalization",
        lp_norm,
        spec!("LpNormalization"),
        cov![
            "p = 1" => Composed("abs, sum_keepdim, broadcast_div"),
            "p = 2" => Composed("sqr, sum_keepdim, sqrt, broadcast_div"),
        ],
    );
}

/// GlobalMaxPool-1: `max_keepdim` over each spatial axis in turn, NaN
/// propagated as the spec's max does (candle's `max_keepdim` drops it).
fn global_max_pool(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let mut y = a.clone();
    for k in 2..y.rank() {
        y = y.max_keepdim(k).ce()?;
    }
    let axes: Vec<usize> = (2..a.rank()).collect();
    let y = super::reduce::propagate_nan(a, &axes, y)?;
    Ok(Lowered::one(y, How::composed(GLOBAL_MAX)))
}

const GLOBAL_MAX: &str =
    "max_keepdim per spatial axis, ne, sum_keepdim, where_cond (NaN propagates)";

/// SpaceToDepth-1/13 as the spec's reshape, permute, reshape.
fn space_to_depth(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let plan = SpaceToDepthPlan::decode(ctx, a.dims())?;
    let y = a
        .reshape(plan.split.to_vec())
        .and_then(|t| t.permute(SPACE_TO_DEPTH_PERM.to_vec()))
        .and_then(|t| t.contiguous())
        .and_then(|t| t.reshape(plan.out.to_vec()))
        .ce()?;
    Ok(Lowered::one(y, How::composed("reshape, permute, reshape")))
}

/// `v` (one value per channel) shaped to broadcast over an input of `rank`.
fn per_channel(v: &Tensor, rank: usize) -> candle_core::Result<Tensor> {
    let mut shape = vec![1; rank];
    shape[1] = v.elem_count();
    v.reshape(shape)
}

/// InstanceNormalization-1/6/22: population statistics over the spatial axes.
fn instance_norm(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let eps = instance_norm_epsilon(ctx, a.rank())?;
    let (s, b) = (ctx.input(x, 1)?, ctx.input(x, 2)?);
    let axes: Vec<usize> = (2..a.rank()).collect();
    let y = (|| {
        let centred = a.broadcast_sub(&a.mean_keepdim(axes.clone())?)?;
        let std = (centred.sqr()?.mean_keepdim(axes.clone())? + eps)?.sqrt()?;
        centred
            .broadcast_div(&std)?
            .broadcast_mul(&per_channel(s, a.rank())?)?
            .broadcast_add(&per_channel(b, a.rank())?)
    })()
    .ce()?;
    Ok(Lowered::one(
        y,
        How::composed(
            "mean_keepdim, broadcast_sub, sqr, mean_keepdim, sqrt, broadcast_div, scale, bias",
        ),
    ))
}

/// LpNormalization-1/22: x divided by its p-norm along the axis.
fn lp_norm(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let s = LpNormAttrs::decode(ctx, a.rank())?;
    let (norm, how) = if s.p == 1 {
        (
            a.abs().and_then(|t| t.sum_keepdim(s.axis)),
            "abs, sum_keepdim, broadcast_div",
        )
    } else {
        (
            a.sqr()
                .and_then(|t| t.sum_keepdim(s.axis))
                .and_then(|t| t.sqrt()),
            "sqr, sum_keepdim, sqrt, broadcast_div",
        )
    };
    let y = norm.and_then(|n| a.broadcast_div(&n)).ce()?;
    Ok(Lowered::one(y, How::composed(how)))
}
