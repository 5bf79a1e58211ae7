//! Reference ops: DepthToSpace and GridSample, written from the spec in f64
//! (decodes in `op::depth_to_space` and `op::grid_sample`).
//!
//! GridSample follows the spec's steps per output point (in the order of
//! ONNX's own reference implementation, where the text leaves it open):
//! unnormalise each grid coordinate (with or without `align_corners`); for
//! nearest, round it half to even; where it lies outside the borders [0, d−1]
//! (aligned) or [−½, d−½], clamp it to [0, d−1] (`border`) or reflect it
//! about the borders (`reflection`); then interpolate over the neighbours
//! (1, 2 or 4 per axis), each neighbour index itself padded: zeros read 0
//! outside, border clamps, reflection reflects. The same walk with |weights| and |values| gives the magnitude
//! the local error bound scales with (`diff::bound`).

use ndarray::{ArrayD, IxDyn};

use super::shape::arr;
use super::util::{by_dtype, float_input};
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::depth_to_space::DepthToSpacePlan;
use crate::op::grid_sample::{output_dims, GridSampleAttrs, SampleMode, SamplePadding};
use crate::tensor::Element;

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

/// The cubic convolution constant the spec fixes.
const CUBIC_A: f64 = -0.75;

pub fn register(r: &mut OpRegistry<RefTensor>) {
    r.op("DepthToSpace", depth_to_space, spec!("DepthToSpace"), SPEC);
    r.range(
        "GridSample",
        16,
        u32::MAX,
        grid_sample,
        spec!("GridSample"),
        SPEC,
    );
}

/// DepthToSpace-1/11/13: (N, C, H, W) → (N, C/b², H·b, W·b) in DCR or CRD order.
fn depth_to_space(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let plan = DepthToSpacePlan::decode(ctx, data.shape())?;
    let out = by_dtype!(data.data.dtype(), T => {
        let a = arr::<T>(&data.data).as_standard_layout().into_owned();
        let split = a.into_shape_with_order(IxDyn(&plan.split)).expect("plan's split");
        let moved = split.permuted_axes(IxDyn(&plan.perm));
        let flat: Vec<T> = moved.iter().copied().collect();
        T::wrap(ArrayD::from_shape_vec(IxDyn(&plan.out), flat).expect("plan's output"))
    });
    Ok(Lowered::one(RefTensor::like(data, out), How::Spec))
}

/// GridSample-16/20: every (n, c) plane sampled at the grid's points.
fn grid_sample(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let y = sample_all(ctx, x, false)?;
    Ok(Lowered::one(RefTensor::float(y, data.dtype), How::Spec))
}

/// `Σ |value|` over each output point's neighbours, read with the padding:
/// unweighted (|w| ≤ 1), so it also covers the weights' error from the
/// coordinate's own rounding (`diff::bound`).
pub fn magnitude(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<ArrayD<f64>> {
    sample_all(ctx, x, true)
}

fn sample_all(ctx: &OpCtx, x: &[Option<&RefTensor>], abs: bool) -> OpResult<ArrayD<f64>> {
    let (a, g) = (float_input(ctx, x, 0)?, float_input(ctx, x, 1)?);
    let attrs = GridSampleAttrs::decode(ctx, a.shape(), g.shape())?;
    let out = output_dims(a.shape(), g.shape());
    let s = Sampler::new(attrs, &a.shape()[2..], abs);
    let (a, g) = (a.as_standard_layout(), g.as_standard_layout());
    let (av, gv) = (
        a.as_slice().expect("standard"),
        g.as_slice().expect("standard"),
    );
    let (n, c, r) = (out[0], out[1], s.sizes.len());
    let plane: usize = s.sizes.iter().product();
    let points: usize = out[2..].iter().product();
    let mut y = Vec::with_capacity(n * c * points);
    for b in 0..n {
        for ch in 0..c {
            let img = &av[(b * c + ch) * plane..][..plane];
            for p in 0..points {
                y.push(s.sample(img, &gv[(b * points + p) * r..][..r]));
            }
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&out), y).expect("output dims"))
}

/// One input plane's geometry and the node's conventions.
struct Sampler {
    attrs: GridSampleAttrs,
    /// Spatial sizes, outermost first.
    sizes: Vec<usize>,
    /// Σ|v| instead of Σ w·v (the bound's magnitude).
    abs: bool,
}

impl Sampler {
    fn new(attrs: GridSampleAttrs, sizes: &[usize], abs: bool) -> Sampler {
        Sampler {
            attrs,
            sizes: sizes.to_vec(),
            abs,
        }
    }

    /// The reflection borders of an axis of `size`.
    fn borders(&self, size: usize) -> (f64, f64) {
        if self.attrs.align_corners {
            (0.0, size as f64 - 1.0)
        } else {
            (-0.5, size as f64 - 0.5)
        }
    }

    /// The grid value `g` as a position along an axis of `size`: nearest
    /// rounds it (half to even) first; a position outside the borders is
    /// then clamped to [0, d−1] (border) or reflected (reflection).
    fn locate(&self, g: f64, size: usize) -> f64 {
        let d = size as f64;
        let mut x = if self.attrs.align_corners {
            (g + 1.0) / 2.0 * (d - 1.0)
        } else {
            ((g + 1.0) * d - 1.0) / 2.0
        };
        if self.attrs.mode == SampleMode::Nearest {
            x = x.round_ties_even();
        }
        let (lo, hi) = self.borders(size);
        if (lo..=hi).contains(&x) {
            return x;
        }
        match self.attrs.padding {
            SamplePadding::Zeros => x,
            SamplePadding::Border => x.clamp(0.0, d - 1.0),
            SamplePadding::Reflection => reflect(x, lo, hi),
        }
    }

    /// The neighbours (index, weight) along one axis of a position `x`.
    fn taps(&self, x: f64) -> Vec<(i64, f64)> {
        let f = x.floor();
        let (i, t) = (f as i64, x - f);
        match self.attrs.mode {
            SampleMode::Nearest => vec![(x as i64, 1.0)],
            SampleMode::Linear => vec![(i, 1.0 - t), (i + 1, t)],
            SampleMode::Cubic => (i - 1..=i + 2).zip(cubic_coeffs(t)).collect(),
        }
    }

    /// The padded index along an axis of `size`, or None where zeros pads.
    fn pad(&self, i: i64, size: usize) -> Option<usize> {
        let last = size as i64 - 1;
        match self.attrs.padding {
            SamplePadding::Zeros => (0..=last).contains(&i).then_some(i as usize),
            SamplePadding::Border => Some(i.clamp(0, last) as usize),
            SamplePadding::Reflection => {
                let (lo, hi) = self.borders(size);
                Some((reflect(i as f64, lo, hi) as i64).clamp(0, last) as usize)
            }
        }
    }

    /// The value at grid point `g` (innermost coordinate first) of `img`.
    fn sample(&self, img: &[f64], g: &[f64]) -> f64 {
        let r = self.sizes.len();
        let taps: Vec<Vec<(i64, f64)>> = (0..r)
            .map(|k| self.taps(self.locate(g[r - 1 - k], self.sizes[k])))
            .collect();
        let mut pick = vec![0usize; r];
        let mut sum = 0.0;
        loop {
            sum += self.term(img, &taps, &pick);
            // odometer over the neighbours, innermost axis fastest
            let Some(k) = (0..r).rev().find(|&k| pick[k] + 1 < taps[k].len()) else {
                return sum;
            };
            pick[k] += 1;
            pick[k + 1..].iter_mut().for_each(|p| *p = 0);
        }
    }

    /// One neighbour's weight × value (zero where padding reads zero).
    fn term(&self, img: &[f64], taps: &[Vec<(i64, f64)>], pick: &[usize]) -> f64 {
        let (mut flat, mut w) = (0usize, 1.0);
        for (k, (&size, &p)) in self.sizes.iter().zip(pick).enumerate() {
            let (i, wk) = taps[k][p];
            let Some(i) = self.pad(i, size) else {
                return 0.0;
            };
            flat = flat * size + i;
            w *= wk;
        }
        if self.abs {
            // |v| unweighted: covers the weights' error from the coordinate
            img[flat].abs()
        } else {
            w * img[flat]
        }
    }
}

/// `x` reflected into [lo, hi] (repeatedly, as the spec's reflection padding).
fn reflect(x: f64, lo: f64, hi: f64) -> f64 {
    let range = hi - lo;
    if range <= 0.0 {
        return lo;
    }
    let (dx, from_lo) = if x < lo {
        (lo - x, true)
    } else if x > hi {
        (x - hi, false)
    } else {
        return x;
    };
    let flips = (dx / range).floor();
    let rest = dx - flips * range;
    if (flips % 2.0 == 0.0) == from_lo {
        lo + rest
    } else {
        hi - rest
    }
}

/// The four cubic convolution weights of a fractional offset `t` (a = −0.75).
fn cubic_coeffs(t: f64) -> [f64; 4] {
    let a = CUBIC_A;
    let far = |s: f64| ((a * s - 5.0 * a) * s + 8.0 * a) * s - 4.0 * a;
    let near = |s: f64| ((a + 2.0) * s - (a + 3.0)) * s * s + 1.0;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, test_node};
    use super::*;
    use crate::graph::Attr;

    #[test]
    fn depth_to_space_modes() {
        // C = 4, b = 2, 1×1 spatial: DCR reads channel (bh·2 + bw)·1 + 0.
        let x = f(&[1, 4, 1, 1], &[0., 1., 2., 3.]);
        for mode in ["DCR", "CRD"] {
            let attrs = vec![
                ("blocksize", Attr::Int(2)),
                ("mode", Attr::String(mode.into())),
            ];
            let node = test_node("DepthToSpace", 1, 1, attrs);
            let y = run_op(&node, 13, &[Some(&x)]).unwrap().remove(0).unwrap();
            assert_eq!(y.shape(), &[1, 1, 2, 2]);
            assert_eq!(y.data.to_f64_vec(), vec![0., 1., 2., 3.]);
        }
        // C = 8 (two output channels): DCR's channel 1 is input 1, 3, 5, 7.
        let x = f(&[1, 8, 1, 1], &[0., 1., 2., 3., 4., 5., 6., 7.]);
        let attrs = vec![("blocksize", Attr::Int(2))];
        let node = test_node("DepthToSpace", 1, 1, attrs);
        let y = run_op(&node, 13, &[Some(&x)]).unwrap().remove(0).unwrap();
        assert_eq!(y.data.to_f64_vec(), vec![0., 2., 4., 6., 1., 3., 5., 7.]);
    }

    fn sample(mode: &str, pad: &str, align: i64, g: &[f64]) -> Vec<f64> {
        let x = f(&[1, 1, 1, 4], &[1., 2., 3., 4.]);
        let grid = f(
            &[1, 1, g.len(), 2],
            &g.iter().flat_map(|&v| [v, 0.0]).collect::<Vec<_>>(),
        );
        let attrs = vec![
            ("mode", Attr::String(mode.into())),
            ("padding_mode", Attr::String(pad.into())),
            ("align_corners", Attr::Int(align)),
        ];
        let node = test_node("GridSample", 2, 1, attrs);
        let y = run_op(&node, 20, &[Some(&x), Some(&grid)])
            .unwrap()
            .remove(0)
            .unwrap();
        y.data.to_f64_vec()
    }

    #[test]
    fn grid_sample_conventions() {
        // aligned: -1 → 0, 1 → 3; unaligned: -1 → -0.5 (half a zero)
        assert_eq!(
            sample("linear", "zeros", 1, &[-1., 1., 0.]),
            vec![1., 4., 2.5]
        );
        assert_eq!(sample("linear", "zeros", 0, &[-1., 1.]), vec![0.5, 2.]);
        assert_eq!(sample("linear", "border", 0, &[-1., 1.5]), vec![1., 4.]);
        // unaligned x = 0.5·4 − 0.5 = 1.5 at g = 0: ties to even → 2 (value 3)
        assert_eq!(sample("nearest", "zeros", 0, &[0., -0.5]), vec![3., 1.]);
        // reflection about [-0.5, 3.5]: g = 1.5 → x = 4.5 → 2.5, between 3 and 4
        assert_eq!(sample("linear", "reflection", 0, &[1.5]), vec![3.5]);
        let c = sample("cubic", "border", 1, &[-1. / 3.]);
        assert!((c[0] - 2.0).abs() < 1e-12);
    }

    #[test]
    fn reflect_and_cubic_weights() {
        assert_eq!(reflect(-1.0, 0.0, 3.0), 1.0);
        assert_eq!(reflect(7.0, 0.0, 3.0), 1.0);
        assert_eq!(reflect(-0.75, -0.5, 3.5), -0.25);
        let w = cubic_coeffs(0.25);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(cubic_coeffs(0.0), [0.0, 1.0, 0.0, 0.0]);
    }
}
