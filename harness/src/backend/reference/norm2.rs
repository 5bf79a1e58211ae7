//! Reference ops: GlobalMaxPool, SpaceToDepth, InstanceNormalization and
//! LpNormalization, written from the spec in f64 (decodes in `op::norm2`).
//!
//! Statistics (instance mean and population variance, p-norms) are computed
//! in f64 over each group; a zero norm divides to NaN/inf as the formula does.

use ndarray::{ArrayD, Axis, IxDyn};

use super::reduce::{extreme, reduce_with};
use super::shape::arr;
use super::util::by_dtype;
use super::util::float_input;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::norm2::{instance_norm_epsilon, LpNormAttrs, SpaceToDepthPlan, SPACE_TO_DEPTH_PERM};
use crate::tensor::Element;

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    r.op(
        "GlobalMaxPool",
        global_max_pool,
        spec!("GlobalMaxPool"),
        SPEC,
    );
    r.op("SpaceToDepth", space_to_depth, spec!("SpaceToDepth"), SPEC);
    r.op(
        "InstanceNormalization",
        instance_norm,
        spec!("InstanceNormalization"),
        SPEC,
    );
    r.op("LpNormalization", lp_norm, spec!("LpNormalization"), SPEC);
}

/// GlobalMaxPool-1: the max over every axis from 2, kept as 1s (NaN propagates).
fn global_max_pool(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let a = float_input(ctx, x, 0)?;
    let axes: Vec<usize> = (2..a.ndim()).collect();
    let y = reduce_with(a, &axes, true, |v| extreme(v, true));
    Ok(Lowered::one(RefTensor::float(y, data.dtype), How::Spec))
}

/// SpaceToDepth-1/13: (N, C, H, W) → (N, C·b², H/b, W/b), channel (bh·b + bw)·C + c.
fn space_to_depth(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let plan = SpaceToDepthPlan::decode(ctx, data.shape())?;
    let out = by_dtype!(data.data.dtype(), T => {
        let a = arr::<T>(&data.data).as_standard_layout().into_owned();
        let split = a.into_shape_with_order(IxDyn(&plan.split)).expect("plan's split");
        let moved = split.permuted_axes(IxDyn(&SPACE_TO_DEPTH_PERM));
        let flat: Vec<T> = moved.iter().copied().collect();
        T::wrap(ArrayD::from_shape_vec(IxDyn(&plan.out), flat).expect("plan's output"))
    });
    Ok(Lowered::one(RefTensor::like(data, out), How::Spec))
}

/// InstanceNormalization-1/6/22: per (n, c), (x − mean) / √(var + ε) · scale[c] + B[c].
fn instance_norm(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let a = float_input(ctx, x, 0)?;
    let eps = instance_norm_epsilon(ctx, a.ndim())?;
    let (scale, bias) = (float_input(ctx, x, 1)?, float_input(ctx, x, 2)?);
    let c = a.shape()[1];
    if scale.len() != c || bias.len() != c {
        return Err(ctx.fail(format!("inputs `scale` and `B` must hold C = {c} values")));
    }
    let mut y = a.as_standard_layout().into_owned();
    for mut batch in y.axis_iter_mut(Axis(0)) {
        for (ch, mut g) in batch.axis_iter_mut(Axis(0)).enumerate() {
            let n = g.len() as f64;
            let mean = g.sum() / n;
            let var = g.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            let (s, b) = (
                scale.as_slice().map_or(1.0, |v| v[ch]),
                bias.as_slice().map_or(0.0, |v| v[ch]),
            );
            let inv = 1.0 / (var + eps).sqrt();
            g.mapv_inplace(|v| (v - mean) * inv * s + b);
        }
    }
    Ok(Lowered::one(RefTensor::float(y, data.dtype), How::Spec))
}

/// LpNormalization-1/22: x / ‖x‖ₚ along `axis` (p = 1 or 2).
fn lp_norm(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let a = float_input(ctx, x, 0)?;
    let s = LpNormAttrs::decode(ctx, a.ndim())?;
    let mut y = a.as_standard_layout().into_owned();
    for mut lane in y.lanes_mut(Axis(s.axis)) {
        let norm = if s.p == 1 {
            lane.iter().map(|v| v.abs()).sum::<f64>()
        } else {
            lane.iter().map(|v| v * v).sum::<f64>().sqrt()
        };
        lane.mapv_inplace(|v| v / norm);
    }
    Ok(Lowered::one(RefTensor::float(y, data.dtype), How::Spec))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, test_node};
    use crate::graph::Attr;

    #[test]
    fn space_to_depth_orders_block_before_channel() {
        // C = 2, H = W = 2, b = 2: output channel (bh·2 + bw)·2 + c.
        let x = f(&[1, 2, 2, 2], &[0., 1., 2., 3., 10., 11., 12., 13.]);
        let node = test_node("SpaceToDepth", 1, 1, vec![("blocksize", Attr::Int(2))]);
        let y = run_op(&node, 13, &[Some(&x)]).unwrap().remove(0).unwrap();
        assert_eq!(y.shape(), &[1, 8, 1, 1]);
        assert_eq!(
            y.data.to_f64_vec(),
            vec![0., 10., 1., 11., 2., 12., 3., 13.]
        );
    }

    #[test]
    fn instance_and_lp_norm() {
        let x = f(&[1, 1, 4], &[1., 2., 3., 4.]);
        let (s, b) = (f(&[1], &[2.]), f(&[1], &[1.]));
        let node = test_node(
            "InstanceNormalization",
            3,
            1,
            vec![("epsilon", Attr::Float(0.0))],
        );
        let y = run_op(&node, 6, &[Some(&x), Some(&s), Some(&b)])
            .unwrap()
            .remove(0)
            .unwrap();
        let want = [-1.5, -0.5, 0.5, 1.5].map(|v: f64| v / 1.25f64.sqrt() * 2. + 1.);
        for (g, w) in y.data.to_f64_vec().iter().zip(want) {
            assert!((g - w).abs() < 1e-12);
        }
        let node = test_node("LpNormalization", 1, 1, vec![("p", Attr::Int(1))]);
        let y = run_op(&node, 1, &[Some(&x)]).unwrap().remove(0).unwrap();
        assert_eq!(y.data.to_f64_vec(), vec![0.1, 0.2, 0.3, 0.4]);
    }
}
