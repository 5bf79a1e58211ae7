//! libtorch lowerings of the quantization family. Per-tensor and per-axis
//! QuantizeLinear to int8/uint8 is native (`quantize_per_tensor` /
//! `quantize_per_channel` then `int_repr`: torch rounds with nearbyint,
//! half to even, but multiplies by the reciprocal scale where ONNX divides);
//! blocked scales and int16 are composed (`div`, `round` — half to even —,
//! `add`, `clamp`). Integer products go through int64 `matmul` (exact) or a
//! float64 convolution (torch has no integer conv on CPU; every partial sum
//! of 8/16-bit products is an integer below 2^53, so exact). The idiomatic
//! port (`EngineOptions::port`) quantizes with C's `round`, half away from
//! zero (`trunc(q + 0.5·sign(q))`), where ONNX rounds half to even.

use tch::{Kind, Tensor};

use super::{kind_of, linalg, nn};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::optional;
use crate::op::quant::{self, ScaleMap};
use crate::tensor::DType;

type X<'a> = [Option<&'a Tensor>];
const QUANT: &str = "div, round, add, clamp";
const PORT_QUANT: &str =
    "div, trunc(q + 0.5·sign(q)), add, clamp (idiomatic port: half away from zero)";
const INT_MM: &str = "to_kind(int64), sub, matmul";
const INT_CONV: &str = "to_kind(float64), sub, conv";

pub fn register(r: &mut OpRegistry<Tensor>) {
    for (since, until) in [(10, 12), (13, 18), (19, 20), (21, 22), (23, u32::MAX)] {
        r.range("QuantizeLinear", since, until, quantize, spec!("QuantizeLinear"), cov![
            "per-tensor/per-axis int8/uint8" => Label::Native("quantize_per_tensor / quantize_per_channel, int_repr"),
            "blocked, int16" => Label::Composed(QUANT),
        ]);
        r.range(
            "DequantizeLinear",
            since,
            until,
            dequantize,
            spec!("DequantizeLinear"),
            cov![
                "per-tensor int8/uint8, float32 scale" => Label::Native("_make_per_tensor_quantized_tensor, dequantize"),
                "per-axis, blocked, int16/int32, other scale dtypes" => Label::Composed("sub, mul"),
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
            "all attributes" => Label::Composed("amin, amax, div, round, clamp"),
        ],
    );
    r.range(
        "MatMulInteger",
        10,
        u32::MAX,
        matmul_integer,
        spec!("MatMulInteger"),
        cov![
            "all attributes" => Label::Composed(INT_MM),
        ],
    );
    r.range(
        "ConvInteger",
        10,
        u32::MAX,
        conv_integer,
        spec!("ConvInteger"),
        cov![
            "all attributes" => Label::Composed(INT_CONV),
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
                "all attributes" => Label::Composed("int64 matmul, mul, round, add, clamp"),
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
            "all attributes" => Label::Composed("float64 conv, mul, round, add, clamp"),
        ],
    );
}

fn dims(t: &Tensor) -> Vec<usize> {
    t.size().iter().map(|&d| d as usize).collect()
}

fn i64s(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&d| d as i64).collect()
}

/// A scale or zero point viewed so it broadcasts against `x`.
fn spread(map: &ScaleMap, x: &[usize], s: &Tensor) -> OpResult<Tensor> {
    let v = s.f_reshape(i64s(&map.view_shape(x, &dims(s))))?;
    match map.block_ids(x) {
        Some((axis, ids)) => {
            let ids = Tensor::from_slice(&ids).f_to_device(s.device())?;
            Ok(v.f_index_select(axis as i64, &ids)?)
        }
        None => Ok(v),
    }
}

fn out_kind(ctx: &OpCtx, dt: DType) -> OpResult<Kind> {
    kind_of(dt)
        .ok_or_else(|| ctx.unsupported("output_dtype", format!("libtorch has no {dt} tensors")))
}

/// `clamp(round(q) + zp, range)` cast to `dt` (torch's round: half to even).
fn saturate(ctx: &OpCtx, q: &Tensor, zp: &Tensor, dt: DType) -> OpResult<Tensor> {
    let (lo, hi) = quant::range(ctx, dt)?;
    let y = q.f_round()?.f_add(&zp.f_to_kind(Kind::Double)?)?;
    Ok(y.f_clamp(lo, hi)?.f_to_kind(out_kind(ctx, dt)?)?)
}

fn quantize(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (xt, s) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let zp = optional(x, 2);
    let map = ScaleMap::decode(ctx, &dims(xt), &dims(s))?;
    let dt = quant::quantize_dtype(ctx, zp.and_then(|z| super::dtype_of(z.kind())))?;
    let zpt = match zp {
        Some(z) => z.f_to_kind(Kind::Int64)?,
        None => Tensor::f_zeros_like(&s.f_to_kind(Kind::Int64)?)?,
    };
    let qkind = match dt {
        DType::U8 => Some(Kind::QUInt8),
        DType::I8 => Some(Kind::QInt8),
        _ => None,
    };
    let xf = xt.f_to_kind(Kind::Float)?;
    match (&map, qkind.filter(|_| !ctx.options.port)) {
        (ScaleMap::PerTensor, Some(k)) => {
            let sv = f64::try_from(s.f_reshape([-1])?.f_get(0)?)?;
            let zv = i64::try_from(zpt.f_reshape([-1])?.f_get(0)?)?;
            let q = xf.f_quantize_per_tensor(sv, zv, k)?.f_int_repr()?;
            return Ok(Lowered::one(
                q,
                How::native("quantize_per_tensor, int_repr"),
            ));
        }
        (ScaleMap::PerAxis { axis }, Some(k)) => {
            let q = xf
                .f_quantize_per_channel(&s.f_to_kind(Kind::Double)?, &zpt, *axis as i64, k)?
                .f_int_repr()?;
            return Ok(Lowered::one(
                q,
                How::native("quantize_per_channel, int_repr"),
            ));
        }
        _ => {}
    }
    let q = xt
        .f_div(&spread(&map, &dims(xt), s)?)?
        .f_to_kind(Kind::Double)?;
    let (q, how) = match ctx.options.port {
        // Rounded already, so `saturate`'s own rounding keeps it.
        true => (
            q.f_sign()?.f_mul_scalar(0.5)?.f_add(&q)?.f_trunc()?,
            How::port(PORT_QUANT),
        ),
        false => (q, How::composed(QUANT)),
    };
    let y = saturate(ctx, &q, &spread(&map, &dims(xt), &zpt)?, dt)?;
    Ok(Lowered::one(y, how))
}

fn dequantize(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (xt, s) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let map = ScaleMap::decode(ctx, &dims(xt), &dims(s))?;
    let dt = quant::dequantize_dtype(ctx, super::dtype_of(s.kind()).unwrap_or(DType::F32))?;
    let k = out_kind(ctx, dt)?;
    let per_tensor = s.numel() == 1 && matches!(xt.kind(), Kind::Uint8 | Kind::Int8);
    if per_tensor && s.kind() == Kind::Float && k == Kind::Float {
        // torch's own dequantize of a per-tensor quantized tensor built from
        // the integers (`int_repr`'s inverse), zero point and scale.
        let zp = optional(x, 2).map(super::host_ints).transpose()?;
        let zp = zp.and_then(|z| z.first().copied()).unwrap_or(0);
        let y = xt
            .f_internal_make_per_tensor_quantized_tensor(s.f_double_value(&[])?, zp)?
            .f_dequantize()?;
        return Ok(Lowered::one(
            y,
            How::native("_make_per_tensor_quantized_tensor, dequantize"),
        ));
    }
    let mut c = xt.f_to_kind(Kind::Int64)?;
    if let Some(z) = optional(x, 2) {
        c = c.f_sub(&spread(&map, &dims(xt), &z.f_to_kind(Kind::Int64)?)?)?;
    }
    let y = c
        .f_to_kind(k)?
        .f_mul(&spread(&map, &dims(xt), &s.f_to_kind(k)?)?)?;
    Ok(Lowered::one(y, How::composed("sub, mul")))
}

fn dynamic(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let xt = ctx.input(x, 0)?;
    let zero = Tensor::f_zeros([], (xt.kind(), xt.device()))?;
    let lo = xt.f_min()?.f_minimum(&zero)?;
    let hi = xt.f_max()?.f_maximum(&zero)?;
    let scale = hi.f_sub(&lo)?.f_div_scalar(255.0)?;
    let zp = lo.f_neg()?.f_div(&scale)?.f_round()?.f_clamp(0.0, 255.0)?;
    let y = saturate(
        ctx,
        &xt.f_div(&scale)?.f_to_kind(Kind::Double)?,
        &zp,
        DType::U8,
    )?;
    let zp = zp.f_to_kind(Kind::Uint8)?;
    Ok(Lowered::many(
        vec![y, scale, zp],
        How::composed("amin, amax, div, round, clamp"),
    ))
}

/// `t − zp` in `kind`, `zp` a scalar or one value per index of `axis`.
fn centered(t: &Tensor, zp: Option<&Tensor>, axis: usize, kind: Kind) -> OpResult<Tensor> {
    let c = t.f_to_kind(kind)?;
    let Some(z) = zp else { return Ok(c) };
    let z = z.f_to_kind(kind)?;
    if z.numel() <= 1 {
        return Ok(c.f_sub(&z.f_reshape([-1])?)?);
    }
    let mut shape = vec![1i64; t.dim()];
    shape[axis] = -1;
    Ok(c.f_sub(&z.f_reshape(shape)?)?)
}

fn int_matmul(ctx: &OpCtx, x: &X, a: usize, az: usize, b: usize, bz: usize) -> OpResult<Tensor> {
    let (at, bt) = (ctx.input(x, a)?, ctx.input(x, b)?);
    let ca = centered(at, optional(x, az), at.dim().saturating_sub(2), Kind::Int64)?;
    let cb = centered(bt, optional(x, bz), bt.dim().saturating_sub(1), Kind::Int64)?;
    Ok(linalg::matmul(ctx, &[Some(&ca), Some(&cb)])?
        .outputs
        .remove(0)
        .expect("one output"))
}

fn int_conv(ctx: &OpCtx, x: &X, a: usize, az: usize, b: usize, bz: usize) -> OpResult<Tensor> {
    let cx = centered(ctx.input(x, a)?, optional(x, az), 0, Kind::Double)?;
    let cw = centered(ctx.input(x, b)?, optional(x, bz), 0, Kind::Double)?;
    Ok(nn::conv(ctx, &[Some(&cx), Some(&cw)])?
        .outputs
        .remove(0)
        .expect("one output"))
}

fn matmul_integer(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let y = int_matmul(ctx, x, 0, 2, 1, 3)?.f_to_kind(Kind::Int)?;
    Ok(Lowered::one(y, How::composed(INT_MM)))
}

fn conv_integer(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let y = int_conv(ctx, x, 0, 2, 1, 3)?
        .f_round()?
        .f_to_kind(Kind::Int)?;
    Ok(Lowered::one(y, How::composed(INT_CONV)))
}

/// `saturate(round(acc · (sa·sb / sy)) + zy)`, the multiplier in the scales'
/// dtype, `sb` scalar or one per index of `axis`.
fn requantize(ctx: &OpCtx, x: &X, acc: &Tensor, ix: [usize; 4], axis: usize) -> OpResult<Tensor> {
    let [sa, sb, sy, zy] = ix;
    let (a, b, y) = (ctx.input(x, sa)?, ctx.input(x, sb)?, ctx.input(x, sy)?);
    let mut shape = vec![1i64; acc.dim()];
    shape[axis] = -1;
    let b = if b.numel() > 1 {
        b.f_reshape(shape)?
    } else {
        b.f_reshape([-1])?
    };
    let m = a.f_reshape([-1])?.f_mul(&b)?.f_div(&y.f_reshape([-1])?)?;
    let q = acc
        .f_to_kind(Kind::Double)?
        .f_mul(&m.f_to_kind(Kind::Double)?)?;
    let z = optional(x, zy);
    let dt = z
        .and_then(|z| super::dtype_of(z.kind()))
        .unwrap_or(DType::U8);
    let zt = match z {
        Some(z) => z.f_reshape([-1])?,
        None => Tensor::f_zeros([1], (Kind::Int64, acc.device()))?,
    };
    saturate(ctx, &q, &zt, dt)
}

fn qlinear_matmul(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let acc = int_matmul(ctx, x, 0, 2, 3, 5)?;
    let last = acc.dim().saturating_sub(1);
    let y = requantize(ctx, x, &acc, [1, 4, 6, 7], last)?;
    Ok(Lowered::one(
        y,
        How::composed("int64 matmul, mul, round, add, clamp"),
    ))
}

fn qlinear_conv(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let mut acc = int_conv(ctx, x, 0, 2, 3, 5)?;
    if let Some(b) = optional(x, 8) {
        acc = acc.f_add(
            &b.f_to_kind(Kind::Double)?
                .f_reshape([1, -1])?
                .f_reshape(bias_shape(&acc))?,
        )?;
    }
    let y = requantize(ctx, x, &acc, [1, 4, 6, 7], 1)?;
    Ok(Lowered::one(
        y,
        How::composed("float64 conv, mul, round, add, clamp"),
    ))
}

fn bias_shape(acc: &Tensor) -> Vec<i64> {
    let mut s = vec![1i64; acc.dim()];
    s[1] = -1;
    s
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn per_tensor_dequantize_is_torchs_own() {
        use tch::Tensor;
        let q = Tensor::from_slice(&[0u8, 3, 128, 255]);
        let s = f32s(&[], &[0.1]);
        let z = Tensor::from_slice(&[128u8]).reshape([] as [i64; 0]);
        let n = node("DequantizeLinear", 3, 1, vec![]);
        let y = run(&n, 13, &[Some(&q), Some(&s), Some(&z)]).unwrap();
        assert_eq!(
            y.how.label(),
            "native: _make_per_tensor_quantized_tensor, dequantize"
        );
        let want: Vec<f64> = [-128i32, -125, 0, 127]
            .iter()
            .map(|&v| (v as f32 * 0.1f32) as f64)
            .collect();
        assert_eq!(vals(y.outputs[0].as_ref().unwrap()), want);
    }

    #[test]
    fn native_per_tensor_rounds_half_to_even_and_saturates() {
        let x = f32s(&[5], &[0.5, 1.5, 2.5, -0.5, 300.0]);
        let s = f32s(&[], &[1.0]);
        let n = node("QuantizeLinear", 2, 1, vec![]);
        let y = run(&n, 13, &[Some(&x), Some(&s)]).unwrap();
        assert_eq!(
            vals(y.outputs[0].as_ref().unwrap()),
            vec![0., 2., 2., 0., 255.]
        );
    }

    #[test]
    fn matmul_integer_is_exact_in_int32() {
        let a = i64s(&[1, 2], &[3, 4]).to_kind(tch::Kind::Uint8);
        let b = i64s(&[2, 1], &[5, 6]).to_kind(tch::Kind::Uint8);
        let n = node("MatMulInteger", 2, 1, vec![]);
        let y = run(&n, 10, &[Some(&a), Some(&b)]).unwrap();
        assert_eq!(vals(y.outputs[0].as_ref().unwrap()), vec![39.]);
    }
}
