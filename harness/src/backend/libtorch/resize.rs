//! libtorch lowerings: Resize (opsets 10, 11, 13, 18, 19) and Upsample (7, 9).
//!
//! Native ops are used only for the attribute combinations they equal
//! (measured in docs/conventions.md §1): nearest+asymmetric+floor =
//! `upsample_nearest{1,2,3}d`; nearest half_pixel+round_prefer_ceil (and
//! tf_half_pixel_for_nn+floor) = `_upsample_nearest_exact{1,2,3}d`;
//! linear half_pixel / align_corners = `upsample_{linear1d,bilinear2d,trilinear3d}`;
//! cubic half_pixel / align_corners with a = -0.75, exclude_outside = 0 =
//! `upsample_bicubic2d`; antialiased linear (exclude_outside = 1) and cubic
//! (a = -0.5, exclude_outside = 1) = `_upsample_{bilinear,bicubic}2d_aa`.
//! Scales are passed to torch when the model gives scales, so coordinates use
//! 1/scale as the spec says, not in/out.
//!
//! The node is decoded once by [`ResizeAttrs::decode`] (`op/resize.rs`),
//! which also owns the Resize-10/Upsample nearest rule and the host index
//! maths of the composed lowering; this file only picks and calls torch ops.
//!
//! Every other convention is composed: the ONNX source indices (and linear or
//! cubic weights) are computed on the host in f64, axis by axis, with the
//! reference's coordinates (align_corners over the fractional length
//! in·scale, unlike torch's own align_corners ops), and applied with
//! `index_select` (and `mul`/`add`) in libtorch. A composed lowering is
//! xdiff's code, so it must agree with the reference, never be declared.

use tch::Tensor;

use super::is_float;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::resize::{AxisPlan, CoordMode, KeepAspect, Mode, NearestMode, ResizeAttrs};

type X<'a> = [Option<&'a Tensor>];

const RESIZE_COVERAGE: &[Coverage] = cov![
    "nearest, asymmetric, floor (Resize-10/Upsample: upscaling)" => Label::Native("upsample_nearest{1,2,3}d"),
    "nearest, half_pixel + round_prefer_ceil | tf_half_pixel_for_nn + floor" => Label::Native("_upsample_nearest_exact{1,2,3}d"),
    "linear, half_pixel (pytorch_half_pixel without length-1 outputs) | align_corners" => Label::Native("upsample_{linear1d,bilinear2d,trilinear3d}"),
    "cubic 2-D, half_pixel | align_corners, a=-0.75, exclude_outside=0" => Label::Native("upsample_bicubic2d"),
    "antialias downscale 2-D: linear half_pixel exclude_outside=1" => Label::Native("_upsample_bilinear2d_aa"),
    "antialias downscale 2-D: cubic half_pixel a=-0.5 exclude_outside=1" => Label::Native("_upsample_bicubic2d_aa"),
    "other nearest/linear/cubic conventions, N/C axes, other ranks" => Label::Composed("index_select (+ mul, add) with host f64 indices/weights"),
    "tf_crop_and_resize" => Label::Unsupported("coordinate_transformation_mode"),
    "other antialias downscales" => Label::Unsupported("antialias"),
    "keep_aspect_ratio_policy != stretch" => Label::Unsupported("keep_aspect_ratio_policy"),
];

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.op("Resize", resize, spec!("Resize"), RESIZE_COVERAGE);
    r.op(
        "Upsample",
        resize,
        spec!("Upsample"),
        cov!["nearest (asymmetric, floor)" => Label::Native("upsample_nearest{1,2,3}d"),
             "linear (asymmetric)" => Label::Composed("index_select, mul, add with host f64 weights")],
    );
}

/// Resize-10/11/13/18/19 and Upsample-7/9: the decoded node, lowered to a
/// native torch op where one has these semantics, else composed.
fn resize(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let a = ResizeAttrs::decode(ctx, x)?;
    refuse(ctx, input, &a)?;
    if ctx.options.port {
        return port(ctx, input, &a);
    }
    let coord = effective_coord(&a);
    if let Some(l) = native(input, &a, coord)? {
        return Ok(l);
    }
    if a.antialias_applies() {
        return Err(ctx.unsupported(
            "antialias",
            format!(
                "{} {} downscale with a={} exclude_outside={} has no torch equivalent",
                a.mode.name(),
                a.coord.name(),
                a.cubic_coeff_a,
                a.exclude_outside as i32
            ),
        ));
    }
    composed(input, &a, coord)
}

/// The nodes no libtorch lowering is faithful to: tf_crop_and_resize and
/// keep_aspect_ratio_policy (except in the idiomatic port, which ignores
/// roi and every other convention attribute), and linear/cubic on integers.
fn refuse(ctx: &OpCtx, input: &Tensor, a: &ResizeAttrs) -> OpResult<()> {
    if !ctx.options.port && a.coord == CoordMode::TfCropAndResize {
        return Err(ctx.unsupported(
            "coordinate_transformation_mode",
            "tf_crop_and_resize (roi, extrapolation_value) is not lowered",
        ));
    }
    if !ctx.options.port && !a.scales_given && a.keep_aspect != KeepAspect::Stretch {
        return Err(ctx.unsupported(
            "keep_aspect_ratio_policy",
            format!("`{}`", a.keep_aspect.name()),
        ));
    }
    if a.mode != Mode::Nearest && !is_float(input)? {
        return Err(ctx.unsupported(
            "mode",
            format!("{} on {:?} input", a.mode.name(), input.f_kind()?),
        ));
    }
    Ok(())
}

/// The axes whose length or scale changes.
fn resized(a: &ResizeAttrs) -> impl Iterator<Item = &AxisPlan> {
    a.plan
        .iter()
        .filter(|p| p.len_out != p.len_in || p.scale != 1.0)
}

/// The coordinate mode with the spec's equivalences applied over the resized axes.
fn effective_coord(a: &ResizeAttrs) -> CoordMode {
    match a.coord {
        CoordMode::PytorchHalfPixel if resized(a).all(|p| p.len_out > 1) => CoordMode::HalfPixel,
        // adjustment = out / (scale · in) = 1 makes it half_pixel.
        CoordMode::HalfPixelSymmetric
            if resized(a).all(|p| p.len_out as f64 == p.scale * p.len_in as f64) =>
        {
            CoordMode::HalfPixel
        }
        c => c,
    }
}

/// Resizing touches only the spatial axes of an (N, C, 1-3 spatial) tensor.
fn spatial_only(a: &ResizeAttrs) -> bool {
    let p = &a.plan;
    (3..=5).contains(&p.len()) && p[..2].iter().all(|p| p.len_out == p.len_in)
}

/// The output size of the spatial axes, as torch takes it.
fn spatial_size(a: &ResizeAttrs) -> Vec<i64> {
    a.plan[2..].iter().map(|p| p.len_out as i64).collect()
}

/// Torch scale arguments for the spatial axes (None = torch uses in/out).
fn torch_scales(a: &ResizeAttrs) -> Vec<Option<f64>> {
    a.plan[2..]
        .iter()
        .map(|p| a.scales_given.then_some(p.scale))
        .collect()
}

/// The idiomatic port (issue 5, `EngineOptions::port`): what a typical port
/// writes, `F.interpolate(x, size=<the ONNX output size>, mode=...)` with its
/// defaults (align_corners=False, no antialias, scales recomputed by torch
/// as in/out), whatever the node's coordinate mode, nearest rounding, cubic
/// coefficient, exclude_outside, antialias or roi.
fn port(ctx: &OpCtx, input: &Tensor, a: &ResizeAttrs) -> OpResult<Lowered<Tensor>> {
    let rank = a.rank();
    if !(3..=5).contains(&rank) {
        return Err(ctx.unsupported(
            "mode",
            format!("idiomatic port: F.interpolate takes 3-D to 5-D input, not rank {rank}"),
        ));
    }
    if !spatial_only(a) {
        return Err(ctx.unsupported(
            "scales",
            format!(
                "idiomatic port: F.interpolate resizes spatial axes only ({:?} -> {:?})",
                a.len_in(),
                a.len_out()
            ),
        ));
    }
    let n = rank - 2;
    let size = spatial_size(a);
    let (y, op) = match a.mode {
        Mode::Nearest => {
            let y = match n {
                1 => input.f_upsample_nearest1d(&size, None)?,
                2 => input.f_upsample_nearest2d(&size, None, None)?,
                _ => input.f_upsample_nearest3d(&size, None, None, None)?,
            };
            (y, format!("upsample_nearest{n}d"))
        }
        Mode::Linear => {
            let y = match n {
                1 => input.f_upsample_linear1d(&size, false, None)?,
                2 => input.f_upsample_bilinear2d(&size, false, None, None)?,
                _ => input.f_upsample_trilinear3d(&size, false, None, None, None)?,
            };
            let op = [
                "upsample_linear1d",
                "upsample_bilinear2d",
                "upsample_trilinear3d",
            ][n - 1];
            (y, format!("{op}(align_corners=false)"))
        }
        Mode::Cubic => {
            if n != 2 {
                return Err(ctx.unsupported(
                    "mode",
                    format!(
                        "idiomatic port: F.interpolate bicubic takes 4-D input, not rank {rank}"
                    ),
                ));
            }
            let y = input.f_upsample_bicubic2d(&size, false, None, None)?;
            (y, "upsample_bicubic2d(align_corners=false)".to_string())
        }
    };
    Ok(Lowered::one(
        y,
        How::native(format!("{op} (idiomatic port)")),
    ))
}

/// The one torch op that equals this plan, if any.
fn native(input: &Tensor, a: &ResizeAttrs, coord: CoordMode) -> OpResult<Option<Lowered<Tensor>>> {
    if !spatial_only(a) {
        return Ok(None);
    }
    let (size, sc) = (spatial_size(a), torch_scales(a));
    match a.mode {
        Mode::Nearest => native_nearest(input, a, coord, &size, &sc),
        Mode::Linear => native_linear(input, a, coord, &size, &sc),
        Mode::Cubic => native_cubic(input, a, coord, &size, &sc),
    }
}

/// `align_corners` for torch's linear and cubic ops, if `coord` has a torch spelling.
fn torch_align_corners(coord: CoordMode) -> Option<bool> {
    match coord {
        CoordMode::HalfPixel => Some(false),
        CoordMode::AlignCorners => Some(true),
        _ => None,
    }
}

/// Nearest: asymmetric + floor is `upsample_nearest`, half_pixel +
/// round_prefer_ceil (or tf_half_pixel_for_nn + floor) `_upsample_nearest_exact`.
fn native_nearest(
    input: &Tensor,
    a: &ResizeAttrs,
    coord: CoordMode,
    size: &[i64],
    sc: &[Option<f64>],
) -> OpResult<Option<Lowered<Tensor>>> {
    let n = size.len();
    let all = |m: NearestMode| a.plan[2..].iter().all(|p| p.nearest == m);
    let (y, name) = if coord == CoordMode::Asymmetric && all(NearestMode::Floor) {
        let y = match n {
            1 => input.f_upsample_nearest1d(size, sc[0])?,
            2 => input.f_upsample_nearest2d(size, sc[0], sc[1])?,
            _ => input.f_upsample_nearest3d(size, sc[0], sc[1], sc[2])?,
        };
        (y, format!("upsample_nearest{n}d"))
    } else if (coord == CoordMode::HalfPixel && all(NearestMode::RoundPreferCeil))
        || (coord == CoordMode::TfHalfPixelForNn && all(NearestMode::Floor))
    {
        let y = match n {
            1 => input.f_internal_upsample_nearest_exact1d(size, sc[0])?,
            2 => input.f_internal_upsample_nearest_exact2d(size, sc[0], sc[1])?,
            _ => input.f_internal_upsample_nearest_exact3d(size, sc[0], sc[1], sc[2])?,
        };
        (y, format!("_upsample_nearest_exact{n}d"))
    } else {
        return Ok(None);
    };
    Ok(Some(Lowered::one(y, How::native(name))))
}

/// Linear: half_pixel / align_corners are `upsample_{linear1d,bilinear2d,
/// trilinear3d}`; an antialiased 2-D downscale with exclude_outside is
/// `_upsample_bilinear2d_aa`.
fn native_linear(
    input: &Tensor,
    a: &ResizeAttrs,
    coord: CoordMode,
    size: &[i64],
    sc: &[Option<f64>],
) -> OpResult<Option<Lowered<Tensor>>> {
    let Some(ac) = torch_align_corners(coord) else {
        return Ok(None);
    };
    let n = size.len();
    if a.antialias_applies() {
        if n != 2 || ac || !a.exclude_outside {
            return Ok(None);
        }
        let y = input.f_internal_upsample_bilinear2d_aa(size, false, sc[0], sc[1])?;
        let how = How::native("_upsample_bilinear2d_aa(align_corners=false)");
        return Ok(Some(Lowered::one(y, how)));
    }
    let y = match n {
        1 => input.f_upsample_linear1d(size, ac, sc[0])?,
        2 => input.f_upsample_bilinear2d(size, ac, sc[0], sc[1])?,
        _ => input.f_upsample_trilinear3d(size, ac, sc[0], sc[1], sc[2])?,
    };
    let op = [
        "upsample_linear1d",
        "upsample_bilinear2d",
        "upsample_trilinear3d",
    ][n - 1];
    let how = How::native(format!("{op}(align_corners={ac})"));
    Ok(Some(Lowered::one(y, how)))
}

/// Cubic 2-D: half_pixel / align_corners with a = -0.75 and no
/// exclude_outside is `upsample_bicubic2d`; an antialiased downscale with
/// a = -0.5 and exclude_outside is `_upsample_bicubic2d_aa`.
fn native_cubic(
    input: &Tensor,
    a: &ResizeAttrs,
    coord: CoordMode,
    size: &[i64],
    sc: &[Option<f64>],
) -> OpResult<Option<Lowered<Tensor>>> {
    let Some(ac) = torch_align_corners(coord) else {
        return Ok(None);
    };
    if size.len() != 2 {
        return Ok(None);
    }
    if a.antialias_applies() {
        if ac || !a.exclude_outside || a.cubic_coeff_a != -0.5 {
            return Ok(None);
        }
        let y = input.f_internal_upsample_bicubic2d_aa(size, false, sc[0], sc[1])?;
        let how = How::native("_upsample_bicubic2d_aa(align_corners=false)");
        return Ok(Some(Lowered::one(y, how)));
    }
    if a.cubic_coeff_a != -0.75 || a.exclude_outside {
        return Ok(None);
    }
    let y = input.f_upsample_bicubic2d(size, ac, sc[0], sc[1])?;
    let how = How::native(format!("upsample_bicubic2d(align_corners={ac})"));
    Ok(Some(Lowered::one(y, how)))
}

/// Axis by axis: gather the host-computed source indices, weight and sum the taps.
fn composed(input: &Tensor, a: &ResizeAttrs, coord: CoordMode) -> OpResult<Lowered<Tensor>> {
    let (kind, device) = (input.f_kind()?, input.device());
    let mut y = input.shallow_clone();
    for axis in 0..a.rank() {
        let taps = a.taps(coord, axis);
        let identity = a.plan[axis].len_out == a.plan[axis].len_in
            && taps.iter().enumerate().all(|(o, t)| {
                t.iter()
                    .all(|&(j, w)| if j == o as i64 { w == 1.0 } else { w == 0.0 })
                    && t.iter().any(|&(j, _)| j == o as i64)
            });
        if identity {
            continue;
        }
        let n_taps = taps.first().map_or(1, Vec::len);
        let mut acc: Option<Tensor> = None;
        for t in 0..n_taps {
            let idx: Vec<i64> = taps.iter().map(|v| v[t].0).collect();
            let idx = Tensor::f_from_slice(&idx)?.f_to_device(device)?;
            let picked = y.f_index_select(axis as i64, &idx)?;
            let term = if a.mode == Mode::Nearest {
                picked
            } else {
                let w: Vec<f64> = taps.iter().map(|v| v[t].1).collect();
                let mut shape = vec![1i64; a.rank()];
                shape[axis] = w.len() as i64;
                let zero_weight = w.contains(&0.0);
                let w = Tensor::f_from_slice(&w)?
                    .f_to_kind(kind)?
                    .f_to_device(device)?
                    .f_reshape(shape.as_slice())?;
                let term = picked.f_mul(&w)?;
                if zero_weight {
                    // A zero-weight tap does not enter, as in the reference
                    // (0·Inf would make an exactly sampled pixel NaN).
                    term.f_where_self(&w.f_ne(0.0)?, &term.f_zeros_like()?)?
                } else {
                    term
                }
            };
            acc = Some(match acc {
                None => term,
                Some(s) => s.f_add(&term)?,
            });
        }
        y = acc.expect("at least one tap");
    }
    let how = match a.mode {
        Mode::Nearest => format!(
            "index_select (host {}/{} indices)",
            coord.name(),
            a.nearest_mode.map_or("simple", NearestMode::name)
        ),
        m => format!(
            "index_select, mul, add (host {} {} weights)",
            coord.name(),
            m.name()
        ),
    };
    Ok(Lowered::one(y, How::composed(how)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::backend::interp::OpError;
    use crate::graph::Attr;

    fn s(v: &str) -> Attr {
        Attr::String(v.into())
    }

    fn resize_1x1x1xw(
        w_in: usize,
        w_out: i64,
        attrs: Vec<(&str, Attr)>,
        opset: u32,
    ) -> (Vec<f64>, String) {
        let x = f32s(
            &[1, 1, 1, w_in as i64],
            &(0..w_in).map(|v| v as f32).collect::<Vec<_>>(),
        );
        let sizes = i64s(&[4], &[1, 1, 1, w_out]);
        let l = run(
            &node("Resize", 4, 1, attrs),
            opset,
            &[Some(&x), None, None, Some(&sizes)],
        )
        .unwrap();
        (vals(l.outputs[0].as_ref().unwrap()), l.how.label())
    }

    /// Composed linear leaves zero-weight taps out, as the reference does:
    /// a sample exactly on a pixel next to an Inf is that pixel, not
    /// 0·Inf = NaN (Upsample-9, asymmetric: x/2).
    #[test]
    fn composed_linear_leaves_zero_weight_taps_out() {
        let x = f32s(&[1, 1, 1, 4], &[1.0, f32::INFINITY, 2.0, 3.0]);
        let scales = f32s(&[4], &[1.0, 1.0, 1.0, 2.0]);
        let n = node("Upsample", 2, 1, vec![("mode", s("linear"))]);
        let l = run(&n, 9, &[Some(&x), Some(&scales)]).unwrap();
        let inf = f64::INFINITY;
        let want = vec![1.0, inf, inf, inf, 2.0, 2.5, 3.0, 3.0];
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), want);
        assert!(l.how.label().starts_with("composed"), "{}", l.how.label());
    }

    #[test]
    fn nearest_floor_asymmetric_6_to_2_picks_0_and_3() {
        let (v, how) = resize_1x1x1xw(
            6,
            2,
            vec![
                ("coordinate_transformation_mode", s("asymmetric")),
                ("nearest_mode", s("floor")),
            ],
            13,
        );
        assert_eq!(v, vec![0.0, 3.0]);
        assert_eq!(how, "native: upsample_nearest2d");
    }

    #[test]
    fn default_nearest_6_to_2_is_composed_and_picks_window_centres() {
        // half_pixel + round_prefer_floor: (0.5·3 - 0.5) = 1, (1.5·3 - 0.5) = 4.
        let (v, how) = resize_1x1x1xw(6, 2, vec![], 13);
        assert_eq!(v, vec![1.0, 4.0]);
        assert!(how.starts_with("composed: index_select"), "{how}");
    }

    #[test]
    fn nearest_exact_and_linear_are_native() {
        let (v, how) = resize_1x1x1xw(4, 2, vec![("nearest_mode", s("round_prefer_ceil"))], 13);
        assert_eq!(v, vec![1.0, 3.0]);
        assert_eq!(how, "native: _upsample_nearest_exact2d");
        let (v, how) = resize_1x1x1xw(2, 4, vec![("mode", s("linear"))], 13);
        assert_eq!(v, vec![0.0, 0.25, 0.75, 1.0]);
        assert_eq!(how, "native: upsample_bilinear2d(align_corners=false)");
    }

    #[test]
    fn composed_linear_matches_native_linear() {
        // asymmetric linear is composed; check it against hand values: x/2 -> [0, .5, 1, 1].
        let (v, how) = resize_1x1x1xw(
            2,
            4,
            vec![
                ("mode", s("linear")),
                ("coordinate_transformation_mode", s("asymmetric")),
            ],
            13,
        );
        assert_eq!(v, vec![0.0, 0.5, 1.0, 1.0]);
        assert!(how.starts_with("composed"), "{how}");
    }

    #[test]
    fn resize10_nearest_downscale_rounds_up() {
        // ONNX test resize_downsample_scales_nearest (opset 10): [[1,2,3,4],[5,6,7,8]] x0.6 -> [[1,3]].
        let x = f32s(&[1, 1, 2, 4], &[1., 2., 3., 4., 5., 6., 7., 8.]);
        let sc = f32s(&[4], &[1.0, 1.0, 0.6, 0.6]);
        let l = run(&node("Resize", 2, 1, vec![]), 10, &[Some(&x), Some(&sc)]).unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![1.0, 3.0]);
    }

    #[test]
    fn port_lowers_any_convention_to_interpolate_defaults() {
        use crate::backend::interp::OpCtx;
        use crate::options::{Device, EngineOptions};
        let opts = EngineOptions {
            port: true,
            ..EngineOptions::default()
        };
        let x = f32s(&[1, 1, 1, 2], &[0., 4.]);
        let sizes = i64s(&[4], &[1, 1, 1, 4]);
        let n = node(
            "Resize",
            4,
            1,
            vec![
                ("mode", s("linear")),
                ("coordinate_transformation_mode", s("align_corners")),
            ],
        );
        let ctx = OpCtx {
            node: &n,
            opset: 13,
            device: Device::Cpu,
            options: &opts,
            scope: &(),
        };
        let l = super::resize(&ctx, &[Some(&x), None, None, Some(&sizes)]).unwrap();
        // half_pixel (torch's align_corners=False), not align_corners [0, 4/3, 8/3, 4].
        assert_eq!(
            vals(l.outputs[0].as_ref().unwrap()),
            vec![0.0, 1.0, 3.0, 4.0]
        );
        assert_eq!(
            l.how.label(),
            "native: upsample_bilinear2d(align_corners=false) (idiomatic port)"
        );
        // roi is ignored rather than unsupported.
        let n = node(
            "Resize",
            4,
            1,
            vec![("coordinate_transformation_mode", s("tf_crop_and_resize"))],
        );
        let ctx = OpCtx { node: &n, ..ctx };
        let roi = f32s(&[8], &[0., 0., 0., 0.5, 1., 1., 1., 1.]);
        let l = super::resize(&ctx, &[Some(&x), Some(&roi), None, Some(&sizes)]).unwrap();
        assert_eq!(
            vals(l.outputs[0].as_ref().unwrap()),
            vec![0.0, 0.0, 4.0, 4.0]
        );
        assert_eq!(l.how.label(), "native: upsample_nearest2d (idiomatic port)");
    }

    /// The composed lowering maps coordinates exactly as the reference does,
    /// align_corners with the fractional length in·scale included: on
    /// 5 × 1.5 → 7 and the tie-fragile 6 × 0.33333334 → 2 it used to divide
    /// by the integer output length and pick other pixels (max abs 0.24 and
    /// 0.4 on a ramp) or weights (cubic, 0.08).
    #[test]
    fn composed_align_corners_agrees_with_the_reference() {
        use crate::backend::reference::{run_op as reference, util};
        let modes: Vec<Vec<(&str, Attr)>> = vec![
            vec![("nearest_mode", s("round_prefer_floor"))],
            vec![("nearest_mode", s("round_prefer_ceil"))],
            vec![("nearest_mode", s("floor"))],
            vec![("nearest_mode", s("ceil"))],
            vec![("mode", s("cubic")), ("cubic_coeff_a", Attr::Float(-0.5))],
            vec![("mode", s("cubic")), ("exclude_outside", Attr::Int(1))],
        ];
        // (shape, scales): 2-D spatial, and rank 2 (composed in every mode).
        let geometries: [(&[usize], [f32; 2]); 4] = [
            (&[1, 1, 5, 5], [1.5, 1.5]),
            (&[1, 1, 6, 6], [0.333_333_34, 0.333_333_34]),
            (&[5, 5], [1.5, 1.5]),
            (&[6, 6], [0.333_333_34, 1.0]),
        ];
        let linear = vec![("mode", s("linear"))];
        for attrs in modes.iter().chain([&linear]) {
            for (shape, sc) in geometries {
                let rank = shape.len();
                if attrs.len() == 1 && attrs[0].0 == "mode" && rank == 4 {
                    continue; // linear 4-D is torch's native align_corners op
                }
                let mut all = vec![("coordinate_transformation_mode", s("align_corners"))];
                all.extend(attrs.iter().cloned());
                let n = node("Resize", 3, 1, all);
                let len: usize = shape.iter().product();
                let v: Vec<f64> = (0..len).map(|k| k as f64 / len as f64).collect();
                let scales: Vec<f32> = [vec![1.0; rank - 2], sc.to_vec()].concat();
                let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
                let x = f32s(&dims, &v.iter().map(|&v| v as f32).collect::<Vec<_>>());
                let xs = f32s(&[rank as i64], &scales);
                let l = run(&n, 19, &[Some(&x), None, Some(&xs)]).unwrap();
                let got = vals(l.outputs[0].as_ref().unwrap());
                let label = l.how.label();
                assert!(label.starts_with("composed"), "{label}");
                let rs = util::f(
                    &[rank],
                    &scales.iter().map(|&v| v as f64).collect::<Vec<_>>(),
                );
                let want = reference(&n, 19, &[Some(&util::f(shape, &v)), None, Some(&rs)])
                    .unwrap()[0]
                    .clone()
                    .unwrap()
                    .floats()
                    .unwrap();
                assert_eq!(got.len(), want.len(), "{label} {shape:?}");
                let worst = got
                    .iter()
                    .zip(&want)
                    .map(|(g, &w)| (g - (w as f32) as f64).abs())
                    .fold(0.0, f64::max);
                let bound = if label.contains("cubic") || label.contains("linear") {
                    1e-6
                } else {
                    0.0
                };
                assert!(worst <= bound, "{label} {shape:?} {sc:?}: {worst}");
            }
        }
    }

    #[test]
    fn tf_crop_and_resize_is_unsupported_by_name() {
        let x = f32s(&[1, 1, 1, 2], &[0., 1.]);
        let sizes = i64s(&[4], &[1, 1, 1, 4]);
        let n = node(
            "Resize",
            4,
            1,
            vec![("coordinate_transformation_mode", s("tf_crop_and_resize"))],
        );
        let roi = f32s(&[8], &[0., 0., 0., 0., 1., 1., 1., 1.]);
        let e = run(&n, 13, &[Some(&x), Some(&roi), None, Some(&sizes)])
            .err()
            .unwrap();
        assert!(
            matches!(&e, OpError::Unsupported(m) if m.contains("coordinate_transformation_mode")),
            "{e:?}"
        );
    }

    #[test]
    fn nearest_ignores_antialias_as_the_spec_does() {
        // antialias applies to linear/cubic only: a nearest 6 -> 2 downscale
        // with antialias=1 is the plain default nearest [1, 4] (it used to be
        // refused as an unsupported antialiased downscale).
        let (v, how) = resize_1x1x1xw(6, 2, vec![("antialias", Attr::Int(1))], 19);
        assert_eq!(v, vec![1.0, 4.0]);
        assert!(how.starts_with("composed: index_select"), "{how}");
    }
}
