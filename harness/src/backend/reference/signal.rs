//! Reference signal-processing ops: DFT, STFT, Hann/Hamming/BlackmanWindow
//! and MelWeightMatrix, from the spec's formulas in float64.
//!
//! Audio front ends (Whisper, wav2vec2 exports) carry these ops; the decode
//! (`op::signal`) fixes axis, lengths, frames and the mel bins, this file does
//! the maths: the DFT is the direct sum `X[k] = Σ_j x[j]·e^{∓2πi·jk/n}` with
//! the phase `jk mod n` reduced exactly, no FFT.

use ndarray::{ArrayD, Axis, Dimension, IxDyn};

use super::shape::cast_to;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpFn, OpRegistry, OpResult};
use crate::op::signal::{self as decode, DftPlan};
use crate::tensor::DType;

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

type Out = OpResult<Lowered<RefTensor>>;
type In<'a> = [Option<&'a RefTensor>];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    let ops: &[(&'static str, u32, OpFn<RefTensor>, &'static str)] = &[
        ("DFT", 17, dft, spec!("DFT")),
        ("STFT", 17, stft, spec!("STFT")),
        ("HannWindow", 17, window, spec!("HannWindow")),
        ("HammingWindow", 17, window, spec!("HammingWindow")),
        ("BlackmanWindow", 17, window, spec!("BlackmanWindow")),
        ("MelWeightMatrix", 17, mel, spec!("MelWeightMatrix")),
    ];
    for &(op, since, run, spec) in ops {
        r.range(op, since, u32::MAX, run, spec, SPEC);
    }
}

/// The DFT of `x` (last dim 1 or 2) under `plan`: output [..., 2].
pub fn transform(x: &ArrayD<f64>, plan: &DftPlan) -> ArrayD<f64> {
    let (n, bins, axis) = (plan.n, plan.bins(), plan.axis);
    let len = x.shape()[axis];
    let sign = if plan.inverse { 1.0 } else { -1.0 };
    let scale = if plan.inverse { 1.0 / n as f64 } else { 1.0 };
    let mut out = ArrayD::<f64>::zeros(IxDyn(&plan.out));
    let at = |idx: &[usize], j: usize, part: usize| -> f64 {
        let mut i = idx.to_vec();
        i[axis] = j;
        let last = i.len() - 1;
        i[last] = part;
        x[IxDyn(&i)]
    };
    let positions: Vec<Vec<usize>> = out
        .indexed_iter()
        .filter(|(i, _)| i[i.ndim() - 1] == 0)
        .map(|(i, _)| i.slice().to_vec())
        .collect();
    for idx in positions {
        let k = idx[axis];
        debug_assert!(k < bins);
        let (mut re, mut im) = (0.0, 0.0);
        // Zero padding: samples past the signal contribute nothing; truncation:
        // samples past n are not summed.
        for j in 0..len.min(n) {
            let (xr, xi) = (
                at(&idx, j, 0),
                if plan.complex { at(&idx, j, 1) } else { 0.0 },
            );
            let phase = sign * 2.0 * std::f64::consts::PI * ((j * k) % n) as f64 / n as f64;
            let (s, c) = phase.sin_cos();
            re += xr * c - xi * s;
            im += xr * s + xi * c;
        }
        let mut o = idx.clone();
        out[IxDyn(&o)] = re * scale;
        let last = o.len() - 1;
        o[last] = 1;
        out[IxDyn(&o)] = im * scale;
    }
    out
}

/// DFT-17/20: the direct transform along the decoded axis.
fn dft(ctx: &OpCtx, x: &In) -> Out {
    let plan = decode::dft(ctx, x)?;
    let a = ctx.input(x, 0)?;
    let y = transform(a.f64()?, &plan);
    Ok(Lowered::one(RefTensor::float(y, a.dtype), How::Spec))
}

/// The windowed frames [batch, frames, window, c] of an STFT signal.
pub fn frames(x: &ArrayD<f64>, w: Option<&ArrayD<f64>>, plan: &decode::StftPlan) -> ArrayD<f64> {
    let c = x.shape()[2];
    ArrayD::from_shape_fn(IxDyn(&[plan.batch, plan.frames, plan.window, c]), |i| {
        let t = i[1] * plan.step + i[2];
        let v = if t < plan.len {
            x[[i[0], t, i[3]]]
        } else {
            0.0
        };
        v * w.map_or(1.0, |w| w[[i[2]]])
    })
}

/// STFT-17: each frame times the window, then its DFT over frame_length.
fn stft(ctx: &OpCtx, x: &In) -> Out {
    let plan = decode::stft(ctx, x)?;
    let a = ctx.input(x, 0)?;
    let w = crate::op::optional(x, 2).map(|w| w.f64()).transpose()?;
    let y = transform(&frames(a.f64()?, w, &plan), &plan.frame_dft());
    Ok(Lowered::one(RefTensor::float(y, a.dtype), How::Spec))
}

/// Hann/Hamming/BlackmanWindow-17: `Σ_k a_k·cos(2πk·i/N)`.
fn window(ctx: &OpCtx, x: &In) -> Out {
    let p = decode::window(ctx, x)?;
    let w = ArrayD::from_shape_fn(IxDyn(&[p.size]), |i| {
        let t = 2.0 * std::f64::consts::PI * i[0] as f64 / p.denom as f64;
        p.coef
            .iter()
            .enumerate()
            .map(|(k, a)| a * (k as f64 * t).cos())
            .sum::<f64>()
    });
    let y = cast_to(ctx, &RefTensor::float(w, DType::F64), p.dtype)?;
    Ok(Lowered::one(y, How::Spec))
}

/// MelWeightMatrix-17: each column rises from `lower` to 1 at `center` and
/// falls to 0 at `upper`, as the spec's two loops write it.
fn mel(ctx: &OpCtx, x: &In) -> Out {
    let p = decode::mel(ctx, x)?;
    let mut m = ArrayD::<f64>::zeros(IxDyn(&[p.spectrogram_bins, p.triangles.len()]));
    for (i, t) in p.triangles.iter().enumerate() {
        let rise = t.center - t.lower;
        if rise == 0 {
            m[[t.center, i]] = 1.0;
        } else {
            for j in t.lower..=t.center {
                m[[j, i]] = (j - t.lower) as f64 / rise as f64;
            }
        }
        let fall = t.upper - t.center;
        for j in t.center..t.upper {
            m[[j, i]] = (t.upper - j) as f64 / fall as f64;
        }
    }
    let y = cast_to(ctx, &RefTensor::float(m, DType::F64), p.dtype)?;
    Ok(Lowered::one(y, How::Spec))
}

/// `Σ|x|` of each transformed signal (its magnitude for the DFT bound),
/// broadcast over the output: real and imaginary parts count separately.
pub fn dft_magnitude(x: &ArrayD<f64>, plan: &DftPlan) -> Vec<f64> {
    let abs = x.mapv(f64::abs);
    let len = abs.shape()[plan.axis].min(plan.n);
    let kept = abs.slice_axis(Axis(plan.axis), (0..len).into());
    let sums = kept
        .sum_axis(Axis(plan.axis))
        .sum_axis(Axis(abs.ndim() - 2))
        .insert_axis(Axis(plan.axis));
    let scale = if plan.inverse {
        1.0 / plan.n as f64
    } else {
        1.0
    };
    let mut out = ArrayD::<f64>::zeros(IxDyn(&plan.out));
    for (idx, v) in out.indexed_iter_mut() {
        let mut i = idx.slice().to_vec();
        i[plan.axis] = 0;
        i.pop();
        *v = sums[IxDyn(&i)] * scale;
    }
    out.into_iter().collect()
}

/// `Σ|w·x|` of each STFT frame, over the output.
pub fn stft_magnitude(
    x: &ArrayD<f64>,
    w: Option<&ArrayD<f64>>,
    plan: &decode::StftPlan,
) -> Vec<f64> {
    dft_magnitude(&frames(x, w, plan), &plan.frame_dft())
}

/// The DFT/STFT error bound's (K, `Σ|terms|` per output element): K counts
/// the products summed into one bin (re and im separately) plus the
/// rounding of the twiddle factor, of the window product (STFT) and of the
/// 1/n scaling (inverse).
pub fn dft_bound_terms(ctx: &OpCtx, x: &In) -> OpResult<(usize, Vec<f64>)> {
    let a = ctx.input(x, 0)?.f64()?;
    let c = a.shape()[a.ndim() - 1];
    if ctx.node.op_type == "STFT" {
        let plan = decode::stft(ctx, x)?;
        let w = crate::op::optional(x, 2).map(|w| w.f64()).transpose()?;
        let rows = plan.window.min(plan.n);
        return Ok((c * rows + 3, stft_magnitude(a, w, &plan)));
    }
    let plan = decode::dft(ctx, x)?;
    let rows = a.shape()[plan.axis].min(plan.n);
    Ok((c * rows + 3, dft_magnitude(a, &plan)))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use super::*;
    use crate::graph::Attr;

    fn run(op: &str, opset: u32, attrs: Vec<(&str, Attr)>, ins: &[Option<&RefTensor>]) -> Vec<f64> {
        let node = test_node(op, ins.len(), 1, attrs);
        let y = run_op(&node, opset, ins).unwrap().remove(0).unwrap();
        y.data.to_f64_vec()
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        assert!(
            a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6),
            "{a:?} vs {b:?}"
        );
    }

    #[test]
    fn dft_of_known_signals() {
        // [1, 2, 3, 4]: X = [10, -2+2i, -2, -2-2i]; onesided keeps 3 bins.
        let x = f(&[1, 4, 1], &[1., 2., 3., 4.]);
        let y = run("DFT", 17, vec![], &[Some(&x)]);
        close(&y, &[10., 0., -2., 2., -2., 0., -2., -2.]);
        let y = run("DFT", 17, vec![("onesided", Attr::Int(1))], &[Some(&x)]);
        close(&y, &[10., 0., -2., 2., -2., 0.]);
        // The inverse of the spectrum is the signal (divided by n).
        let s = f(&[1, 4, 2], &[10., 0., -2., 2., -2., 0., -2., -2.]);
        let y = run("DFT", 20, vec![("inverse", Attr::Int(1))], &[Some(&s)]);
        close(&y, &[1., 0., 2., 0., 3., 0., 4., 0.]);
        // dft_length 2 truncates: [1+2, 1-2].
        let y = run("DFT", 20, vec![], &[Some(&x), Some(&i(&[], &[2]))]);
        close(&y, &[3., 0., -1., 0.]);
    }

    #[test]
    fn stft_windows_and_mel() {
        let x = f(&[1, 5, 1], &[1., 2., 3., 4., 5.]);
        let y = run(
            "STFT",
            17,
            vec![],
            &[Some(&x), Some(&i(&[], &[2])), None, Some(&i(&[], &[3]))],
        );
        // Frames [1,2,3] and [3,4,5]; onesided: 2 bins each; bin 0 is the sum.
        assert_eq!(y.len(), 8);
        close(&[y[0], y[4]], &[6., 12.]);
        let y = run("HannWindow", 17, vec![], &[Some(&i(&[], &[4]))]);
        close(&y, &[0., 0.5, 1., 0.5]);
        let y = run(
            "HammingWindow",
            17,
            vec![("periodic", Attr::Int(0))],
            &[Some(&i(&[], &[3]))],
        );
        let (a, b) = (25.0f32 / 46.0, 21.0f32 / 46.0);
        close(&y, &[(a - b) as f64, (a + b) as f64, (a - b) as f64]);
    }
}
