//! libtorch lowerings: RMSNormalization, GroupNormalization, LRN and
//! MeanVarianceNormalization (decodes in `op::norm3`).
//!
//! `rms_norm` and `group_norm` are native. LRN is composed: torch's
//! `local_response_norm` is Python-only and pads the channel window
//! ⌊size/2⌋ before and ⌊(size−1)/2⌋ after, the mirror of ONNX's
//! ⌊(size−1)/2⌋ before and ⌈(size−1)/2⌉ after for an even size, so the sum
//! here follows the decoded ONNX window. MVN is composed (torch has none).

use tch::Tensor;

use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::norm3::{mvn_axes, GroupNormAttrs, LrnAttrs, RmsNormAttrs, MVN_EPSILON};

type X<'a> = [Option<&'a Tensor>];

const LRN_HOW: &str = "mul, constant_pad_nd(channels), narrow sum, mul, add, pow, div";
const MVN_HOW: &str = "mean_dim, sub, mul, mean_dim, sqrt, add, div";

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.range(
        "RMSNormalization",
        23,
        u32::MAX,
        rms_norm,
        spec!("RMSNormalization"),
        cov![
            "all attributes (scale broadcast by mul)" => Label::Native("rms_norm, mul"),
        ],
    );
    for (since, until) in [(18, 20), (21, u32::MAX)] {
        r.range("GroupNormalization", since, until, group_norm, spec!("GroupNormalization"), cov![
            "all attributes (opset 18's per-group scale/bias expanded per channel)" => Label::Native("group_norm"),
        ]);
    }
    r.op(
        "LRN",
        lrn,
        spec!("LRN"),
        cov![
            "all attributes (ONNX's channel window)" => Label::Composed(LRN_HOW),
        ],
    );
    r.range(
        "MeanVarianceNormalization",
        9,
        u32::MAX,
        mvn,
        spec!("MeanVarianceNormalization"),
        cov![
            "all attributes" => Label::Composed(MVN_HOW),
        ],
    );
}

fn dims(t: &Tensor) -> Vec<usize> {
    t.size().iter().map(|&d| d as usize).collect()
}

/// RMSNormalization-23: native `rms_norm` over X's dims from `axis`, times scale.
fn rms_norm(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let s = RmsNormAttrs::decode(ctx, input.dim())?;
    let normalized = &input.size()[s.axis..];
    let y = input
        .f_rms_norm(normalized, None::<Tensor>, s.epsilon)?
        .f_mul(ctx.input(x, 1)?)?;
    Ok(Lowered::one(y, How::native("rms_norm, mul")))
}

/// GroupNormalization-18/21: native `group_norm`; opset 18's per-group
/// parameters repeated over each group's channels.
fn group_norm(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let g = GroupNormAttrs::decode(ctx, &dims(input))?;
    let per_channel = |name: &str, t: &Tensor| -> OpResult<Tensor> {
        g.check_param(ctx, name, t.numel())?;
        let (groups, cpg) = (g.groups as i64, (g.channels / g.groups) as i64);
        Ok(if g.per_group_params {
            t.f_reshape([groups, 1])?
                .f_expand([groups, cpg], false)?
                .f_reshape([groups * cpg])?
        } else {
            t.f_reshape([g.channels as i64])?
        })
    };
    let scale = per_channel("scale", ctx.input(x, 1)?)?;
    let bias = per_channel("bias", ctx.input(x, 2)?)?;
    let y = input.f_group_norm(g.groups as i64, Some(&scale), Some(&bias), g.epsilon, false)?;
    Ok(Lowered::one(y, How::native("group_norm")))
}

/// LRN-1/13: the square sum over ONNX's channel window, then x / (bias + α/size·Σ)^β.
fn lrn(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let l = LrnAttrs::decode(ctx, input.dim())?;
    let c = input.size()[1];
    // constant_pad_nd lists (begin, end) from the last axis back to axis 1.
    let mut pads = vec![0i64; 2 * (input.dim() - 2)];
    pads.extend([l.before as i64, l.after as i64]);
    let padded = input.f_mul(input)?.f_constant_pad_nd(pads.as_slice())?;
    let mut sum = padded.f_narrow(1, 0, c)?;
    for j in 1..l.size as i64 {
        sum = sum.f_add(&padded.f_narrow(1, j, c)?)?;
    }
    let den = sum
        .f_mul_scalar(l.alpha / l.size as f64)?
        .f_add_scalar(l.bias)?
        .f_pow_tensor_scalar(l.beta)?;
    Ok(Lowered::one(input.f_div(&den)?, How::composed(LRN_HOW)))
}

/// MeanVarianceNormalization-9/13: (x − mean) / (√(population var) + 1e-9) over `axes`.
fn mvn(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let axes: Vec<i64> = mvn_axes(ctx, input.dim())?
        .iter()
        .map(|&a| a as i64)
        .collect();
    let centred = input.f_sub(&input.f_mean_dim(axes.as_slice(), true, None)?)?;
    let std = centred
        .f_mul(&centred)?
        .f_mean_dim(axes.as_slice(), true, None)?
        .f_sqrt()?
        .f_add_scalar(MVN_EPSILON)?;
    Ok(Lowered::one(centred.f_div(&std)?, How::composed(MVN_HOW)))
}
