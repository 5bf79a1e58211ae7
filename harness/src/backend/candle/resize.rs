//! candle lowerings: Resize (opsets 10/11/13/18/19) and Upsample (7/9).
//!
//! candle has `upsample_nearest1d/2d` (nearest, asymmetric, floor, from
//! sizes: index = min(in-1, ⌊k·in/out⌋) in f64) and `upsample_bilinear2d`
//! (half_pixel or align_corners, from sizes or scales). Other conventions
//! are composed: source indices (and linear weights) are computed on the
//! host in f64 from the ONNX formulas, exactly as the reference maps them
//! (align_corners over the fractional length in·scale), and applied per
//! axis with `index_select` (+ a lerp for linear). Cubic and antialias have no candle
//! op and are unsupported.
//!
//! The node is decoded once by [`ResizeAttrs::decode`] (`op/resize.rs`), so
//! Resize-10/Upsample nearest follows the same rule as every other backend
//! (floor when upscaling, ceil when downscaling); this file only picks and
//! calls candle ops.

use candle_core::Tensor;

use super::{index_tensor, keep_bool, Ce};
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::resize::{linear_taps, CoordMode, Mode, NearestMode, ResizeAttrs};

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

pub fn register(r: &mut OpRegistry<Tensor>) {
    let spec = "https://onnx.ai/onnx/operators/onnx__Resize.html";
    let coverage = cov![
        "nearest, asymmetric, floor, rank 3/4, N and C unchanged, sizes (or scales with out = in·scale exactly)" =>
            Native("upsample_nearest1d | upsample_nearest2d"),
        "linear, half_pixel (or pytorch_half_pixel with out > 1), rank 4, sizes" => Native("upsample_bilinear2d(align_corners=false)"),
        "linear, half_pixel, rank 4, scales" => Native("upsample_bilinear2d_with_scale"),
        "linear, align_corners, rank 4" => Native("upsample_bilinear2d(align_corners=true)"),
        "other nearest conventions / axes" => Composed("index_select per axis"),
        "other linear conventions / axes" => Composed("index_select, affine lerp per axis"),
        "mode=cubic" => Unsupported("mode: no bicubic op"),
        "antialias=1 when downscaling" => Unsupported("antialias"),
        "tf_crop_and_resize" => Unsupported("coordinate_transformation_mode: roi"),
    ];
    for (since, until) in [(10, 10), (11, 12), (13, 17), (18, 18), (19, u32::MAX)] {
        r.range("Resize", since, until, resize, spec, coverage);
    }
    let spec = "https://onnx.ai/onnx/operators/onnx__Upsample.html";
    let coverage = cov![
        "nearest, integer scales on H/W" => Native("upsample_nearest2d"),
        "nearest, other scales" => Composed("index_select per axis"),
        "linear / bilinear (asymmetric)" => Composed("index_select, affine lerp per axis"),
    ];
    r.range("Upsample", 7, 8, resize, spec, coverage);
    r.range("Upsample", 9, 9, resize, spec, coverage);
}

/// Resize-10 (scales only, asymmetric), Resize-11/13 (roi, scales, sizes),
/// Resize-18/19 (axes, antialias, keep_aspect_ratio_policy,
/// half_pixel_symmetric) and Upsample-7/9: the decoded node, lowered to a
/// native candle op where one has these semantics, else composed.
fn resize(ctx: &OpCtx, x: &In) -> Out {
    let input = ctx.input(x, 0)?;
    let a = ResizeAttrs::decode(ctx, x)?;
    // The idiomatic port ignores roi (and every other convention attribute).
    if ctx.options.port {
        return port(ctx, input, &a);
    }
    if a.coord == CoordMode::TfCropAndResize {
        return Err(ctx.unsupported(
            "coordinate_transformation_mode",
            "tf_crop_and_resize (roi) has no candle op",
        ));
    }
    if a.antialias_applies() {
        return Err(ctx.unsupported(
            "antialias",
            "1 when downscaling: candle has no antialiased resize",
        ));
    }
    match a.mode {
        Mode::Nearest => match native_nearest(ctx, input, &a)? {
            Some(l) => Ok(l),
            None => Ok(Lowered::one(
                nearest_composed(ctx, input, &a)?,
                How::composed("index_select per axis"),
            )),
        },
        Mode::Linear => match native_linear(input, &a)? {
            Some(l) => Ok(l),
            None if !input.dtype().is_float() => {
                Err(ctx.unsupported("mode", "linear resize of an integer tensor"))
            }
            None => Ok(Lowered::one(
                linear_composed(input, &a)?,
                How::composed("index_select, affine lerp per axis"),
            )),
        },
        Mode::Cubic => Err(ctx.unsupported("mode", "cubic: candle has no bicubic interpolation")),
    }
}

/// N and C keep their length (candle's upsample ops resize the spatial axes
/// of N, C, ... input) and no spatial output is empty.
fn spatial_only(x: &Tensor, a: &ResizeAttrs) -> bool {
    x.rank() >= 3
        && a.plan[..2].iter().all(|p| p.len_out == p.len_in)
        && a.plan[2..].iter().all(|p| p.len_out > 0)
}

/// candle's `upsample_nearest{1,2}d` (asymmetric, floor, index ⌊k·in/out⌋):
/// equal to ONNX ⌊k/scale⌋ when coordinates map with out/in, or the given
/// scale is exactly out/in.
fn native_nearest(ctx: &OpCtx, x: &Tensor, a: &ResizeAttrs) -> OpResult<Option<Lowered<Tensor>>> {
    let asym_floor =
        a.coord == CoordMode::Asymmetric && a.plan.iter().all(|p| p.nearest == NearestMode::Floor);
    let exact = a.plan[2..]
        .iter()
        .all(|p| p.len_out as f64 == p.len_in as f64 * p.scale);
    if !asym_floor || !spatial_only(x, a) || (a.scale_is_given() && !exact) {
        return Ok(None);
    }
    let out = a.len_out();
    let (y, op) = match x.rank() {
        4 => (
            x.upsample_nearest2d(out[2], out[3]).ce()?,
            "upsample_nearest2d",
        ),
        3 => (x.upsample_nearest1d(out[2]).ce()?, "upsample_nearest1d"),
        _ => return Ok(None),
    };
    Ok(Some(Lowered::one(keep_bool(ctx, x, y), How::native(op))))
}

/// candle's `upsample_bilinear2d` (half_pixel from sizes, or align_corners)
/// and `upsample_bilinear2d_with_scale` (half_pixel from given scales with
/// out = ⌊in·scale⌋), on 4-D input.
fn native_linear(x: &Tensor, a: &ResizeAttrs) -> OpResult<Option<Lowered<Tensor>>> {
    if x.rank() != 4 || !spatial_only(x, a) {
        return Ok(None);
    }
    let (h, w) = (&a.plan[2], &a.plan[3]);
    let half = a.coord == CoordMode::HalfPixel
        || (a.coord == CoordMode::PytorchHalfPixel && h.len_out > 1 && w.len_out > 1);
    let floor_out = [h, w]
        .iter()
        .all(|p| p.len_out == (p.len_in as f64 * p.scale).floor() as usize);
    let (y, op) = if a.coord == CoordMode::AlignCorners {
        let y = x.upsample_bilinear2d(h.len_out, w.len_out, true).ce()?;
        (y, "upsample_bilinear2d(align_corners=true)")
    } else if half && !a.scale_is_given() {
        let y = x.upsample_bilinear2d(h.len_out, w.len_out, false).ce()?;
        (y, "upsample_bilinear2d(align_corners=false)")
    } else if half && floor_out {
        let y = x
            .upsample_bilinear2d_with_scale(h.scale, w.scale, false)
            .ce()?;
        (y, "upsample_bilinear2d_with_scale")
    } else {
        return Ok(None);
    };
    Ok(Some(Lowered::one(y, How::native(op))))
}

/// Composed nearest: one `index_select` per resized axis.
fn nearest_composed(ctx: &OpCtx, x: &Tensor, a: &ResizeAttrs) -> OpResult<Tensor> {
    let mut y = x.clone();
    for ax in 0..x.rank() {
        let idx = a.nearest_indices(ax);
        if idx.len() == a.plan[ax].len_in && idx.iter().enumerate().all(|(i, &v)| v == i as i64) {
            continue;
        }
        y = y
            .contiguous()
            .ce()?
            .index_select(&index_tensor(idx, y.device())?, ax)
            .ce()?;
    }
    Ok(keep_bool(ctx, x, y))
}

/// Composed n-linear: per axis, lerp between the two neighbours
/// (coordinates clamped to [0, in-1], as the spec's edge padding does).
fn linear_composed(x: &Tensor, a: &ResizeAttrs) -> OpResult<Tensor> {
    let mut y = x.clone();
    for (ax, p) in a.plan.iter().enumerate() {
        if p.len_in == p.len_out
            && a.coord != CoordMode::TfHalfPixelForNn
            && (p.scale - 1.0).abs() < f64::EPSILON
        {
            continue;
        }
        let mut i0 = Vec::with_capacity(p.len_out);
        let mut i1 = Vec::with_capacity(p.len_out);
        let mut w = Vec::with_capacity(p.len_out);
        for o in 0..p.len_out {
            let c = p.source_coord(a.coord, o).clamp(0.0, (p.len_in - 1) as f64);
            let (lo, hi, r) = linear_taps(c, p.len_in as i64);
            i0.push(lo);
            i1.push(hi);
            w.push(r);
        }
        let mut shape = vec![1; x.rank()];
        shape[ax] = p.len_out;
        let w = Tensor::from_vec(w, shape.as_slice(), x.device())
            .and_then(|t| t.to_dtype(x.dtype()))
            .ce()?;
        let lo = y
            .contiguous()
            .ce()?
            .index_select(&index_tensor(i0, y.device())?, ax)
            .ce()?;
        let hi = y
            .contiguous()
            .ce()?
            .index_select(&index_tensor(i1, y.device())?, ax)
            .ce()?;
        // lo·(1 − w) + hi·w, each term left out where its weight is 0, as
        // the reference computes it (so ±Inf neighbours give what the
        // reference gives: no 0·Inf = NaN, no Inf − Inf from a lerp).
        let lo = weighted(&lo, &w.affine(-1.0, 1.0).ce()?)?;
        y = (lo + weighted(&hi, &w)?).ce()?;
    }
    Ok(y)
}

/// `x · w` (w broadcast along one axis), 0 where `w` is 0.
fn weighted(x: &Tensor, w: &Tensor) -> OpResult<Tensor> {
    let term = x.broadcast_mul(w).ce()?;
    let keep = w.ne(0.0).and_then(|m| m.broadcast_as(term.shape())).ce()?;
    keep.where_cond(&term, &term.zeros_like().ce()?).ce()
}

/// The idiomatic port (issue 5, `EngineOptions::port`): what a typical port
/// writes, candle's `upsample_nearest2d(h, w)` / `upsample_bilinear2d(h, w,
/// false)` from the ONNX output size, whatever the node's coordinate mode,
/// nearest rounding, antialias or roi. Cubic has no candle op.
fn port(ctx: &OpCtx, x: &Tensor, a: &ResizeAttrs) -> Out {
    let r = x.rank();
    let out = a.len_out();
    if a.mode == Mode::Cubic {
        return Err(ctx.unsupported(
            "mode",
            "cubic: idiomatic port: candle has no bicubic interpolation",
        ));
    }
    if r < 3 || a.plan[..2].iter().any(|p| p.len_out != p.len_in) {
        return Err(ctx.unsupported(
            "scales",
            format!(
                "idiomatic port: candle's upsample ops resize the spatial axes of N, C, ... input only ({:?} -> {out:?})",
                x.dims()
            ),
        ));
    }
    if out[2..].contains(&0) {
        return Err(ctx.fail(format!("cannot resize to {out:?}")));
    }
    let (y, op) = match (a.mode, r) {
        (Mode::Nearest, 4) => (
            x.upsample_nearest2d(out[2], out[3]).ce()?,
            "upsample_nearest2d",
        ),
        (Mode::Nearest, 3) => (x.upsample_nearest1d(out[2]).ce()?, "upsample_nearest1d"),
        (Mode::Linear, 4) => (
            x.upsample_bilinear2d(out[2], out[3], false).ce()?,
            "upsample_bilinear2d(align_corners=false)",
        ),
        (m, _) => {
            return Err(ctx.unsupported(
                "mode",
                format!(
                    "{} on rank {r}: idiomatic port: candle has no such upsample op",
                    m.name()
                ),
            ))
        }
    };
    Ok(Lowered::one(
        keep_bool(ctx, x, y),
        How::native(format!("{op} (idiomatic port)")),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    fn s(v: &str) -> Attr {
        Attr::String(v.into())
    }

    /// Composed linear leaves zero-weight taps out, as the reference does:
    /// a sample exactly on a pixel next to an Inf is that pixel, and a
    /// sample between an Inf and a finite value is Inf (a lerp
    /// `lo + (hi − lo)·w` would give NaN for both). Upsample-9: x/2.
    #[test]
    fn composed_linear_leaves_zero_weight_taps_out() {
        let x = f32t(&[1, 1, 1, 4], &[1.0, f32::INFINITY, 2.0, 3.0]);
        let scales = f32t(&[4], &[1.0, 1.0, 1.0, 2.0]);
        let n = node("Upsample", 2, 1, vec![("mode", s("linear"))]);
        let (v, _, how) = run1(&n, 9, &[Some(&x), Some(&scales)]);
        let inf = f32::INFINITY;
        assert_eq!(v, vec![1.0, inf, inf, inf, 2.0, 2.5, 3.0, 3.0]);
        assert!(how.starts_with("composed"), "{how}");
    }

    #[test]
    fn upsample_nearest2d_picks_asymmetric_floor() {
        // 1x1x1x3 [10, 20, 30] resized to width 5 by sizes: floor(k·3/5) = [0, 0, 1, 1, 2].
        let x = f32t(&[1, 1, 1, 3], &[10.0, 20.0, 30.0]);
        let sizes = i64t(&[1, 1, 1, 5]);
        let n = node(
            "Resize",
            4,
            1,
            vec![
                ("coordinate_transformation_mode", s("asymmetric")),
                ("nearest_mode", s("floor")),
            ],
        );
        let (v, dims, how) = run1(&n, 13, &[Some(&x), None, None, Some(&sizes)]);
        assert_eq!(dims, vec![1, 1, 1, 5]);
        assert_eq!(v, vec![10.0, 10.0, 20.0, 20.0, 30.0]);
        assert_eq!(how, "native: upsample_nearest2d");
        // The ONNX default (half_pixel, round_prefer_floor) picks [0, 0, 1, 2, 2]: composed.
        let n = node("Resize", 4, 1, vec![]);
        let (v, _, how) = run1(&n, 13, &[Some(&x), None, None, Some(&sizes)]);
        assert_eq!(v, vec![10.0, 10.0, 20.0, 30.0, 30.0]);
        assert_eq!(how, "composed: index_select per axis");
    }

    #[test]
    fn keep_aspect_ratio_maps_coordinates_with_the_policy_scale() {
        // 2x3 -> sizes 4x4, not_larger: s = min(4/2, 4/3) = 4/3, out = round(in*s) = 3x4.
        // Both axes map with s (x_orig = 0.75x - 0.125), not with out/in (3/2 for H).
        let x = f32t(&[1, 1, 2, 3], &[0.0, 3.0, 6.0, 10.0, 13.0, 16.0]);
        let sizes = i64t(&[4, 4]);
        let n = node(
            "Resize",
            4,
            1,
            vec![
                ("mode", s("linear")),
                ("axes", Attr::Ints(vec![2, 3])),
                ("keep_aspect_ratio_policy", s("not_larger")),
            ],
        );
        let (v, dims, how) = run1(&n, 19, &[Some(&x), None, None, Some(&sizes)]);
        assert_eq!(dims, vec![1, 1, 3, 4]);
        let want = [
            0.0, 1.875, 4.125, 6.0, 6.25, 8.125, 10.375, 12.25, 10.0, 11.875, 14.125, 16.0,
        ];
        close(&v, &want, 1e-5);
        assert_eq!(how, "composed: index_select, affine lerp per axis");
    }

    #[test]
    fn linear_half_pixel_and_asymmetric() {
        let x = f32t(&[1, 1, 1, 2], &[0.0, 4.0]);
        let scales = f32t(&[4], &[1.0, 1.0, 1.0, 2.0]);
        let n = node("Resize", 3, 1, vec![("mode", s("linear"))]);
        let (v, _, how) = run1(&n, 13, &[Some(&x), None, Some(&scales)]);
        // half_pixel: coords [-0.25, 0.25, 0.75, 1.25] clamp -> [0, 1, 3, 4].
        close(&v, &[0.0, 1.0, 3.0, 4.0], 1e-6);
        assert_eq!(how, "native: upsample_bilinear2d_with_scale");
        let n = node(
            "Resize",
            3,
            1,
            vec![
                ("mode", s("linear")),
                ("coordinate_transformation_mode", s("asymmetric")),
            ],
        );
        let (v, _, how) = run1(&n, 13, &[Some(&x), None, Some(&scales)]);
        close(&v, &[0.0, 2.0, 4.0, 4.0], 1e-6);
        assert_eq!(how, "composed: index_select, affine lerp per axis");
    }

    #[test]
    fn port_lowers_any_nearest_to_upsample_nearest2d() {
        use crate::backend::interp::OpCtx;
        use crate::options::{Device, EngineOptions};
        let opts = EngineOptions {
            port: true,
            ..EngineOptions::default()
        };
        let x = f32t(&[1, 1, 1, 3], &[10.0, 20.0, 30.0]);
        let sizes = i64t(&[1, 1, 1, 5]);
        // The ONNX default picks [0, 0, 1, 2, 2]; the port floor(k·3/5) = [0, 0, 1, 1, 2].
        let n = node("Resize", 4, 1, vec![]);
        let scope = crate::backend::candle::Scope::new(candle_core::Device::Cpu);
        let ctx = OpCtx {
            node: &n,
            opset: 13,
            device: Device::Cpu,
            options: &opts,
            scope: &scope,
        };
        let l = super::resize(&ctx, &[Some(&x), None, None, Some(&sizes)]).unwrap();
        let y = l.outputs[0].as_ref().unwrap();
        let v: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(v, vec![10.0, 10.0, 20.0, 20.0, 30.0]);
        assert_eq!(l.how.label(), "native: upsample_nearest2d (idiomatic port)");
        let n = node("Resize", 4, 1, vec![("mode", s("cubic"))]);
        let ctx = OpCtx { node: &n, ..ctx };
        let e = super::resize(&ctx, &[Some(&x), None, None, Some(&sizes)])
            .err()
            .unwrap();
        assert!(format!("{e:?}").contains("idiomatic port"), "{e:?}");
    }

    /// Resize-10 nearest ceils when downscaling (the op layer's one rule);
    /// candle used to floor here ([0, 1, 2, 4]) while the reference ceils.
    #[test]
    fn resize_10_nearest_downscale_matches_the_reference() {
        use crate::backend::reference::{run_op as reference, util::f};
        let v = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let scales = [1.0, 1.0, 1.0, 2.0f32 / 3.0];
        let n = node("Resize", 2, 1, vec![]);
        let x = f32t(&[1, 1, 1, 6], &v.map(|v| v as f32));
        let sc = f32t(&[4], &scales);
        let (got, dims, how) = run1(&n, 10, &[Some(&x), Some(&sc)]);
        assert_eq!(dims, vec![1, 1, 1, 4]);
        assert_eq!(how, "composed: index_select per axis");
        let (rx, rsc) = (f(&[1, 1, 1, 6], &v), f(&[4], &scales.map(f64::from)));
        let want = reference(&n, 10, &[Some(&rx), Some(&rsc)]).unwrap()[0]
            .clone()
            .unwrap()
            .floats()
            .unwrap();
        assert_eq!(want, vec![0.0, 2.0, 3.0, 5.0]);
        assert_eq!(got.iter().map(|&g| g as f64).collect::<Vec<_>>(), want);
        // Upscaling floors, which candle's upsample_nearest2d does natively.
        let up = f32t(&[4], &[1.0, 1.0, 1.0, 2.0]);
        let (got, _, how) = run1(&n, 10, &[Some(&x), Some(&up)]);
        assert_eq!(got[..4], [0.0, 0.0, 1.0, 1.0]);
        assert_eq!(how, "native: upsample_nearest2d");
    }

    /// The composed lowerings map coordinates exactly as the reference does,
    /// align_corners with the fractional length in·scale included: on
    /// 5 × 1.5 → 7 and the tie-fragile 6 × 0.33333334 → 2 nearest used to
    /// divide by the integer output length and pick other pixels (max abs
    /// 0.24 and 0.4 on a ramp).
    #[test]
    fn composed_align_corners_agrees_with_the_reference() {
        use crate::backend::reference::{run_op as reference, util};
        let nearest = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"];
        let geometries: [(&[usize], [f32; 2]); 4] = [
            (&[1, 1, 5, 5], [1.5, 1.5]),
            (&[1, 1, 6, 6], [0.333_333_34, 0.333_333_34]),
            (&[5, 5], [1.5, 1.5]),
            (&[6, 6], [0.333_333_34, 1.0]),
        ];
        let variants = nearest
            .iter()
            .map(|m| ("nearest", *m))
            .chain([("linear", "floor")]);
        for (mode, nm) in variants {
            for (shape, sc) in geometries {
                let rank = shape.len();
                if mode == "linear" && rank == 4 {
                    continue; // candle's native upsample_bilinear2d(align_corners=true)
                }
                let n = node(
                    "Resize",
                    3,
                    1,
                    vec![
                        ("mode", s(mode)),
                        ("coordinate_transformation_mode", s("align_corners")),
                        ("nearest_mode", s(nm)),
                    ],
                );
                let len: usize = shape.iter().product();
                let v: Vec<f64> = (0..len).map(|k| k as f64 / len as f64).collect();
                let scales: Vec<f32> = [vec![1.0; rank - 2], sc.to_vec()].concat();
                let x = f32t(shape, &v.iter().map(|&v| v as f32).collect::<Vec<_>>());
                let xs = f32t(&[rank], &scales);
                let (got, _, how) = run1(&n, 19, &[Some(&x), None, Some(&xs)]);
                assert!(how.starts_with("composed"), "{how}");
                let rs: Vec<f64> = scales.iter().map(|&v| v as f64).collect();
                let want = reference(
                    &n,
                    19,
                    &[
                        Some(&util::f(shape, &v)),
                        None,
                        Some(&util::f(&[rank], &rs)),
                    ],
                )
                .unwrap()[0]
                    .clone()
                    .unwrap()
                    .floats()
                    .unwrap();
                let want: Vec<f32> = want.iter().map(|&w| w as f32).collect();
                let tol = if mode == "linear" { 1e-6 } else { 0.0 };
                assert_eq!(got.len(), want.len(), "{mode} {nm} {shape:?}");
                close(&got, &want, tol);
            }
        }
    }

    #[test]
    fn cubic_is_unsupported() {
        let x = f32t(&[1, 1, 1, 2], &[0.0, 4.0]);
        let scales = f32t(&[4], &[1.0, 1.0, 1.0, 2.0]);
        let n = node("Resize", 3, 1, vec![("mode", s("cubic"))]);
        let e = super::super::run_op(&n, 13, &[Some(&x), None, Some(&scales)])
            .err()
            .unwrap();
        assert!(format!("{e:?}").contains("Resize mode"), "{e:?}");
    }
}
