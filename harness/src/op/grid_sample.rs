//! GridSample: its `mode`, `padding_mode` and `align_corners`, decoded once
//! (with the opset's mode names) and checked against the input and grid.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__GridSample.html>. Opset 16:
//! 4-D input only, `mode` `bilinear` (default) / `nearest` / `bicubic`.
//! Opset 20: N-D (input (N, C, D1..Dr), grid (N, O1..Or, r)), `mode` renamed
//! `linear` (default) / `nearest` / `cubic`. Both: `padding_mode` `zeros`
//! (default) / `border` / `reflection`, `align_corners` 0 (default) or 1. The
//! grid's last axis lists coordinates innermost axis first (x, then y, ...),
//! normalised to [-1, 1]; nearest rounds half to even; cubic uses a = -0.75.
//!
//! The fingerprint space ([`space`]) is `align_corners` × `padding_mode`.
//! Nearest's tie rounding and cubic's `a` are conventions too, but the spec
//! fixes them (no attribute), so the reference cannot be asked for the other
//! value: a lane that differs there is reported as matching no convention.

use super::space::{bool_dim, Dim, Kind, Space};
use super::{OpCtx, OpResult};
use crate::tensor::Tensor;

/// How a sample point is interpolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleMode {
    Linear,
    Nearest,
    Cubic,
}

/// What a sample outside the input reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplePadding {
    Zeros,
    Border,
    Reflection,
}

/// A decoded GridSample node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridSampleAttrs {
    pub mode: SampleMode,
    pub padding: SamplePadding,
    pub align_corners: bool,
}

impl GridSampleAttrs {
    /// Decodes the attributes and checks an input of dims `x` against a grid
    /// of dims `grid`.
    pub fn decode(ctx: &OpCtx, x: &[usize], grid: &[usize]) -> OpResult<Self> {
        let legacy = ctx.opset < 20;
        let default = if legacy { "bilinear" } else { "linear" };
        let mode = match (ctx.string("mode", default)?.as_str(), legacy) {
            ("bilinear", true) | ("linear", false) => SampleMode::Linear,
            ("nearest", _) => SampleMode::Nearest,
            ("bicubic", true) | ("cubic", false) => SampleMode::Cubic,
            (m, _) => return Err(ctx.attr_error("mode", format!("`{m}` at opset {}", ctx.opset))),
        };
        let padding = match ctx.string("padding_mode", "zeros")?.as_str() {
            "zeros" => SamplePadding::Zeros,
            "border" => SamplePadding::Border,
            "reflection" => SamplePadding::Reflection,
            p => return Err(ctx.attr_error("padding_mode", format!("`{p}`"))),
        };
        let align_corners = match ctx.int("align_corners", 0)? {
            0 => false,
            1 => true,
            a => return Err(ctx.attr_error("align_corners", format!("{a} (expected 0 or 1)"))),
        };
        check_shapes(ctx, x, grid, legacy)?;
        Ok(GridSampleAttrs {
            mode,
            padding,
            align_corners,
        })
    }
}

impl SamplePadding {
    fn name(self) -> &'static str {
        match self {
            SamplePadding::Zeros => "zeros",
            SamplePadding::Border => "border",
            SamplePadding::Reflection => "reflection",
        }
    }
}

/// GridSample's fingerprint space: `align_corners` and `padding_mode`;
/// `None` when the node does not decode.
pub fn space(ctx: &OpCtx, x: &[Option<&Tensor>]) -> Option<Space> {
    let shape = |i: usize| x.get(i).copied().flatten().map(|t| t.shape());
    let a = GridSampleAttrs::decode(ctx, shape(0)?, shape(1)?).ok()?;
    Some(Space::plain(vec![
        bool_dim("align_corners", a.align_corners),
        Dim::new(
            "padding_mode",
            Kind::Str,
            a.padding.name().into(),
            &["zeros", "border", "reflection"],
        ),
    ]))
}

/// The output dims (N, C, O1..Or) of input `x` sampled at `grid`.
pub fn output_dims(x: &[usize], grid: &[usize]) -> Vec<usize> {
    let mut out = vec![x[0], x[1]];
    out.extend_from_slice(&grid[1..grid.len() - 1]);
    out
}

fn check_shapes(ctx: &OpCtx, x: &[usize], grid: &[usize], legacy: bool) -> OpResult<()> {
    let r = x.len().saturating_sub(2);
    if r == 0 || (legacy && r != 2) {
        return Err(ctx.fail(format!(
            "input `X` must be {} at opset {}, got {x:?}",
            if legacy { "4-D" } else { "at least 3-D" },
            ctx.opset
        )));
    }
    if grid.len() != r + 2 || grid[0] != x[0] || grid[r + 1] != r {
        return Err(ctx.fail(format!(
            "input `grid` must be (N = {}, {r} output dims, {r}), got {grid:?}",
            x[0]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::reference::util::f;
    use crate::fingerprint::tests::{checked, host, pairs, run1};
    use crate::graph::Attr;
    use crate::op::test_node;
    use crate::op::window::tests::with;

    fn decode(opset: u32, mode: &str, x: &[usize], g: &[usize]) -> OpResult<GridSampleAttrs> {
        let attrs = vec![
            ("mode", Attr::String(mode.into())),
            ("padding_mode", Attr::String("reflection".into())),
            ("align_corners", Attr::Int(1)),
        ];
        with("GridSample", opset, attrs, |c| {
            GridSampleAttrs::decode(c, x, g)
        })
    }

    #[test]
    fn mode_names_follow_the_opset() {
        let a = decode(16, "bicubic", &[1, 2, 3, 4], &[1, 5, 6, 2]).unwrap();
        assert_eq!(a.mode, SampleMode::Cubic);
        assert_eq!(a.padding, SamplePadding::Reflection);
        assert!(a.align_corners);
        assert!(decode(16, "cubic", &[1, 2, 3, 4], &[1, 5, 6, 2]).is_err());
        assert!(decode(20, "bilinear", &[1, 2, 3, 4], &[1, 5, 6, 2]).is_err());
        let a = decode(20, "linear", &[1, 2, 3, 4, 5], &[1, 2, 2, 2, 3]).unwrap();
        assert_eq!(a.mode, SampleMode::Linear);
    }

    #[test]
    fn shapes_are_checked() {
        assert!(decode(16, "nearest", &[1, 2, 3, 4, 5], &[1, 2, 2, 2, 3]).is_err());
        assert!(decode(20, "nearest", &[1, 2, 3, 4], &[1, 5, 6, 3]).is_err());
        assert!(decode(20, "nearest", &[1, 2, 3, 4], &[2, 5, 6, 2]).is_err());
        assert_eq!(output_dims(&[1, 2, 3, 4], &[1, 5, 6, 2]), vec![1, 2, 5, 6]);
    }

    #[test]
    fn a_lane_sampling_with_other_corners_and_padding_is_fingerprinted() {
        // A 3×4 ramp sampled at points inside and outside [-1, 1].
        let v: Vec<f64> = (0..12).map(|i| i as f64 * 0.5 - 1.0).collect();
        let x = f(&[1, 1, 3, 4], &v);
        let g = [
            -1.0, -1.0, 0.25, 0.5, 1.25, -0.5, -1.5, 0.75, 0.5, 1.75, 0.875, -0.125,
        ];
        let grid = f(&[1, 2, 3, 2], &g);
        let node = |align: i64, pad: &str| {
            test_node(
                "GridSample",
                2,
                1,
                vec![
                    ("align_corners", Attr::Int(align)),
                    ("padding_mode", Attr::String(pad.into())),
                ],
            )
        };
        let ins = [Some(&x), Some(&grid)];
        let lane = host(&run1(&node(1, "border"), 20, &ins));
        let fp = checked(&node(0, "zeros"), 20, &ins, &lane);
        assert!(fp.exact && fp.ambiguous.is_empty(), "{fp:?}");
        assert_eq!(
            fp.attrs,
            pairs(&[("align_corners", "1"), ("padding_mode", "border")])
        );
    }
}
