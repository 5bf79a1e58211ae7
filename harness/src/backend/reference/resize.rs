//! Reference ops: Resize (opsets 10, 11, 13, 18, 19) and Upsample (7, 9).
//!
//! The node's meaning (attributes, opset gating, output lengths, the scale
//! each axis maps with, the per-axis nearest rounding including the
//! Resize-10/Upsample rule, roi) is decoded once for every backend by
//! [`ResizeAttrs::decode`] (`op/resize.rs`); ORT and the ONNX node tests
//! check that decode. What stays here, written from the spec and independent
//! of the host index helpers the framework lowerings compose with, is the
//! maths: [`original_coordinate`] is the per-axis coordinate transform,
//! [`axis_taps`] the input indices and weights of one output position, and
//! [`resize`] applies them axis by axis (every mode is separable: linear is
//! multilinear, cubic is per-axis cubic).
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
//! floor when upscaling and ceil when downscaling ([`NearestMode::legacy`],
//! docs/conventions.md §1.2).

use ndarray::{ArrayD, Axis, IxDyn, Zip};

use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::resize::{AxisPlan, CoordMode, Mode, NearestMode, ResizeAttrs};
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
        r.range("Resize", since, until, resize_op, RESIZE, SPEC);
    }
    // Upsample-7: `scales` attribute; 9: `scales` input; deprecated at 10.
    for (since, until) in [(7, 8), (9, 9)] {
        r.range("Upsample", since, until, resize_op, UPSAMPLE, SPEC);
    }
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

/// The input indices and weights one output position reads along an axis
/// (with the axis's nearest rounding `nearest`), or `None` for
/// tf_crop_and_resize outside [0, in − 1] (extrapolation). Neighbours outside
/// the input are clamped to the edge, or with exclude_outside dropped and the
/// rest renormalized to sum 1.
pub fn axis_taps(
    a: &ResizeAttrs,
    nearest: NearestMode,
    x_ori: f64,
    scale: f64,
    in_len: usize,
) -> Option<Vec<(usize, f64)>> {
    let last = in_len as i64 - 1;
    if a.coord == CoordMode::TfCropAndResize && (x_ori < 0.0 || x_ori > last as f64) {
        return None;
    }
    let (base, r) = split(x_ori);
    let (first, coeffs): (i64, Vec<f64>) = match a.mode {
        Mode::Nearest => {
            let up = match nearest {
                NearestMode::RoundPreferFloor => r > 0.5,
                NearestMode::RoundPreferCeil => r >= 0.5,
                NearestMode::Floor => r == 1.0,
                NearestMode::Ceil => true,
            };
            (if up { base + 1 } else { base }, vec![1.0])
        }
        Mode::Linear if a.antialias => {
            let (s, c) = antialias_coeffs(r, scale, 1.0, |v| (1.0 - v.abs()).clamp(0.0, 1.0));
            (base + s, c)
        }
        Mode::Linear => (base, vec![1.0 - r, r]),
        Mode::Cubic if a.antialias => {
            let (s, c) = antialias_coeffs(r, scale, 2.0, |v| cubic_kernel(v, a.cubic_coeff_a));
            (base + s, c)
        }
        Mode::Cubic => (base - 1, cubic_coeffs(r, a.cubic_coeff_a)),
    };
    let mut taps: Vec<(i64, f64)> = coeffs
        .into_iter()
        .enumerate()
        .map(|(j, w)| (first + j as i64, w))
        .collect();
    if a.exclude_outside {
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

/// The taps of every output position of one axis.
fn plan_taps(a: &ResizeAttrs, p: &AxisPlan) -> Vec<Option<Vec<(usize, f64)>>> {
    (0..p.len_out)
        .map(|o| {
            let xo = original_coordinate(a.coord, o, p.scale, p.len_in, p.len_out, p.roi);
            axis_taps(a, p.nearest, xo, p.scale, p.len_in)
        })
        .collect()
}

/// Resamples `x` to the decoded plan, one axis at a time (the last first).
pub fn resize(x: &ArrayD<f64>, a: &ResizeAttrs) -> ArrayD<f64> {
    let mut cur = x.to_owned();
    for (ax, p) in a.plan.iter().enumerate().rev() {
        let taps = plan_taps(a, p);
        let identity = p.len_out == p.len_in
            && taps
                .iter()
                .enumerate()
                .all(|(j, t)| t.as_deref() == Some(&[(j, 1.0)][..]));
        if !identity {
            cur = apply_axis(&cur, ax, &taps, a.extrapolation_value);
        }
    }
    cur
}

/// `Σ|terms|` of each output, for the local error bound (docs/tolerance.md):
/// the sum of |x| over each output's taps widened by one input on each side,
/// every weight taken as 1 (|w| ≤ 1 for linear; the widening covers the
/// neighbour a rounded source coordinate can put weight on, which a
/// framework computing the coordinate in float32 does).
pub fn magnitude(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<ArrayD<f64>> {
    let xt = ctx.input(x, 0)?;
    let a = ResizeAttrs::decode(ctx, x)?;
    let mut cur = xt.f64()?.mapv(f64::abs);
    for (ax, p) in a.plan.iter().enumerate().rev() {
        let last = p.len_in.saturating_sub(1);
        let widen = |ts: Vec<(usize, f64)>| {
            let lo = ts.iter().map(|t| t.0).min().unwrap_or(0).saturating_sub(1);
            let hi = (ts.iter().map(|t| t.0).max().unwrap_or(0) + 1).min(last);
            (lo..=hi).map(|i| (i, 1.0)).collect()
        };
        let taps: Vec<_> = plan_taps(&a, p).into_iter().map(|t| t.map(widen)).collect();
        cur = apply_axis(&cur, ax, &taps, a.extrapolation_value.abs());
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

/// Resize-10/11/13/18/19 (<https://onnx.ai/onnx/operators/onnx__Resize.html>)
/// and Upsample-7/9 (<https://onnx.ai/onnx/operators/onnx__Upsample.html>):
/// the shared decode, then the plan run on X, wrapped in X's dtype
/// (integers: rounded half to even, then saturated, as the onnx reference's
/// saturate_cast). See the module docs for the conventions followed.
fn resize_op(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let xt = ctx.input(x, 0)?;
    let a = ResizeAttrs::decode(ctx, x)?;
    let xa = match &xt.data {
        Tensor::F64(v) => v.clone(),
        Tensor::Bool(_) => return Err(ctx.fail("input X: bool is not a Resize type")),
        t => ArrayD::from_shape_vec(IxDyn(t.shape()), t.to_f64_vec()).expect("shape"),
    };
    let y = resize(&xa, &a);
    let out = if xt.is_float() {
        RefTensor::float(y, xt.dtype)
    } else {
        let v: Vec<f64> = y.iter().map(|v| v.round_ties_even()).collect();
        RefTensor::exact(Tensor::from_f64(xt.dtype, y.shape(), &v))
    };
    Ok(Lowered::one(out, How::Spec))
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
        // docs/conventions.md §1.2: 6 -> 4 (scale 2/3): x/scale = 0, 1.5, 3, 4.5 -> ceil [0, 2, 3, 5].
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
