//! candle lowerings of the quantization family, all composed (candle has
//! no quantize op over ONNX's conventions). candle's `round` rounds half
//! away from zero, so rounding half to even is composed exactly: where
//! `|round(q) − q| = 0.5` (a tie; the difference is exact in binary floats)
//! the result is `2·round(q/2)`. Integer products run as float64 MatMul and
//! Conv (candle has no integer matmul): every partial sum of 8/16-bit
//! products is an integer below 2^53, so exact. int8 and uint16 have no
//! candle dtype and cannot be uploaded. The idiomatic port
//! (`EngineOptions::port`) quantizes with candle's `round` as it is, half
//! away from zero.

use candle_core::{DType as CDType, Tensor};

use super::{candle_dtype, index_tensor, linalg, nn, Ce};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::optional;
use crate::op::quant::{self, ScaleMap};
use crate::tensor::DType;

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;
const QUANT: &str = "broadcast_div, round, where_cond (half to even), add, clamp";
const PORT_QUANT: &str = "broadcast_div, round, add, clamp (idiomatic port: half away from zero)";
const INT_MM: &str = "to_dtype(f64), sub, matmul";
const INT_CONV: &str = "to_dtype(f64), sub, conv";
const REQUANT: &str = "f64 matmul/conv, mul, round, where_cond (half to even), add, clamp";

pub fn register(r: &mut OpRegistry<Tensor>) {
    for (since, until) in [(10, 12), (13, 18), (19, 20), (21, 22), (23, u32::MAX)] {
        r.range(
            "QuantizeLinear",
            since,
            until,
            quantize,
            spec!("QuantizeLinear"),
            cov![
                "uint8/int16 outputs" => Label::Composed(QUANT),
            ],
        );
        r.range(
            "DequantizeLinear",
            since,
            until,
            dequantize,
            spec!("DequantizeLinear"),
            cov![
                "uint8/int16/int32 inputs" => Label::Composed("sub, broadcast_mul"),
            ],
        );
    }
    r.range(
        "DynamicQuantizeLinear",
        11,
        u32::MAX,
        dynamic,
        spec!("DynamicQuantizeLinear"),
        cov![
            "all attributes" => Label::Composed("min, max, div, round, where_cond, clamp"),
        ],
    );
    r.range(
        "MatMulInteger",
        10,
        u32::MAX,
        matmul_integer,
        spec!("MatMulInteger"),
        cov![
            "uint8 inputs" => Label::Composed(INT_MM),
        ],
    );
    r.range(
        "ConvInteger",
        10,
        u32::MAX,
        conv_integer,
        spec!("ConvInteger"),
        cov![
            "uint8 inputs" => Label::Composed(INT_CONV),
        ],
    );
    for (since, until) in [(10, 20), (21, u32::MAX)] {
        r.range(
            "QLinearMatMul",
            since,
            until,
            qlinear_matmul,
            spec!("QLinearMatMul"),
            cov![
                "uint8 inputs" => Label::Composed(REQUANT),
            ],
        );
    }
    r.range(
        "QLinearConv",
        10,
        u32::MAX,
        qlinear_conv,
        spec!("QLinearConv"),
        cov![
            "uint8 inputs" => Label::Composed(REQUANT),
        ],
    );
}

/// Rounds half to even, exactly, from candle's half-away `round`.
fn round_even(q: &Tensor) -> OpResult<Tensor> {
    let r = q.round().ce()?;
    let tie = r.sub(q).ce()?.abs().ce()?.eq(0.5).ce()?;
    let even = q
        .affine(0.5, 0.0)
        .ce()?
        .round()
        .ce()?
        .affine(2.0, 0.0)
        .ce()?;
    tie.where_cond(&even, &r).ce()
}

fn out_dtype(ctx: &OpCtx, dt: DType) -> OpResult<CDType> {
    candle_dtype(dt)
        .ok_or_else(|| ctx.unsupported("output_dtype", format!("candle has no {dt} dtype")))
}

/// `clamp(round_even(q) + zp, range)` in `dt` (`q` f64).
fn saturate(ctx: &OpCtx, q: &Tensor, zp: &Tensor, dt: DType) -> OpResult<Tensor> {
    let (lo, hi) = quant::range(ctx, dt)?;
    let y = round_even(q)?
        .broadcast_add(&zp.to_dtype(CDType::F64).ce()?)
        .ce()?;
    y.clamp(lo, hi).ce()?.to_dtype(out_dtype(ctx, dt)?).ce()
}

/// A scale or zero point viewed so it broadcasts against `x`.
fn spread(map: &ScaleMap, x: &[usize], s: &Tensor) -> OpResult<Tensor> {
    let v = s.reshape(map.view_shape(x, s.dims())).ce()?;
    match map.block_ids(x) {
        Some((axis, ids)) => v.index_select(&index_tensor(ids, s.device())?, axis).ce(),
        None => Ok(v),
    }
}

fn quantize(ctx: &OpCtx, x: &In) -> Out {
    let (xt, s) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let zp = optional(x, 2);
    let map = ScaleMap::decode(ctx, xt.dims(), s.dims())?;
    let dt = quant::quantize_dtype(ctx, zp.map(|z| super::dtype_of(z.dtype())))?;
    let q = xt
        .broadcast_div(&spread(&map, xt.dims(), s)?)
        .ce()?
        .to_dtype(CDType::F64)
        .ce()?;
    let zpt = match zp {
        Some(z) => spread(&map, xt.dims(), z)?,
        None => Tensor::zeros((), CDType::F64, xt.device()).ce()?,
    };
    let (q, how) = match ctx.options.port {
        // candle's own `round` (half away); `saturate` keeps an integer.
        true => (q.round().ce()?, How::port(PORT_QUANT)),
        false => (q, How::composed(QUANT)),
    };
    Ok(Lowered::one(saturate(ctx, &q, &zpt, dt)?, how))
}

fn dequantize(ctx: &OpCtx, x: &In) -> Out {
    let (xt, s) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let map = ScaleMap::decode(ctx, xt.dims(), s.dims())?;
    let dt = quant::dequantize_dtype(ctx, super::dtype_of(s.dtype()))?;
    let k = out_dtype(ctx, dt)?;
    let mut c = xt.to_dtype(CDType::F64).ce()?;
    if let Some(z) = optional(x, 2) {
        c = c
            .broadcast_sub(&spread(&map, xt.dims(), &z.to_dtype(CDType::F64).ce()?)?)
            .ce()?;
    }
    let y = c
        .to_dtype(k)
        .ce()?
        .broadcast_mul(&spread(&map, xt.dims(), &s.to_dtype(k).ce()?)?)
        .ce()?;
    Ok(Lowered::one(y, How::composed("sub, broadcast_mul")))
}

fn dynamic(ctx: &OpCtx, x: &In) -> Out {
    let xt = ctx.input(x, 0)?;
    let flat = xt.flatten_all().ce()?;
    let zero = Tensor::zeros((), xt.dtype(), xt.device()).ce()?;
    let lo = flat.min(0).ce()?.minimum(&zero).ce()?;
    let hi = flat.max(0).ce()?.maximum(&zero).ce()?;
    let k255 = lo.ones_like().ce()?.affine(255.0, 0.0).ce()?;
    let scale = hi.sub(&lo).ce()?.div(&k255).ce()?;
    let zq = lo
        .neg()
        .ce()?
        .div(&scale)
        .ce()?
        .to_dtype(CDType::F64)
        .ce()?;
    let zp = round_even(&zq)?.clamp(0.0, 255.0).ce()?;
    let q = xt.broadcast_div(&scale).ce()?.to_dtype(CDType::F64).ce()?;
    let y = saturate(ctx, &q, &zp, DType::U8)?;
    let zp = zp.to_dtype(CDType::U8).ce()?;
    Ok(Lowered::many(
        vec![y, scale, zp],
        How::composed("min, max, div, round, where_cond, clamp"),
    ))
}

/// `t − zp` in f64, `zp` a scalar or one value per index of `axis`.
fn centered(t: &Tensor, zp: Option<&Tensor>, axis: usize) -> OpResult<Tensor> {
    let c = t.to_dtype(CDType::F64).ce()?;
    let Some(z) = zp else { return Ok(c) };
    let z = z.to_dtype(CDType::F64).ce()?;
    let shape = if z.elem_count() <= 1 {
        vec![1; t.rank()]
    } else {
        let mut s = vec![1; t.rank()];
        s[axis] = z.elem_count();
        s
    };
    c.broadcast_sub(&z.reshape(shape).ce()?).ce()
}

fn int_matmul(ctx: &OpCtx, x: &In, ix: [usize; 4]) -> OpResult<Tensor> {
    let (at, bt) = (ctx.input(x, ix[0])?, ctx.input(x, ix[2])?);
    let ca = centered(at, optional(x, ix[1]), at.rank().saturating_sub(2))?;
    let cb = centered(bt, optional(x, ix[3]), bt.rank().saturating_sub(1))?;
    Ok(linalg::matmul(ctx, &[Some(&ca), Some(&cb)])?
        .outputs
        .remove(0)
        .expect("one output"))
}

fn int_conv(ctx: &OpCtx, x: &In, ix: [usize; 4]) -> OpResult<Tensor> {
    let cx = centered(ctx.input(x, ix[0])?, optional(x, ix[1]), 0)?;
    let cw = centered(ctx.input(x, ix[2])?, optional(x, ix[3]), 0)?;
    Ok(nn::conv(ctx, &[Some(&cx), Some(&cw)])?
        .outputs
        .remove(0)
        .expect("one output"))
}

fn matmul_integer(ctx: &OpCtx, x: &In) -> Out {
    let y = int_matmul(ctx, x, [0, 2, 1, 3])?
        .to_dtype(CDType::I32)
        .ce()?;
    Ok(Lowered::one(y, How::composed(INT_MM)))
}

fn conv_integer(ctx: &OpCtx, x: &In) -> Out {
    let y = int_conv(ctx, x, [0, 2, 1, 3])?
        .round()
        .ce()?
        .to_dtype(CDType::I32)
        .ce()?;
    Ok(Lowered::one(y, How::composed(INT_CONV)))
}

/// `saturate(round(acc · (sa·sb / sy)) + zy)`, the multiplier in the scales'
/// dtype, `sb` scalar or one per index of `axis`.
fn requantize(ctx: &OpCtx, x: &In, acc: &Tensor, axis: usize) -> OpResult<Tensor> {
    let (a, b, y) = (ctx.input(x, 1)?, ctx.input(x, 4)?, ctx.input(x, 6)?);
    let mut shape = vec![1; acc.rank()];
    shape[axis] = b.elem_count();
    let one = vec![1; acc.rank()];
    let m = a
        .reshape(one.clone())
        .ce()?
        .broadcast_mul(&b.reshape(shape).ce()?)
        .ce()?
        .broadcast_div(&y.reshape(one.clone()).ce()?)
        .ce()?;
    let q = acc.broadcast_mul(&m.to_dtype(CDType::F64).ce()?).ce()?;
    let z = optional(x, 7);
    let dt = z.map(|z| super::dtype_of(z.dtype())).unwrap_or(DType::U8);
    let zt = match z {
        Some(z) => z.reshape(one).ce()?,
        None => Tensor::zeros(one, CDType::F64, acc.device()).ce()?,
    };
    saturate(ctx, &q, &zt, dt)
}

fn qlinear_matmul(ctx: &OpCtx, x: &In) -> Out {
    let acc = int_matmul(ctx, x, [0, 2, 3, 5])?;
    let last = acc.rank().saturating_sub(1);
    Ok(Lowered::one(
        requantize(ctx, x, &acc, last)?,
        How::composed(REQUANT),
    ))
}

fn qlinear_conv(ctx: &OpCtx, x: &In) -> Out {
    let mut acc = int_conv(ctx, x, [0, 2, 3, 5])?;
    if let Some(b) = optional(x, 8) {
        let mut s = vec![1; acc.rank()];
        s[1] = b.elem_count();
        acc = acc
            .broadcast_add(&b.to_dtype(CDType::F64).ce()?.reshape(s).ce()?)
            .ce()?;
    }
    Ok(Lowered::one(
        requantize(ctx, x, &acc, 1)?,
        How::composed(REQUANT),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn ties_round_half_to_even_and_saturate_like_the_reference() {
        // x / 1 on every tie sign and an outlier: 0, 2, 2, 0, 255 (uint8, zp 0).
        let x = f32t(&[5], &[0.5, 1.5, 2.5, -0.5, 300.0]);
        let s = f32t(&[], &[1.0]);
        let (v, _, how) = run1(
            &node("QuantizeLinear", 2, 1, vec![]),
            13,
            &[Some(&x), Some(&s)],
        );
        assert_eq!(v, vec![0., 2., 2., 0., 255.]);
        assert!(how.starts_with("composed"), "{how}");
    }
}
