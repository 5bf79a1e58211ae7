//! candle lowerings: DepthToSpace and GridSample (decodes in
//! `op::depth_to_space` and `op::grid_sample`).
//!
//! DepthToSpace is the spec's reshape, permute, reshape in either mode
//! (candle has no pixel shuffle). GridSample is unsupported: candle 0.11 has
//! no grid sampler, and its sample points are data (the grid), so a
//! composition would gather at indices computed from a tensor's values.

use candle_core::Tensor;

use super::Ce;
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::depth_to_space::DepthToSpacePlan;

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.op(
        "DepthToSpace",
        depth_to_space,
        spec!("DepthToSpace"),
        cov![
            "mode = DCR | CRD" => Composed("reshape, permute, reshape"),
        ],
    );
    r.range(
        "GridSample",
        16,
        u32::MAX,
        grid_sample,
        spec!("GridSample"),
        cov![
            "all" => Unsupported("candle 0.11 has no grid sampler"),
        ],
    );
}

/// DepthToSpace-1/11/13 as the spec's reshape, permute, reshape.
fn depth_to_space(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let plan = DepthToSpacePlan::decode(ctx, a.dims())?;
    let y = a
        .reshape(plan.split.to_vec())
        .and_then(|t| t.permute(plan.perm.to_vec()))
        .and_then(|t| t.contiguous())
        .and_then(|t| t.reshape(plan.out.to_vec()))
        .ce()?;
    Ok(Lowered::one(y, How::composed("reshape, permute, reshape")))
}

/// GridSample-16/20: candle has no grid sampler.
fn grid_sample(ctx: &OpCtx, _x: &In) -> Out {
    Err(ctx.unsupported("grid", "candle 0.11 has no grid sampler"))
}
