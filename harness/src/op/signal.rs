//! The signal-processing ops' decode: DFT, STFT, the three cosine windows and
//! MelWeightMatrix, shared by the reference and every lowering.
//!
//! DFT-17/20 (<https://onnx.ai/onnx/operators/onnx__DFT.html>): the input's
//! last dim holds [re] or [re, im]; the transform runs along `axis` (an
//! attribute, default 1, at 17; an optional input, default -2, from 20; a
//! negative axis counts over the full rank), over `dft_length` points (the
//! signal zero-padded or truncated); `inverse` divides by the length;
//! `onesided` keeps the first ⌊n/2⌋+1 bins. STFT-17: frames of the window's
//! length every `frame_step` samples (frame count `1 + (len − frame_length) /
//! frame_step`), each multiplied by the window (ones when absent) and
//! transformed over `frame_length` points, `onesided` by default.
//! Hann/Hamming/BlackmanWindow-17: `Σ a_k cos(2πkn/N)` with N the size
//! (`periodic`, default) or size − 1. MelWeightMatrix-17: triangles between
//! integer bins from the spec's formula (mel step over num_mel_bins + 2
//! points, bins `⌊(dft_length + 1)·hz / sample_rate⌋`).

use super::{optional, HostView, OpCtx, OpResult};
use crate::tensor::DType;

/// A decoded DFT node applied to an input of shape `dims`.
#[derive(Debug, Clone, PartialEq)]
pub struct DftPlan {
    /// The transformed axis (never the last, complex, one).
    pub axis: usize,
    /// The transform length (`dft_length`, else the axis length).
    pub n: usize,
    pub inverse: bool,
    pub onesided: bool,
    /// Whether the input carries an imaginary part (last dim 2).
    pub complex: bool,
    /// The output shape (last dim 2).
    pub out: Vec<usize>,
}

impl DftPlan {
    /// The bins kept along the axis.
    pub fn bins(&self) -> usize {
        if self.onesided {
            self.n / 2 + 1
        } else {
            self.n
        }
    }
}

/// A scalar integer input, `None` when absent.
fn scalar_int<T: HostView>(
    ctx: &OpCtx,
    x: &[Option<&T>],
    i: usize,
    name: &str,
) -> OpResult<Option<i64>> {
    let Some(t) = optional(x, i) else {
        return Ok(None);
    };
    match t.host_ints()?.as_slice() {
        [v] => Ok(Some(*v)),
        v => Err(ctx.fail(format!(
            "input `{name}` must be a scalar, has {} elements",
            v.len()
        ))),
    }
}

/// A transform length or step: a positive integer.
fn positive(ctx: &OpCtx, name: &str, v: i64) -> OpResult<usize> {
    usize::try_from(v)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| ctx.fail(format!("input `{name}` must be positive, is {v}")))
}

/// Decodes DFT-17/20 on inputs `x` (signal, dft_length, axis at 20).
pub fn dft<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<DftPlan> {
    let dims = ctx.input(x, 0)?.dims();
    let rank = dims.len();
    let complex = match dims.last() {
        Some(1) if rank >= 2 => false,
        Some(2) if rank >= 2 => true,
        _ => {
            return Err(ctx.fail(format!(
                "input shape {dims:?}: the last dim must be 1 (real) or 2 (complex)"
            )))
        }
    };
    let raw = if ctx.opset >= 20 {
        scalar_int(ctx, x, 2, "axis")?.unwrap_or(-2)
    } else {
        ctx.int("axis", 1)?
    };
    let axis = ctx.axis(raw, rank)?;
    if axis == rank - 1 {
        return Err(ctx.fail(format!("axis {raw} is the complex dim of shape {dims:?}")));
    }
    let n = match scalar_int(ctx, x, 1, "dft_length")? {
        Some(v) => positive(ctx, "dft_length", v)?,
        None => dims[axis],
    };
    let inverse = ctx.int("inverse", 0)? != 0;
    let onesided = ctx.int("onesided", 0)? != 0;
    let mut plan = DftPlan {
        axis,
        n,
        inverse,
        onesided,
        complex,
        out: dims,
    };
    plan.out[axis] = plan.bins();
    plan.out[rank - 1] = 2;
    Ok(plan)
}

/// A decoded STFT node: framing, then a DFT of each windowed frame.
#[derive(Debug, Clone, PartialEq)]
pub struct StftPlan {
    pub batch: usize,
    /// The signal length and whether it is complex.
    pub len: usize,
    pub complex: bool,
    pub step: usize,
    pub frames: usize,
    /// Samples per frame: the window's length (the DFT length without one).
    pub window: usize,
    /// The DFT length.
    pub n: usize,
    pub onesided: bool,
}

impl StftPlan {
    pub fn bins(&self) -> usize {
        if self.onesided {
            self.n / 2 + 1
        } else {
            self.n
        }
    }

    pub fn out(&self) -> Vec<usize> {
        vec![self.batch, self.frames, self.bins(), 2]
    }

    /// The DFT of each frame: frames laid out as [batch, frames, window, c].
    pub fn frame_dft(&self) -> DftPlan {
        DftPlan {
            axis: 2,
            n: self.n,
            inverse: false,
            onesided: self.onesided,
            complex: self.complex,
            out: self.out(),
        }
    }
}

/// Decodes STFT-17 on inputs (signal, frame_step, window, frame_length).
pub fn stft<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<StftPlan> {
    let dims = ctx.input(x, 0)?.dims();
    let (batch, len, complex) = match dims.as_slice() {
        [b, l, 1] => (*b, *l, false),
        [b, l, 2] => (*b, *l, true),
        _ => {
            return Err(ctx.fail(format!(
                "signal shape {dims:?} must be [batch, length, 1 or 2]"
            )))
        }
    };
    let step = scalar_int(ctx, x, 1, "frame_step")?
        .ok_or_else(|| ctx.fail("required input `frame_step` is missing"))?;
    let step = positive(ctx, "frame_step", step)?;
    let window = match optional(x, 2) {
        Some(w) => match w.dims().as_slice() {
            [l] => Some(*l),
            d => return Err(ctx.fail(format!("window shape {d:?} must be 1-D"))),
        },
        None => None,
    };
    let n = match scalar_int(ctx, x, 3, "frame_length")? {
        Some(v) => positive(ctx, "frame_length", v)?,
        None => window.unwrap_or(len),
    };
    if n > len {
        return Err(ctx.fail(format!("frame_length {n} exceeds the signal length {len}")));
    }
    Ok(StftPlan {
        batch,
        len,
        complex,
        step,
        frames: 1 + (len - n) / step,
        window: window.unwrap_or(n),
        n,
        onesided: ctx.int("onesided", 1)? != 0,
    })
}

/// A decoded cosine-window node: `w[i] = Σ_k coef[k]·cos(2πki/denom)`.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowPlan {
    pub size: usize,
    pub periodic: bool,
    /// N: the size when periodic, else size − 1.
    pub denom: usize,
    /// a_0, a_1, ... of the cosine series.
    pub coef: &'static [f64],
    pub dtype: DType,
}

/// ONNX's window coefficients (Hamming: 25/46 and 21/46, not 0.54/0.46).
pub fn window_coef(op: &str) -> &'static [f64] {
    const HANN: &[f64] = &[0.5, -0.5];
    const HAMMING: &[f64] = &[25.0 / 46.0, -21.0 / 46.0];
    const BLACKMAN: &[f64] = &[0.42, -0.5, 0.08];
    match op {
        "HannWindow" => HANN,
        "HammingWindow" => HAMMING,
        _ => BLACKMAN,
    }
}

/// The `output_datatype` attribute (default float32).
fn output_dtype(ctx: &OpCtx) -> OpResult<DType> {
    let code = ctx.int("output_datatype", 1)?;
    DType::from_onnx(code as i32)
        .ok_or_else(|| ctx.unsupported("output_datatype", format!("ONNX data type {code}")))
}

/// Decodes Hann/Hamming/BlackmanWindow-17 on its `size` input.
pub fn window<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<WindowPlan> {
    let size = scalar_int(ctx, x, 0, "size")?
        .ok_or_else(|| ctx.fail("required input `size` is missing"))?;
    let size = usize::try_from(size)
        .map_err(|_| ctx.fail(format!("input `size` must be ≥ 0, is {size}")))?;
    let periodic = ctx.int("periodic", 1)? != 0;
    let denom = if periodic {
        size
    } else {
        size.saturating_sub(1)
    };
    Ok(WindowPlan {
        size,
        periodic,
        denom,
        coef: window_coef(&ctx.node.op_type),
        dtype: output_dtype(ctx)?,
    })
}

/// One mel filter: the triangle over spectrogram bins [lower, upper] peaking at `center`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Triangle {
    pub lower: usize,
    pub center: usize,
    pub upper: usize,
}

/// A decoded MelWeightMatrix node: [spectrogram bins, mel bins] of triangles.
#[derive(Debug, Clone, PartialEq)]
pub struct MelPlan {
    pub spectrogram_bins: usize,
    pub triangles: Vec<Triangle>,
    pub dtype: DType,
}

/// Per mel column: the (start, width) of the rising and falling sides.
pub struct MelSides {
    pub lower: Vec<f64>,
    pub rise: Vec<f64>,
    pub upper: Vec<f64>,
    pub fall: Vec<f64>,
}

impl MelPlan {
    /// The sides of each triangle, an empty side made a unit step at the center.
    pub fn sides(&self) -> MelSides {
        let mut s = MelSides {
            lower: vec![],
            rise: vec![],
            upper: vec![],
            fall: vec![],
        };
        for t in &self.triangles {
            let (l, c, h) = (t.lower as f64, t.center as f64, t.upper as f64);
            let (l, r) = if c > l { (l, c - l) } else { (c - 1.0, 1.0) };
            let (h, f) = if h > c { (h, h - c) } else { (c + 1.0, 1.0) };
            s.lower.push(l);
            s.rise.push(r);
            s.upper.push(h);
            s.fall.push(f);
        }
        s
    }
}

/// The scalar value of a float input.
fn scalar_float<T: HostView>(ctx: &OpCtx, x: &[Option<&T>], i: usize, name: &str) -> OpResult<f64> {
    match ctx.input(x, i)?.host_floats()?.as_slice() {
        [v] => Ok(*v),
        v => Err(ctx.fail(format!(
            "input `{name}` must be a scalar, has {} elements",
            v.len()
        ))),
    }
}

/// Decodes MelWeightMatrix-17: the spec's integer bins, in float64.
pub fn mel<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<MelPlan> {
    let int = |i: usize, name: &str| -> OpResult<i64> {
        scalar_int(ctx, x, i, name)?
            .ok_or_else(|| ctx.fail(format!("required input `{name}` is missing")))
    };
    let mels = positive(ctx, "num_mel_bins", int(0, "num_mel_bins")?)?;
    let dft_length = positive(ctx, "dft_length", int(1, "dft_length")?)?;
    let rate = positive(ctx, "sample_rate", int(2, "sample_rate")?)? as f64;
    let lo = scalar_float(ctx, x, 3, "lower_edge_hertz")?;
    let hi = scalar_float(ctx, x, 4, "upper_edge_hertz")?;
    let to_mel = |hz: f64| 2595.0 * (1.0 + hz / 700.0).log10();
    let (lo_mel, hi_mel) = (to_mel(lo), to_mel(hi));
    let step = (hi_mel - lo_mel) / (mels + 2) as f64;
    let spectrogram_bins = dft_length / 2 + 1;
    let bins = (0..mels + 2)
        .map(|i| {
            let hz = 700.0 * (10f64.powf((i as f64 * step + lo_mel) / 2595.0) - 1.0);
            let b = ((dft_length + 1) as f64 * hz / rate).floor();
            usize::try_from(b as i64)
                .ok()
                .filter(|&b| b <= spectrogram_bins)
                .ok_or_else(|| {
                    ctx.fail(format!(
                        "mel edge {hz} Hz falls on bin {b}, outside the {spectrogram_bins} spectrogram bins"
                    ))
                })
        })
        .collect::<OpResult<Vec<usize>>>()?;
    if let Some(&c) = bins[1..=mels].iter().find(|&&c| c >= spectrogram_bins) {
        return Err(ctx.fail(format!(
            "a mel center falls on bin {c}, outside the {spectrogram_bins} spectrogram bins"
        )));
    }
    let triangles = bins
        .windows(3)
        .map(|w| Triangle {
            lower: w[0],
            center: w[1],
            upper: w[2],
        })
        .collect();
    Ok(MelPlan {
        spectrogram_bins,
        triangles,
        dtype: output_dtype(ctx)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;
    use crate::tensor::Tensor;
    use ndarray::{ArrayD, IxDyn};

    fn ints(shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::I64(ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap())
    }

    fn floats(shape: &[usize]) -> Tensor {
        Tensor::F32(ArrayD::zeros(IxDyn(shape)))
    }

    #[test]
    fn dft_axis_length_and_sides() {
        let x = floats(&[2, 8, 1]);
        let p = with("DFT", 17, vec![("onesided", Attr::Int(1))], |c| {
            dft(c, &[Some(&x)])
        })
        .unwrap();
        assert_eq!(
            (p.axis, p.n, p.complex, p.out),
            (1, 8, false, vec![2, 5, 2])
        );
        // Opset 20: the axis input, negative over the full rank; dft_length pads.
        let (n, axis) = (ints(&[], &[10]), ints(&[], &[-2]));
        let p = with("DFT", 20, vec![], |c| {
            dft(c, &[Some(&x), Some(&n), Some(&axis)])
        })
        .unwrap();
        assert_eq!((p.axis, p.n, p.out), (1, 10, vec![2, 10, 2]));
        let last = ints(&[], &[-1]);
        assert!(with("DFT", 20, vec![], |c| dft(
            c,
            &[Some(&x), None, Some(&last)]
        ))
        .is_err());
        let zero = ints(&[], &[0]);
        assert!(with("DFT", 20, vec![], |c| dft(c, &[Some(&x), Some(&zero)])).is_err());
        assert!(with("DFT", 17, vec![], |c| dft(c, &[Some(&floats(&[4, 3]))])).is_err());
    }

    #[test]
    fn stft_frames() {
        let (x, step, w) = (floats(&[1, 10, 1]), ints(&[], &[3]), floats(&[4]));
        let p = with("STFT", 17, vec![], |c| {
            stft(c, &[Some(&x), Some(&step), Some(&w)])
        })
        .unwrap();
        assert_eq!(
            (p.frames, p.n, p.window, p.out()),
            (3, 4, 4, vec![1, 3, 3, 2])
        );
        let long = ints(&[], &[11]);
        assert!(with("STFT", 17, vec![], |c| {
            stft(c, &[Some(&x), Some(&step), None, Some(&long)])
        })
        .is_err());
    }

    #[test]
    fn windows_and_mel_bins() {
        let size = ints(&[], &[10]);
        let p = with("HammingWindow", 17, vec![("periodic", Attr::Int(0))], |c| {
            window(c, &[Some(&size)])
        })
        .unwrap();
        assert_eq!((p.denom, p.coef[0]), (9, 25.0 / 46.0));
        // The ONNX node test's numbers: 8 mel bins over a 16-point DFT at 8192 Hz.
        let ins = [
            ints(&[], &[8]),
            ints(&[], &[16]),
            ints(&[], &[8192]),
            Tensor::F32(ArrayD::from_elem(IxDyn(&[]), 0.0)),
            Tensor::F32(ArrayD::from_elem(IxDyn(&[]), 4096.0)),
        ];
        let refs: Vec<Option<&Tensor>> = ins.iter().map(Some).collect();
        let m = with("MelWeightMatrix", 17, vec![], |c| mel(c, &refs)).unwrap();
        assert_eq!((m.spectrogram_bins, m.triangles.len()), (9, 8));
        assert_eq!(m.triangles[0].lower, 0);
        assert!(m
            .triangles
            .iter()
            .all(|t| t.lower <= t.center && t.center <= t.upper));
    }
}
