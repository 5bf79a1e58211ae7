//! candle lowerings: LpPool and MaxUnpool (decodes in `op::pool2`),
//! composed: candle's `avg_pool2d` has no padding, dilation or 1-D/3-D, and
//! candle has no unpool.
//!
//! LpPool is |x|^p, zero padding that covers every strided tap, the sum of
//! one strided view per kernel tap (candle has no strided `narrow`: narrow
//! `out · stride`, split the axis into (out, stride), keep column 0), then
//! ^(1/p). MaxUnpool scatters X into zeros of the indexed shape and pads
//! the end up to `output_shape`.

use candle_core::Tensor;

use super::{host_ints, index_tensor, Ce};
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::pool2::{LpPoolAttrs, UnpoolPlan};

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

const LP_HOW: &str = "abs, powf, pad_with_zeros, strided narrow per tap, add, powf(1/p)";
const UNPOOL_HOW: &str = "zeros, scatter, reshape, pad_with_zeros";

pub fn register(r: &mut OpRegistry<Tensor>) {
    for (since, until) in [(1, 1), (2, 10), (11, 17), (18, u32::MAX)] {
        r.range(
            "LpPool",
            since,
            until,
            lp_pool,
            spec!("LpPool"),
            cov![
                "all attributes" => Composed(LP_HOW),
            ],
        );
    }
    for (since, until) in [(9, 10), (11, u32::MAX)] {
        r.range(
            "MaxUnpool",
            since,
            until,
            max_unpool,
            spec!("MaxUnpool"),
            cov![
                "all attributes" => Composed(UNPOOL_HOW),
            ],
        );
    }
}

/// `count` elements of axis `ax` from `start`, every `step`-th (the axis
/// must hold `start + count · step` elements).
fn strided(
    t: &Tensor,
    ax: usize,
    start: usize,
    count: usize,
    step: usize,
) -> candle_core::Result<Tensor> {
    let run = t.narrow(ax, start, count * step)?;
    if step == 1 {
        return Ok(run);
    }
    let mut split = run.dims().to_vec();
    split.splice(ax..=ax, [count, step]);
    run.reshape(split)?.narrow(ax + 1, 0, 1)?.squeeze(ax + 1)
}

/// LpPool-1/2/11/18/22 composed: (Σ over taps of strided |x|^p)^(1/p).
fn lp_pool(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let attrs = LpPoolAttrs::decode(ctx, a.dims())?;
    let w = &attrs.window;
    let y = (|| {
        let abs = a.abs()?;
        let mut t = match attrs.p {
            1.0 => abs,
            2.0 => abs.sqr()?,
            p => abs.powf(p)?,
        };
        for (i, (b, e)) in attrs.zero_pads(&a.dims()[2..]).into_iter().enumerate() {
            t = t.pad_with_zeros(2 + i, b, e)?;
        }
        let mut sum: Option<Tensor> = None;
        for tap in attrs.taps() {
            let mut v = t.clone();
            for (i, &start) in tap.iter().enumerate() {
                v = strided(&v, 2 + i, start, w.out[i], w.strides[i])?;
            }
            sum = Some(match sum {
                None => v,
                Some(acc) => (acc + v)?,
            });
        }
        let sum = sum.ok_or_else(|| candle_core::Error::Msg("empty kernel".into()))?;
        match attrs.p {
            1.0 => Ok(sum),
            2.0 => sum.sqrt(),
            p => sum.powf(1.0 / p),
        }
    })();
    Ok(Lowered::one(y.ce()?, How::composed(LP_HOW)))
}

/// MaxUnpool-9/11/22: X scattered at its flat indices into zeros, then zeros
/// at the end up to `output_shape`.
fn max_unpool(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let idx = ctx.input(x, 1)?;
    let shape = crate::op::optional(x, 2).map(host_ints).transpose()?;
    let plan = UnpoolPlan::decode(ctx, a.dims(), idx.dims(), shape)?;
    let ids = host_ints(idx)?;
    if let Some(bad) = ids.iter().find(|&&i| i < 0 || i as usize >= plan.numel()) {
        return Err(ctx.fail(format!(
            "input `I` holds {bad}, outside the output's {} elements",
            plan.numel()
        )));
    }
    let ids = index_tensor(ids, a.device())?;
    let y = (|| {
        let zeros = Tensor::zeros(plan.numel(), a.dtype(), a.device())?;
        let mut y = zeros
            .scatter(&ids, &a.flatten_all()?, 0)?
            .reshape(plan.inferred.clone())?;
        for (i, e) in plan.extra().into_iter().enumerate() {
            y = y.pad_with_zeros(2 + i, 0, e)?;
        }
        Ok(y)
    })();
    Ok(Lowered::one(y.ce()?, How::composed(UNPOOL_HOW)))
}
