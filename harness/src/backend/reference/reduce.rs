//! Reference ops: the Reduce* family, ArgMax/ArgMin, Softmax, LogSoftmax
//! and Hardmax.
//!
//! Reductions are where accumulation order and precision make frameworks
//! drift apart, so the reference reduces in f64 (integers exactly in i128,
//! wrapped to their width at the end). Which axes are reduced, and the opset
//! differences in that (axes moving from an attribute to an input, with
//! `noop_with_empty_axes`), are decoded once by [`ReduceAttrs`]; Softmax's
//! switch from "flatten to 2-D at `axis`" to a single axis (13) by
//! [`SoftmaxAttrs`]. An empty reduction gives the operation's identity
//! (0 for sums, 1 for ReduceProd, -inf for ReduceMax/LogSum/LogSumExp, +inf
//! for ReduceMin, NaN for ReduceMean); a NaN anywhere in a Max/Min group
//! gives NaN.

use ndarray::{ArrayD, ArrayViewMut1, Axis, IxDyn};

use super::shape::{arr, float_to, ints_to, wide_ints, Pick};
use super::util::by_dtype;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::reduce::{axes_input_since, ArgAttrs, ReduceAttrs};
use crate::op::softmax::SoftmaxAttrs;
use crate::tensor::Tensor;

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

/// The Reduce* ops and what each computes.
const REDUCTIONS: &[(&str, Red, &str)] = &[
    ("ReduceSum", Red::Sum, spec!("ReduceSum")),
    ("ReduceMean", Red::Mean, spec!("ReduceMean")),
    ("ReduceMax", Red::Max, spec!("ReduceMax")),
    ("ReduceMin", Red::Min, spec!("ReduceMin")),
    ("ReduceProd", Red::Prod, spec!("ReduceProd")),
    ("ReduceL1", Red::L1, spec!("ReduceL1")),
    ("ReduceL2", Red::L2, spec!("ReduceL2")),
    ("ReduceLogSum", Red::LogSum, spec!("ReduceLogSum")),
    ("ReduceLogSumExp", Red::LogSumExp, spec!("ReduceLogSumExp")),
    ("ReduceSumSquare", Red::SumSquare, spec!("ReduceSumSquare")),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Red {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    LogSum,
    LogSumExp,
    SumSquare,
}

pub fn register(r: &mut OpRegistry<RefTensor>) {
    for &(op, _, spec) in REDUCTIONS {
        let split = axes_input_since(op);
        r.range(op, 1, split - 1, reduce, spec, SPEC);
        r.range(op, split, u32::MAX, reduce, spec, SPEC);
    }
    for op in ["ArgMax", "ArgMin"] {
        let spec = if op == "ArgMax" {
            spec!("ArgMax")
        } else {
            spec!("ArgMin")
        };
        r.range(op, 1, 11, arg_extreme, spec, SPEC);
        r.range(op, 12, u32::MAX, arg_extreme, spec, SPEC);
    }
    let normalizers = [
        ("Softmax", spec!("Softmax")),
        ("LogSoftmax", spec!("LogSoftmax")),
        ("Hardmax", spec!("Hardmax")),
    ];
    for (op, spec) in normalizers {
        r.range(op, 1, 12, softmax, spec, SPEC);
        r.range(op, 13, u32::MAX, softmax, spec, SPEC);
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
    let shape = ReduceAttrs {
        axes: Some(axes.to_vec()),
        keep,
    }
    .out_dims(a.shape());
    ArrayD::from_shape_vec(IxDyn(&shape), out).expect("reduced shape")
}

/// Max (or min) of a group, NaN if any element is NaN.
pub(super) fn extreme(v: &[f64], max: bool) -> f64 {
    let init = if max {
        f64::NEG_INFINITY
    } else {
        f64::INFINITY
    };
    v.iter().fold(init, |m, &x| match () {
        _ if m.is_nan() || x.is_nan() => f64::NAN,
        _ if max => m.max(x),
        _ => m.min(x),
    })
}

/// One float group reduced by `r`.
fn reduce_f64(r: Red, v: &[f64]) -> f64 {
    let sum = |f: fn(f64) -> f64| v.iter().map(|&x| f(x)).sum::<f64>();
    match r {
        Red::Sum => sum(|x| x),
        Red::Mean => sum(|x| x) / v.len() as f64,
        Red::Max => extreme(v, true),
        Red::Min => extreme(v, false),
        Red::Prod => v.iter().product(),
        Red::L1 => sum(f64::abs),
        Red::L2 => sum(|x| x * x).sqrt(),
        Red::LogSum => sum(|x| x).ln(),
        Red::SumSquare => sum(|x| x * x),
        Red::LogSumExp => {
            let m = extreme(v, true);
            if !m.is_finite() {
                // -inf (empty or all -inf), +inf or NaN: the direct formula.
                return sum(f64::exp).ln();
            }
            m + v.iter().map(|&x| (x - m).exp()).sum::<f64>().ln()
        }
    }
}

/// One integer group reduced exactly (wrapped to the dtype later); `None`
/// when the reduction has no integer value (the mean or extreme of nothing).
fn reduce_int(r: Red, v: &[i128]) -> Option<i128> {
    Some(match r {
        Red::Sum => v.iter().sum(),
        Red::Mean => v.iter().sum::<i128>().checked_div(v.len() as i128)?,
        Red::Max => *v.iter().max()?,
        Red::Min => *v.iter().min()?,
        Red::Prod => v.iter().fold(1i128, |p, &x| p.wrapping_mul(x)),
        Red::L1 => v.iter().map(|x| x.abs()).sum(),
        Red::SumSquare => v.iter().map(|x| x.wrapping_mul(*x)).sum(),
        Red::L2 | Red::LogSum | Red::LogSumExp => unreachable!("reduced as floats"),
    })
}

/// Reduce*-1/11/13/18 (ReduceSum's axes input from 13, the others' from
/// 18; see [`ReduceAttrs`]). Integers reduce exactly and wrap to their
/// width; L2, LogSum and LogSumExp of integers are computed in f64 and
/// truncated, as ONNX Runtime casts them back.
fn reduce(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let op = ctx.node.op_type.as_str();
    let red = REDUCTIONS
        .iter()
        .find(|(o, ..)| *o == op)
        .expect("registered")
        .1;
    let attrs = ReduceAttrs::decode(ctx, x, data.shape().len())?;
    let Some(axes) = attrs.axes else {
        return Ok(Lowered::one(data.clone(), How::Spec));
    };
    let keep = attrs.keep;
    let float_only = matches!(red, Red::L2 | Red::LogSum | Red::LogSumExp);
    let out = match (&data.data, wide_ints(&data.data)) {
        (Tensor::F64(a), _) => {
            let y = reduce_with(a, &axes, keep, |v| reduce_f64(red, v));
            return Ok(Lowered::one(RefTensor::float(y, data.dtype), How::Spec));
        }
        (_, Some(w)) if float_only => {
            let y = reduce_with(&w.mapv(|v| v as f64), &axes, keep, |v| reduce_f64(red, v));
            float_to(&y, data.dtype)
        }
        (_, Some(w)) => {
            let y = reduce_with(&w, &axes, keep, |v| reduce_int(red, v));
            if y.iter().any(Option::is_none) {
                return Err(ctx.fail(format!(
                    "{op} of an empty {} group has no value",
                    data.dtype
                )));
            }
            ints_to(&y.mapv(|v| v.expect("checked")), data.dtype)
        }
        _ => return Err(ctx.fail(format!("{op} of {}", data.dtype))),
    };
    Ok(Lowered::one(RefTensor::exact(out), How::Spec))
}

/// The index of the max (or min) of one lane: the first on ties, or the
/// last with `last`; a NaN counts as the extreme (numpy's `argmax`).
fn arg_of<T: PartialOrd + Copy>(lane: impl Iterator<Item = T>, max: bool, last: bool) -> i64 {
    let mut best: Option<(usize, T)> = None;
    for (i, v) in lane.enumerate() {
        #[allow(clippy::eq_op)]
        let nan = |t: T| t != t;
        let better = match best {
            None => true,
            Some((_, b)) if nan(b) => false,
            Some(_) if nan(v) => true,
            Some((_, b)) if v == b => last,
            Some((_, b)) => (v > b) == max,
        };
        if better {
            best = Some((i, v));
        }
    }
    best.map_or(0, |(i, _)| i as i64)
}

fn arg_array<T: Pick + Copy>(a: &ArrayD<T>, s: ArgAttrs, max: bool) -> ArrayD<i64> {
    let mut y = a.map_axis(Axis(s.axis), |lane| {
        arg_of(lane.iter().copied(), max, s.last)
    });
    if s.keep {
        y.insert_axis_inplace(Axis(s.axis));
    }
    y
}

/// ArgMax/ArgMin-1/11/12/13: int64 index of the extreme along `axis`
/// (ties: first, or last with `select_last_index`).
fn arg_extreme(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let s = ArgAttrs::decode(ctx, data.shape().len())?;
    if data.shape().get(s.axis) == Some(&0) {
        return Err(ctx.fail(format!("{} over an empty axis", ctx.node.op_type)));
    }
    let max = ctx.node.op_type == "ArgMax";
    let y = by_dtype!(data.data.dtype(), T => arg_array(arr::<T>(&data.data), s, max));
    Ok(Lowered::one(RefTensor::exact(Tensor::I64(y)), How::Spec))
}

/// The group max, NaN if any element is NaN.
fn lane_max(lane: &ArrayViewMut1<f64>) -> f64 {
    lane.fold(f64::NEG_INFINITY, |m, &v| {
        if m.is_nan() || v.is_nan() {
            f64::NAN
        } else {
            m.max(v)
        }
    })
}

/// Softmax of one group in place: exp(v - max) / sum (NaN anywhere gives NaN).
fn softmax_lane(mut lane: ArrayViewMut1<f64>) {
    let m = lane_max(&lane);
    lane.mapv_inplace(|v| (v - m).exp());
    let sum = lane.sum();
    lane.mapv_inplace(|v| v / sum);
}

/// LogSoftmax of one group in place: (v - max) - ln Σ exp(v - max).
pub(super) fn log_softmax_lane(mut lane: ArrayViewMut1<f64>) {
    let m = lane_max(&lane);
    let lse = lane.iter().map(|&v| (v - m).exp()).sum::<f64>().ln();
    lane.mapv_inplace(|v| v - m - lse);
}

/// Hardmax of one group in place: 1 at the first maximum, 0 elsewhere.
fn hardmax_lane(mut lane: ArrayViewMut1<f64>) {
    let at = arg_of(lane.iter().copied(), true, false) as usize;
    for (i, v) in lane.iter_mut().enumerate() {
        *v = f64::from(u8::from(i == at));
    }
}

/// Softmax, LogSoftmax and Hardmax-1/11: the input coerced to 2-D at `axis` (default 1) and
/// normalized over each row, i.e. over all dims ≥ axis. Softmax-13: one `axis`
/// (default -1). The axis is decoded by [`SoftmaxAttrs`]. Softmax and
/// LogSoftmax subtract the
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
    let lane_fn = match ctx.node.op_type.as_str() {
        "LogSoftmax" => log_softmax_lane,
        "Hardmax" => hardmax_lane,
        _ => softmax_lane,
    };
    let mut out = a.as_standard_layout().into_owned();
    if s.coerced {
        let inner: usize = a.shape()[s.axis..].iter().product();
        if inner > 0 {
            let flat = out.as_slice_mut().expect("standard layout");
            for row in flat.chunks_exact_mut(inner) {
                lane_fn(ArrayViewMut1::from(row));
            }
        }
    } else {
        for lane in out.lanes_mut(Axis(s.axis)) {
            lane_fn(lane);
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
