//! Reference ops: the quantization family (QuantizeLinear, DequantizeLinear,
//! DynamicQuantizeLinear, MatMulInteger, ConvInteger, QLinearMatMul,
//! QLinearConv), written from the spec over `op::quant`'s decode.
//!
//! Quantizing divides in the input's float dtype (the spec's `x / y_scale`
//! is one rounded operation of that type) and then rounds half to even in
//! f64, so a quotient exactly on .5 stays on it. Integer products are summed
//! in f64 through the float Conv/MatMul: every partial sum of int8/int16
//! products is an integer far below 2^53, hence exact.

use ndarray::{ArrayD, Axis, IxDyn};

use super::{conv, linalg, RefTensor};
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::quant::{self, ScaleMap};
use crate::op::{optional, HostView};
use crate::tensor::{DType, Tensor};

const SPEC: &[Coverage] = &[Coverage {
    when: "int8/uint8/int16/uint16, per-tensor, per-axis and blocked scales",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    for (since, until) in [(10, 12), (13, 18), (19, 20), (21, 22), (23, u32::MAX)] {
        r.range(
            "QuantizeLinear",
            since,
            until,
            quantize,
            spec!("QuantizeLinear"),
            SPEC,
        );
        r.range(
            "DequantizeLinear",
            since,
            until,
            dequantize,
            spec!("DequantizeLinear"),
            SPEC,
        );
    }
    r.range(
        "DynamicQuantizeLinear",
        11,
        u32::MAX,
        dynamic,
        spec!("DynamicQuantizeLinear"),
        SPEC,
    );
    r.range(
        "MatMulInteger",
        10,
        u32::MAX,
        matmul_integer,
        spec!("MatMulInteger"),
        SPEC,
    );
    r.range(
        "ConvInteger",
        10,
        u32::MAX,
        conv_integer,
        spec!("ConvInteger"),
        SPEC,
    );
    for (since, until) in [(10, 20), (21, u32::MAX)] {
        r.range(
            "QLinearMatMul",
            since,
            until,
            qlinear_matmul,
            spec!("QLinearMatMul"),
            SPEC,
        );
    }
    r.range(
        "QLinearConv",
        10,
        u32::MAX,
        qlinear_conv,
        spec!("QLinearConv"),
        SPEC,
    );
}

/// `v` rounded to the float dtype `dt` (one operation of that type).
fn fl(v: f64, dt: DType) -> f64 {
    match dt {
        DType::F32 => v as f32 as f64,
        DType::F16 => half::f16::from_f64(v).to_f64(),
        DType::BF16 => half::bf16::from_f64(v).to_f64(),
        _ => v,
    }
}

/// All values of a tensor as f64 (ints exactly).
fn values(t: &RefTensor) -> OpResult<Vec<f64>> {
    t.host_floats()
}

/// `round_half_even(q) + zp` saturated to `[lo, hi]`.
fn saturate(q: f64, zp: f64, (lo, hi): (f64, f64)) -> f64 {
    (q.round_ties_even() + zp).clamp(lo, hi)
}

/// A scale input's values and its zero point's (zeros when absent), the
/// latter checked to have the scale's shape.
fn scale_zp(
    ctx: &OpCtx,
    x: &[Option<&RefTensor>],
    s: usize,
) -> OpResult<(Vec<f64>, Vec<f64>, Option<DType>)> {
    let scale = ctx.input(x, s)?;
    let sv = values(scale)?;
    match optional(x, s + 1) {
        None => Ok((sv.clone(), vec![0.0; sv.len()], None)),
        Some(z) if z.numel() == sv.len() => Ok((sv, values(z)?, Some(z.dtype))),
        Some(z) => Err(ctx.fail(format!(
            "zero point has shape {:?}, scale {:?}",
            z.shape(),
            scale.shape()
        ))),
    }
}

/// The exact quotients `x / y_scale` of a QuantizeLinear node, each
/// element's zero point, the output's range and dtype, and `x`'s dtype.
struct Quotients {
    q: Vec<f64>,
    zp: Vec<f64>,
    range: (f64, f64),
    out: DType,
    x: DType,
    shape: Vec<usize>,
}

fn quotients(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Quotients> {
    let xt = ctx.input(x, 0)?;
    let map = ScaleMap::decode(ctx, xt.shape(), ctx.input(x, 1)?.shape())?;
    let (scales, zps, zdt) = scale_zp(ctx, x, 1)?;
    let out = quant::quantize_dtype(ctx, zdt)?;
    let range = quant::range(ctx, out)?;
    let idx = map.indices(xt.shape());
    let q = values(xt)?
        .iter()
        .zip(&idx)
        .map(|(&v, &i)| v / scales[i])
        .collect();
    Ok(Quotients {
        q,
        zp: idx.iter().map(|&i| zps[i]).collect(),
        range,
        out,
        x: xt.dtype,
        shape: xt.shape().to_vec(),
    })
}

/// QuantizeLinear: `saturate(round_half_even(x / y_scale) + y_zero_point)`,
/// the quotient correctly rounded to `x`'s dtype (one division of that type,
/// as ONNX's own reference computes it).
fn quantize(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let qs = quotients(ctx, x)?;
    let y: Vec<f64> =
        qs.q.iter()
            .zip(&qs.zp)
            .map(|(&q, &zp)| saturate(fl(q, qs.x), zp, qs.range))
            .collect();
    let out = Tensor::from_f64(qs.out, &qs.shape, &y);
    Ok(Lowered::one(RefTensor::exact(out), How::Spec))
}

/// How many integer steps each QuantizeLinear output may move when its
/// quotient moves by a relative `eps` (`diff::bound`): 1 near a tie, where
/// the exact and the rounded quotient fall on different sides of a
/// half-integer; 0 on exact ties (half to even is the convention) and
/// everywhere else.
pub fn quantize_steps(ctx: &OpCtx, x: &[Option<&RefTensor>], eps: f64) -> OpResult<Vec<f64>> {
    let qs = quotients(ctx, x)?;
    Ok(qs
        .q
        .iter()
        .zip(&qs.zp)
        .map(|(&q, &zp)| {
            let y = saturate(fl(q, qs.x), zp, qs.range);
            let exact_tie = (q - q.trunc()).abs() == 0.5;
            if exact_tie || !q.is_finite() {
                return 0.0;
            }
            [q * (1.0 + eps), q * (1.0 - eps)]
                .iter()
                .map(|&p| (saturate(p, zp, qs.range) - y).abs())
                .fold(0.0, f64::max)
        })
        .collect())
}

fn dequantize(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let xt = ctx.input(x, 0)?;
    let scale = ctx.input(x, 1)?;
    let map = ScaleMap::decode(ctx, xt.shape(), scale.shape())?;
    let (scales, zps, _) = scale_zp(ctx, x, 1)?;
    let dt = quant::dequantize_dtype(ctx, scale.dtype)?;
    let y: Vec<f64> = values(xt)?
        .iter()
        .zip(map.indices(xt.shape()))
        .map(|(&v, i)| (v - zps[i]) * scales[i])
        .collect();
    let a = ArrayD::from_shape_vec(IxDyn(xt.shape()), y).expect("shape matches");
    Ok(Lowered::one(RefTensor::float(a, dt), How::Spec))
}

/// DynamicQuantizeLinear: uint8 `y`, float32 `y_scale`, uint8 `y_zero_point`
/// from the data's range (`op::quant::dynamic_params`), scale rounded to
/// float32 as the output holds it.
fn dynamic(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let xt = ctx.input(x, 0)?;
    let xv = values(xt)?;
    let min = xv.iter().copied().fold(f64::INFINITY, f64::min);
    let max = xv.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (scale, zp) = quant::dynamic_params(min, max, |v| fl(v, xt.dtype));
    let y: Vec<f64> = xv
        .iter()
        .map(|&v| {
            let q = if scale == 0.0 {
                0.0
            } else {
                fl(v / scale, xt.dtype)
            };
            saturate(q, zp, (0.0, 255.0))
        })
        .collect();
    let scalar = |v: f64| ArrayD::from_elem(IxDyn(&[]), v);
    Ok(Lowered::many(
        vec![
            RefTensor::exact(Tensor::from_f64(DType::U8, xt.shape(), &y)),
            RefTensor::float(scalar(scale), xt.dtype),
            RefTensor::exact(Tensor::from_f64(DType::U8, &[], &[zp])),
        ],
        How::Spec,
    ))
}

/// `t − zp` in f64, `zp` a scalar or one value per index of `axis`.
fn centered(
    ctx: &OpCtx,
    t: &RefTensor,
    zp: Option<&RefTensor>,
    axis: usize,
) -> OpResult<RefTensor> {
    let mut a = ArrayD::from_shape_vec(IxDyn(t.shape()), values(t)?).expect("shape matches");
    if let Some(z) = zp {
        let zv = values(z)?;
        match zv.len() {
            1 => a.mapv_inplace(|v| v - zv[0]),
            n if t.shape().get(axis) == Some(&n) => {
                for (j, mut lane) in a.axis_iter_mut(Axis(axis)).enumerate() {
                    lane.mapv_inplace(|v| v - zv[j]);
                }
            }
            _ => {
                return Err(ctx.fail(format!(
                    "zero point has shape {:?} for an input of shape {:?}",
                    z.shape(),
                    t.shape()
                )))
            }
        }
    }
    Ok(RefTensor::float(a, DType::F64))
}

/// The integer product of the centered inputs `a`, `b` (MatMul in f64, exact).
fn int_matmul(
    ctx: &OpCtx,
    a: &RefTensor,
    az: Option<&RefTensor>,
    b: &RefTensor,
    bz: Option<&RefTensor>,
) -> OpResult<RefTensor> {
    let ra = a.shape().len();
    let rb = b.shape().len();
    let ca = centered(ctx, a, az, ra.saturating_sub(2))?;
    let cb = centered(ctx, b, bz, rb.saturating_sub(1))?;
    Ok(linalg::matmul(ctx, &[Some(&ca), Some(&cb)])?
        .outputs
        .remove(0)
        .expect("one output"))
}

/// The integer convolution of the centered inputs (Conv in f64, exact).
fn int_conv(
    ctx: &OpCtx,
    xt: &RefTensor,
    xz: Option<&RefTensor>,
    w: &RefTensor,
    wz: Option<&RefTensor>,
) -> OpResult<RefTensor> {
    let cx = centered(ctx, xt, xz, 0)?;
    let cw = centered(ctx, w, wz, 0)?;
    Ok(conv::conv(ctx, &[Some(&cx), Some(&cw)])?
        .outputs
        .remove(0)
        .expect("one output"))
}

fn to_int32(t: &RefTensor) -> OpResult<RefTensor> {
    Ok(RefTensor::exact(t.data.cast(DType::I32)))
}

/// MatMulInteger: `(A − a_zero_point) · (B − b_zero_point)` in int32.
fn matmul_integer(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let y = int_matmul(ctx, a, optional(x, 2), b, optional(x, 3))?;
    Ok(Lowered::one(to_int32(&y)?, How::Spec))
}

/// ConvInteger: Conv of `(x − x_zero_point)` and `(w − w_zero_point)` in int32.
fn conv_integer(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (xt, w) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let y = int_conv(ctx, xt, optional(x, 2), w, optional(x, 3))?;
    Ok(Lowered::one(to_int32(&y)?, How::Spec))
}

/// Requantizes an int32 accumulator: `saturate(round(acc · (sa·sb / sy)) + zy)`,
/// the multiplier computed in the scales' float dtype (as ONNX's own
/// reference does), `sb` scalar or one per index of `axis` of `acc`.
fn requantize(
    ctx: &OpCtx,
    acc: &RefTensor,
    sa: &RefTensor,
    sb: &RefTensor,
    sy: &RefTensor,
    zy: Option<&RefTensor>,
    axis: usize,
) -> OpResult<RefTensor> {
    let (a, b, ys) = (values(sa)?, values(sb)?, values(sy)?);
    let dt = sa.dtype;
    let zdt = zy.map(|z| z.dtype).unwrap_or(DType::U8);
    let zv = zy.map(values).transpose()?.unwrap_or(vec![0.0]);
    let r = quant::range(ctx, zdt)?;
    let mut out = acc.f64()?.clone();
    let shape = out.shape().to_vec();
    let pick = |v: &[f64], j: usize| if v.len() == 1 { v[0] } else { v[j] };
    for (j, mut lane) in out.axis_iter_mut(Axis(axis)).enumerate() {
        if b.len() > 1 && b.len() != shape[axis] {
            return Err(ctx.fail(format!(
                "scale of {} values for an axis of {}",
                b.len(),
                shape[axis]
            )));
        }
        let m = fl(fl(pick(&a, 0) * pick(&b, j), dt) / ys[0], dt);
        lane.mapv_inplace(|v| saturate(v * m, zv[0], r));
    }
    let flat: Vec<f64> = out.iter().copied().collect();
    Ok(RefTensor::exact(Tensor::from_f64(zdt, &shape, &flat)))
}

/// QLinearMatMul: the int32 product of the centered inputs, requantized.
fn qlinear_matmul(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 3)?);
    let acc = int_matmul(ctx, a, optional(x, 2), b, optional(x, 5))?;
    let last = acc.shape().len().saturating_sub(1);
    let y = requantize(
        ctx,
        &acc,
        ctx.input(x, 1)?,
        ctx.input(x, 4)?,
        ctx.input(x, 6)?,
        optional(x, 7),
        last,
    )?;
    Ok(Lowered::one(y, How::Spec))
}

/// QLinearConv: the int32 convolution plus bias, requantized per output channel.
fn qlinear_conv(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (xt, w) = (ctx.input(x, 0)?, ctx.input(x, 3)?);
    let mut acc = int_conv(ctx, xt, optional(x, 2), w, optional(x, 5))?;
    if let Some(bias) = optional(x, 8) {
        let bv = values(bias)?;
        let a = match &mut acc.data {
            Tensor::F64(a) => a,
            _ => unreachable!("int_conv yields f64"),
        };
        for (j, mut lane) in a.axis_iter_mut(Axis(1)).enumerate() {
            lane.mapv_inplace(|v| v + bv[j]);
        }
    }
    let y = requantize(
        ctx,
        &acc,
        ctx.input(x, 1)?,
        ctx.input(x, 4)?,
        ctx.input(x, 6)?,
        optional(x, 7),
        1,
    )?;
    Ok(Lowered::one(y, How::Spec))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use crate::tensor::Tensor;

    #[test]
    fn ties_round_half_to_even_and_saturate() {
        let x = f(&[6], &[0.5, 1.5, 2.5, -0.5, 300.0, -3.0]);
        let s = f(&[], &[1.0]);
        let n = test_node("QuantizeLinear", 2, 1, vec![]);
        let y = run_op(&n, 13, &[Some(&x), Some(&s)])
            .unwrap()
            .remove(0)
            .unwrap();
        assert_eq!(
            y.data,
            Tensor::from_f64(crate::tensor::DType::U8, &[6], &[0., 2., 2., 0., 255., 0.])
        );
    }

    #[test]
    fn matmul_integer_subtracts_zero_points() {
        let a = i(&[1, 2], &[3, 4]);
        let b = i(&[2, 1], &[5, 6]);
        let (az, bz) = (i(&[], &[1]), i(&[], &[2]));
        let n = test_node("MatMulInteger", 4, 1, vec![]);
        let y = run_op(&n, 10, &[Some(&a), Some(&b), Some(&az), Some(&bz)])
            .unwrap()
            .remove(0)
            .unwrap();
        // (3−1)(5−2) + (4−1)(6−2) = 6 + 12.
        assert_eq!(y.data.to_f64_vec(), vec![18.0]);
    }
}
