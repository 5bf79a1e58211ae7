//! libtorch lowerings: LpPool and MaxUnpool (decodes in `op::pool2`).
//!
//! torch's `lp_pool` is Python-only (`avg_pool(x^p)·numel`, no padding or
//! dilation), so LpPool is composed: |x|^p, zero padding that covers every
//! strided tap, the sum of one strided `slice` per kernel tap, then ^(1/p).
//! MaxUnpool is native `max_unpool2d`/`max_unpool3d` once ONNX's indices
//! (flat over N·C·spatial) are rebased to torch's (flat per plane); 1-D
//! has no native op and is a `scatter`. An `output_shape` larger than the
//! indexed shape adds zeros at the end (ONNX reads the indices against the
//! inferred shape, torch against `output_size`).

use tch::{Kind, Tensor};

use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::pool2::{LpPoolAttrs, UnpoolPlan};
use crate::op::HostView;

type X<'a> = [Option<&'a Tensor>];

const LP_HOW: &str = "abs, pow, constant_pad_nd, strided slice per tap, add, pow(1/p)";

pub fn register(r: &mut OpRegistry<Tensor>) {
    for (since, until) in [(1, 1), (2, 10), (11, 17), (18, u32::MAX)] {
        r.range(
            "LpPool",
            since,
            until,
            lp_pool,
            spec!("LpPool"),
            cov![
                "all attributes" => Label::Composed(LP_HOW),
            ],
        );
    }
    for (since, until) in [(9, 10), (11, u32::MAX)] {
        r.range("MaxUnpool", since, until, max_unpool, spec!("MaxUnpool"), cov![
            "2-D/3-D" => Label::Native("max_unpool2d/max_unpool3d (indices rebased per plane)"),
            "1-D" => Label::Composed("zeros, scatter, reshape"),
            "output_shape beyond the inferred shape" => Label::Composed("then constant_pad_nd at the end"),
        ]);
    }
}

fn dims(t: &Tensor) -> Vec<usize> {
    t.size().iter().map(|&d| d as usize).collect()
}

/// `t` padded with `(begin, end)` zeros on each spatial axis (from axis 2).
fn pad_spatial(t: &Tensor, pads: &[(usize, usize)]) -> OpResult<Tensor> {
    let list: Vec<i64> = pads
        .iter()
        .rev()
        .flat_map(|&(b, e)| [b as i64, e as i64])
        .collect();
    Ok(t.f_constant_pad_nd(list.as_slice())?)
}

/// LpPool-1/2/11/18/22 composed: (Σ over taps of strided |x|^p)^(1/p).
fn lp_pool(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let d = dims(input);
    let a = LpPoolAttrs::decode(ctx, &d)?;
    let abs = input.f_abs()?;
    let powered = match a.p {
        1.0 => abs,
        2.0 => abs.f_mul(&abs)?,
        p => abs.f_pow_tensor_scalar(p)?,
    };
    let padded = pad_spatial(&powered, &a.zero_pads(&d[2..]))?;
    let w = &a.window;
    let mut sum: Option<Tensor> = None;
    for tap in a.taps() {
        let mut t = padded.shallow_clone();
        for (i, &start) in tap.iter().enumerate() {
            let (s, len) = (w.strides[i] as i64, w.out[i] as i64);
            t = t.f_slice(2 + i as i64, start as i64, start as i64 + len * s, s)?;
        }
        sum = Some(match sum {
            None => t,
            Some(acc) => acc.f_add(&t)?,
        });
    }
    let sum = sum.ok_or_else(|| ctx.fail("attribute `kernel_shape` is empty"))?;
    let y = match a.p {
        1.0 => sum,
        2.0 => sum.f_sqrt()?,
        p => sum.f_pow_tensor_scalar(1.0 / p)?,
    };
    Ok(Lowered::one(y, How::composed(LP_HOW)))
}

/// MaxUnpool-9/11/22: native unpool for 2-D/3-D, scatter for 1-D.
fn max_unpool(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let idx = ctx.input(x, 1)?;
    let shape = crate::op::optional(x, 2)
        .map(|t| t.host_ints())
        .transpose()?;
    let plan = UnpoolPlan::decode(ctx, &dims(input), &dims(idx), shape)?;
    let idx = idx.f_to_kind(Kind::Int64)?;
    let as_i64 = |v: &[usize]| v.iter().map(|&d| d as i64).collect::<Vec<_>>();
    let spatial = as_i64(&plan.inferred[2..]);
    let (y, how) = if input.dim() == 4 || input.dim() == 5 {
        let planes = (plan.inferred[0] * plan.inferred[1]) as i64;
        let mut base_shape = as_i64(&plan.inferred[..2]);
        base_shape.resize(input.dim(), 1);
        let base = Tensor::f_arange(planes, (Kind::Int64, input.device()))?
            .f_mul_scalar(plan.plane() as i64)?
            .f_reshape(base_shape.as_slice())?;
        let local = idx.f_sub(&base)?;
        let y = if input.dim() == 4 {
            input.f_max_unpool2d(&local, spatial.as_slice())?
        } else {
            let pads = as_i64(&plan.pads);
            input.f_max_unpool3d(&local, spatial.as_slice(), as_i64(&plan.strides), pads)?
        };
        (
            y,
            How::native("max_unpool2d/max_unpool3d (indices rebased per plane)"),
        )
    } else {
        let flat = Tensor::f_zeros([plan.numel() as i64], (input.kind(), input.device()))?
            .f_scatter(0, &idx.f_reshape([-1])?, &input.f_reshape([-1])?)?;
        let y = flat.f_reshape(as_i64(&plan.inferred).as_slice())?;
        (y, How::composed("zeros, scatter, reshape"))
    };
    let extra = plan.extra();
    if extra.iter().all(|&e| e == 0) {
        return Ok(Lowered::one(y, how));
    }
    let pads: Vec<(usize, usize)> = extra.iter().map(|&e| (0, e)).collect();
    Ok(Lowered::one(
        pad_spatial(&y, &pads)?,
        How::composed(format!("{}, constant_pad_nd", how.label())),
    ))
}
