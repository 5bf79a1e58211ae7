//! Reference ops: RMSNormalization, GroupNormalization, LRN and
//! MeanVarianceNormalization, written from the spec in f64 (decodes in
//! `op::norm3`).
//!
//! Each statistic (mean square, group mean and population variance, the
//! channel square sum, the MVN mean and variance) is computed in f64 over
//! exactly the elements the spec names, so a lane's choice of window or
//! variance shows in the diff.

use ndarray::{ArrayD, Axis, IxDyn};

use super::util::float_input;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::norm3::{mvn_axes, GroupNormAttrs, LrnAttrs, RmsNormAttrs, MVN_EPSILON};

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes (statistics in f64, whatever stash_type says)",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    r.range(
        "RMSNormalization",
        23,
        u32::MAX,
        rms_norm,
        spec!("RMSNormalization"),
        SPEC,
    );
    for (since, until) in [(18, 20), (21, u32::MAX)] {
        r.range(
            "GroupNormalization",
            since,
            until,
            group_norm,
            spec!("GroupNormalization"),
            SPEC,
        );
    }
    r.op("LRN", lrn, spec!("LRN"), SPEC);
    r.range(
        "MeanVarianceNormalization",
        9,
        u32::MAX,
        mvn,
        spec!("MeanVarianceNormalization"),
        SPEC,
    );
}

/// RMSNormalization-23: x / √(mean(x²) over axes axis.. + ε) · scale.
fn rms_norm(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let a = float_input(ctx, x, 0)?;
    let s = RmsNormAttrs::decode(ctx, a.ndim())?;
    let scale = float_input(ctx, x, 1)?;
    let scale = scale.broadcast(a.raw_dim()).ok_or_else(|| {
        ctx.fail(format!(
            "input `scale` {:?} does not broadcast to X {:?}",
            scale.shape(),
            a.shape()
        ))
    })?;
    let n: usize = a.shape()[s.axis..].iter().product();
    let mut y: Vec<f64> = a.iter().copied().collect();
    for row in y.chunks_mut(n.max(1)) {
        let ms = row.iter().map(|v| v * v).sum::<f64>() / n as f64;
        let inv = 1.0 / (ms + s.epsilon).sqrt();
        row.iter_mut().for_each(|v| *v *= inv);
    }
    let mut y = ArrayD::from_shape_vec(IxDyn(a.shape()), y).expect("X's shape");
    y.zip_mut_with(&scale, |v, s| *v *= s);
    Ok(Lowered::one(RefTensor::float(y, data.dtype), How::Spec))
}

/// GroupNormalization-18/21: per (n, group), (x − mean) / √(var + ε) · scale + bias,
/// with scale and bias per group (18) or per channel (21).
fn group_norm(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let a = float_input(ctx, x, 0)?;
    let g = GroupNormAttrs::decode(ctx, a.shape())?;
    let (scale, bias) = (float_input(ctx, x, 1)?, float_input(ctx, x, 2)?);
    g.check_param(ctx, "scale", scale.len())?;
    g.check_param(ctx, "bias", bias.len())?;
    let (scale, bias): (Vec<f64>, Vec<f64>) = (
        scale.iter().copied().collect(),
        bias.iter().copied().collect(),
    );
    let per_channel: usize = a.shape()[2..].iter().product();
    let cpg = g.channels / g.groups;
    let group_len = cpg * per_channel;
    let mut y: Vec<f64> = a.iter().copied().collect();
    for (k, grp) in y.chunks_mut(group_len.max(1)).enumerate() {
        let n = grp.len() as f64;
        let mean = grp.iter().sum::<f64>() / n;
        let var = grp.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let inv = 1.0 / (var + g.epsilon).sqrt();
        let group = k % g.groups;
        for (q, v) in grp.iter_mut().enumerate() {
            let c = group * cpg + q / per_channel.max(1);
            let p = if g.per_group_params { group } else { c };
            *v = (*v - mean) * inv * scale[p] + bias[p];
        }
    }
    let y = ArrayD::from_shape_vec(IxDyn(a.shape()), y).expect("X's shape");
    Ok(Lowered::one(RefTensor::float(y, data.dtype), How::Spec))
}

/// LRN-1/13: x / (bias + alpha/size · Σ x²)^beta, the sum over the channels
/// [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉] that exist.
fn lrn(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let a = float_input(ctx, x, 0)?.as_standard_layout().into_owned();
    let l = LrnAttrs::decode(ctx, a.ndim())?;
    let c = a.shape()[1];
    let mut y = a.clone();
    for (mut out, inp) in y.axis_iter_mut(Axis(0)).zip(a.axis_iter(Axis(0))) {
        for ch in 0..c {
            let lo = ch.saturating_sub(l.before);
            let hi = (ch + l.after).min(c - 1);
            let mut sq = inp.index_axis(Axis(0), lo).mapv(|v| v * v);
            for j in lo + 1..=hi {
                sq.zip_mut_with(&inp.index_axis(Axis(0), j), |s, v| *s += v * v);
            }
            out.index_axis_mut(Axis(0), ch).zip_mut_with(&sq, |v, s| {
                *v /= (l.bias + l.alpha / l.size as f64 * s).powf(l.beta)
            });
        }
    }
    Ok(Lowered::one(RefTensor::float(y, data.dtype), How::Spec))
}

/// The mean of `a` over `axes`, kept as size-1 axes.
fn mean_over(a: &ArrayD<f64>, axes: &[usize]) -> ArrayD<f64> {
    let mut m = a.clone();
    for &ax in axes {
        let n = m.shape()[ax] as f64;
        m = m.sum_axis(Axis(ax)).insert_axis(Axis(ax)).mapv(|v| v / n);
    }
    m
}

/// MeanVarianceNormalization-9/13: (x − E[x]) / (√(E[x²] − E[x]²) + 1e-9) over `axes`.
fn mvn(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let a = float_input(ctx, x, 0)?;
    let axes = mvn_axes(ctx, a.ndim())?;
    let centred = a - &mean_over(a, &axes);
    // E[(x − E[x])²] = E[x²] − E[x]² (the body's formula) without its cancellation.
    let std = mean_over(&centred.mapv(|v| v * v), &axes).mapv(|v| v.sqrt() + MVN_EPSILON);
    let y = &centred / &std;
    Ok(Lowered::one(RefTensor::float(y, data.dtype), How::Spec))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, test_node};
    use crate::graph::Attr;

    fn close(got: Vec<f64>, want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn rms_norm_broadcasts_scale() {
        let x = f(&[2, 2], &[3., 4., 1., 1.]);
        let s = f(&[2], &[1., 2.]);
        let node = test_node(
            "RMSNormalization",
            2,
            1,
            vec![("epsilon", Attr::Float(0.0))],
        );
        let y = run_op(&node, 23, &[Some(&x), Some(&s)])
            .unwrap()
            .remove(0)
            .unwrap();
        let r = 12.5f64.sqrt();
        close(y.data.to_f64_vec(), &[3. / r, 8. / r, 1., 2.]);
    }

    #[test]
    fn group_norm_per_group_params_at_18() {
        // C = 2 in 2 groups: each channel normalized alone, then its group's scale/bias.
        let x = f(&[1, 2, 2], &[1., 3., 5., 7.]);
        let (s, b) = (f(&[2], &[2., 1.]), f(&[2], &[0., 7.]));
        let attrs = vec![("num_groups", Attr::Int(2)), ("epsilon", Attr::Float(0.0))];
        let node = test_node("GroupNormalization", 3, 1, attrs);
        let y = run_op(&node, 18, &[Some(&x), Some(&s), Some(&b)])
            .unwrap()
            .remove(0);
        close(y.unwrap().data.to_f64_vec(), &[-2., 2., 6., 8.]);
        // At 18 a per-channel scale of a 1-group norm is a bad input.
        let node = test_node(
            "GroupNormalization",
            3,
            1,
            vec![("num_groups", Attr::Int(1))],
        );
        assert!(run_op(&node, 18, &[Some(&x), Some(&s), Some(&b)]).is_err());
    }

    #[test]
    fn lrn_sums_floor_before_ceil_after() {
        // size 2: channel c sums c and c + 1 (none before); alpha/size = 1, beta 1, bias 0.
        let x = f(&[1, 3, 1], &[1., 2., 3.]);
        let attrs = vec![
            ("size", Attr::Int(2)),
            ("alpha", Attr::Float(2.0)),
            ("beta", Attr::Float(1.0)),
            ("bias", Attr::Float(0.0)),
        ];
        let node = test_node("LRN", 1, 1, attrs);
        let y = run_op(&node, 13, &[Some(&x)]).unwrap().remove(0).unwrap();
        close(y.data.to_f64_vec(), &[1. / 5., 2. / 13., 3. / 9.]);
    }

    #[test]
    fn mvn_over_given_axes() {
        let x = f(&[1, 2, 2], &[1., 3., 10., 10.]);
        let node = test_node(
            "MeanVarianceNormalization",
            1,
            1,
            vec![("axes", Attr::Ints(vec![2]))],
        );
        let y = run_op(&node, 13, &[Some(&x)]).unwrap().remove(0).unwrap();
        let d = 1. + 1e-9;
        close(y.data.to_f64_vec(), &[-1. / d, 1. / d, 0., 0.]);
    }
}
