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
//! Every other convention is composed: the ONNX source indices (and linear or
//! cubic weights) are computed on the host in f64, axis by axis, and applied
//! with `index_select` (and `mul`/`add`) in libtorch.

use tch::Tensor;

use super::{dims, host_floats, host_ints, is_float, norm_axis, present};
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::backend::resize_plan::{
    cubic_taps, linear_taps, nearest_index, sizes_plan, source_coord, Rounding,
};

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
        upsample,
        spec!("Upsample"),
        cov!["nearest (asymmetric, floor)" => Label::Native("upsample_nearest{1,2,3}d"),
             "linear (asymmetric)" => Label::Composed("index_select, mul, add with host f64 weights")],
    );
}

#[derive(Debug)]
struct Plan {
    inp: Vec<i64>,
    out: Vec<i64>,
    /// The scale coordinates use: the given scale, or out/in with sizes.
    scale: Vec<f64>,
    scales_given: bool,
    mode: String,
    coord: String,
    /// round_prefer_floor | round_prefer_ceil | floor | ceil | simple (Resize-10/Upsample).
    nearest: String,
    a: f64,
    exclude: bool,
    antialias: bool,
}

/// Resize-10/11/13/18/19.
fn resize(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let inp = dims(input);
    let rank = inp.len();
    let mode = ctx.string("mode", "nearest")?;
    let (scales, sizes) = if ctx.opset < 11 {
        (Some(host_floats(ctx.input(x, 1)?)?), None)
    } else {
        (
            present(x, 2).map(host_floats).transpose()?,
            present(x, 3).map(host_ints).transpose()?,
        )
    };
    let (coord, nearest) = if ctx.opset < 11 {
        ("asymmetric".to_string(), "simple".to_string())
    } else {
        (
            ctx.string("coordinate_transformation_mode", "half_pixel")?,
            ctx.string("nearest_mode", "round_prefer_floor")?,
        )
    };
    // The idiomatic port ignores roi (and every other convention attribute).
    if coord == "tf_crop_and_resize" && !ctx.options.port {
        return Err(ctx.unsupported(
            "coordinate_transformation_mode",
            "tf_crop_and_resize (roi, extrapolation_value) is not lowered",
        ));
    }
    let axes: Vec<usize> = match ctx.ints("axes")? {
        Some(a) if ctx.opset >= 18 => a
            .iter()
            .map(|&v| norm_axis(ctx, v, rank).map(|v| v as usize))
            .collect::<OpResult<_>>()?,
        _ => (0..rank).collect(),
    };
    let (mut out, mut scale) = (inp.clone(), vec![1.0; rank]);
    let scales_given = sizes.is_none();
    if let Some(sz) = sizes {
        if sz.len() != axes.len() {
            return Err(ctx.fail(format!(
                "sizes has {} values for {} axes",
                sz.len(),
                axes.len()
            )));
        }
        let policy = ctx.string("keep_aspect_ratio_policy", "stretch")?;
        if policy != "stretch" && !ctx.options.port {
            return Err(ctx.unsupported("keep_aspect_ratio_policy", format!("`{policy}`")));
        }
        if sz.iter().any(|&v| v < 0) {
            return Err(ctx.fail(format!("sizes {sz:?} must not be negative")));
        }
        // The port only needs the output size the node produces (spec:
        // round(in · scale) under a policy), which sizes_plan computes.
        let dims: Vec<usize> = inp.iter().map(|&d| d as usize).collect();
        let sizes: Vec<usize> = sz.iter().map(|&v| v as usize).collect();
        let (o, s, _) = sizes_plan(&dims, &axes, &sizes, &policy)
            .ok_or_else(|| ctx.unsupported("keep_aspect_ratio_policy", format!("`{policy}`")))?;
        out = o.into_iter().map(|v| v as i64).collect();
        scale = s;
    } else {
        let sc = scales.ok_or_else(|| ctx.fail("Resize needs scales or sizes"))?;
        if sc.len() != axes.len() {
            return Err(ctx.fail(format!(
                "scales has {} values for {} axes",
                sc.len(),
                axes.len()
            )));
        }
        for (i, &a) in axes.iter().enumerate() {
            if sc[i] <= 0.0 {
                return Err(ctx.fail(format!("scale {} must be positive", sc[i])));
            }
            scale[a] = sc[i];
            // Spec: floor(in · scale), with the f32 scale widened exactly to f64.
            out[a] = (inp[a] as f64 * sc[i]).floor() as i64;
        }
    }
    let plan = Plan {
        inp,
        out,
        scale,
        scales_given,
        mode,
        coord,
        nearest,
        a: ctx.float("cubic_coeff_a", -0.75)? as f64,
        exclude: ctx.int("exclude_outside", 0)? != 0,
        antialias: ctx.opset >= 18 && ctx.int("antialias", 0)? != 0,
    };
    lower(ctx, input, plan)
}

/// Upsample-7 (scales attribute) / -9 (scales input): asymmetric coordinates.
fn upsample(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let inp = dims(input);
    let scale: Vec<f64> = if ctx.opset < 9 {
        ctx.floats("scales")?
            .ok_or_else(|| ctx.fail("scales is required"))?
            .iter()
            .map(|&v| v as f64)
            .collect()
    } else {
        host_floats(ctx.input(x, 1)?)?
    };
    if scale.len() != inp.len() {
        return Err(ctx.fail(format!(
            "scales has {} values for rank {}",
            scale.len(),
            inp.len()
        )));
    }
    let mode = match ctx.string("mode", "nearest")?.as_str() {
        "nearest" => "nearest",
        "linear" | "bilinear" | "trilinear" => "linear",
        other => return Err(ctx.unsupported("mode", format!("`{other}`"))),
    };
    let out = inp
        .iter()
        .zip(&scale)
        .map(|(&i, &s)| (i as f64 * s).floor() as i64)
        .collect();
    let plan = Plan {
        inp,
        out,
        scale,
        scales_given: true,
        mode: mode.into(),
        coord: "asymmetric".into(),
        nearest: "simple".into(),
        a: -0.75,
        exclude: false,
        antialias: false,
    };
    lower(ctx, input, plan)
}

impl Plan {
    fn rank(&self) -> usize {
        self.inp.len()
    }

    /// The coordinate mode with the spec's equivalences applied over the resized axes.
    fn effective_coord(&self) -> String {
        let resized =
            || (0..self.rank()).filter(|&i| self.out[i] != self.inp[i] || self.scale[i] != 1.0);
        match self.coord.as_str() {
            "pytorch_half_pixel" if resized().all(|i| self.out[i] > 1) => "half_pixel".into(),
            // adjustment = out / (scale · in) = 1 makes it half_pixel.
            "half_pixel_symmetric"
                if resized().all(|i| self.out[i] as f64 == self.scale[i] * self.inp[i] as f64) =>
            {
                "half_pixel".into()
            }
            c => c.into(),
        }
    }

    /// The nearest rounding on axis `i` (Resize-10/Upsample "simple": floor when upscaling, ceil when downscaling).
    fn nearest_on(&self, i: usize) -> &str {
        match self.nearest.as_str() {
            "simple" if self.scale[i] < 1.0 => "ceil",
            "simple" => "floor",
            m => m,
        }
    }

    /// Resizing touches only the spatial axes of an (N, C, 1-3 spatial) tensor.
    fn spatial_only(&self) -> bool {
        (3..=5).contains(&self.rank()) && self.out[0] == self.inp[0] && self.out[1] == self.inp[1]
    }

    /// Does antialiasing change anything (ONNX applies it only when downscaling)?
    fn aa_matters(&self) -> bool {
        self.antialias && (0..self.rank()).any(|i| self.scale[i] < 1.0)
    }

    /// Per-output-index taps (indices, weights) on axis `i`, in f64.
    fn taps(&self, coord: &str, i: usize) -> Vec<Vec<(i64, f64)>> {
        let (s, len_in, len_out) = (self.scale[i], self.inp[i], self.out[i]);
        // Unrecognised nearest modes round half away from zero, which after
        // clamping to the axis is round_prefer_ceil.
        let rounding = Rounding::parse(self.nearest_on(i)).unwrap_or(Rounding::RoundPreferCeil);
        (0..len_out)
            .map(|o| {
                let xo = source_coord(coord, o as f64, s, len_in as f64, len_out as f64);
                match self.mode.as_str() {
                    "nearest" => vec![(nearest_index(xo, rounding, len_in), 1.0)],
                    "linear" => {
                        let (i0, i1, r) = linear_taps(xo, len_in);
                        vec![(i0, 1.0 - r), (i1, r)]
                    }
                    _ => cubic_taps(xo, self.a, self.exclude, len_in),
                }
            })
            .collect()
    }

    /// Torch scale arguments for the spatial axes (None = torch uses in/out).
    fn torch_scales(&self) -> Vec<Option<f64>> {
        (2..self.rank())
            .map(|i| {
                if self.scales_given {
                    Some(self.scale[i])
                } else {
                    None
                }
            })
            .collect()
    }
}

fn lower(ctx: &OpCtx, input: &Tensor, plan: Plan) -> OpResult<Lowered<Tensor>> {
    if plan.out.iter().any(|&o| o < 0)
        || plan
            .inp
            .iter()
            .zip(&plan.out)
            .any(|(&i, &o)| i == 0 && o > 0)
    {
        return Err(ctx.fail(format!("cannot resize {:?} to {:?}", plan.inp, plan.out)));
    }
    if !matches!(plan.mode.as_str(), "nearest" | "linear" | "cubic") {
        return Err(ctx.unsupported("mode", format!("`{}`", plan.mode)));
    }
    if plan.mode != "nearest" && !is_float(input)? {
        return Err(ctx.unsupported(
            "mode",
            format!("{} on {:?} input", plan.mode, input.f_kind()?),
        ));
    }
    if ctx.options.port {
        return port(ctx, input, &plan);
    }
    let coord = plan.effective_coord();
    if let Some(l) = native(input, &plan, &coord)? {
        return Ok(l);
    }
    if plan.aa_matters() {
        return Err(ctx.unsupported(
            "antialias",
            format!(
                "{} {} downscale with a={} exclude_outside={} has no torch equivalent",
                plan.mode, plan.coord, plan.a, plan.exclude as i32
            ),
        ));
    }
    composed(input, &plan, &coord)
}

/// The idiomatic port (issue 5, `EngineOptions::port`): what a typical port
/// writes, `F.interpolate(x, size=<the ONNX output size>, mode=...)` with its
/// defaults (align_corners=False, no antialias, scales recomputed by torch
/// as in/out), whatever the node's coordinate mode, nearest rounding, cubic
/// coefficient, exclude_outside, antialias or roi.
fn port(ctx: &OpCtx, input: &Tensor, p: &Plan) -> OpResult<Lowered<Tensor>> {
    let rank = p.rank();
    if !(3..=5).contains(&rank) {
        return Err(ctx.unsupported(
            "mode",
            format!("idiomatic port: F.interpolate takes 3-D to 5-D input, not rank {rank}"),
        ));
    }
    if !p.spatial_only() {
        return Err(ctx.unsupported(
            "scales",
            format!(
                "idiomatic port: F.interpolate resizes spatial axes only ({:?} -> {:?})",
                p.inp, p.out
            ),
        ));
    }
    let n = rank - 2;
    let size: Vec<i64> = p.out[2..].to_vec();
    let (y, op) = match p.mode.as_str() {
        "nearest" => {
            let y = match n {
                1 => input.f_upsample_nearest1d(&size, None)?,
                2 => input.f_upsample_nearest2d(&size, None, None)?,
                _ => input.f_upsample_nearest3d(&size, None, None, None)?,
            };
            (y, format!("upsample_nearest{n}d"))
        }
        "linear" => {
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
        _ => {
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
fn native(input: &Tensor, p: &Plan, coord: &str) -> OpResult<Option<Lowered<Tensor>>> {
    if !p.spatial_only() {
        return Ok(None);
    }
    let n = p.rank() - 2;
    let size: Vec<i64> = p.out[2..].to_vec();
    let sc = p.torch_scales();
    let sp = 2..p.rank();
    let (y, name) = match p.mode.as_str() {
        "nearest" => {
            let all = |m: &str| sp.clone().all(|i| p.nearest_on(i) == m);
            if coord == "asymmetric" && all("floor") {
                let y = match n {
                    1 => input.f_upsample_nearest1d(&size, sc[0])?,
                    2 => input.f_upsample_nearest2d(&size, sc[0], sc[1])?,
                    _ => input.f_upsample_nearest3d(&size, sc[0], sc[1], sc[2])?,
                };
                (y, format!("upsample_nearest{n}d"))
            } else if (coord == "half_pixel" && all("round_prefer_ceil"))
                || (coord == "tf_half_pixel_for_nn" && all("floor"))
            {
                let y = match n {
                    1 => input.f_internal_upsample_nearest_exact1d(&size, sc[0])?,
                    2 => input.f_internal_upsample_nearest_exact2d(&size, sc[0], sc[1])?,
                    _ => input.f_internal_upsample_nearest_exact3d(&size, sc[0], sc[1], sc[2])?,
                };
                (y, format!("_upsample_nearest_exact{n}d"))
            } else {
                return Ok(None);
            }
        }
        "linear" => {
            let ac = match coord {
                "half_pixel" => false,
                "align_corners" => true,
                _ => return Ok(None),
            };
            if p.aa_matters() {
                if n != 2 || ac || !p.exclude {
                    return Ok(None);
                }
                let y = input.f_internal_upsample_bilinear2d_aa(&size, false, sc[0], sc[1])?;
                return Ok(Some(Lowered::one(
                    y,
                    How::native("_upsample_bilinear2d_aa(align_corners=false)"),
                )));
            }
            let y = match n {
                1 => input.f_upsample_linear1d(&size, ac, sc[0])?,
                2 => input.f_upsample_bilinear2d(&size, ac, sc[0], sc[1])?,
                _ => input.f_upsample_trilinear3d(&size, ac, sc[0], sc[1], sc[2])?,
            };
            let op = [
                "upsample_linear1d",
                "upsample_bilinear2d",
                "upsample_trilinear3d",
            ][n - 1];
            (y, format!("{op}(align_corners={ac})"))
        }
        _ => {
            let ac = match coord {
                "half_pixel" => false,
                "align_corners" => true,
                _ => return Ok(None),
            };
            if n != 2 {
                return Ok(None);
            }
            if p.aa_matters() {
                if ac || !p.exclude || p.a != -0.5 {
                    return Ok(None);
                }
                let y = input.f_internal_upsample_bicubic2d_aa(&size, false, sc[0], sc[1])?;
                return Ok(Some(Lowered::one(
                    y,
                    How::native("_upsample_bicubic2d_aa(align_corners=false)"),
                )));
            }
            if p.a != -0.75 || p.exclude {
                return Ok(None);
            }
            let y = input.f_upsample_bicubic2d(&size, ac, sc[0], sc[1])?;
            (y, format!("upsample_bicubic2d(align_corners={ac})"))
        }
    };
    Ok(Some(Lowered::one(y, How::native(name))))
}

/// Axis by axis: gather the host-computed source indices, weight and sum the taps.
fn composed(input: &Tensor, p: &Plan, coord: &str) -> OpResult<Lowered<Tensor>> {
    let (kind, device) = (input.f_kind()?, input.device());
    let mut y = input.shallow_clone();
    for axis in 0..p.rank() {
        let taps = p.taps(coord, axis);
        let identity = p.out[axis] == p.inp[axis]
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
            let term = if p.mode == "nearest" {
                picked
            } else {
                let w: Vec<f64> = taps.iter().map(|v| v[t].1).collect();
                let mut shape = vec![1i64; p.rank()];
                shape[axis] = w.len() as i64;
                let w = Tensor::f_from_slice(&w)?
                    .f_to_kind(kind)?
                    .f_to_device(device)?
                    .f_reshape(shape.as_slice())?;
                picked.f_mul(&w)?
            };
            acc = Some(match acc {
                None => term,
                Some(a) => a.f_add(&term)?,
            });
        }
        y = acc.expect("at least one tap");
    }
    let how = if p.mode == "nearest" {
        format!("index_select (host {coord}/{} indices)", p.nearest)
    } else {
        format!("index_select, mul, add (host {coord} {} weights)", p.mode)
    };
    Ok(Lowered::one(y, How::composed(how)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    fn s(v: &str) -> Attr {
        Attr::String(v.into())
    }

    fn resize_1x1x1xw(w_in: usize, w_out: i64, attrs: Vec<(&str, Attr)>) -> (Vec<f64>, String) {
        let x = f32s(
            &[1, 1, 1, w_in as i64],
            &(0..w_in).map(|v| v as f32).collect::<Vec<_>>(),
        );
        let sizes = i64s(&[4], &[1, 1, 1, w_out]);
        let l = run(
            &node("Resize", 4, 1, attrs),
            13,
            &[Some(&x), None, None, Some(&sizes)],
        )
        .unwrap();
        (vals(l.outputs[0].as_ref().unwrap()), l.how.label())
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
        );
        assert_eq!(v, vec![0.0, 3.0]);
        assert_eq!(how, "native: upsample_nearest2d");
    }

    #[test]
    fn default_nearest_6_to_2_is_composed_and_picks_window_centres() {
        // half_pixel + round_prefer_floor: (0.5·3 - 0.5) = 1, (1.5·3 - 0.5) = 4.
        let (v, how) = resize_1x1x1xw(6, 2, vec![]);
        assert_eq!(v, vec![1.0, 4.0]);
        assert!(how.starts_with("composed: index_select"), "{how}");
    }

    #[test]
    fn nearest_exact_and_linear_are_native() {
        let (v, how) = resize_1x1x1xw(4, 2, vec![("nearest_mode", s("round_prefer_ceil"))]);
        assert_eq!(v, vec![1.0, 3.0]);
        assert_eq!(how, "native: _upsample_nearest_exact2d");
        let (v, how) = resize_1x1x1xw(2, 4, vec![("mode", s("linear"))]);
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
        use crate::backend::{Device, EngineOptions};
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
        let l = super::resize(&ctx, &[Some(&x), None, None, Some(&sizes)]).unwrap();
        assert_eq!(
            vals(l.outputs[0].as_ref().unwrap()),
            vec![0.0, 0.0, 4.0, 4.0]
        );
        assert_eq!(l.how.label(), "native: upsample_nearest2d (idiomatic port)");
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
        let e = run(&n, 13, &[Some(&x), None, None, Some(&sizes)])
            .err()
            .unwrap();
        assert!(format!("{e:?}").contains("coordinate_transformation_mode"));
    }
}
