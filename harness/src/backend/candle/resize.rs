//! candle lowerings: Resize (opsets 10/11/13/18/19) and Upsample (7/9).
//!
//! candle has `upsample_nearest1d/2d` (nearest, asymmetric, floor, from
//! sizes: index = min(in-1, ⌊k·in/out⌋) in f64) and `upsample_bilinear2d`
//! (half_pixel or align_corners, from sizes or scales). Other conventions
//! are composed: source indices (and linear weights) are computed on the
//! host in f64 from the ONNX formulas and applied per axis with
//! `index_select` (+ a lerp for linear). Cubic and antialias have no candle
//! op and are unsupported.

use candle_core::Tensor;

use super::{host_floats, host_ints, index_tensor, keep_bool, Ce};
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpDef, OpRegistry, OpResult};
use crate::backend::resize_plan::{
    linear_taps, nearest_indices, sizes_plan, source_coord, Rounding,
};

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
        r.add(OpDef {
            op: "Resize",
            since,
            until,
            run: resize,
            spec,
            coverage,
        });
    }
    let spec = "https://onnx.ai/onnx/operators/onnx__Upsample.html";
    let coverage = cov![
        "nearest, integer scales on H/W" => Native("upsample_nearest2d"),
        "nearest, other scales" => Composed("index_select per axis"),
        "linear / bilinear (asymmetric)" => Composed("index_select, affine lerp per axis"),
    ];
    r.add(OpDef {
        op: "Upsample",
        since: 7,
        until: 8,
        run: upsample,
        spec,
        coverage,
    });
    r.add(OpDef {
        op: "Upsample",
        since: 9,
        until: 9,
        run: upsample,
        spec,
        coverage,
    });
}

/// Everything that decides a resize, after reading inputs and attributes.
struct Plan {
    mode: String,
    coord: String,
    nearest: String,
    /// Output length and scale (for coordinates) per axis.
    out: Vec<usize>,
    scale: Vec<f64>,
    /// Whether the scales came from the `scales` input (candle's
    /// `*_with_scale` ops follow 1/scale, the size ops in/out).
    from_scales: bool,
}

/// Composed nearest: one `index_select` per resized axis.
fn nearest_composed(x: &Tensor, p: &Plan) -> OpResult<Tensor> {
    let mut y = x.clone();
    for ax in 0..x.rank() {
        let len_in = x.dims()[ax];
        // Unrecognised nearest modes round as round_prefer_floor.
        let rounding = Rounding::parse(&p.nearest).unwrap_or(Rounding::RoundPreferFloor);
        let idx = nearest_indices(&p.coord, rounding, p.scale[ax], len_in, p.out[ax]);
        if idx.len() == len_in && idx.iter().enumerate().all(|(i, &v)| v == i as i64) {
            continue;
        }
        y = y
            .contiguous()
            .ce()?
            .index_select(&index_tensor(idx)?, ax)
            .ce()?;
    }
    Ok(keep_bool(x, y))
}

/// Composed n-linear: per axis, lerp between the two neighbours
/// (coordinates clamped to [0, in-1], as the spec's edge padding does).
fn linear_composed(x: &Tensor, p: &Plan) -> OpResult<Tensor> {
    let mut y = x.clone();
    for ax in 0..x.rank() {
        let len_in = x.dims()[ax];
        let len_out = p.out[ax];
        if len_in == len_out
            && p.coord != "tf_half_pixel_for_nn"
            && (p.scale[ax] - 1.0).abs() < f64::EPSILON
        {
            continue;
        }
        let mut i0 = Vec::with_capacity(len_out);
        let mut i1 = Vec::with_capacity(len_out);
        let mut w = Vec::with_capacity(len_out);
        for o in 0..len_out {
            let c = source_coord(
                &p.coord,
                o as f64,
                p.scale[ax],
                len_in as f64,
                len_out as f64,
            )
            .clamp(0.0, (len_in - 1) as f64);
            let (a, b, r) = linear_taps(c, len_in as i64);
            i0.push(a);
            i1.push(b);
            w.push(r);
        }
        let mut shape = vec![1; x.rank()];
        shape[ax] = len_out;
        let w = Tensor::from_vec(w, shape.as_slice(), x.device())
            .and_then(|t| t.to_dtype(x.dtype()))
            .ce()?;
        let a = y
            .contiguous()
            .ce()?
            .index_select(&index_tensor(i0)?, ax)
            .ce()?;
        let b = y
            .contiguous()
            .ce()?
            .index_select(&index_tensor(i1)?, ax)
            .ce()?;
        // a + (b - a)·w
        y = (&b - &a)
            .and_then(|d| d.broadcast_mul(&w))
            .and_then(|t| t + &a)
            .ce()?;
    }
    Ok(y)
}

/// The idiomatic port (issue 5, `EngineOptions::port`): what a typical port
/// writes, candle's `upsample_nearest2d(h, w)` / `upsample_bilinear2d(h, w,
/// false)` from the ONNX output size, whatever the node's coordinate mode,
/// nearest rounding, antialias or roi. Cubic has no candle op.
fn port(ctx: &OpCtx, x: &Tensor, p: &Plan) -> Out {
    let r = x.rank();
    let dims = x.dims();
    if p.mode == "cubic" {
        return Err(ctx.unsupported(
            "mode",
            "cubic: idiomatic port: candle has no bicubic interpolation",
        ));
    }
    if r < 3 || dims[0] != p.out[0] || dims[1] != p.out[1] {
        return Err(ctx.unsupported(
            "scales",
            format!(
                "idiomatic port: candle's upsample ops resize the spatial axes of N, C, ... input only ({dims:?} -> {:?})",
                p.out
            ),
        ));
    }
    if p.out[2..].contains(&0) {
        return Err(ctx.fail(format!("cannot resize to {:?}", p.out)));
    }
    let (y, op) = match (p.mode.as_str(), r) {
        ("nearest", 4) => (
            x.upsample_nearest2d(p.out[2], p.out[3]).ce()?,
            "upsample_nearest2d",
        ),
        ("nearest", 3) => (x.upsample_nearest1d(p.out[2]).ce()?, "upsample_nearest1d"),
        ("linear" | "bilinear", 4) => (
            x.upsample_bilinear2d(p.out[2], p.out[3], false).ce()?,
            "upsample_bilinear2d(align_corners=false)",
        ),
        (m, _) => {
            return Err(ctx.unsupported(
                "mode",
                format!("{m} on rank {r}: idiomatic port: candle has no such upsample op"),
            ))
        }
    };
    Ok(Lowered::one(
        keep_bool(x, y),
        How::native(format!("{op} (idiomatic port)")),
    ))
}

/// Runs the plan on candle's native op where one matches, else composed.
fn execute(ctx: &OpCtx, x: &Tensor, p: &Plan) -> Out {
    if ctx.options.port {
        return port(ctx, x, p);
    }
    let r = x.rank();
    let dims = x.dims();
    let lead_same = r >= 3 && dims[0] == p.out[0] && dims[1] == p.out[1];
    let exact = |ax: usize| p.out[ax] as f64 == dims[ax] as f64 * p.scale[ax];
    match p.mode.as_str() {
        "nearest" => {
            let asym_floor = p.coord == "asymmetric" && p.nearest == "floor";
            // candle picks ⌊k·in/out⌋; ONNX ⌊k/scale⌋: equal when out = in·scale exactly.
            let same_scale = !p.from_scales || (2..r).all(exact);
            if asym_floor && lead_same && same_scale && p.out[2..].iter().all(|&o| o > 0) {
                if r == 4 {
                    let y = x.upsample_nearest2d(p.out[2], p.out[3]).ce()?;
                    return Ok(Lowered::one(
                        keep_bool(x, y),
                        How::native("upsample_nearest2d"),
                    ));
                }
                if r == 3 {
                    let y = x.upsample_nearest1d(p.out[2]).ce()?;
                    return Ok(Lowered::one(
                        keep_bool(x, y),
                        How::native("upsample_nearest1d"),
                    ));
                }
            }
            Ok(Lowered::one(
                nearest_composed(x, p)?,
                How::composed("index_select per axis"),
            ))
        }
        "linear" | "bilinear" => {
            if r == 4 && lead_same && p.out[2] > 0 && p.out[3] > 0 {
                let half = p.coord == "half_pixel"
                    || (p.coord == "pytorch_half_pixel" && p.out[2] > 1 && p.out[3] > 1);
                if p.coord == "align_corners" {
                    let y = x.upsample_bilinear2d(p.out[2], p.out[3], true).ce()?;
                    return Ok(Lowered::one(
                        y,
                        How::native("upsample_bilinear2d(align_corners=true)"),
                    ));
                }
                if half && !p.from_scales {
                    let y = x.upsample_bilinear2d(p.out[2], p.out[3], false).ce()?;
                    return Ok(Lowered::one(
                        y,
                        How::native("upsample_bilinear2d(align_corners=false)"),
                    ));
                }
                let floor_out =
                    |ax: usize| p.out[ax] == (dims[ax] as f64 * p.scale[ax]).floor() as usize;
                if half && p.from_scales && floor_out(2) && floor_out(3) {
                    let y = x
                        .upsample_bilinear2d_with_scale(p.scale[2], p.scale[3], false)
                        .ce()?;
                    return Ok(Lowered::one(
                        y,
                        How::native("upsample_bilinear2d_with_scale"),
                    ));
                }
            }
            if !x.dtype().is_float() {
                return Err(ctx.unsupported("mode", "linear resize of an integer tensor"));
            }
            Ok(Lowered::one(
                linear_composed(x, p)?,
                How::composed("index_select, affine lerp per axis"),
            ))
        }
        "cubic" => Err(ctx.unsupported("mode", "cubic: candle has no bicubic interpolation")),
        other => Err(ctx.unsupported("mode", format!("unknown mode `{other}`"))),
    }
}

/// Output sizes and scales from `scales` (out = ⌊in·scale⌋).
fn from_scales(ctx: &OpCtx, dims: &[usize], scales: &[f64]) -> OpResult<(Vec<usize>, Vec<f64>)> {
    if scales.len() != dims.len() {
        return Err(ctx.fail(format!("{} scales for rank {}", scales.len(), dims.len())));
    }
    if scales.iter().any(|&s| s <= 0.0) {
        return Err(ctx.fail(format!("scales {scales:?} must be positive")));
    }
    let out = dims
        .iter()
        .zip(scales)
        .map(|(&d, &s)| (d as f64 * s).floor() as usize)
        .collect();
    Ok((out, scales.to_vec()))
}

/// Resize-10 (scales only, asymmetric), Resize-11/13 (roi, scales, sizes),
/// Resize-18/19 (axes, antialias, keep_aspect_ratio_policy, half_pixel_symmetric).
fn resize(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let dims = a.dims().to_vec();
    let r = dims.len();
    let mode = ctx.string("mode", "nearest")?;
    if ctx.opset == 10 {
        let scales = host_floats(ctx.input(x, 1)?)?;
        let (out, scale) = from_scales(ctx, &dims, &scales)?;
        // Resize-10 maps output x to x/scale; nearest takes the floor, as Upsample did.
        let p = Plan {
            mode,
            coord: "asymmetric".into(),
            nearest: "floor".into(),
            out,
            scale,
            from_scales: true,
        };
        return execute(ctx, a, &p);
    }
    let coord = ctx.string("coordinate_transformation_mode", "half_pixel")?;
    // The idiomatic port ignores roi (and every other convention attribute).
    if coord == "tf_crop_and_resize" && !ctx.options.port {
        return Err(ctx.unsupported(
            "coordinate_transformation_mode",
            "tf_crop_and_resize (roi) has no candle op",
        ));
    }
    let nearest = ctx.string("nearest_mode", "round_prefer_floor")?;
    let axes: Vec<usize> = match ctx.ints("axes")? {
        Some(v) => v
            .iter()
            .map(|&i| super::axis(i, r))
            .collect::<OpResult<_>>()?,
        None => (0..r).collect(),
    };
    let scales_in = x.get(2).copied().flatten().filter(|t| t.elem_count() > 0);
    let sizes_in = x.get(3).copied().flatten().filter(|t| t.elem_count() > 0);
    let (out, scale, from_scales) = match (scales_in, sizes_in) {
        (Some(s), None) => {
            let sub = host_floats(s)?;
            if sub.len() != axes.len() {
                return Err(ctx.fail(format!("{} scales for axes {axes:?}", sub.len())));
            }
            let mut full = vec![1.0; r];
            for (&ax, &v) in axes.iter().zip(&sub) {
                full[ax] = v;
            }
            let (o, s) = from_scales(ctx, &dims, &full)?;
            (o, s, true)
        }
        (None, Some(s)) => {
            let sub = host_ints(s)?;
            if sub.len() != axes.len() || sub.iter().any(|&v| v < 0) {
                return Err(ctx.fail(format!("sizes {sub:?} for axes {axes:?}")));
            }
            let policy = ctx.string("keep_aspect_ratio_policy", "stretch")?;
            let sizes: Vec<usize> = sub.iter().map(|&v| v as usize).collect();
            // Under keep_aspect_ratio_policy the spec maps coordinates with the
            // policy's scale, not out/in: treat it like a given scale.
            let (out, scale, policy_scale) =
                sizes_plan(&dims, &axes, &sizes, &policy).ok_or_else(|| {
                    ctx.unsupported("keep_aspect_ratio_policy", format!("unknown `{policy}`"))
                })?;
            (out, scale, policy_scale.is_some())
        }
        (Some(_), Some(_)) => return Err(ctx.fail("only one of scales and sizes may be given")),
        (None, None) => return Err(ctx.fail("one of scales and sizes is required")),
    };
    if ctx.int("antialias", 0)? != 0
        && mode != "nearest"
        && scale.iter().any(|&s| s < 1.0)
        && !ctx.options.port
    {
        return Err(ctx.unsupported(
            "antialias",
            "1 when downscaling: candle has no antialiased resize",
        ));
    }
    if dims.contains(&0) && out.iter().zip(&dims).any(|(&o, &d)| d == 0 && o > 0) {
        return Err(ctx.fail("cannot resize an empty axis to a non-empty one"));
    }
    execute(
        ctx,
        a,
        &Plan {
            mode,
            coord,
            nearest,
            out,
            scale,
            from_scales,
        },
    )
}

/// Upsample-7 (scales attribute) / Upsample-9 (scales input): asymmetric,
/// nearest takes the floor.
fn upsample(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let scales: Vec<f64> = if ctx.opset < 9 {
        ctx.floats("scales")?
            .ok_or_else(|| ctx.fail("attribute `scales` is required"))?
            .iter()
            .map(|&v| v as f64)
            .collect()
    } else {
        host_floats(ctx.input(x, 1)?)?
    };
    let (out, scale) = from_scales(ctx, a.dims(), &scales)?;
    let mode = ctx.string("mode", "nearest")?;
    let p = Plan {
        mode,
        coord: "asymmetric".into(),
        nearest: "floor".into(),
        out,
        scale,
        from_scales: true,
    };
    execute(ctx, a, &p)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    fn s(v: &str) -> Attr {
        Attr::String(v.into())
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
        use crate::backend::{Device, EngineOptions};
        let opts = EngineOptions {
            port: true,
            ..EngineOptions::default()
        };
        let x = f32t(&[1, 1, 1, 3], &[10.0, 20.0, 30.0]);
        let sizes = i64t(&[1, 1, 1, 5]);
        // The ONNX default picks [0, 0, 1, 2, 2]; the port floor(k·3/5) = [0, 0, 1, 1, 2].
        let n = node("Resize", 4, 1, vec![]);
        let ctx = OpCtx {
            node: &n,
            opset: 13,
            device: Device::Cpu,
            options: &opts,
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
