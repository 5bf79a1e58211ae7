//! candle lowerings of the signal ops, all composed (candle has no FFT nor
//! window functions): the DFT is a faithful O(n²) transform, the signal
//! times cos/sin matrices built in float64 on the host (phase `jk mod n`
//! reduced exactly) and uploaded in the input's dtype; STFT frames the
//! signal with `index_select` and reuses it; the windows are `arange` +
//! `cos`; MelWeightMatrix clamps the two sides of each triangle. Axes,
//! lengths, frames and mel bins come from the shared decode (`op::signal`).

use candle_core::{DType as CDType, Device as CDevice, Tensor};

use super::{candle_dtype, index_tensor, Ce};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpFn, OpRegistry, OpResult};
use crate::op::optional;
use crate::op::signal::{self as decode, DftPlan, StftPlan};
use crate::tensor::DType;

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;
/// One registration: op, first opset, lowering, spec link, coverage.
type Row = (
    &'static str,
    u32,
    OpFn<Tensor>,
    &'static str,
    &'static [crate::op::Coverage],
);

const DFT_HOW: &str = "narrow, transpose, broadcast_matmul by host cos/sin, cat";
const STFT_HOW: &str = "index_select frames, broadcast_mul, matmul DFT";
const WINDOW_HOW: &str = "arange, affine, cos";
const MEL_HOW: &str = "arange, broadcast_sub, broadcast_div, broadcast_minimum, relu";

pub fn register(r: &mut OpRegistry<Tensor>) {
    use Label::Composed;
    let ops: &[Row] = &[
        (
            "DFT",
            17,
            dft,
            spec!("DFT"),
            cov!["all" => Composed(DFT_HOW)],
        ),
        (
            "STFT",
            17,
            stft,
            spec!("STFT"),
            cov!["all" => Composed(STFT_HOW)],
        ),
        (
            "HannWindow",
            17,
            window,
            spec!("HannWindow"),
            cov!["all" => Composed(WINDOW_HOW)],
        ),
        (
            "HammingWindow",
            17,
            window,
            spec!("HammingWindow"),
            cov!["all" => Composed(WINDOW_HOW)],
        ),
        (
            "BlackmanWindow",
            17,
            window,
            spec!("BlackmanWindow"),
            cov!["all" => Composed(WINDOW_HOW)],
        ),
        (
            "MelWeightMatrix",
            17,
            mel,
            spec!("MelWeightMatrix"),
            cov!["all" => Composed(MEL_HOW)],
        ),
    ];
    for &(op, since, run, spec, cov) in ops {
        r.range(op, since, u32::MAX, run, spec, cov);
    }
}

/// The [rows, bins] cos and sin matrices of the transform (1/n folded in
/// for the inverse), in `dtype`.
fn twiddles(
    plan: &DftPlan,
    rows: usize,
    dtype: CDType,
    dev: &CDevice,
) -> OpResult<(Tensor, Tensor)> {
    let (n, bins) = (plan.n, plan.bins());
    let sign = if plan.inverse { 1.0 } else { -1.0 };
    let scale = if plan.inverse { 1.0 / n as f64 } else { 1.0 };
    let mut cos = Vec::with_capacity(rows * bins);
    let mut sin = Vec::with_capacity(rows * bins);
    for j in 0..rows {
        for k in 0..bins {
            let phase = sign * 2.0 * std::f64::consts::PI * ((j * k) % n) as f64 / n as f64;
            let (s, c) = phase.sin_cos();
            cos.push(c * scale);
            sin.push(s * scale);
        }
    }
    let up = |v: Vec<f64>| Tensor::from_vec(v, (rows, bins), dev).and_then(|t| t.to_dtype(dtype));
    Ok((up(cos).ce()?, up(sin).ce()?))
}

/// The DFT of `x` ([..., 1 or 2]) under `plan`, as [..., 2].
fn transform(x: &Tensor, plan: &DftPlan) -> OpResult<Tensor> {
    let last = x.rank() - 1;
    let inner = last - 1;
    let rows = x.dims()[plan.axis].min(plan.n);
    // One part ([re] or [im]) with the transformed axis last, cut to `rows`.
    let part = |i: usize| -> OpResult<Tensor> {
        x.narrow(last, i, 1)
            .and_then(|t| t.squeeze(last))
            .and_then(|t| t.narrow(plan.axis, 0, rows))
            .and_then(|t| t.transpose(plan.axis, inner))
            .and_then(|t| t.contiguous())
            .ce()
    };
    let (cos, sin) = twiddles(plan, rows, x.dtype(), x.device())?;
    let xr = part(0)?;
    let mut re = xr.broadcast_matmul(&cos).ce()?;
    let mut im = xr.broadcast_matmul(&sin).ce()?;
    if plan.complex {
        let xi = part(1)?;
        re = re.sub(&xi.broadcast_matmul(&sin).ce()?).ce()?;
        im = im.add(&xi.broadcast_matmul(&cos).ce()?).ce()?;
    }
    let back = |t: Tensor| -> OpResult<Tensor> {
        t.transpose(plan.axis, inner)
            .and_then(|t| t.unsqueeze(last))
            .ce()
    };
    Tensor::cat(&[back(re)?, back(im)?], last)
        .and_then(|t| t.contiguous())
        .ce()
}

/// DFT-17/20: the matmul transform along the decoded axis.
fn dft(ctx: &OpCtx, x: &In) -> Out {
    let plan = decode::dft(ctx, x)?;
    let y = transform(ctx.input(x, 0)?, &plan)?;
    Ok(Lowered::one(y, How::composed(DFT_HOW)))
}

/// The windowed frames [batch, frames, window, c] of the signal.
fn frames(a: &Tensor, w: Option<&Tensor>, plan: &StftPlan) -> OpResult<Tensor> {
    let need = (plan.frames - 1) * plan.step + plan.window;
    let a = a.pad_with_zeros(1, 0, need.saturating_sub(plan.len)).ce()?;
    let idx: Vec<i64> = (0..plan.frames)
        .flat_map(|f| (0..plan.window).map(move |t| (f * plan.step + t) as i64))
        .collect();
    let c = a.dims()[2];
    let f = a
        .index_select(&index_tensor(idx, a.device())?, 1)
        .and_then(|t| t.reshape((plan.batch, plan.frames, plan.window, c)))
        .ce()?;
    match w {
        Some(w) => f
            .broadcast_mul(&w.reshape((1, 1, plan.window, 1)).ce()?)
            .ce(),
        None => Ok(f),
    }
}

/// STFT-17: framing, the window, then the matmul DFT of each frame.
fn stft(ctx: &OpCtx, x: &In) -> Out {
    let plan = decode::stft(ctx, x)?;
    let f = frames(ctx.input(x, 0)?, optional(x, 2), &plan)?;
    let y = transform(&f, &plan.frame_dft())?;
    Ok(Lowered::one(y, How::composed(STFT_HOW)))
}

/// The (compute, output) candle dtypes for `output_datatype`.
fn dtypes(ctx: &OpCtx, dtype: DType) -> OpResult<(CDType, CDType)> {
    let out = candle_dtype(dtype).ok_or_else(|| {
        ctx.unsupported("output_datatype", format!("candle has no {dtype} dtype"))
    })?;
    let work = if dtype.is_float() { out } else { CDType::F32 };
    Ok((work, out))
}

/// Hann/Hamming/BlackmanWindow-17: `Σ a_k·cos(k·2π·i/N)` from `arange`.
fn window(ctx: &OpCtx, x: &In) -> Out {
    let p = decode::window(ctx, x)?;
    let (work, out) = dtypes(ctx, p.dtype)?;
    let dev = ctx.input(x, 0)?.device();
    let i = Tensor::arange(0u32, p.size as u32, dev)
        .and_then(|t| t.to_dtype(work))
        .ce()?;
    let step = 2.0 * std::f64::consts::PI / p.denom as f64;
    let mut y = Tensor::full(p.coef[0], p.size, dev)
        .and_then(|t| t.to_dtype(work))
        .ce()?;
    for (k, a) in p.coef.iter().enumerate().skip(1) {
        let term = i
            .affine(step * k as f64, 0.0)
            .and_then(|t| t.cos())
            .and_then(|t| t.affine(*a, 0.0))
            .ce()?;
        y = y.add(&term).ce()?;
    }
    Ok(Lowered::one(
        y.to_dtype(out).ce()?,
        How::composed(WINDOW_HOW),
    ))
}

/// MelWeightMatrix-17: min(rise, fall) clamped at 0 per column.
fn mel(ctx: &OpCtx, x: &In) -> Out {
    let p = decode::mel(ctx, x)?;
    let (work, out) = dtypes(ctx, p.dtype)?;
    let dev = ctx.input(x, 0)?.device();
    let s = p.sides();
    let m = s.lower.len();
    let row = |v: Vec<f64>| Tensor::from_vec(v, (1, m), dev).and_then(|t| t.to_dtype(work));
    let j = Tensor::arange(0u32, p.spectrogram_bins as u32, dev)
        .and_then(|t| t.to_dtype(work))
        .and_then(|t| t.reshape((p.spectrogram_bins, 1)))
        .ce()?;
    let rise = j
        .broadcast_sub(&row(s.lower).ce()?)
        .and_then(|t| t.broadcast_div(&row(s.rise)?))
        .ce()?;
    let fall = row(s.upper)
        .and_then(|u| u.broadcast_sub(&j))
        .and_then(|t| t.broadcast_div(&row(s.fall)?))
        .ce()?;
    let y = rise
        .broadcast_minimum(&fall)
        .and_then(|t| t.relu())
        .and_then(|t| t.to_dtype(out))
        .ce()?;
    Ok(Lowered::one(y, How::composed(MEL_HOW)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn composed_dft_and_stft_agree_with_known_spectra() {
        let x = f32t(&[1, 4, 1], &[1., 2., 3., 4.]);
        let (y, dims, how) = run1(&node("DFT", 1, 1, vec![]), 17, &[Some(&x)]);
        close(&y, &[10., 0., -2., 2., -2., 0., -2., -2.], 1e-5);
        assert_eq!((dims, how.starts_with("composed")), (vec![1, 4, 2], true));
        let s = f32t(&[1, 4, 2], &[10., 0., -2., 2., -2., 0., -2., -2.]);
        let inv = node(
            "DFT",
            1,
            1,
            vec![("inverse", Attr::Int(1)), ("onesided", Attr::Int(1))],
        );
        let (y, _, _) = run1(&inv, 17, &[Some(&s)]);
        close(&y, &[1., 0., 2., 0., 3., 0.], 1e-5);
        let sig = f32t(&[1, 5, 1], &[1., 2., 3., 4., 5.]);
        let (step, len) = (
            i64t(&[2]).reshape(()).unwrap(),
            i64t(&[3]).reshape(()).unwrap(),
        );
        let (y, dims, _) = run1(
            &node("STFT", 4, 1, vec![]),
            17,
            &[Some(&sig), Some(&step), None, Some(&len)],
        );
        assert_eq!(dims, vec![1, 2, 2, 2]);
        close(&[y[0], y[4]], &[6., 12.], 1e-5);
    }

    #[test]
    fn composed_windows() {
        let size = i64t(&[4]).reshape(()).unwrap();
        let (y, _, _) = run1(&node("HannWindow", 1, 1, vec![]), 17, &[Some(&size)]);
        close(&y, &[0., 0.5, 1., 0.5], 1e-6);
        let n = node("BlackmanWindow", 1, 1, vec![("periodic", Attr::Int(0))]);
        let (y, _, _) = run1(&n, 17, &[Some(&size)]);
        // 0.42 − 0.5·cos(2πi/3) + 0.08·cos(4πi/3).
        close(&y, &[0., 0.63, 0.63, 0.], 1e-6);
    }
}
