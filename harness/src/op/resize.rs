//! Resize and Upsample: the one decode of what such a node means.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Resize.html> and
//! <https://onnx.ai/onnx/operators/onnx__Upsample.html>. Opset history:
//!
//! - Upsample-7: `scales` attribute (one per axis, each ≥ 1), `mode` nearest
//!   or linear, asymmetric coordinates. Upsample-9: `scales` is the second
//!   input. Deprecated at 10 by Resize.
//! - Resize-10: inputs X and scales, `mode` nearest or linear, asymmetric
//!   coordinates, no `nearest_mode`.
//! - Resize-11: inputs roi and sizes; `coordinate_transformation_mode`,
//!   `nearest_mode`, cubic (`cubic_coeff_a`, `exclude_outside`) and
//!   `extrapolation_value` (tf_crop_and_resize).
//! - Resize-13: roi and scales become optional.
//! - Resize-18: `antialias`, `axes`, `keep_aspect_ratio_policy`;
//!   tf_half_pixel_for_nn removed.
//! - Resize-19: half_pixel_symmetric.
//!
//! Resize-10 and Upsample have no `nearest_mode`; they follow ORT's "simple"
//! rounding, floor when upscaling and ceil when downscaling
//! (docs/conventions.md §1.2). [`NearestMode::legacy`] is the one place that
//! rule lives, and [`ResizeAttrs::decode`] resolves it once per axis.
//!
//! [`ResizeAttrs::decode`] reads a node of either op at any opset into typed
//! enums and an output plan ([`AxisPlan`] per axis: lengths, the scale that
//! coordinates use, the nearest rounding, the roi). Attributes and values
//! that the node's opset does not define, and bad scales/sizes/roi, are one
//! clear error. Every backend starts from it, and so does the fingerprint
//! search. The float64 reference shares this decode but keeps its own
//! coordinate and tap maths (`backend/reference/resize.rs`); the host index
//! helpers at the bottom of this file ([`source_coord`], [`linear_taps`],
//! [`cubic_taps`], [`ResizeAttrs::taps`]) serve only the composed lowerings
//! of libtorch and candle, so the reference still judges them independently.
//!
//! The fingerprint space ([`space`]) is built from the same decode: every
//! mode, coordinate mode and nearest_mode the opset defines, the cubic
//! coefficients frameworks use, antialias, and scales vs sizes (a pseudo
//! dimension that swaps the `scales` and `sizes` inputs).

use ndarray::{ArrayD, IxDyn};

use super::space::{
    bool_dim, float_dim_of, varied, with_first, Chosen, Dim, InputEdit, Kind, Probe, Space,
};
use super::{normalize_axis, optional, HostView, OpCtx, OpError, OpResult};
use crate::graph::{Attr, Node};
use crate::tensor::Tensor;

/// An attribute whose value is one of a fixed set of strings.
macro_rules! attr_enum {
    ($(#[$meta:meta])* $name:ident = $attr:literal { $($(#[$vmeta:meta])* $var:ident = $s:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $var),+
        }

        impl $name {
            /// The attribute this enum decodes.
            pub const ATTR: &'static str = $attr;
            /// Every value, in the spec's order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            /// The attribute spelling.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$var => $s),+
                }
            }

            /// Parses the attribute spelling; anything else is one failure naming the attribute.
            pub fn parse(s: &str) -> OpResult<$name> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name() == s)
                    .ok_or_else(|| unknown_value(Self::ATTR, s, Self::ALL.iter().map(|v| v.name())))
            }
        }
    };
}

fn unknown_value<'a>(attr: &str, got: &str, expected: impl Iterator<Item = &'a str>) -> OpError {
    let expected: Vec<&str> = expected.collect();
    OpError::Failed(format!(
        "attribute `{attr}`: unknown value {got:?} (expected one of {})",
        expected.join(", ")
    ))
}

attr_enum! {
    /// Interpolation `mode`.
    Mode = "mode" {
        Nearest = "nearest",
        Linear = "linear",
        Cubic = "cubic",
    }
}

attr_enum! {
    /// `coordinate_transformation_mode`.
    CoordMode = "coordinate_transformation_mode" {
        HalfPixel = "half_pixel",
        HalfPixelSymmetric = "half_pixel_symmetric",
        PytorchHalfPixel = "pytorch_half_pixel",
        AlignCorners = "align_corners",
        Asymmetric = "asymmetric",
        TfHalfPixelForNn = "tf_half_pixel_for_nn",
        TfCropAndResize = "tf_crop_and_resize",
    }
}

attr_enum! {
    /// `nearest_mode`: how nearest mode rounds a source coordinate.
    NearestMode = "nearest_mode" {
        RoundPreferFloor = "round_prefer_floor",
        RoundPreferCeil = "round_prefer_ceil",
        Floor = "floor",
        Ceil = "ceil",
    }
}

attr_enum! {
    /// `keep_aspect_ratio_policy` (with `sizes`).
    KeepAspect = "keep_aspect_ratio_policy" {
        Stretch = "stretch",
        NotLarger = "not_larger",
        NotSmaller = "not_smaller",
    }
}

impl CoordMode {
    /// The Resize opsets that define this mode (inclusive).
    pub fn opsets(self) -> (u32, u32) {
        match self {
            CoordMode::HalfPixelSymmetric => (19, u32::MAX),
            CoordMode::TfHalfPixelForNn => (11, 17),
            _ => (11, u32::MAX),
        }
    }

    /// Whether Resize at `opset` defines this mode.
    pub fn defined_at(self, opset: u32) -> bool {
        let (lo, hi) = self.opsets();
        (lo..=hi).contains(&opset)
    }
}

impl NearestMode {
    /// The rounding of Resize-10 and Upsample, which have no `nearest_mode`,
    /// on an axis with this `scale`: floor when upscaling (or keeping the
    /// length), ceil when downscaling.
    pub fn legacy(scale: f64) -> NearestMode {
        if scale < 1.0 {
            NearestMode::Ceil
        } else {
            NearestMode::Floor
        }
    }

    /// The nearest source index for coordinate `c` on an axis of `len_in`
    /// elements, clamped to the axis (the spec's edge padding).
    pub fn index(self, c: f64, len_in: usize) -> i64 {
        let f = c.floor();
        let v = match self {
            NearestMode::Floor => f,
            NearestMode::Ceil => c.ceil(),
            NearestMode::RoundPreferCeil if c - f == 0.5 => f + 1.0,
            NearestMode::RoundPreferFloor if c - f == 0.5 => f,
            _ => c.round(),
        };
        (v as i64).clamp(0, len_in as i64 - 1)
    }
}

/// The plan of one axis of X.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisPlan {
    pub len_in: usize,
    pub len_out: usize,
    /// The scale coordinates use: the given scale; with `sizes` out/in, or
    /// keep_aspect_ratio_policy's one scale; 1 on axes not in `axes`.
    pub scale: f64,
    /// The nearest rounding on this axis: `nearest_mode`, or the
    /// Resize-10/Upsample rule ([`NearestMode::legacy`]) for this scale.
    pub nearest: NearestMode,
    /// tf_crop_and_resize's roi (start, end) on this axis; (0, 1) otherwise.
    pub roi: (f64, f64),
}

/// A Resize (any opset) or Upsample node, decoded, with its output plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ResizeAttrs {
    pub mode: Mode,
    pub coord: CoordMode,
    /// `nearest_mode`; `None` for Resize-10 and Upsample, which have none
    /// (each axis then follows [`NearestMode::legacy`], see [`AxisPlan::nearest`]).
    pub nearest_mode: Option<NearestMode>,
    pub cubic_coeff_a: f64,
    pub exclude_outside: bool,
    pub antialias: bool,
    pub extrapolation_value: f64,
    pub keep_aspect: KeepAspect,
    /// `axes`, normalized (every axis when absent).
    pub axes: Vec<usize>,
    /// The `scales` input (or Upsample-7 attribute) gave the output size;
    /// false when `sizes` did.
    pub scales_given: bool,
    /// One entry per axis of X.
    pub plan: Vec<AxisPlan>,
}

/// Where the output size comes from.
enum Target {
    Scales(Vec<f64>),
    Sizes(Vec<i64>),
}

impl ResizeAttrs {
    /// Decodes a Resize or Upsample node at `ctx.opset` with its inputs
    /// (X, then Resize-10/Upsample-9 scales, or Resize-11+ roi, scales, sizes).
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<ResizeAttrs> {
        let dims = ctx.input(x, 0)?.dims();
        let legacy = ctx.node.op_type == "Upsample" || ctx.opset < 11;
        let mut a = if legacy {
            Self::legacy(ctx, dims.len())?
        } else {
            Self::conventions(ctx, dims.len())?
        };
        let target = target(ctx, x, legacy)?;
        a.scales_given = matches!(target, Target::Scales(_));
        let (len_out, scale) = match target {
            Target::Scales(s) => a.plan_scales(ctx, &dims, &s)?,
            Target::Sizes(s) => a.plan_sizes(&dims, &s)?,
        };
        let roi = a.roi(ctx, x, dims.len())?;
        a.plan = (0..dims.len())
            .map(|i| AxisPlan {
                len_in: dims[i],
                len_out: len_out[i],
                scale: scale[i],
                nearest: a
                    .nearest_mode
                    .unwrap_or_else(|| NearestMode::legacy(scale[i])),
                roi: roi[i],
            })
            .collect();
        Ok(a)
    }

    /// Resize-10 and Upsample: nearest or linear, asymmetric, no other attribute.
    fn legacy(ctx: &OpCtx, rank: usize) -> OpResult<ResizeAttrs> {
        let mode = Mode::parse(&ctx.string(Mode::ATTR, "nearest")?)?;
        if mode == Mode::Cubic {
            return Err(undefined(ctx, Mode::ATTR, mode.name()));
        }
        Ok(ResizeAttrs {
            mode,
            coord: CoordMode::Asymmetric,
            nearest_mode: None,
            ..ResizeAttrs::default_at((0..rank).collect())
        })
    }

    /// Resize-11 and later: every convention attribute, gated by opset.
    fn conventions(ctx: &OpCtx, rank: usize) -> OpResult<ResizeAttrs> {
        for attr in ["antialias", "axes", KeepAspect::ATTR] {
            if ctx.has(attr) && ctx.opset < 18 {
                return Err(ctx.attr_error(
                    attr,
                    format!(
                        "is not defined before opset 18 (node at opset {})",
                        ctx.opset
                    ),
                ));
            }
        }
        let coord = CoordMode::parse(&ctx.string(CoordMode::ATTR, "half_pixel")?)?;
        if !coord.defined_at(ctx.opset) {
            return Err(undefined(ctx, CoordMode::ATTR, coord.name()));
        }
        Ok(ResizeAttrs {
            mode: Mode::parse(&ctx.string(Mode::ATTR, "nearest")?)?,
            coord,
            nearest_mode: Some(NearestMode::parse(
                &ctx.string(NearestMode::ATTR, "round_prefer_floor")?,
            )?),
            cubic_coeff_a: ctx.float("cubic_coeff_a", -0.75)? as f64,
            exclude_outside: ctx.int("exclude_outside", 0)? != 0,
            antialias: ctx.int("antialias", 0)? != 0,
            extrapolation_value: ctx.float("extrapolation_value", 0.0)? as f64,
            keep_aspect: KeepAspect::parse(&ctx.string(KeepAspect::ATTR, "stretch")?)?,
            ..ResizeAttrs::default_at(axes(ctx, rank)?)
        })
    }

    /// The opset-19 defaults over `axes`, before the plan is known.
    fn default_at(axes: Vec<usize>) -> ResizeAttrs {
        ResizeAttrs {
            mode: Mode::Nearest,
            coord: CoordMode::HalfPixel,
            nearest_mode: Some(NearestMode::RoundPreferFloor),
            cubic_coeff_a: -0.75,
            exclude_outside: false,
            antialias: false,
            extrapolation_value: 0.0,
            keep_aspect: KeepAspect::Stretch,
            axes,
            scales_given: true,
            plan: Vec::new(),
        }
    }

    /// Output lengths floor(in · scale) and scales (full rank) from `scales` on `axes`.
    fn plan_scales(
        &self,
        ctx: &OpCtx,
        dims: &[usize],
        s: &[f64],
    ) -> OpResult<(Vec<usize>, Vec<f64>)> {
        check_len("scales", s.len(), self.axes.len())?;
        let upsample = ctx.node.op_type == "Upsample";
        let (mut out, mut scale) = (dims.to_vec(), vec![1.0; dims.len()]);
        for (&a, &v) in self.axes.iter().zip(s) {
            if v.is_nan() || v <= 0.0 || (upsample && v < 1.0) {
                let bound = if upsample { ">= 1 for Upsample" } else { "> 0" };
                return Err(OpError::Failed(format!(
                    "input scales: {v} must be {bound}"
                )));
            }
            scale[a] = v;
            out[a] = (v * dims[a] as f64).floor() as usize;
        }
        Ok((out, scale))
    }

    /// Output lengths and scales (full rank) from `sizes` on `axes`: out/in
    /// per axis, or under keep_aspect_ratio_policy one scale (min or max of
    /// the ratios) for every axis in `axes` with out = round(in · scale).
    fn plan_sizes(&self, dims: &[usize], z: &[i64]) -> OpResult<(Vec<usize>, Vec<f64>)> {
        check_len("sizes", z.len(), self.axes.len())?;
        let (mut out, mut scale) = (dims.to_vec(), vec![1.0; dims.len()]);
        for (&a, &v) in self.axes.iter().zip(z) {
            if v < 0 || dims[a] == 0 {
                return Err(OpError::Failed(format!(
                    "input sizes: {v} for an axis of length {} is invalid",
                    dims[a]
                )));
            }
            scale[a] = v as f64 / dims[a] as f64;
            out[a] = v as usize;
        }
        let ratios = self.axes.iter().map(|&a| scale[a]);
        let policy = match self.keep_aspect {
            KeepAspect::Stretch => None,
            KeepAspect::NotLarger => Some(ratios.fold(f64::INFINITY, f64::min)),
            KeepAspect::NotSmaller => Some(ratios.fold(f64::NEG_INFINITY, f64::max)),
        };
        if let Some(s) = policy.filter(|_| !self.axes.is_empty()) {
            for &a in &self.axes {
                scale[a] = s;
                out[a] = (s * dims[a] as f64 + 0.5).floor() as usize;
            }
        }
        Ok((out, scale))
    }

    /// Per-axis roi: the `roi` input under tf_crop_and_resize (required
    /// there), else (0, 1).
    fn roi<T: HostView>(
        &self,
        ctx: &OpCtx,
        x: &[Option<&T>],
        rank: usize,
    ) -> OpResult<Vec<(f64, f64)>> {
        let mut out = vec![(0.0, 1.0); rank];
        if self.coord != CoordMode::TfCropAndResize {
            return Ok(out);
        }
        let roi = optional(x, 1).ok_or_else(|| {
            ctx.fail("input roi is required by coordinate_transformation_mode tf_crop_and_resize")
        })?;
        let roi = floats(roi, "roi")?;
        let k = self.axes.len();
        if roi.len() != 2 * k {
            return Err(ctx.fail(format!(
                "input roi has {} values, expected {} (starts then ends)",
                roi.len(),
                2 * k
            )));
        }
        for (i, &a) in self.axes.iter().enumerate() {
            out[a] = (roi[i], roi[k + i]);
        }
        Ok(out)
    }

    pub fn rank(&self) -> usize {
        self.plan.len()
    }

    /// Input lengths per axis.
    pub fn len_in(&self) -> Vec<usize> {
        self.plan.iter().map(|p| p.len_in).collect()
    }

    /// Output lengths per axis.
    pub fn len_out(&self) -> Vec<usize> {
        self.plan.iter().map(|p| p.len_out).collect()
    }

    /// Coordinates map with a given scale (the `scales` input, or
    /// keep_aspect_ratio_policy's one scale), not with out/in: what framework
    /// ops that take scale arguments need to know.
    pub fn scale_is_given(&self) -> bool {
        self.scales_given || self.keep_aspect != KeepAspect::Stretch
    }

    /// Whether `antialias` changes the result: linear or cubic, downscaling.
    pub fn antialias_applies(&self) -> bool {
        self.antialias && self.mode != Mode::Nearest && self.plan.iter().any(|p| p.scale < 1.0)
    }

    /// The nearest source indices of axis `ax` under the node's coordinate mode.
    pub fn nearest_indices(&self, ax: usize) -> Vec<i64> {
        let p = &self.plan[ax];
        (0..p.len_out)
            .map(|o| p.nearest.index(p.source_coord(self.coord, o), p.len_in))
            .collect()
    }

    /// Per-output-index taps (input index, weight) on axis `ax` under
    /// `coord`, for the composed lowerings (indices clamped to the axis).
    pub fn taps(&self, coord: CoordMode, ax: usize) -> Vec<Vec<(i64, f64)>> {
        let p = &self.plan[ax];
        let len_in = p.len_in as i64;
        (0..p.len_out)
            .map(|o| {
                let c = p.source_coord(coord, o);
                match self.mode {
                    Mode::Nearest => vec![(p.nearest.index(c, p.len_in), 1.0)],
                    Mode::Linear => {
                        let (i0, i1, r) = linear_taps(c, len_in);
                        vec![(i0, 1.0 - r), (i1, r)]
                    }
                    Mode::Cubic => cubic_taps(c, self.cubic_coeff_a, self.exclude_outside, len_in),
                }
            })
            .collect()
    }
}

impl AxisPlan {
    /// [`source_coord`] of output index `o` on this axis.
    pub fn source_coord(&self, coord: CoordMode, o: usize) -> f64 {
        source_coord(
            coord,
            o as f64,
            self.scale,
            self.len_in as f64,
            self.len_out as f64,
        )
    }
}

/// The scales (Resize-10, Upsample, or Resize-11+ `scales`) or the sizes.
fn target<T: HostView>(ctx: &OpCtx, x: &[Option<&T>], legacy: bool) -> OpResult<Target> {
    if ctx.node.op_type == "Upsample" && ctx.opset < 9 {
        let s = ctx
            .floats("scales")?
            .ok_or_else(|| ctx.attr_error("scales", "is required"))?;
        return Ok(Target::Scales(s.into_iter().map(f64::from).collect()));
    }
    if legacy {
        return Ok(Target::Scales(floats(ctx.input(x, 1)?, "scales")?));
    }
    match (optional(x, 2), optional(x, 3)) {
        (Some(s), None) => Ok(Target::Scales(floats(s, "scales")?)),
        (None, Some(z)) => Ok(Target::Sizes(z.host_ints()?)),
        (Some(_), Some(_)) => {
            Err(ctx.fail("inputs scales and sizes are both given; the spec allows only one"))
        }
        (None, None) => Err(ctx.fail("one of the inputs scales and sizes is required")),
    }
}

/// `axes`, normalized against `rank` (every axis when absent), no repeats.
fn axes(ctx: &OpCtx, rank: usize) -> OpResult<Vec<usize>> {
    let Some(raw) = ctx.ints("axes")? else {
        return Ok((0..rank).collect());
    };
    let mut out = Vec::with_capacity(raw.len());
    for a in raw {
        // normalize_axis lets a rank-0 tensor name axis 0; Resize has no such axis.
        let n = normalize_axis(a, rank)
            .ok()
            .filter(|&n| n < rank)
            .ok_or_else(|| {
                ctx.attr_error("axes", format!("{a} is out of range for rank {rank}"))
            })?;
        if out.contains(&n) {
            return Err(ctx.attr_error("axes", format!("axis {n} is repeated")));
        }
        out.push(n);
    }
    Ok(out)
}

/// A float parameter input (scales, roi) on the host.
fn floats<T: HostView>(t: &T, name: &str) -> OpResult<Vec<f64>> {
    if !t.is_float() {
        return Err(OpError::Failed(format!(
            "input {name} must be a float tensor"
        )));
    }
    t.host_floats()
}

fn check_len(name: &str, got: usize, want: usize) -> OpResult<()> {
    if got == want {
        return Ok(());
    }
    Err(OpError::Failed(format!(
        "input {name} has {got} values, expected {want}"
    )))
}

/// A value the node's opset does not define.
fn undefined(ctx: &OpCtx, attr: &str, value: &str) -> OpError {
    ctx.attr_error(
        attr,
        format!(
            "{value:?} is not defined at opset {} ({})",
            ctx.opset, ctx.node.op_type
        ),
    )
}

// ---- the fingerprint space --------------------------------------------------

/// Resize's fingerprint space, from the decode of the node (the model's
/// values) and its enums (the candidates): every mode, every coordinate mode
/// the opset defines (tf_crop_and_resize only when the model uses it: it
/// needs a roi), every nearest_mode, the cubic coefficients frameworks use,
/// and scales vs sizes. `None` when the node does not decode, and for
/// Resize-10, which has no conventions to confuse.
pub fn space(ctx: &OpCtx, x: &[Option<&Tensor>]) -> Option<Space> {
    let a = ResizeAttrs::decode(ctx, x).ok()?;
    let modes: Vec<&str> = Mode::ALL.iter().map(|m| m.name()).collect();
    let ctms: Vec<&str> = CoordMode::ALL
        .iter()
        .filter(|&&c| c.defined_at(ctx.opset) && (c != CoordMode::TfCropAndResize || a.coord == c))
        .map(|c| c.name())
        .collect();
    let nms: Vec<&str> = NearestMode::ALL.iter().map(|m| m.name()).collect();
    // Resize-11 and later always have a nearest_mode (None is Resize-10's rule).
    let nearest = a.nearest_mode?.name();
    let mut dims = vec![
        Dim::new(Mode::ATTR, Kind::Str, a.mode.name().into(), &modes),
        Dim::new(CoordMode::ATTR, Kind::Str, a.coord.name().into(), &ctms),
        Dim::new(NearestMode::ATTR, Kind::Str, nearest.into(), &nms),
        float_dim_of("cubic_coeff_a", a.cubic_coeff_a as f32, &["-0.75", "-0.5"]),
        bool_dim("exclude_outside", a.exclude_outside),
    ];
    if ctx.opset >= 18 {
        dims.push(bool_dim("antialias", a.antialias));
    }
    let via = if a.scales_given { "scales" } else { "sizes" };
    dims.push(Dim::new(
        "via",
        Kind::Pseudo,
        via.into(),
        &["scales", "sizes"],
    ));
    Some(Space {
        dims,
        relevant,
        apply,
        probes,
    })
}

/// Geometries that pull the coordinate conventions apart: (input length,
/// scale). 5 × 1.6 = 8 exactly (out/in = scale, but (out−1)/(in−1) does
/// not), 5 × 1.45 → 7 (in·scale not an integer: out/in ≠ scale), 6 × 0.5 → 3
/// and 4 × 0.25 → 1 (an output length of 1), 7 × 1.3 → 9, and 10 × 1.39 →
/// 13, 10 × 0.39 → 3 (in·scale far from its floor: half_pixel_symmetric's
/// offset reaches a pixel), 3 × 2 → 6 (an exact scale whose asymmetric
/// coordinates land halfway: the round_prefer_* modes part).
const PROBE_GEOMETRIES: [(usize, f32); 8] = [
    (5, 1.6),
    (5, 1.45),
    (6, 0.5),
    (4, 0.25),
    (7, 1.3),
    (10, 1.39),
    (10, 0.39),
    (3, 2.0),
];

/// Resize's probes: each of [`PROBE_GEOMETRIES`] on every resized axis (an
/// axis whose scale is not 1), given the way the model gives it (scales, or
/// sizes = ⌊in·scale⌋), over varied input values.
fn probes(node: &Node, inputs: &[Option<&Tensor>]) -> Vec<Probe> {
    let Some(shape) = inputs
        .first()
        .copied()
        .flatten()
        .map(|t| t.shape().to_vec())
    else {
        return Vec::new();
    };
    let axes: Vec<usize> = match node.attrs.get("axes") {
        Some(Attr::Ints(a)) => a
            .iter()
            .filter_map(|&v| normalize_axis(v, shape.len()).ok())
            .collect(),
        _ => (0..shape.len()).collect(),
    };
    let given = |i: usize| {
        inputs
            .get(i)
            .copied()
            .flatten()
            .filter(|t| t.len() == axes.len())
    };
    let (scales, sizes) = (given(2), given(3));
    let resized: Vec<bool> = match (scales, sizes) {
        (Some(t), _) => t.to_f64_vec().iter().map(|&s| s != 1.0).collect(),
        (None, Some(t)) => {
            let v = t.to_f64_vec();
            axes.iter()
                .zip(v)
                .map(|(&a, o)| o as usize != shape[a])
                .collect()
        }
        _ => return Vec::new(),
    };
    PROBE_GEOMETRIES
        .iter()
        .map(|&(len, scale)| {
            let mut x_shape = shape.clone();
            let (mut sc, mut sz) = (Vec::new(), Vec::new());
            for (&a, &r) in axes.iter().zip(&resized) {
                if r {
                    x_shape[a] = len;
                }
                let s = if r { scale } else { 1.0 };
                sc.push(s);
                sz.push((x_shape[a] as f64 * s as f64).floor() as i64);
            }
            let mut ins = with_first(inputs, varied(&x_shape, 1.0));
            let n = axes.len();
            if scales.is_some() {
                ins[2] = ArrayD::from_shape_vec(IxDyn(&[n]), sc)
                    .ok()
                    .map(Tensor::F32);
            } else {
                ins[3] = ArrayD::from_shape_vec(IxDyn(&[n]), sz)
                    .ok()
                    .map(Tensor::I64);
            }
            let out = (len as f64 * scale as f64).floor();
            Probe {
                label: format!("input length {len} at scale {scale} ({len}→{out})"),
                inputs: ins,
            }
        })
        .collect()
}

/// Which dims matter under the chosen `mode`.
fn relevant(dim: &str, chosen: &Chosen) -> bool {
    let mode = chosen.get("mode").map(String::as_str).unwrap_or("nearest");
    match dim {
        "nearest_mode" => mode == "nearest",
        "cubic_coeff_a" | "exclude_outside" => mode == "cubic",
        "antialias" => mode != "nearest",
        _ => true,
    }
}

/// `via`: emulate "scale from the sizes ratio" vs "the given scales" by
/// passing the other input (sizes = the backend's output shape; scales =
/// out/in rounded to f32).
fn apply(
    dim: &str,
    value: &str,
    node: &mut Node,
    inputs: &[Option<&Tensor>],
    out_shape: &[usize],
) -> Option<Vec<InputEdit>> {
    if dim != "via" {
        return None;
    }
    let in_shape = inputs.first().copied().flatten()?.shape().to_vec();
    if in_shape.len() != out_shape.len() {
        return None;
    }
    let axes: Vec<usize> = match node.attrs.get("axes") {
        Some(Attr::Ints(a)) => a
            .iter()
            .map(|&v| {
                normalize_axis(v, in_shape.len())
                    .ok()
                    .filter(|&a| a < in_shape.len())
            })
            .collect::<Option<_>>()?,
        _ => (0..in_shape.len()).collect(),
    };
    while node.inputs.len() < 4 {
        node.inputs.push(String::new());
    }
    let n = axes.len();
    let edits = match value {
        "sizes" => {
            let v: Vec<i64> = axes.iter().map(|&a| out_shape[a] as i64).collect();
            node.inputs[2] = String::new();
            node.inputs[3] = "sizes".into();
            vec![
                (2, None),
                (
                    3,
                    Some(Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[n]), v).ok()?)),
                ),
            ]
        }
        "scales" => {
            if axes.iter().any(|&a| in_shape[a] == 0) {
                return None;
            }
            let v: Vec<f32> = axes
                .iter()
                .map(|&a| (out_shape[a] as f64 / in_shape[a] as f64) as f32)
                .collect();
            node.inputs[2] = "scales".into();
            node.inputs[3] = String::new();
            node.attrs.remove("keep_aspect_ratio_policy");
            vec![
                (
                    2,
                    Some(Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[n]), v).ok()?)),
                ),
                (3, None),
            ]
        }
        _ => return None,
    };
    Some(edits)
}

// ---- host index maths for the composed framework lowerings -----------------

/// ONNX source coordinate of output index `x` on one axis, per
/// `coordinate_transformation_mode`, exactly as the float64 reference maps
/// it (`backend/reference/resize.rs`, `original_coordinate`): align_corners
/// divides by the fractional target length `scale · len_in` − 1, as ONNX's
/// Python reference and node tests do (ORT and libtorch's own ops use the
/// integer `len_out`; the spec text is ambiguous, docs/findings.md), and
/// half_pixel_symmetric adjusts by `len_out / (scale · len_in)`.
/// pytorch_half_pixel tests the integer `len_out`. tf_crop_and_resize needs
/// the roi and extrapolation, which the composed lowerings do not model
/// (they reject it): it maps as asymmetric.
pub fn source_coord(coord: CoordMode, x: f64, scale: f64, len_in: f64, len_out: f64) -> f64 {
    match coord {
        CoordMode::HalfPixel => (x + 0.5) / scale - 0.5,
        CoordMode::PytorchHalfPixel => {
            if len_out > 1.0 {
                (x + 0.5) / scale - 0.5
            } else {
                0.0
            }
        }
        CoordMode::HalfPixelSymmetric => {
            let adjustment = len_out / (scale * len_in);
            let offset = len_in / 2.0 * (1.0 - adjustment);
            offset + (x + 0.5) / scale - 0.5
        }
        CoordMode::AlignCorners => {
            let width = scale * len_in;
            if width == 1.0 {
                0.0
            } else {
                x * (len_in - 1.0).max(0.0) / (width - 1.0)
            }
        }
        CoordMode::TfHalfPixelForNn => (x + 0.5) / scale,
        CoordMode::Asymmetric | CoordMode::TfCropAndResize => x / scale,
    }
}

/// Linear taps at coordinate `c`: the two neighbours (clamped to the axis)
/// and the fraction `r` of the way from the first to the second.
pub fn linear_taps(c: f64, len_in: i64) -> (i64, i64, f64) {
    let f = c.floor();
    let clamp = |v: i64| v.clamp(0, len_in - 1);
    (clamp(f as i64), clamp(f as i64 + 1), c - f)
}

/// Cubic taps (index, weight) at coordinate `c` with coefficient `a`; with
/// `exclude_outside` the taps outside the axis get weight 0 and the others
/// are renormalised. Indices are clamped to the axis.
pub fn cubic_taps(c: f64, a: f64, exclude_outside: bool, len_in: i64) -> Vec<(i64, f64)> {
    let last = len_in - 1;
    let clamp = |v: i64| v.clamp(0, last);
    let f = c.floor();
    let r = c - f;
    let w = [
        ((a * (r + 1.0) - 5.0 * a) * (r + 1.0) + 8.0 * a) * (r + 1.0) - 4.0 * a,
        ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0,
        ((a + 2.0) * (1.0 - r) - (a + 3.0)) * (1.0 - r) * (1.0 - r) + 1.0,
        ((a * (2.0 - r) - 5.0 * a) * (2.0 - r) + 8.0 * a) * (2.0 - r) - 4.0 * a,
    ];
    let raw: Vec<(i64, f64)> = (0..4).map(|t| (f as i64 - 1 + t as i64, w[t])).collect();
    if exclude_outside {
        let keep = |j: i64| (0..=last).contains(&j);
        let sum: f64 = raw.iter().filter(|(j, _)| keep(*j)).map(|(_, w)| w).sum();
        raw.into_iter()
            .map(|(j, w)| (clamp(j), if keep(j) { w / sum } else { 0.0 }))
            .collect()
    } else {
        raw.into_iter().map(|(j, w)| (clamp(j), w)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::reference::util::{f, i};
    use crate::backend::reference::RefTensor;
    use crate::graph::{Attr, Node};
    use crate::op::test_node;

    fn s(v: &str) -> Attr {
        Attr::String(v.into())
    }

    fn decode<T: HostView>(node: &Node, opset: u32, x: &[Option<&T>]) -> OpResult<ResizeAttrs> {
        crate::op::with_node(node, opset, |ctx| ResizeAttrs::decode(ctx, x))
    }

    fn row(n: usize) -> RefTensor {
        f(&[1, n], &vec![0.0; n])
    }

    /// Resize-10 nearest: ceil when downscaling, floor when upscaling, per axis.
    #[test]
    fn resize_10_nearest_rounding_is_ceil_down_floor_up() {
        let node = test_node("Resize", 2, 1, vec![]);
        // 6 -> 4 (scale 2/3 in f32): x / scale = 0, 1.5, 3, 4.5 -> ceil [0, 2, 3, 5].
        let x = row(6);
        let sc = f(&[2], &[1.0, (2.0f32 / 3.0) as f64]);
        let a = decode(&node, 10, &[Some(&x), Some(&sc)]).unwrap();
        assert_eq!(a.nearest_mode, None);
        assert_eq!(a.plan[1].nearest, NearestMode::Ceil);
        assert_eq!(a.nearest_indices(1), vec![0, 2, 3, 5]);
        // 2 -> 5 (scale 2.5): x / 2.5 = 0, .4, .8, 1.2, 1.6 -> floor [0, 0, 0, 1, 1].
        let x = row(2);
        let sc = f(&[2], &[1.0, 2.5]);
        let a = decode(&node, 10, &[Some(&x), Some(&sc)]).unwrap();
        assert_eq!(a.plan[1].nearest, NearestMode::Floor);
        assert_eq!(a.nearest_indices(1), vec![0, 0, 0, 1, 1]);
        // The unchanged axis (scale 1) floors: identity.
        assert_eq!(a.plan[0].nearest, NearestMode::Floor);
        assert_eq!(a.nearest_indices(0), vec![0]);
    }

    #[test]
    fn nearest_index_tables() {
        let plan = |len_in, len_out, scale, nearest| AxisPlan {
            len_in,
            len_out,
            scale,
            nearest,
            roi: (0.0, 1.0),
        };
        let idx = |p: AxisPlan, coord| -> Vec<i64> {
            (0..p.len_out)
                .map(|o| p.nearest.index(p.source_coord(coord, o), p.len_in))
                .collect()
        };
        let (hp, pf) = (CoordMode::HalfPixel, NearestMode::RoundPreferFloor);
        // Default nearest 6 -> 2 picks the window centres.
        assert_eq!(idx(plan(6, 2, 2.0 / 6.0, pf), hp), vec![1, 4]);
        // 4 -> 2 tie: prefer floor [0, 2], prefer ceil [1, 3].
        assert_eq!(idx(plan(4, 2, 0.5, pf), hp), vec![0, 2]);
        let pc = NearestMode::RoundPreferCeil;
        assert_eq!(idx(plan(4, 2, 0.5, pc), hp), vec![1, 3]);
        // asymmetric floor 3 -> 5 (sizes): [0, 0, 1, 1, 2].
        let p = plan(3, 5, 5.0 / 3.0, NearestMode::Floor);
        assert_eq!(idx(p, CoordMode::Asymmetric), vec![0, 0, 1, 1, 2]);
    }

    #[test]
    fn cubic_weights_sum_to_one() {
        for &c in &[0.0, 0.25, 1.5, 2.75] {
            for &ex in &[false, true] {
                let s: f64 = cubic_taps(c, -0.75, ex, 4).iter().map(|t| t.1).sum();
                assert!((s - 1.0).abs() < 1e-12, "{c} {ex} {s}");
            }
        }
    }

    #[test]
    fn keep_aspect_maps_every_listed_axis_with_one_scale() {
        let x = f(&[1, 1, 2, 3], &[0.0; 6]);
        let sz = i(&[2], &[4, 4]);
        let plan = |policy: &str| {
            let n = test_node(
                "Resize",
                4,
                1,
                vec![
                    ("axes", Attr::Ints(vec![2, 3])),
                    ("keep_aspect_ratio_policy", s(policy)),
                ],
            );
            let a = decode(&n, 19, &[Some(&x), None, None, Some(&sz)]).unwrap();
            assert!(!a.scales_given);
            let scales: Vec<f64> = a.plan.iter().map(|p| p.scale).collect();
            (a.len_out(), scales, a.scale_is_given())
        };
        let (out, scale, given) = plan("not_larger");
        assert_eq!(out, vec![1, 1, 3, 4]);
        assert_eq!(scale, vec![1.0, 1.0, 4.0 / 3.0, 4.0 / 3.0]);
        assert!(given);
        let (out, scale, _) = plan("not_smaller");
        assert_eq!((out, &scale[2..]), (vec![1, 1, 4, 6], &[2.0, 2.0][..]));
        let (out, scale, given) = plan("stretch");
        assert_eq!(
            (out, &scale[2..]),
            (vec![1, 1, 4, 4], &[2.0, 4.0 / 3.0][..])
        );
        assert!(!given);
    }

    #[test]
    fn bad_values_are_one_error_naming_the_attribute() {
        let x = row(2);
        let sc = f(&[2], &[1.0, 2.0]);
        let ins = [Some(&x), None, Some(&sc), None];
        let err = |attrs: Vec<(&str, Attr)>, opset| {
            let n = test_node("Resize", 4, 1, attrs);
            format!("{:?}", decode(&n, opset, &ins).unwrap_err())
        };
        let e = err(vec![("nearest_mode", s("round_half_up"))], 19);
        assert!(
            e.contains("`nearest_mode`") && e.contains("round_half_up"),
            "{e}"
        );
        let e = err(vec![("coordinate_transformation_mode", s("bogus"))], 19);
        assert!(e.contains("`coordinate_transformation_mode`"), "{e}");
        let e = err(
            vec![("coordinate_transformation_mode", s("half_pixel_symmetric"))],
            18,
        );
        assert!(e.contains("not defined at opset 18"), "{e}");
        let e = err(
            vec![("coordinate_transformation_mode", s("tf_half_pixel_for_nn"))],
            18,
        );
        assert!(e.contains("not defined at opset 18"), "{e}");
        assert!(err(vec![("antialias", Attr::Int(1))], 13).contains("`antialias`"));
        assert!(err(vec![("axes", Attr::Ints(vec![1, -1]))], 19).contains("repeated"));
        assert!(err(vec![("keep_aspect_ratio_policy", s("fit"))], 19).contains("fit"));
        let e = err(vec![("mode", s("cubic"))], 10);
        assert!(e.contains("`mode`"), "{e}");
        // Both scales and sizes; scales <= 0; Upsample below 1.
        let sz = i(&[2], &[1, 4]);
        let n = test_node("Resize", 4, 1, vec![]);
        assert!(decode(&n, 19, &[Some(&x), None, Some(&sc), Some(&sz)]).is_err());
        let neg = f(&[2], &[1.0, -2.0]);
        assert!(decode(&n, 19, &[Some(&x), None, Some(&neg), None]).is_err());
        let half = f(&[2], &[1.0, 0.5]);
        let up = test_node("Upsample", 2, 1, vec![]);
        assert!(decode(&up, 9, &[Some(&x), Some(&half)]).is_err());
        // tf_crop_and_resize needs roi.
        let n = test_node(
            "Resize",
            4,
            1,
            vec![("coordinate_transformation_mode", s("tf_crop_and_resize"))],
        );
        let e = format!("{:?}", decode(&n, 19, &ins).unwrap_err());
        assert!(e.contains("roi"), "{e}");
    }

    #[test]
    fn upsample_7_and_9_decode_alike() {
        let x = row(2);
        let n7 = test_node(
            "Upsample",
            1,
            1,
            vec![
                ("scales", Attr::Floats(vec![1.0, 2.0])),
                ("mode", s("linear")),
            ],
        );
        let a7 = decode(&n7, 7, &[Some(&x)]).unwrap();
        let n9 = test_node("Upsample", 2, 1, vec![("mode", s("linear"))]);
        let sc = f(&[2], &[1.0, 2.0]);
        let a9 = decode(&n9, 9, &[Some(&x), Some(&sc)]).unwrap();
        assert_eq!(a7, a9);
        assert_eq!(
            (a7.mode, a7.coord, a7.len_out()),
            (Mode::Linear, CoordMode::Asymmetric, vec![1, 4])
        );
    }

    /// The reference, libtorch and candle (and the fingerprint search, which
    /// reads reference tensors) get the same plan from the same node.
    #[test]
    fn every_consumer_decodes_the_same_plan() {
        let n = test_node(
            "Resize",
            4,
            1,
            vec![
                ("mode", s("linear")),
                ("axes", Attr::Ints(vec![-2, -1])),
                ("keep_aspect_ratio_policy", s("not_smaller")),
            ],
        );
        let x = f(&[1, 2, 4, 6], &[0.0; 48]);
        let sz = i(&[2], &[8, 8]);
        let want = decode(&n, 19, &[Some(&x), None, None, Some(&sz)]).unwrap();
        assert_eq!(want.len_out(), vec![1, 2, 8, 12]);
        #[cfg(feature = "tch-backend")]
        {
            let x = tch::Tensor::zeros([1, 2, 4, 6], (tch::Kind::Float, tch::Device::Cpu));
            let sz = tch::Tensor::from_slice(&[8i64, 8]);
            assert_eq!(
                decode(&n, 19, &[Some(&x), None, None, Some(&sz)]).unwrap(),
                want
            );
        }
        #[cfg(feature = "candle-backend")]
        {
            use candle_core::{DType, Device as CDevice, Tensor as CTensor};
            let x = CTensor::zeros((1, 2, 4, 6), DType::F32, &CDevice::Cpu).unwrap();
            let sz = CTensor::new(&[8i64, 8], &CDevice::Cpu).unwrap();
            assert_eq!(
                decode(&n, 19, &[Some(&x), None, None, Some(&sz)]).unwrap(),
                want
            );
        }
    }
}
