//! Reference ops: reductions (ReduceMean) and Softmax.
//!
//! Reductions are where accumulation order and precision make frameworks
//! drift apart, so the reference sums in f64 (integers exactly in i128) and
//! spells out the opset differences that change results: axes moving from an
//! attribute to an input (ReduceMean-18, with `noop_with_empty_axes`) and
//! Softmax's switch from "flatten to 2-D at `axis`" to a single axis (13).

use ndarray::{ArrayD, ArrayViewMut1, Axis, IxDyn};

use super::elementwise::IntElem;
use super::shape::arr;
use super::util::by_dtype;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::normalize_axis as norm_axis;
use crate::op::softmax::SoftmaxAttrs;
use crate::tensor::Tensor;

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    const MEAN: &str = "https://onnx.ai/onnx/operators/onnx__ReduceMean.html";
    const SOFTMAX: &str = "https://onnx.ai/onnx/operators/onnx__Softmax.html";
    for (since, until) in [(1, 17), (18, u32::MAX)] {
        r.range("ReduceMean", since, until, reduce_mean, MEAN, SPEC);
    }
    for (since, until) in [(1, 12), (13, u32::MAX)] {
        r.range("Softmax", since, until, softmax, SOFTMAX, SPEC);
    }
}

/// Applies `f` to the elements of every reduction group over `axes`
/// (normalized, distinct); the result keeps reduced axes as 1 when `keep`.
pub(super) fn reduce_with<T: Clone, U>(
    a: &ArrayD<T>,
    axes: &[usize],
    keep: bool,
    f: impl Fn(&[T]) -> U,
) -> ArrayD<U> {
    let r = a.ndim();
    let kept: Vec<usize> = (0..r).filter(|k| !axes.contains(k)).collect();
    let perm: Vec<usize> = kept.iter().chain(axes.iter()).copied().collect();
    let inner: usize = axes.iter().map(|&k| a.shape()[k]).product();
    let outer: usize = kept.iter().map(|&k| a.shape()[k]).product();
    let v = a.view().permuted_axes(IxDyn(&perm));
    let flat: Vec<T> = v.iter().cloned().collect();
    let out: Vec<U> = if inner == 0 {
        (0..outer).map(|_| f(&[])).collect()
    } else {
        flat.chunks_exact(inner).map(&f).collect()
    };
    let shape: Vec<usize> = (0..r)
        .filter_map(|k| {
            if axes.contains(&k) {
                keep.then_some(1)
            } else {
                Some(a.shape()[k])
            }
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), out).expect("reduced shape")
}

/// The normalized, deduplicated reduction axes of a Reduce* node; `None` = identity
/// (empty axes with `noop_with_empty_axes`).
pub(super) fn reduce_axes(
    ctx: &OpCtx,
    x: &[Option<&RefTensor>],
    rank: usize,
) -> OpResult<Option<Vec<usize>>> {
    let given =
        if ctx.opset < 18 {
            ctx.ints("axes")?
        } else {
            match x.get(1).copied().flatten() {
                None => None,
                Some(t) => Some(t.data.to_i64_vec().ok_or_else(|| {
                    ctx.fail(format!("input `axes` must be int64, got {}", t.dtype))
                })?),
            }
        };
    let given = given.unwrap_or_default();
    if given.is_empty() {
        if ctx.opset >= 18 && ctx.int("noop_with_empty_axes", 0)? != 0 {
            return Ok(None);
        }
        return Ok(Some((0..rank).collect()));
    }
    let mut axes = Vec::with_capacity(given.len());
    for a in given {
        let k = norm_axis(a, rank)
            .map_err(|_| ctx.fail(format!("`axes` entry {a} is out of range for rank {rank}")))?;
        if !axes.contains(&k) {
            axes.push(k);
        }
    }
    axes.sort_unstable();
    Ok(Some(axes))
}

fn int_mean<T: IntElem>(ctx: &OpCtx, t: &Tensor, axes: &[usize], keep: bool) -> OpResult<Tensor> {
    let out = reduce_with(arr::<T>(t), axes, keep, |v| {
        (!v.is_empty())
            .then(|| T::narrow(v.iter().map(|x| x.wide()).sum::<i128>() / v.len() as i128))
    });
    if out.iter().any(Option::is_none) {
        return Err(ctx.fail("ReduceMean of an empty axis has no integer value"));
    }
    Ok(T::wrap(out.mapv(|v| v.expect("checked"))))
}

/// ReduceMean-1/11/13/18: mean over `axes` (attribute before 18, input since,
/// `noop_with_empty_axes` 18), `keepdims` default 1. An empty group gives NaN
/// (0/0, as onnx.reference); integers truncate toward zero.
fn reduce_mean(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let Some(axes) = reduce_axes(ctx, x, data.shape().len())? else {
        return Ok(Lowered::one(data.clone(), How::Spec));
    };
    let keep = ctx.int("keepdims", 1)? != 0;
    let out = match &data.data {
        Tensor::F64(a) => Tensor::F64(reduce_with(a, &axes, keep, |v| {
            v.iter().sum::<f64>() / v.len() as f64
        })),
        t => by_dtype!(ints t.dtype(), T => int_mean::<T>(ctx, t, &axes, keep)?,
            _ => return Err(ctx.fail(format!("ReduceMean of {}", data.dtype)))),
    };
    Ok(Lowered::one(RefTensor::like(data, out), How::Spec))
}

/// Normalizes one group in place: exp(v - max) / sum (NaN anywhere gives NaN).
fn softmax_lane(mut lane: ArrayViewMut1<f64>) {
    let m = lane.fold(f64::NEG_INFINITY, |m, &v| {
        if m.is_nan() || v.is_nan() {
            f64::NAN
        } else {
            m.max(v)
        }
    });
    lane.mapv_inplace(|v| (v - m).exp());
    let sum = lane.sum();
    lane.mapv_inplace(|v| v / sum);
}

/// Softmax-1/11: the input coerced to 2-D at `axis` (default 1) and
/// normalized over each row, i.e. over all dims ≥ axis. Softmax-13: one `axis`
/// (default -1). The axis is decoded by [`SoftmaxAttrs`]. Both subtract the
/// group max first.
fn softmax(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let a = data.f64().map_err(|_| {
        ctx.fail(format!(
            "input `input` must be a float tensor, got {}",
            data.dtype
        ))
    })?;
    let s = SoftmaxAttrs::decode(ctx, a.ndim())?;
    let mut out = a.as_standard_layout().into_owned();
    if s.coerced {
        let inner: usize = a.shape()[s.axis..].iter().product();
        if inner > 0 {
            let flat = out.as_slice_mut().expect("standard layout");
            for row in flat.chunks_exact_mut(inner) {
                softmax_lane(ArrayViewMut1::from(row));
            }
        }
    } else {
        for lane in out.lanes_mut(Axis(s.axis)) {
            softmax_lane(lane);
        }
    }
    Ok(Lowered::one(RefTensor::float(out, data.dtype), How::Spec))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use super::*;
    use crate::graph::Attr;

    fn run(
        op: &str,
        opset: u32,
        attrs: Vec<(&str, Attr)>,
        ins: &[Option<&RefTensor>],
    ) -> RefTensor {
        let node = test_node(op, ins.len(), 1, attrs);
        run_op(&node, opset, ins).unwrap().remove(0).unwrap()
    }
    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn reduce_mean_axes_attr_and_input() {
        let x = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let y = run(
            "ReduceMean",
            13,
            vec![("axes", Attr::Ints(vec![-1]))],
            &[Some(&x)],
        );
        assert_eq!(y.shape(), &[2, 1]);
        close(&y.data.to_f64_vec(), &[2., 5.]);
        let y = run(
            "ReduceMean",
            18,
            vec![("keepdims", Attr::Int(0))],
            &[Some(&x), Some(&i(&[1], &[0]))],
        );
        assert_eq!(y.shape(), &[3]);
        close(&y.data.to_f64_vec(), &[2.5, 3.5, 4.5]);
        // all axes by default; noop with empty axes
        close(
            &run("ReduceMean", 18, vec![], &[Some(&x)]).data.to_f64_vec(),
            &[3.5],
        );
        let y = run(
            "ReduceMean",
            18,
            vec![("noop_with_empty_axes", Attr::Int(1))],
            &[Some(&x), Some(&i(&[0], &[]))],
        );
        assert_eq!(y, x);
        // empty reduction: NaN
        let e = f(&[2, 0], &[]);
        let y = run(
            "ReduceMean",
            13,
            vec![("axes", Attr::Ints(vec![1]))],
            &[Some(&e)],
        );
        assert!(y.data.to_f64_vec().iter().all(|v| v.is_nan()) && y.shape() == [2, 1]);
        let xi = i(&[3], &[-1, -2, 0]);
        assert_eq!(
            run("ReduceMean", 13, vec![], &[Some(&xi)])
                .data
                .to_f64_vec(),
            vec![-1.]
        );
    }

    #[test]
    fn softmax_axis_coercion_by_opset() {
        let x = f(&[1, 2, 2], &[0., 0., 0., (3f64).ln()]);
        // opset 11, axis 1: normalize over the 4 values of each batch row together
        let y = run("Softmax", 11, vec![], &[Some(&x)]);
        close(&y.data.to_f64_vec(), &[1. / 6., 1. / 6., 1. / 6., 3. / 6.]);
        // opset 13, axis 1: normalize along dim 1 only
        let y = run("Softmax", 13, vec![("axis", Attr::Int(1))], &[Some(&x)]);
        close(&y.data.to_f64_vec(), &[0.5, 0.25, 0.5, 0.75]);
        // opset 13 default -1
        let y = run("Softmax", 13, vec![], &[Some(&x)]);
        close(&y.data.to_f64_vec(), &[0.5, 0.5, 0.25, 0.75]);
        // large values stay finite
        let y = run("Softmax", 13, vec![], &[Some(&f(&[2], &[1000., 1000.]))]);
        close(&y.data.to_f64_vec(), &[0.5, 0.5]);
        let node = test_node("Softmax", 1, 1, vec![("axis", Attr::Int(3))]);
        assert!(run_op(&node, 13, &[Some(&x)]).is_err());
        // axis = rank was accepted before opset 13; the spec's range is [-r, r-1].
        assert!(run_op(&node, 11, &[Some(&x)]).is_err());
    }
}
