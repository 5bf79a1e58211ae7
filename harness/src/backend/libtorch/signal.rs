//! libtorch lowerings of the signal ops: DFT (`fft_fft`/`fft_rfft`/
//! `fft_ifft` between `view_as_complex` and `view_as_real`), STFT (`stft`
//! with center off, else framing + the DFT), the windows (`hann_window`,
//! `hamming_window` with ONNX's α = 25/46, β = 21/46, `blackman_window`) and
//! MelWeightMatrix (composed). Axes, lengths, frames and mel bins come from
//! the shared decode (`op::signal`).

use tch::{Kind, Tensor};

use super::kind_of;
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpFn, OpRegistry, OpResult};
use crate::op::optional;
use crate::op::signal::{self as decode, DftPlan, StftPlan};
use crate::tensor::DType;

type X<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;
/// One registration: op, first opset, lowering, spec link, coverage.
type Row = (
    &'static str,
    u32,
    OpFn<Tensor>,
    &'static str,
    &'static [crate::op::Coverage],
);

pub fn register(r: &mut OpRegistry<Tensor>) {
    use Label::{Composed, Native, Unsupported};
    let ops: &[Row] = &[
        (
            "DFT",
            17,
            dft,
            spec!("DFT"),
            cov!["real onesided" => Native("fft_rfft"), "other float32/64" => Native("fft_fft / fft_ifft"),
              "float16/bfloat16" => Unsupported("input (dtype)")],
        ),
        (
            "STFT",
            17,
            stft,
            spec!("STFT"),
            cov!["window length = frame_length, not complex onesided" => Native("stft (center off)"),
              "other" => Composed("index_select frames, mul, fft_rfft or fft_fft"),
              "float16/bfloat16" => Unsupported("signal (dtype)")],
        ),
        (
            "HannWindow",
            17,
            window,
            spec!("HannWindow"),
            cov!["all" => Native("hann_window")],
        ),
        (
            "HammingWindow",
            17,
            window,
            spec!("HammingWindow"),
            cov!["all" => Native("hamming_window (alpha 25/46, beta 21/46)")],
        ),
        (
            "BlackmanWindow",
            17,
            window,
            spec!("BlackmanWindow"),
            cov!["all" => Native("blackman_window")],
        ),
        (
            "MelWeightMatrix",
            17,
            mel,
            spec!("MelWeightMatrix"),
            cov!["all" => Composed("arange, sub, div, minimum, clamp_min")],
        ),
    ];
    for &(op, since, run, spec, cov) in ops {
        r.range(op, since, u32::MAX, run, spec, cov);
    }
}

/// libtorch's FFT runs on float32/64 only (no half-precision CPU kernels).
fn fft_kind(ctx: &OpCtx, name: &str, x: &Tensor) -> OpResult<()> {
    match x.f_kind()? {
        Kind::Float | Kind::Double => Ok(()),
        k => Err(ctx.unsupported(name, format!("libtorch CPU FFT has no {k:?} kernel"))),
    }
}

/// The DFT of `x` ([..., 1 or 2]) under `plan`, as [..., 2].
fn transform(x: &Tensor, plan: &DftPlan) -> OpResult<(Tensor, &'static str)> {
    let axis = plan.axis as i64;
    let n = plan.n as i64;
    let (y, op) = if plan.complex {
        let c = x.f_contiguous()?.f_view_as_complex()?;
        if plan.inverse {
            (c.f_fft_ifft(n, axis, "backward")?, "fft_ifft")
        } else {
            (c.f_fft_fft(n, axis, "backward")?, "fft_fft")
        }
    } else {
        let r = x.f_squeeze_dim(-1)?;
        match (plan.inverse, plan.onesided) {
            (true, _) => (r.f_fft_ifft(n, axis, "backward")?, "fft_ifft"),
            (false, true) => (r.f_fft_rfft(n, axis, "backward")?, "fft_rfft"),
            (false, false) => (r.f_fft_fft(n, axis, "backward")?, "fft_fft"),
        }
    };
    let y = y.f_narrow(axis, 0, plan.bins() as i64)?;
    Ok((y.f_view_as_real()?.f_contiguous()?, op))
}

/// DFT-17/20: torch's FFT along the decoded axis (inverse divides by n, as ONNX).
fn dft(ctx: &OpCtx, x: &X) -> Out {
    let plan = decode::dft(ctx, x)?;
    let a = ctx.input(x, 0)?;
    fft_kind(ctx, "input", a)?;
    let (y, op) = transform(a, &plan)?;
    Ok(Lowered::one(y, How::native(op)))
}

/// STFT-17: torch.stft (center off, unnormalized) when its frames are
/// ONNX's; framing plus the DFT otherwise.
fn stft(ctx: &OpCtx, x: &X) -> Out {
    let plan = decode::stft(ctx, x)?;
    let a = ctx.input(x, 0)?;
    fft_kind(ctx, "signal", a)?;
    let w = optional(x, 2);
    if plan.window == plan.n && !(plan.complex && plan.onesided) {
        let s = if plan.complex {
            a.f_contiguous()?.f_view_as_complex()?
        } else {
            a.f_squeeze_dim(-1)?
        };
        let n = plan.n as i64;
        // ONNX's absent window is all ones; passing it keeps torch quiet.
        let ones = match w {
            Some(w) => w.shallow_clone(),
            None => Tensor::f_ones([n], (a.f_kind()?, a.device()))?,
        };
        let y = s.f_stft(
            n,
            plan.step as i64,
            n,
            Some(&ones),
            false,
            plan.onesided,
            true,
            false,
        )?;
        let y = y.f_transpose(1, 2)?.f_view_as_real()?.f_contiguous()?;
        return Ok(Lowered::one(y, How::native("stft (center off)")));
    }
    let frames = frames(a, w, &plan)?;
    let (y, op) = transform(&frames, &plan.frame_dft())?;
    Ok(Lowered::one(
        y,
        How::composed(format!("index_select frames, mul, {op}")),
    ))
}

/// The windowed frames [batch, frames, window, c] of the signal.
fn frames(a: &Tensor, w: Option<&Tensor>, plan: &StftPlan) -> OpResult<Tensor> {
    let need = (plan.frames - 1) * plan.step + plan.window;
    let a = if need > plan.len {
        a.f_constant_pad_nd([0, 0, 0, (need - plan.len) as i64])?
    } else {
        a.shallow_clone()
    };
    let idx: Vec<i64> = (0..plan.frames)
        .flat_map(|f| (0..plan.window).map(move |t| (f * plan.step + t) as i64))
        .collect();
    let idx = Tensor::from_slice(&idx).f_to_device(a.device())?;
    let c = if plan.complex { 2 } else { 1 };
    let shape = [plan.batch, plan.frames, plan.window, c].map(|d| d as i64);
    let f = a.f_index_select(1, &idx)?.f_reshape(shape)?;
    match w {
        Some(w) => Ok(f.f_mul(&w.f_reshape([1, 1, plan.window as i64, 1])?)?),
        None => Ok(f),
    }
}

/// The float kind a window or matrix is computed in, for output `dtype`.
fn compute_kind(ctx: &OpCtx, dtype: DType) -> OpResult<(Kind, Kind)> {
    let out = kind_of(dtype).ok_or_else(|| {
        ctx.unsupported(
            "output_datatype",
            format!("libtorch (tch 0.24) has no {dtype} dtype"),
        )
    })?;
    let work = if dtype.is_float() { out } else { Kind::Float };
    Ok((work, out))
}

/// Hann/Hamming/BlackmanWindow-17: torch's window of the same coefficients.
fn window(ctx: &OpCtx, x: &X) -> Out {
    let p = decode::window(ctx, x)?;
    let (work, out) = compute_kind(ctx, p.dtype)?;
    let opts = (work, ctx.input(x, 0)?.device());
    let size = p.size as i64;
    let (y, op) = match ctx.node.op_type.as_str() {
        "HannWindow" => (
            Tensor::f_hann_window_periodic(size, p.periodic, opts)?,
            "hann_window",
        ),
        "HammingWindow" => (
            Tensor::f_hamming_window_periodic_alpha_beta(
                size, p.periodic, p.coef[0], -p.coef[1], opts,
            )?,
            "hamming_window",
        ),
        _ => (
            Tensor::f_blackman_window_periodic(size, p.periodic, opts)?,
            "blackman_window",
        ),
    };
    Ok(Lowered::one(y.f_to_kind(out)?, How::native(op)))
}

/// MelWeightMatrix-17: per column min(rise, fall) clamped at 0, where rise =
/// (j − lower)/(center − lower) and fall = (upper − j)/(upper − center); an
/// empty side becomes a unit step, so the peak is 1 as the spec writes it.
fn mel(ctx: &OpCtx, x: &X) -> Out {
    let p = decode::mel(ctx, x)?;
    let (work, out) = compute_kind(ctx, p.dtype)?;
    let dev = ctx.input(x, 0)?.device();
    let sides = p.sides();
    let row = |v: Vec<f64>| -> OpResult<Tensor> {
        Ok(Tensor::from_slice(&v)
            .f_to_kind(work)?
            .f_to_device(dev)?
            .f_unsqueeze(0)?)
    };
    let j = Tensor::f_arange(p.spectrogram_bins as i64, (work, dev))?.f_unsqueeze(1)?;
    let rise = j.f_sub(&row(sides.lower)?)?.f_div(&row(sides.rise)?)?;
    let fall = row(sides.upper)?.f_sub(&j)?.f_div(&row(sides.fall)?)?;
    let y = rise.f_minimum(&fall)?.f_clamp_min(0.0)?;
    Ok(Lowered::one(
        y.f_to_kind(out)?,
        How::composed("arange, sub, div, minimum, clamp_min"),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        assert!(
            a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4),
            "{a:?} vs {b:?}"
        );
    }

    #[test]
    fn dft_and_stft_match_known_spectra() {
        let x = f32s(&[1, 4, 1], &[1., 2., 3., 4.]);
        let y = run(&node("DFT", 1, 1, vec![]), 17, &[Some(&x)]).unwrap();
        close(
            &vals(y.outputs[0].as_ref().unwrap()),
            &[10., 0., -2., 2., -2., 0., -2., -2.],
        );
        let s = f32s(&[1, 4, 2], &[10., 0., -2., 2., -2., 0., -2., -2.]);
        let inv = node("DFT", 1, 1, vec![("inverse", Attr::Int(1))]);
        let y = run(&inv, 17, &[Some(&s)]).unwrap();
        close(
            &vals(y.outputs[0].as_ref().unwrap()),
            &[1., 0., 2., 0., 3., 0., 4., 0.],
        );
        // Native and composed STFT agree: frames [1,2,3], [3,4,5].
        let sig = f32s(&[1, 5, 1], &[1., 2., 3., 4., 5.]);
        let (step, len) = (i64s(&[], &[2]), i64s(&[], &[3]));
        let y = run(
            &node("STFT", 4, 1, vec![]),
            17,
            &[Some(&sig), Some(&step), None, Some(&len)],
        )
        .unwrap();
        let v = vals(y.outputs[0].as_ref().unwrap());
        close(&[v[0], v[4]], &[6., 12.]);
        assert_eq!(y.how.label(), "native: stft (center off)");
    }

    #[test]
    fn windows_and_composed_mel_match_the_reference() {
        let size = i64s(&[], &[3]);
        let n = node("HammingWindow", 1, 1, vec![("periodic", Attr::Int(0))]);
        let y = run(&n, 17, &[Some(&size)]).unwrap();
        let (a, b) = (25.0 / 46.0, 21.0 / 46.0);
        close(
            &vals(y.outputs[0].as_ref().unwrap()),
            &[a - b, a + b, a - b],
        );
        // The composed MelWeightMatrix equals the reference's spec loops.
        use crate::backend::reference::{run_op, util};
        let ints = [8, 64, 8000];
        let hz = [0.0, 4000.0];
        let mut t: Vec<tch::Tensor> = ints.iter().map(|&v| i64s(&[], &[v])).collect();
        t.extend(hz.iter().map(|&v| f32s(&[], &[v as f32])));
        let mut r: Vec<_> = ints.iter().map(|&v| util::i(&[], &[v])).collect();
        r.extend(hz.iter().map(|&v| util::f(&[], &[v])));
        let mel = node("MelWeightMatrix", 5, 1, vec![]);
        let got = run(&mel, 17, &t.iter().map(Some).collect::<Vec<_>>()).unwrap();
        let want = run_op(&mel, 17, &r.iter().map(Some).collect::<Vec<_>>()).unwrap();
        let want = want[0].as_ref().unwrap().data.to_f64_vec();
        assert_eq!(want.len(), 33 * 8);
        assert!(want.iter().any(|&v| v > 0.0 && v < 1.0));
        close(&vals(got.outputs[0].as_ref().unwrap()), &want);
    }
}
