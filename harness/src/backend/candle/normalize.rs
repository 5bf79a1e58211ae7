//! candle lowerings: RMSNormalization, GroupNormalization, LRN and
//! MeanVarianceNormalization (decodes in `op::norm3`), composed from
//! candle-core's reductions and elementwise ops: candle-core has none of
//! them as one op (candle-nn's `rms_norm` only normalizes the last axis).

use candle_core::Tensor;

use super::Ce;
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::norm3::{mvn_axes, GroupNormAttrs, LrnAttrs, RmsNormAttrs, MVN_EPSILON};

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

const RMS_HOW: &str = "sqr, mean_keepdim, add, sqrt, broadcast_div, broadcast_mul";
const GN_HOW: &str =
    "reshape (N, G, -1), mean_keepdim, broadcast_sub, sqr, mean_keepdim, sqrt, broadcast_div, reshape, scale, bias";
const LRN_HOW: &str = "sqr, pad_with_zeros(channels), narrow sum, affine, powf, div";
const MVN_HOW: &str = "mean_keepdim, broadcast_sub, sqr, mean_keepdim, sqrt, add, broadcast_div";

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.range(
        "RMSNormalization",
        23,
        u32::MAX,
        rms_norm,
        spec!("RMSNormalization"),
        cov![
            "all attributes" => Composed(RMS_HOW),
        ],
    );
    for (since, until) in [(18, 20), (21, u32::MAX)] {
        r.range(
            "GroupNormalization",
            since,
            until,
            group_norm,
            spec!("GroupNormalization"),
            cov![
                "all attributes" => Composed(GN_HOW),
            ],
        );
    }
    r.op(
        "LRN",
        lrn,
        spec!("LRN"),
        cov!["all attributes" => Composed(LRN_HOW)],
    );
    r.range(
        "MeanVarianceNormalization",
        9,
        u32::MAX,
        mvn,
        spec!("MeanVarianceNormalization"),
        cov![
            "all attributes" => Composed(MVN_HOW),
        ],
    );
}

/// RMSNormalization-23: x / √(mean(x²) over axis.. + ε) · scale (broadcast).
fn rms_norm(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let s = RmsNormAttrs::decode(ctx, a.rank())?;
    let axes: Vec<usize> = (s.axis..a.rank()).collect();
    let y = (|| {
        let rms = (a.sqr()?.mean_keepdim(axes)? + s.epsilon)?.sqrt()?;
        a.broadcast_div(&rms)?.broadcast_mul(ctx_scale(x)?)
    })();
    Ok(Lowered::one(y.ce()?, How::composed(RMS_HOW)))
}

fn ctx_scale<'a>(x: &In<'a>) -> candle_core::Result<&'a Tensor> {
    x.get(1)
        .copied()
        .flatten()
        .ok_or_else(|| candle_core::Error::Msg("required input #1 is missing".into()))
}

/// `v` (one value per channel, or per group repeated over its channels)
/// shaped (1, C, 1, ...) for an input of `rank`.
fn per_channel(g: &GroupNormAttrs, v: &Tensor, rank: usize) -> candle_core::Result<Tensor> {
    let cpg = g.channels / g.groups;
    let v = if g.per_group_params {
        v.reshape((g.groups, 1))?
            .broadcast_as((g.groups, cpg))?
            .contiguous()?
    } else {
        v.clone()
    };
    let mut shape = vec![1; rank];
    shape[1] = g.channels;
    v.reshape(shape)
}

/// GroupNormalization-18/21: population statistics per (n, group).
fn group_norm(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let g = GroupNormAttrs::decode(ctx, a.dims())?;
    let (s, b) = (ctx.input(x, 1)?, ctx.input(x, 2)?);
    g.check_param(ctx, "scale", s.elem_count())?;
    g.check_param(ctx, "bias", b.elem_count())?;
    let y = (|| {
        let grouped = a.reshape((a.dims()[0], g.groups, ()))?;
        let centred = grouped.broadcast_sub(&grouped.mean_keepdim(2)?)?;
        let std = (centred.sqr()?.mean_keepdim(2)? + g.epsilon)?.sqrt()?;
        centred
            .broadcast_div(&std)?
            .reshape(a.dims())?
            .broadcast_mul(&per_channel(&g, s, a.rank())?)?
            .broadcast_add(&per_channel(&g, b, a.rank())?)
    })();
    Ok(Lowered::one(y.ce()?, How::composed(GN_HOW)))
}

/// LRN-1/13: the square sum over ONNX's channel window, then x / (bias + α/size·Σ)^β.
fn lrn(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let l = LrnAttrs::decode(ctx, a.rank())?;
    let c = a.dims()[1];
    let y = (|| {
        let padded = a.sqr()?.pad_with_zeros(1, l.before, l.after)?;
        let mut sum = padded.narrow(1, 0, c)?;
        for j in 1..l.size {
            sum = (sum + padded.narrow(1, j, c)?)?;
        }
        let den = sum.affine(l.alpha / l.size as f64, l.bias)?.powf(l.beta)?;
        a.div(&den)
    })();
    Ok(Lowered::one(y.ce()?, How::composed(LRN_HOW)))
}

/// MeanVarianceNormalization-9/13: (x − mean) / (√(population var) + 1e-9) over `axes`.
fn mvn(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let axes = mvn_axes(ctx, a.rank())?;
    let y = (|| {
        let centred = a.broadcast_sub(&a.mean_keepdim(axes.clone())?)?;
        let std = (centred.sqr()?.mean_keepdim(axes)?.sqrt()? + MVN_EPSILON)?;
        centred.broadcast_div(&std)
    })();
    Ok(Lowered::one(y.ce()?, How::composed(MVN_HOW)))
}
