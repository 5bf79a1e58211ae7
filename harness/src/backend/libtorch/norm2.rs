//! libtorch lowerings: GlobalMaxPool, SpaceToDepth, InstanceNormalization
//! and LpNormalization (decodes in `op::norm2`).
//!
//! SpaceToDepth is composed: torch's `pixel_unshuffle` orders the output
//! channels c·b² + bh·b + bw, ONNX orders them (bh·b + bw)·C + c.

use tch::Tensor;

use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::norm2::{instance_norm_epsilon, LpNormAttrs, SpaceToDepthPlan, SPACE_TO_DEPTH_PERM};

type X<'a> = [Option<&'a Tensor>];

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.op(
        "GlobalMaxPool",
        global_max_pool,
        spec!("GlobalMaxPool"),
        cov![
            "all attributes" => Label::Native("amax(dims 2.., keepdim)"),
        ],
    );
    r.op("SpaceToDepth", space_to_depth, spec!("SpaceToDepth"), cov![
        "all attributes (pixel_unshuffle orders channels c·b² + block)" => Label::Composed("reshape, permute, reshape"),
    ]);
    r.op(
        "InstanceNormalization",
        instance_norm,
        spec!("InstanceNormalization"),
        cov![
            "all attributes" => Label::Native("instance_norm(use_input_stats)"),
        ],
    );
    r.op(
        "LpNormalization",
        lp_norm,
        spec!("LpNormalization"),
        cov![
            "p = 1 or 2" => Label::Composed("norm(p, dim, keepdim), div"),
        ],
    );
}

/// GlobalMaxPool-1: `amax` over every spatial axis.
fn global_max_pool(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let axes: Vec<i64> = (2..input.dim() as i64).collect();
    Ok(Lowered::one(
        input.f_amax(axes.as_slice(), true)?,
        How::native("amax(dims 2.., keepdim)"),
    ))
}

/// SpaceToDepth-1/13 as the spec's reshape, permute, reshape.
fn space_to_depth(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let dims: Vec<usize> = input.size().iter().map(|&d| d as usize).collect();
    let plan = SpaceToDepthPlan::decode(ctx, &dims)?;
    let as_i64 = |v: &[usize]| v.iter().map(|&d| d as i64).collect::<Vec<_>>();
    let perm = as_i64(&SPACE_TO_DEPTH_PERM);
    let y = input
        .f_reshape(as_i64(&plan.split).as_slice())?
        .f_permute(perm.as_slice())?
        .f_reshape(as_i64(&plan.out).as_slice())?;
    Ok(Lowered::one(y, How::composed("reshape, permute, reshape")))
}

/// InstanceNormalization-1/6/22: torch's instance_norm with the input's statistics.
fn instance_norm(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let eps = instance_norm_epsilon(ctx, input.dim())?;
    let (s, b) = (ctx.input(x, 1)?, ctx.input(x, 2)?);
    let y = input.f_instance_norm(
        Some(s),
        Some(b),
        None::<&Tensor>,
        None,
        true,
        0.0,
        eps,
        false,
    )?;
    Ok(Lowered::one(
        y,
        How::native("instance_norm(use_input_stats)"),
    ))
}

/// LpNormalization-1/22: x divided by its p-norm along the axis.
fn lp_norm(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let s = LpNormAttrs::decode(ctx, input.dim())?;
    let norm = input.f_norm_scalaropt_dim(s.p, [s.axis as i64].as_slice(), true)?;
    Ok(Lowered::one(
        input.f_div(&norm)?,
        How::composed("norm(p, dim, keepdim), div"),
    ))
}
