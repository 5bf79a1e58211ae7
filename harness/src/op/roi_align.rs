//! RoiAlign: its pooling conventions decoded once, and the bilinear tap
//! table the composed framework lowerings gather with.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__RoiAlign.html>. Opset 10:
//! `mode` (avg/max), `output_height`/`output_width` (default 1),
//! `sampling_ratio` (0: adaptive, ceil(roi size / output size) per roi),
//! `spatial_scale` (default 1); a roi is not shifted by half a pixel and its
//! size is clamped to at least 1 (torchvision's `aligned=False`). Opset 16
//! adds `coordinate_transformation_mode`: `half_pixel` (the new default)
//! shifts the scaled roi by −½ and leaves its size unclamped;
//! `output_half_pixel` is opset 10's behaviour. Inputs: X (N, C, H, W), rois
//! (R, 4) as (x1, y1, x2, y2) in input coordinates, batch_indices (R).
//! Output (R, C, output_height, output_width).
//!
//! Each output bin averages (or takes the maximum of) its grid of sample
//! points, each bilinearly interpolated from its four neighbours. The spec
//! does not say what `max` is the maximum of; ONNX's reference and ONNX
//! Runtime take it over every sample's four *weighted* corner values
//! `w·v` (not over the interpolated samples), which the node tests encode.
//! A sample outside [−1, H] × [−1, W] contributes 0; a coordinate in [−1, 0]
//! reads row/column 0.

use super::space::{Dim, Kind, Space};
use super::{OpCtx, OpResult};
use crate::tensor::Tensor;

/// How an output bin pools its sample points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoiMode {
    Avg,
    /// The maximum of the weighted corner values `w·v` (ONNX's reference).
    Max,
}

/// How a roi's corners map to input coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoiCoord {
    /// Opset 16's default: scaled corners shifted by −½, size unclamped.
    HalfPixel,
    /// Opset 10's behaviour: no shift, size at least 1.
    OutputHalfPixel,
}

/// A decoded RoiAlign node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoiAlignAttrs {
    pub mode: RoiMode,
    pub coord: RoiCoord,
    pub out_h: usize,
    pub out_w: usize,
    /// 0: adaptive (ceil(roi size / output size)).
    pub sampling_ratio: usize,
    pub spatial_scale: f32,
}

/// One roi's geometry in input pixels: its start, bin size and sample grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoiGeometry {
    pub start: [f64; 2],
    pub bin: [f64; 2],
    pub grid: [usize; 2],
}

/// A tap: a flat index into one (H, W) plane and its bilinear weight.
pub type Tap = (usize, f64);

impl RoiAlignAttrs {
    pub fn decode(ctx: &OpCtx) -> OpResult<Self> {
        let mode = match ctx.string("mode", "avg")?.as_str() {
            "avg" => RoiMode::Avg,
            "max" => RoiMode::Max,
            m => return Err(ctx.attr_error("mode", format!("`{m}` (expected avg or max)"))),
        };
        let coord = if ctx.opset < 16 {
            RoiCoord::OutputHalfPixel
        } else {
            match ctx
                .string("coordinate_transformation_mode", "half_pixel")?
                .as_str()
            {
                "half_pixel" => RoiCoord::HalfPixel,
                "output_half_pixel" => RoiCoord::OutputHalfPixel,
                m => {
                    return Err(ctx.attr_error(
                        "coordinate_transformation_mode",
                        format!("`{m}` (expected half_pixel or output_half_pixel)"),
                    ))
                }
            }
        };
        let positive = |name: &str| -> OpResult<usize> {
            match ctx.int(name, 1)? {
                v if v >= 1 => Ok(v as usize),
                v => Err(ctx.attr_error(name, format!("{v} must be >= 1"))),
            }
        };
        let sampling_ratio = match ctx.int("sampling_ratio", 0)? {
            v if v >= 0 => v as usize,
            v => return Err(ctx.attr_error("sampling_ratio", format!("{v} must be >= 0"))),
        };
        Ok(RoiAlignAttrs {
            mode,
            coord,
            out_h: positive("output_height")?,
            out_w: positive("output_width")?,
            sampling_ratio,
            spatial_scale: ctx.float("spatial_scale", 1.0)?,
        })
    }

    /// This decode with another coordinate convention (the port lanes').
    pub fn with_coord(self, coord: RoiCoord) -> Self {
        RoiAlignAttrs { coord, ..self }
    }

    /// One roi's (x1, y1, x2, y2) as its (y, x) start, bin size and grid.
    pub fn geometry(&self, roi: &[f64]) -> RoiGeometry {
        let s = self.spatial_scale as f64;
        let shift = match self.coord {
            RoiCoord::HalfPixel => 0.5,
            RoiCoord::OutputHalfPixel => 0.0,
        };
        let out = [self.out_h, self.out_w];
        let mut geo = RoiGeometry {
            start: [0.0; 2],
            bin: [0.0; 2],
            grid: [0; 2],
        };
        for a in 0..2 {
            let (lo, hi) = (roi[1 - a] * s - shift, roi[3 - a] * s - shift);
            let mut size = hi - lo;
            if self.coord == RoiCoord::OutputHalfPixel {
                size = size.max(1.0);
            }
            geo.start[a] = lo;
            geo.bin[a] = size / out[a] as f64;
            geo.grid[a] = match self.sampling_ratio {
                0 => (size / out[a] as f64).ceil().max(0.0) as usize,
                r => r,
            };
        }
        geo
    }

    /// The bilinear taps of every sample of every output bin of a roi on an
    /// (h, w) plane, bin-major: `out_h · out_w` bins of `grid_h · grid_w`
    /// samples of four taps (a sample outside the plane: four zero-weight
    /// taps at 0). For the composed lowerings, which gather with it.
    pub fn taps(&self, roi: &[f64], h: usize, w: usize) -> (RoiGeometry, Vec<Tap>) {
        let g = self.geometry(roi);
        let mut taps = Vec::new();
        for ph in 0..self.out_h {
            for pw in 0..self.out_w {
                for iy in 0..g.grid[0] {
                    let y = g.start[0]
                        + ph as f64 * g.bin[0]
                        + (iy as f64 + 0.5) * g.bin[0] / g.grid[0] as f64;
                    for ix in 0..g.grid[1] {
                        let x = g.start[1]
                            + pw as f64 * g.bin[1]
                            + (ix as f64 + 0.5) * g.bin[1] / g.grid[1] as f64;
                        taps.extend(corner_taps(y, x, h, w));
                    }
                }
            }
        }
        (g, taps)
    }
}

/// The four (index, weight) taps of a point on an (h, w) plane.
fn corner_taps(y: f64, x: f64, h: usize, w: usize) -> [Tap; 4] {
    if y < -1.0 || y > h as f64 || x < -1.0 || x > w as f64 {
        return [(0, 0.0); 4];
    }
    let (y0, y1, ly) = axis_taps(y, h);
    let (x0, x1, lx) = axis_taps(x, w);
    let (hy, hx) = (1.0 - ly, 1.0 - lx);
    [
        (y0 * w + x0, hy * hx),
        (y0 * w + x1, hy * lx),
        (y1 * w + x0, ly * hx),
        (y1 * w + x1, ly * lx),
    ]
}

/// The low and high neighbours of `c` along an axis of `n` and the high one's weight.
fn axis_taps(c: f64, n: usize) -> (usize, usize, f64) {
    let c = c.max(0.0);
    let lo = c.floor() as usize;
    if lo + 1 >= n {
        return (n - 1, n - 1, 0.0);
    }
    (lo, lo + 1, c - lo as f64)
}

/// RoiAlign's fingerprint space: the roi's half-pixel shift
/// (`coordinate_transformation_mode`, opset 16 on; torchvision's `aligned`)
/// and the pooling (`mode`).
pub fn space(ctx: &OpCtx, _: &[Option<&Tensor>]) -> Option<Space> {
    let a = RoiAlignAttrs::decode(ctx).ok()?;
    let mode = match a.mode {
        RoiMode::Avg => "avg",
        RoiMode::Max => "max",
    };
    let mut dims = vec![Dim::new("mode", Kind::Str, mode.into(), &["avg", "max"])];
    if ctx.opset >= 16 {
        let coord = match a.coord {
            RoiCoord::HalfPixel => "half_pixel",
            RoiCoord::OutputHalfPixel => "output_half_pixel",
        };
        dims.insert(
            0,
            Dim::new(
                "coordinate_transformation_mode",
                Kind::Str,
                coord.into(),
                &["half_pixel", "output_half_pixel"],
            ),
        );
    }
    Some(Space::plain(dims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;

    fn attrs(opset: u32, extra: Vec<(&str, Attr)>) -> OpResult<RoiAlignAttrs> {
        with("RoiAlign", opset, extra, RoiAlignAttrs::decode)
    }

    #[test]
    fn opset_10_has_no_half_pixel_shift_and_clamps_the_size() {
        let a = attrs(10, vec![("output_height", Attr::Int(2))]).unwrap();
        assert_eq!(a.coord, RoiCoord::OutputHalfPixel);
        let g = a.geometry(&[1.0, 1.0, 1.2, 1.5]);
        assert_eq!((g.start, g.bin, g.grid), ([1.0, 1.0], [0.5, 1.0], [1, 1]));
    }

    #[test]
    fn half_pixel_shifts_and_samples_adaptively() {
        let a = attrs(16, vec![("output_width", Attr::Int(2))]).unwrap();
        assert_eq!((a.coord, a.mode), (RoiCoord::HalfPixel, RoiMode::Avg));
        let g = a.geometry(&[0.0, 0.0, 5.0, 1.0]);
        assert_eq!((g.start, g.bin, g.grid), ([-0.5, -0.5], [1.0, 2.5], [1, 3]));
    }

    #[test]
    fn taps_clamp_at_the_border_and_drop_outside_points() {
        assert_eq!(corner_taps(-1.5, 0.0, 4, 4), [(0, 0.0); 4]);
        let t = corner_taps(3.5, 0.25, 4, 4);
        assert_eq!((t[0], t[1]), ((12, 0.75), (13, 0.25)));
    }

    #[test]
    fn space_offers_the_other_shift_from_opset_16() {
        let names = |opset| {
            with("RoiAlign", opset, vec![], |c| space(c, &[]))
                .unwrap()
                .dims
                .iter()
                .map(|d| (d.name, d.values.clone()))
                .collect::<Vec<_>>()
        };
        let hp = vec!["half_pixel".to_string(), "output_half_pixel".into()];
        assert_eq!(names(16)[0], ("coordinate_transformation_mode", hp));
        assert_eq!(names(10), vec![("mode", vec!["avg".into(), "max".into()])]);
    }

    #[test]
    fn rejects_bad_mode_coord_and_sizes() {
        assert!(attrs(16, vec![("mode", Attr::String("sum".into()))]).is_err());
        let ctm = (
            "coordinate_transformation_mode",
            Attr::String("align".into()),
        );
        assert!(attrs(16, vec![ctm]).is_err());
        assert!(attrs(16, vec![("output_height", Attr::Int(0))]).is_err());
        assert!(attrs(16, vec![("sampling_ratio", Attr::Int(-1))]).is_err());
    }
}
