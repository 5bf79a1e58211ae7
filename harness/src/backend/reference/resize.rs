//! Reference ops: Resize (opsets 10, 11, 13, 18, 19) and Upsample (7, 9).
//!
//! Resize is the op with the most conventions and the one frameworks get
//! "almost" right, so its reference is split into small public pieces that
//! other code re-runs under other attribute values (the convention
//! fingerprint search): [`ResizeSpec`] holds every attribute, [`output_plan`]
//! turns scales/sizes (with axes and keep_aspect_ratio_policy) into per-axis
//! scales and output lengths, [`original_coordinate`] is the per-axis
//! coordinate transform, [`axis_taps`] the input indices and weights of one
//! output position, and [`resize`] applies them axis by axis (every mode is
//! separable: linear is multilinear, cubic is per-axis cubic).
//!
//! Semantics follow the spec text and, where the text is silent or
//! ambiguous, `onnx/reference/ops/op_resize.py` (which generated the ONNX
//! node tests): neighbours outside the input are clamped to the edge,
//! `align_corners` / `tf_crop_and_resize` / `half_pixel_symmetric` use the
//! fractional target length `scale · length_original`, the output length is
//! `floor(length_original · scale)` whatever the roi, and integer outputs are
//! rounded half to even and saturated. Departures from that file, each
//! following the spec text (and ORT): `pytorch_half_pixel` maps an output of
//! integer length 1 to coordinate 0 (the file tests the fractional length
//! `scale · in == 1` and then uses −0.5, so e.g. 3 × 0.6 → 1 samples 1/3 there),
//! `tf_half_pixel_for_nn` is implemented (the file rejects it), `antialias` is
//! ignored in nearest mode (the file raises), and zero-weight taps are skipped
//! (so 0·inf never turns an exactly sampled pixel into NaN). Resize-10 and
//! Upsample have no such file entry; they are asymmetric, with nearest picking
//! floor when upscaling and ceil when downscaling (ORT's "simple" rounding,
//! conventions.md §1.2).

use ndarray::{ArrayD, Axis, IxDyn, Zip};

use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpDef, OpRegistry, OpResult};
use crate::tensor::Tensor;

const SPEC: &[Coverage] = &[Coverage {
    when: "all modes and attributes",
    label: Label::Spec,
}];
const RESIZE: &str = "https://onnx.ai/onnx/operators/onnx__Resize.html";
const UPSAMPLE: &str = "https://onnx.ai/onnx/operators/onnx__Upsample.html";

pub fn register(r: &mut OpRegistry<RefTensor>) {
    // Resize-10: X, scales; nearest/linear, asymmetric. 11: roi/sizes, the
    // coordinate modes, cubic. 13: roi and scales optional. 18: antialias,
    // axes, keep_aspect_ratio_policy; tf_half_pixel_for_nn removed.
    // 19: half_pixel_symmetric.
    for (since, until) in [(10, 10), (11, 12), (13, 17), (18, 18), (19, u32::MAX)] {
        r.add(OpDef {
            op: "Resize",
            since,
            until,
            run: resize_op,
            spec: RESIZE,
            coverage: SPEC,
        });
    }
    // Upsample-7: `scales` attribute; 9: `scales` input; deprecated at 10.
    for (since, until) in [(7, 8), (9, 9)] {
        r.add(OpDef {
            op: "Upsample",
            since,
            until,
            run: upsample_op,
            spec: UPSAMPLE,
            coverage: SPEC,
        });
    }
}

/// Interpolation `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Nearest,
    Linear,
    Cubic,
}

/// `coordinate_transformation_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordMode {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
    TfCropAndResize,
}

/// `nearest_mode`; `Simple` is Resize-10/Upsample rounding (floor when
/// upscaling, ceil when downscaling), which has no attribute spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
    Simple,
}

/// `keep_aspect_ratio_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AspectPolicy {
    Stretch,
    NotLarger,
    NotSmaller,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Nearest, Mode::Linear, Mode::Cubic];
    pub fn name(self) -> &'static str {
        match self {
            Mode::Nearest => "nearest",
            Mode::Linear => "linear",
            Mode::Cubic => "cubic",
        }
    }
    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == s)
    }
}

impl CoordMode {
    pub const ALL: [CoordMode; 7] = [
        CoordMode::HalfPixel,
        CoordMode::HalfPixelSymmetric,
        CoordMode::PytorchHalfPixel,
        CoordMode::AlignCorners,
        CoordMode::Asymmetric,
        CoordMode::TfHalfPixelForNn,
        CoordMode::TfCropAndResize,
    ];
    pub fn name(self) -> &'static str {
        match self {
            CoordMode::HalfPixel => "half_pixel",
            CoordMode::HalfPixelSymmetric => "half_pixel_symmetric",
            CoordMode::PytorchHalfPixel => "pytorch_half_pixel",
            CoordMode::AlignCorners => "align_corners",
            CoordMode::Asymmetric => "asymmetric",
            CoordMode::TfHalfPixelForNn => "tf_half_pixel_for_nn",
            CoordMode::TfCropAndResize => "tf_crop_and_resize",
        }
    }
    pub fn parse(s: &str) -> Option<CoordMode> {
        CoordMode::ALL.into_iter().find(|m| m.name() == s)
    }
    /// The opsets whose Resize defines this mode.
    pub fn opsets(self) -> (u32, u32) {
        match self {
            CoordMode::HalfPixelSymmetric => (19, u32::MAX),
            CoordMode::TfHalfPixelForNn => (11, 17),
            _ => (11, u32::MAX),
        }
    }
}

impl NearestMode {
    pub const ALL: [NearestMode; 4] = [
        NearestMode::RoundPreferFloor,
        NearestMode::RoundPreferCeil,
        NearestMode::Floor,
        NearestMode::Ceil,
    ];
    pub fn name(self) -> &'static str {
        match self {
            NearestMode::RoundPreferFloor => "round_prefer_floor",
            NearestMode::RoundPreferCeil => "round_prefer_ceil",
            NearestMode::Floor => "floor",
            NearestMode::Ceil => "ceil",
            NearestMode::Simple => "simple (Resize-10/Upsample)",
        }
    }
    pub fn parse(s: &str) -> Option<NearestMode> {
        NearestMode::ALL.into_iter().find(|m| m.name() == s)
    }
}

impl AspectPolicy {
    pub const ALL: [AspectPolicy; 3] = [
        AspectPolicy::Stretch,
        AspectPolicy::NotLarger,
        AspectPolicy::NotSmaller,
    ];
    pub fn name(self) -> &'static str {
        match self {
            AspectPolicy::Stretch => "stretch",
            AspectPolicy::NotLarger => "not_larger",
            AspectPolicy::NotSmaller => "not_smaller",
        }
    }
    pub fn parse(s: &str) -> Option<AspectPolicy> {
        AspectPolicy::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// Every Resize attribute, parsed. `Default` is the opset-19 default node.
#[derive(Debug, Clone, PartialEq)]
pub struct ResizeSpec {
    pub mode: Mode,
    pub coordinate_transformation_mode: CoordMode,
    pub nearest_mode: NearestMode,
    pub cubic_coeff_a: f64,
    pub exclude_outside: bool,
    pub antialias: bool,
    pub extrapolation_value: f64,
    pub keep_aspect_ratio_policy: AspectPolicy,
    /// The `axes` attribute as written (may be negative); `None` = all axes.
    pub axes: Option<Vec<i64>>,
}

impl Default for ResizeSpec {
    fn default() -> Self {
        ResizeSpec {
            mode: Mode::Nearest,
            coordinate_transformation_mode: CoordMode::HalfPixel,
            nearest_mode: NearestMode::RoundPreferFloor,
            cubic_coeff_a: -0.75,
            exclude_outside: false,
            antialias: false,
            extrapolation_value: 0.0,
            keep_aspect_ratio_policy: AspectPolicy::Stretch,
            axes: None,
        }
    }
}

fn unknown(ctx: &OpCtx, attr: &str, v: &str) -> crate::backend::interp::OpError {
    ctx.fail(format!(
        "attribute `{attr}`: unknown or undefined value {v:?} at opset {}",
        ctx.opset
    ))
}

impl ResizeSpec {
    /// Parses a Resize (any opset) or Upsample node, rejecting attributes and
    /// values its opset does not define.
    pub fn from_ctx(ctx: &OpCtx) -> OpResult<ResizeSpec> {
        let mut spec = ResizeSpec::default();
        let m = ctx.string("mode", "nearest")?;
        spec.mode = Mode::parse(&m).ok_or_else(|| unknown(ctx, "mode", &m))?;
        if ctx.node.op_type == "Upsample" || ctx.opset < 11 {
            if spec.mode == Mode::Cubic {
                return Err(unknown(ctx, "mode", &m));
            }
            spec.coordinate_transformation_mode = CoordMode::Asymmetric;
            spec.nearest_mode = NearestMode::Simple;
            return Ok(spec);
        }
        let c = ctx.string("coordinate_transformation_mode", "half_pixel")?;
        let cm = CoordMode::parse(&c)
            .ok_or_else(|| unknown(ctx, "coordinate_transformation_mode", &c))?;
        let (lo, hi) = cm.opsets();
        if ctx.opset < lo || ctx.opset > hi {
            return Err(unknown(ctx, "coordinate_transformation_mode", &c));
        }
        spec.coordinate_transformation_mode = cm;
        let n = ctx.string("nearest_mode", "round_prefer_floor")?;
        spec.nearest_mode =
            NearestMode::parse(&n).ok_or_else(|| unknown(ctx, "nearest_mode", &n))?;
        spec.cubic_coeff_a = ctx.float("cubic_coeff_a", -0.75)? as f64;
        spec.exclude_outside = ctx.int("exclude_outside", 0)? != 0;
        spec.extrapolation_value = ctx.float("extrapolation_value", 0.0)? as f64;
        for a in ["antialias", "axes", "keep_aspect_ratio_policy"] {
            if ctx.has(a) && ctx.opset < 18 {
                return Err(ctx.fail(format!(
                    "attribute `{a}` is not defined before opset 18 (node at opset {})",
                    ctx.opset
                )));
            }
        }
        spec.antialias = ctx.int("antialias", 0)? != 0;
        spec.axes = ctx.ints("axes")?;
        let k = ctx.string("keep_aspect_ratio_policy", "stretch")?;
        spec.keep_aspect_ratio_policy =
            AspectPolicy::parse(&k).ok_or_else(|| unknown(ctx, "keep_aspect_ratio_policy", &k))?;
        Ok(spec)
    }

    /// `axes` normalized against `rank` (all axes when absent).
    pub fn axes_for(&self, rank: usize) -> Result<Vec<usize>, String> {
        match &self.axes {
            None => Ok((0..rank).collect()),
            Some(ax) => {
                let mut out = Vec::with_capacity(ax.len());
                for &a in ax {
                    let r = rank as i64;
                    if a < -r || a >= r {
                        return Err(format!(
                            "attribute `axes`: {a} is out of range for rank {rank}"
                        ));
                    }
                    let a = if a < 0 { (a + r) as usize } else { a as usize };
                    if out.contains(&a) {
                        return Err(format!("attribute `axes`: axis {a} is repeated"));
                    }
                    out.push(a);
                }
                Ok(out)
            }
        }
    }
}

/// Per-axis scales and output lengths (full rank) from the `scales` or
/// `sizes` input, which refer to `spec.axes`. With scales: out =
/// floor(in · scale). With sizes: scale = out / in, or under not_larger /
/// not_smaller one scale (min / max over the axes) and out =
/// round-half-up(scale · in). Axes not listed keep scale 1 and their length.
pub fn output_plan(
    spec: &ResizeSpec,
    in_shape: &[usize],
    scales: Option<&[f64]>,
    sizes: Option<&[i64]>,
) -> Result<(Vec<f64>, Vec<usize>), String> {
    let rank = in_shape.len();
    let axes = spec.axes_for(rank)?;
    let mut sc = vec![1.0; rank];
    let mut out = in_shape.to_vec();
    match (scales, sizes) {
        (Some(s), None) => {
            if s.len() != axes.len() {
                return Err(format!(
                    "input scales has {} values, expected {}",
                    s.len(),
                    axes.len()
                ));
            }
            for (&a, &v) in axes.iter().zip(s) {
                if v.is_nan() || v <= 0.0 {
                    return Err(format!("input scales: {v} must be > 0"));
                }
                sc[a] = v;
                out[a] = (v * in_shape[a] as f64).floor() as usize;
            }
        }
        (None, Some(z)) => {
            if z.len() != axes.len() {
                return Err(format!(
                    "input sizes has {} values, expected {}",
                    z.len(),
                    axes.len()
                ));
            }
            for (&a, &v) in axes.iter().zip(z) {
                if v < 0 || in_shape[a] == 0 {
                    return Err(format!(
                        "input sizes: {v} for an axis of length {} is invalid",
                        in_shape[a]
                    ));
                }
                sc[a] = v as f64 / in_shape[a] as f64;
                out[a] = v as usize;
            }
            if spec.keep_aspect_ratio_policy != AspectPolicy::Stretch && !axes.is_empty() {
                let it = axes.iter().map(|&a| sc[a]);
                let s = if spec.keep_aspect_ratio_policy == AspectPolicy::NotLarger {
                    it.fold(f64::INFINITY, f64::min)
                } else {
                    it.fold(f64::NEG_INFINITY, f64::max)
                };
                for &a in &axes {
                    sc[a] = s;
                    out[a] = (s * in_shape[a] as f64 + 0.5).floor() as usize;
                }
            }
        }
        (Some(_), Some(_)) => {
            return Err("inputs scales and sizes are both given; the spec allows only one".into())
        }
        (None, None) => return Err("one of the inputs scales and sizes is required".into()),
    }
    Ok((sc, out))
}

/// The `roi` input expanded to full rank as (start, end) per axis; axes not
/// in `spec.axes` get (0, 1).
pub fn full_roi(spec: &ResizeSpec, rank: usize, roi: &[f64]) -> Result<Vec<(f64, f64)>, String> {
    let axes = spec.axes_for(rank)?;
    let k = axes.len();
    if roi.len() != 2 * k {
        return Err(format!(
            "input roi has {} values, expected {} (starts then ends)",
            roi.len(),
            2 * k
        ));
    }
    let mut out = vec![(0.0, 1.0); rank];
    for (i, &a) in axes.iter().enumerate() {
        out[a] = (roi[i], roi[k + i]);
    }
    Ok(out)
}

/// x_original for output coordinate `x` of one axis (the spec's
/// coordinate_transformation_mode formulas). `out_len` is the integer output
/// length; `scale · in_len` is the fractional target length the reference
/// uses for align_corners, tf_crop_and_resize and half_pixel_symmetric.
pub fn original_coordinate(
    mode: CoordMode,
    x: usize,
    scale: f64,
    in_len: usize,
    out_len: usize,
    roi: (f64, f64),
) -> f64 {
    let xf = x as f64;
    let width = scale * in_len as f64;
    match mode {
        CoordMode::HalfPixel => (xf + 0.5) / scale - 0.5,
        CoordMode::HalfPixelSymmetric => {
            let adjustment = out_len as f64 / width;
            let center = in_len as f64 / 2.0;
            let offset = center * (1.0 - adjustment);
            offset + (xf + 0.5) / scale - 0.5
        }
        CoordMode::PytorchHalfPixel => {
            if out_len > 1 {
                (xf + 0.5) / scale - 0.5
            } else {
                0.0
            }
        }
        CoordMode::AlignCorners => {
            if width == 1.0 {
                0.0
            } else {
                (x * in_len.saturating_sub(1)) as f64 / (width - 1.0)
            }
        }
        CoordMode::Asymmetric => xf / scale,
        CoordMode::TfHalfPixelForNn => (xf + 0.5) / scale,
        CoordMode::TfCropAndResize => {
            let span = (in_len as f64 - 1.0).max(0.0);
            let c = if width == 1.0 {
                (roi.1 - roi.0) * span / 2.0
            } else {
                xf * (roi.1 - roi.0) * span / (width - 1.0)
            };
            c + roi.0 * span
        }
    }
}

/// (base, ratio) with x = base + ratio and ratio in (0, 1]: the reference
/// prefers the pixel left of x, so an integer x is base = x − 1, ratio = 1.
fn split(x: f64) -> (i64, f64) {
    let fl = x.floor();
    if fl == x {
        (fl as i64 - 1, 1.0)
    } else {
        (fl as i64, x - fl)
    }
}

/// Keys cubic coefficients for base−1 .. base+2 (op_resize.py `_cubic_coeffs`).
fn cubic_coeffs(r: f64, a: f64) -> Vec<f64> {
    vec![
        ((a * (r + 1.0) - 5.0 * a) * (r + 1.0) + 8.0 * a) * (r + 1.0) - 4.0 * a,
        ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0,
        ((a + 2.0) * (1.0 - r) - (a + 3.0)) * (1.0 - r) * (1.0 - r) + 1.0,
        ((a * ((1.0 - r) + 1.0) - 5.0 * a) * ((1.0 - r) + 1.0) + 8.0 * a) * ((1.0 - r) + 1.0)
            - 4.0 * a,
    ]
}

/// The cubic kernel W(x) for the antialiased filter.
fn cubic_kernel(x: f64, a: f64) -> f64 {
    let x = x.abs();
    let (x2, x3) = (x * x, x * x * x);
    if x <= 1.0 {
        (a + 2.0) * x3 - (a + 3.0) * x2 + 1.0
    } else if x < 2.0 {
        a * x3 - 5.0 * a * x2 + 8.0 * a * x - 4.0 * a
    } else {
        0.0
    }
}

/// Antialiased coefficients: the kernel stretched by 1 / min(scale, 1) over
/// offsets start .. 1 − start from base, normalized to sum 1.
fn antialias_coeffs(
    r: f64,
    scale: f64,
    support: f64,
    kernel: impl Fn(f64) -> f64,
) -> (i64, Vec<f64>) {
    let s = scale.min(1.0);
    let start = (-support / s).floor() as i64 + 1;
    let c: Vec<f64> = (start..2 - start)
        .map(|j| kernel(s * (j as f64 - r)))
        .collect();
    let sum: f64 = c.iter().sum();
    (start, c.into_iter().map(|v| v / sum).collect())
}

/// The input indices and weights one output position reads along an axis,
/// or `None` for tf_crop_and_resize outside [0, in − 1] (extrapolation).
/// Neighbours outside the input are clamped to the edge, or with
/// exclude_outside dropped and the rest renormalized to sum 1.
pub fn axis_taps(
    spec: &ResizeSpec,
    x_ori: f64,
    scale: f64,
    in_len: usize,
) -> Option<Vec<(usize, f64)>> {
    let last = in_len as i64 - 1;
    if spec.coordinate_transformation_mode == CoordMode::TfCropAndResize
        && (x_ori < 0.0 || x_ori > last as f64)
    {
        return None;
    }
    let (base, r) = split(x_ori);
    let (first, coeffs): (i64, Vec<f64>) = match spec.mode {
        Mode::Nearest => {
            let up = match spec.nearest_mode {
                NearestMode::RoundPreferFloor => r > 0.5,
                NearestMode::RoundPreferCeil => r >= 0.5,
                NearestMode::Floor => r == 1.0,
                NearestMode::Ceil => true,
                NearestMode::Simple => {
                    let idx = if scale < 1.0 {
                        x_ori.ceil()
                    } else {
                        x_ori.floor()
                    };
                    return Some(vec![((idx as i64).clamp(0, last.max(0)) as usize, 1.0)]);
                }
            };
            (if up { base + 1 } else { base }, vec![1.0])
        }
        Mode::Linear if spec.antialias => {
            let (s, c) = antialias_coeffs(r, scale, 1.0, |v| (1.0 - v.abs()).clamp(0.0, 1.0));
            (base + s, c)
        }
        Mode::Linear => (base, vec![1.0 - r, r]),
        Mode::Cubic if spec.antialias => {
            let (s, c) = antialias_coeffs(r, scale, 2.0, |v| cubic_kernel(v, spec.cubic_coeff_a));
            (base + s, c)
        }
        Mode::Cubic => (base - 1, cubic_coeffs(r, spec.cubic_coeff_a)),
    };
    let mut taps: Vec<(i64, f64)> = coeffs
        .into_iter()
        .enumerate()
        .map(|(j, w)| (first + j as i64, w))
        .collect();
    if spec.exclude_outside {
        for t in taps.iter_mut() {
            if t.0 < 0 || t.0 > last {
                t.1 = 0.0;
            }
        }
        let sum: f64 = taps.iter().map(|t| t.1).sum();
        taps.iter_mut().for_each(|t| t.1 /= sum);
    }
    Some(
        taps.into_iter()
            .filter(|t| t.1 != 0.0)
            .map(|(i, w)| (i.clamp(0, last.max(0)) as usize, w))
            .collect(),
    )
}

/// Resamples `x` to `out_shape`, one axis at a time. `scales` and `roi` are
/// full rank (see [`output_plan`], [`full_roi`]); `roi` is read only by
/// tf_crop_and_resize and defaults to (0, 1) per axis.
pub fn resize(
    x: &ArrayD<f64>,
    spec: &ResizeSpec,
    scales: &[f64],
    out_shape: &[usize],
    roi: Option<&[(f64, f64)]>,
) -> Result<ArrayD<f64>, String> {
    let rank = x.ndim();
    if scales.len() != rank || out_shape.len() != rank || roi.is_some_and(|r| r.len() != rank) {
        return Err(format!(
            "resize: scales/out_shape/roi must have rank {rank}"
        ));
    }
    let mut cur = x.to_owned();
    for ax in (0..rank).rev() {
        let in_len = cur.shape()[ax];
        let out_len = out_shape[ax];
        if in_len == 0 && out_len > 0 {
            return Err(format!(
                "resize: axis {ax} has length 0 and cannot be resized to {out_len}"
            ));
        }
        let r = roi.map_or((0.0, 1.0), |r| r[ax]);
        let taps: Vec<Option<Vec<(usize, f64)>>> = (0..out_len)
            .map(|o| {
                let xo = original_coordinate(
                    spec.coordinate_transformation_mode,
                    o,
                    scales[ax],
                    in_len,
                    out_len,
                    r,
                );
                axis_taps(spec, xo, scales[ax], in_len)
            })
            .collect();
        let identity = out_len == in_len
            && taps
                .iter()
                .enumerate()
                .all(|(j, t)| t.as_deref() == Some(&[(j, 1.0)][..]));
        if !identity {
            cur = apply_axis(&cur, ax, &taps, spec.extrapolation_value);
        }
    }
    Ok(cur)
}

/// out[.., j, ..] = Σ w · in[.., i, ..] along `ax` (or the extrapolation value).
fn apply_axis(
    a: &ArrayD<f64>,
    ax: usize,
    taps: &[Option<Vec<(usize, f64)>>],
    extrapolation: f64,
) -> ArrayD<f64> {
    let mut shape = a.shape().to_vec();
    shape[ax] = taps.len();
    let mut out = ArrayD::<f64>::zeros(IxDyn(&shape));
    Zip::from(out.lanes_mut(Axis(ax)))
        .and(a.lanes(Axis(ax)))
        .for_each(|mut o, i| {
            for (dst, t) in o.iter_mut().zip(taps) {
                *dst = match t {
                    None => extrapolation,
                    Some(ts) => ts.iter().map(|&(k, w)| w * i[k]).sum(),
                };
            }
        });
    out
}

/// An optional input that counts as absent when missing or empty.
fn present<'t>(x: &[Option<&'t RefTensor>], i: usize) -> Option<&'t RefTensor> {
    x.get(i).copied().flatten().filter(|t| !t.data.is_empty())
}

/// Runs the plan on X and wraps the result in X's dtype (integers: rounded
/// half to even, then saturated, as the onnx reference's saturate_cast).
fn finish(
    ctx: &OpCtx,
    xt: &RefTensor,
    spec: &ResizeSpec,
    plan: (Vec<f64>, Vec<usize>),
    roi: Option<Vec<(f64, f64)>>,
) -> OpResult<Lowered<RefTensor>> {
    let xa = match &xt.data {
        Tensor::F64(a) => a.clone(),
        Tensor::Bool(_) => return Err(ctx.fail("input X: bool is not a Resize type")),
        t => ArrayD::from_shape_vec(IxDyn(t.shape()), t.to_f64_vec()).expect("shape"),
    };
    let y = resize(&xa, spec, &plan.0, &plan.1, roi.as_deref()).map_err(|e| ctx.fail(e))?;
    let out = if xt.is_float() {
        RefTensor::float(y, xt.dtype)
    } else {
        let v: Vec<f64> = y.iter().map(|v| v.round_ties_even()).collect();
        RefTensor::exact(Tensor::from_f64(xt.dtype, y.shape(), &v))
    };
    Ok(Lowered::one(out, How::Spec))
}

/// Resize-10/11/13/18/19 (<https://onnx.ai/onnx/operators/onnx__Resize.html>).
/// See the module docs for the history and the conventions followed.
fn resize_op(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let xt = ctx.input(x, 0)?;
    let spec = ResizeSpec::from_ctx(ctx)?;
    let rank = xt.shape().len();
    let (roi, scales, sizes) = if ctx.opset < 11 {
        (None, Some(ctx.input(x, 1)?), None)
    } else {
        (present(x, 1), present(x, 2), present(x, 3))
    };
    let scales = scales.map(|t| t.floats()).transpose()?;
    let sizes = sizes.map(|t| t.ints()).transpose()?;
    let plan = output_plan(&spec, xt.shape(), scales.as_deref(), sizes.as_deref())
        .map_err(|e| ctx.fail(e))?;
    let roi = match (spec.coordinate_transformation_mode, roi) {
        (CoordMode::TfCropAndResize, Some(r)) => {
            Some(full_roi(&spec, rank, &r.floats()?).map_err(|e| ctx.fail(e))?)
        }
        (CoordMode::TfCropAndResize, None) => {
            return Err(ctx.fail(
                "input roi is required by coordinate_transformation_mode tf_crop_and_resize",
            ))
        }
        _ => None,
    };
    finish(ctx, xt, &spec, plan, roi)
}

/// Upsample-7/9 (<https://onnx.ai/onnx/operators/onnx__Upsample.html>):
/// out = floor(in · scale) with every scale ≥ 1; nearest is asymmetric with
/// floor, linear is asymmetric (multi)linear. Opset 7 reads `scales` from the
/// attribute, 9 from the second input; deprecated at 10.
fn upsample_op(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let xt = ctx.input(x, 0)?;
    let spec = ResizeSpec::from_ctx(ctx)?;
    let scales: Vec<f64> = if ctx.opset < 9 {
        match ctx.floats("scales")? {
            Some(s) => s.into_iter().map(|v| v as f64).collect(),
            None => return Err(ctx.fail("attribute `scales` is required")),
        }
    } else {
        ctx.input(x, 1)?.floats()?
    };
    if let Some(bad) = scales.iter().find(|&&s| s.is_nan() || s < 1.0) {
        return Err(ctx.fail(format!("scales: {bad} must be >= 1 for Upsample")));
    }
    let plan = output_plan(&spec, xt.shape(), Some(&scales), None).map_err(|e| ctx.fail(e))?;
    finish(ctx, xt, &spec, plan, None)
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use super::*;
    use crate::graph::Attr;

    fn s(v: &str) -> Attr {
        Attr::String(v.into())
    }

    /// Runs Resize-19 (or `opset`) with X, roi, scales, sizes (None = omitted).
    fn rz(
        opset: u32,
        attrs: Vec<(&str, Attr)>,
        x: &RefTensor,
        roi: Option<&RefTensor>,
        sc: Option<&RefTensor>,
        sz: Option<&RefTensor>,
    ) -> (Vec<usize>, Vec<f64>) {
        let node = test_node("Resize", 4, 1, attrs);
        let out = run_op(&node, opset, &[Some(x), roi, sc, sz]).unwrap();
        let t = out[0].as_ref().unwrap();
        (t.shape().to_vec(), t.floats().unwrap())
    }

    fn row(v: &[f64]) -> RefTensor {
        f(&[1, v.len()], v)
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn nearest_half_pixel_ties_4_to_2() {
        // 4 -> 2: x_ori = (x + .5) * 2 - .5 = 0.5, 2.5: floor picks [0, 2], ceil [1, 3].
        let x = row(&[10.0, 11.0, 12.0, 13.0]);
        let sz = i(&[2], &[1, 2]);
        let (_, y) = rz(19, vec![], &x, None, None, Some(&sz));
        assert_eq!(y, vec![10.0, 12.0]);
        let (_, y) = rz(
            19,
            vec![("nearest_mode", s("round_prefer_ceil"))],
            &x,
            None,
            None,
            Some(&sz),
        );
        assert_eq!(y, vec![11.0, 13.0]);
    }

    #[test]
    fn nearest_asymmetric_floor_6_to_2() {
        // x_ori = x * 3: [0, 3]; default half_pixel picks centres [1, 4].
        let x = row(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let sz = i(&[2], &[1, 2]);
        let a = vec![
            ("coordinate_transformation_mode", s("asymmetric")),
            ("nearest_mode", s("floor")),
        ];
        assert_eq!(rz(19, a, &x, None, None, Some(&sz)).1, vec![0.0, 3.0]);
        assert_eq!(rz(19, vec![], &x, None, None, Some(&sz)).1, vec![1.0, 4.0]);
    }

    #[test]
    fn linear_align_corners_and_pytorch_half_pixel_len_1() {
        // align_corners 3 -> 5: x_ori = x * 2/4 = 0, .5, 1, 1.5, 2.
        let x = row(&[0.0, 10.0, 40.0]);
        let a = vec![
            ("mode", s("linear")),
            ("coordinate_transformation_mode", s("align_corners")),
        ];
        let (_, y) = rz(19, a, &x, None, None, Some(&i(&[2], &[1, 5])));
        assert_eq!(y, vec![0.0, 5.0, 10.0, 25.0, 40.0]);
        // pytorch_half_pixel with output length 1 samples coordinate 0; half_pixel the centre 1.
        let a = vec![
            ("mode", s("linear")),
            ("coordinate_transformation_mode", s("pytorch_half_pixel")),
        ];
        assert_eq!(
            rz(19, a, &x, None, None, Some(&i(&[2], &[1, 1]))).1,
            vec![0.0]
        );
        let a = vec![("mode", s("linear"))];
        assert_eq!(
            rz(19, a, &x, None, None, Some(&i(&[2], &[1, 1]))).1,
            vec![10.0]
        );
    }

    #[test]
    fn cubic_a_075_vs_05() {
        // 4 -> 8 half_pixel: output 1 has x_ori = 0.25 (ratio .25) reading indices -1..2
        // clamped to [0, 0, 1, 2] of x = [0, 1, 0, 0] (a unit impulse at 1).
        // coefficient of index 1 (distance .75): (a+2)·.421875 − (a+3)·.5625 + 1.
        // a = −0.75: 1.25·.421875 − 2.25·.5625 + 1 = 0.26171875
        // a = −0.5: 1.5·.421875 − 2.5·.5625 + 1 = 0.2265625
        let x = row(&[0.0, 1.0, 0.0, 0.0]);
        let sc = f(&[2], &[1.0, 2.0]);
        let (_, y75) = rz(19, vec![("mode", s("cubic"))], &x, None, Some(&sc), None);
        let (_, y50) = rz(
            19,
            vec![("mode", s("cubic")), ("cubic_coeff_a", Attr::Float(-0.5))],
            &x,
            None,
            Some(&sc),
            None,
        );
        close(&[y75[1]], &[0.26171875]);
        close(&[y50[1]], &[0.2265625]);
    }

    #[test]
    fn antialias_linear_downscale_4_to_2() {
        // scale .5, x_ori = 0.5, 2.5; the triangle is stretched to support 2:
        // offsets j = -1..2 from base 0, weights 1 − |.5(j − .5)| = .25, .75, .75, .25 (sum 2)
        // out0 = (.25·x0 + .75·x0 + .75·x1 + .25·x2) / 2 (index −1 clamped to 0)
        let x = row(&[0.0, 4.0, 8.0, 16.0]);
        let a = vec![("mode", s("linear")), ("antialias", Attr::Int(1))];
        let (_, y) = rz(19, a, &x, None, None, Some(&i(&[2], &[1, 2])));
        close(
            &y,
            &[
                (0.75 * 4.0 + 0.25 * 8.0) / 2.0,
                (0.25 * 4.0 + 0.75 * 8.0 + 0.75 * 16.0 + 0.25 * 16.0) / 2.0,
            ],
        );
        // without antialias: plain linear at 0.5, 2.5 -> 2, 12
        let (_, y) = rz(
            19,
            vec![("mode", s("linear"))],
            &x,
            None,
            None,
            Some(&i(&[2], &[1, 2])),
        );
        close(&y, &[2.0, 12.0]);
    }

    #[test]
    fn axes_subset_and_keep_aspect_ratio() {
        // X 1x2x4; axes [2] sizes [2]: only the last axis changes (nearest half_pixel: [0, 2]).
        let x = f(&[1, 2, 4], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        let (shape, y) = rz(
            19,
            vec![("axes", Attr::Ints(vec![-1]))],
            &x,
            None,
            None,
            Some(&i(&[1], &[2])),
        );
        assert_eq!(shape, vec![1, 2, 2]);
        assert_eq!(y, vec![0.0, 2.0, 4.0, 6.0]);
        // X 2x4, sizes [4, 4] not_larger: scale = min(2, 1) = 1 -> 2x4 unchanged;
        // not_smaller: scale 2 -> 4x8.
        let x = f(&[2, 4], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        let sz = i(&[2], &[4, 4]);
        let (shape, _) = rz(
            19,
            vec![("keep_aspect_ratio_policy", s("not_larger"))],
            &x,
            None,
            None,
            Some(&sz),
        );
        assert_eq!(shape, vec![2, 4]);
        let (shape, _) = rz(
            19,
            vec![("keep_aspect_ratio_policy", s("not_smaller"))],
            &x,
            None,
            None,
            Some(&sz),
        );
        assert_eq!(shape, vec![4, 8]);
        // 3x5 -> sizes [2, 2] not_larger: scale 0.4, out = round(1.2) x round(2) = 1x2.
        let x = f(&[3, 5], &[0.0; 15]);
        let sz = i(&[2], &[2, 2]);
        let (shape, _) = rz(
            19,
            vec![("keep_aspect_ratio_policy", s("not_larger"))],
            &x,
            None,
            None,
            Some(&sz),
        );
        assert_eq!(shape, vec![1, 2]);
    }

    #[test]
    fn tf_crop_and_resize_extrapolates() {
        // 1-D in 5 (0,10,..,40), roi [0.5, 1.5] on the last axis, sizes 3:
        // x_ori = 0.5·4 + x·1·4/2 = 2, 4, 6 -> 20, 40, extrapolation −1.
        let x = row(&[0.0, 10.0, 20.0, 30.0, 40.0]);
        let roi = f(&[4], &[0.0, 0.5, 1.0, 1.5]);
        let a = vec![
            ("mode", s("linear")),
            ("coordinate_transformation_mode", s("tf_crop_and_resize")),
            ("extrapolation_value", Attr::Float(-1.0)),
        ];
        let (_, y) = rz(19, a, &x, Some(&roi), None, Some(&i(&[2], &[1, 3])));
        assert_eq!(y, vec![20.0, 40.0, -1.0]);
    }

    #[test]
    fn resize_10_nearest_ceils_when_downscaling() {
        // conventions.md §1.2: 6 -> 4 (scale 2/3): x/scale = 0, 1.5, 3, 4.5 -> ceil [0, 2, 3, 5].
        let x = row(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let node = test_node("Resize", 2, 1, vec![]);
        let sc = f(&[2], &[1.0, (2.0f32 / 3.0) as f64]);
        let y = run_op(&node, 10, &[Some(&x), Some(&sc)]).unwrap()[0]
            .clone()
            .unwrap();
        assert_eq!(y.floats().unwrap(), vec![0.0, 2.0, 3.0, 5.0]);
        // Upscale 2 -> 5 (scale 2.5): floor(x / 2.5) = [0, 0, 0, 1, 1].
        let x = row(&[7.0, 9.0]);
        let sc = f(&[2], &[1.0, 2.5]);
        let y = run_op(&node, 10, &[Some(&x), Some(&sc)]).unwrap()[0]
            .clone()
            .unwrap();
        assert_eq!(y.floats().unwrap(), vec![7.0, 7.0, 7.0, 9.0, 9.0]);
    }

    #[test]
    fn upsample_7_attribute_scales() {
        // nearest 2 -> 4 and linear asymmetric 3 x 2.5: samples at x / 2.5 = 0, .4, .8, 1.2, ...
        let x = row(&[1.0, 2.0]);
        let node = test_node(
            "Upsample",
            1,
            1,
            vec![("scales", Attr::Floats(vec![1.0, 2.0]))],
        );
        let y = run_op(&node, 7, &[Some(&x)]).unwrap()[0].clone().unwrap();
        assert_eq!(y.floats().unwrap(), vec![1.0, 1.0, 2.0, 2.0]);
        let x = row(&[0.0, 10.0, 20.0]);
        let node = test_node(
            "Upsample",
            1,
            1,
            vec![
                ("scales", Attr::Floats(vec![1.0, 2.5])),
                ("mode", s("linear")),
            ],
        );
        let y = run_op(&node, 7, &[Some(&x)]).unwrap()[0].clone().unwrap();
        close(
            &y.floats().unwrap(),
            &[0.0, 4.0, 8.0, 12.0, 16.0, 20.0, 20.0],
        );
    }

    #[test]
    fn integer_input_rounds_half_even() {
        // uint8 [0, 1] linear align_corners 2 -> 3: 0, 0.5, 1 -> round half even [0, 0, 1].
        let x = RefTensor::exact(Tensor::from_f64(
            crate::tensor::DType::U8,
            &[1, 2],
            &[0.0, 1.0],
        ));
        let node = test_node(
            "Resize",
            4,
            1,
            vec![
                ("mode", s("linear")),
                ("coordinate_transformation_mode", s("align_corners")),
            ],
        );
        let sz = i(&[2], &[1, 3]);
        let y = run_op(&node, 19, &[Some(&x), None, None, Some(&sz)]).unwrap()[0]
            .clone()
            .unwrap();
        assert_eq!(y.data.to_f64_vec(), vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn opset_gating_names_the_attribute() {
        let x = row(&[0.0, 1.0]);
        let node = test_node("Resize", 4, 1, vec![("antialias", Attr::Int(1))]);
        let e = run_op(
            &node,
            13,
            &[Some(&x), None, Some(&f(&[2], &[1.0, 2.0])), None],
        )
        .err()
        .unwrap();
        assert!(format!("{e:?}").contains("antialias"));
        let node = test_node(
            "Resize",
            4,
            1,
            vec![("coordinate_transformation_mode", s("half_pixel_symmetric"))],
        );
        assert!(run_op(
            &node,
            18,
            &[Some(&x), None, Some(&f(&[2], &[1.0, 2.0])), None]
        )
        .is_err());
    }
}
