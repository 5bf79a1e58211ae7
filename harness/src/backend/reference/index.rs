//! Reference ops: index and selection ops (CumSum, Trilu, TopK, Tile,
//! GatherElements, GatherND, ScatterND).
//!
//! These select or accumulate along one axis. Selections are written once,
//! generically over the element type, and dispatched on the stored dtype;
//! CumSum adds in f64 (integers exactly in i128, wrapped to their width).
//! Their parameters (axes, `k`, repeats, index wrapping) are decoded by
//! `op::index`.

use std::cmp::Ordering;

use ndarray::{ArrayD, Axis, Dimension, IxDyn};

use super::shape::{arr, ints_to, wide_ints, Pick};
use super::util::by_dtype;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::index::{
    gather_axis, resolve_indices, tile_repeats, CumSumAttrs, TopKAttrs, TriluAttrs,
};
use crate::op::scatter::{gather_plan, row_plan, Reduction};
use crate::tensor::{Element, Tensor};

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    r.range("CumSum", 11, u32::MAX, cumsum, spec!("CumSum"), SPEC);
    r.range("Trilu", 14, u32::MAX, trilu, spec!("Trilu"), SPEC);
    for (since, until) in [(1, 9), (10, 10), (11, u32::MAX)] {
        r.range("TopK", since, until, topk, spec!("TopK"), SPEC);
    }
    r.op("Tile", tile, spec!("Tile"), SPEC);
    for (since, until) in [(11, 12), (13, 15), (16, 17), (18, u32::MAX)] {
        r.range(
            "ScatterND",
            since,
            until,
            scatter_nd,
            spec!("ScatterND"),
            SPEC,
        );
    }
    for (since, until) in [(11, 11), (12, 12), (13, u32::MAX)] {
        r.range("GatherND", since, until, gather_nd, spec!("GatherND"), SPEC);
    }
    r.range(
        "GatherElements",
        11,
        u32::MAX,
        gather_elements,
        spec!("GatherElements"),
        SPEC,
    );
}

/// `a` with `data`'s logical dtype.
fn same(data: &RefTensor, t: Tensor) -> RefTensor {
    RefTensor::like(data, t)
}

/// Running sums along `axis` of one array (`add` in the element's own arithmetic).
fn scan<T: Copy>(a: &ArrayD<T>, c: CumSumAttrs, zero: T, add: impl Fn(T, T) -> T) -> ArrayD<T> {
    let mut out = a.clone();
    for mut lane in out.lanes_mut(Axis(c.axis)) {
        let n = lane.len();
        let mut acc = zero;
        for step in 0..n {
            let i = if c.reverse { n - 1 - step } else { step };
            let v = lane[i];
            if c.exclusive {
                lane[i] = acc;
                acc = add(acc, v);
            } else {
                acc = add(acc, v);
                lane[i] = acc;
            }
        }
    }
    out
}

/// CumSum-11/14: running sums along `axis` (`exclusive`, `reverse`).
fn cumsum(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let c = CumSumAttrs::decode(ctx, x, data.shape().len())?;
    let out = match (&data.data, wide_ints(&data.data)) {
        (Tensor::F64(a), _) => Tensor::F64(scan(a, c, 0.0, |p, q| p + q)),
        (t, Some(w)) if t.dtype() != crate::tensor::DType::Bool => {
            ints_to(&scan(&w, c, 0, |p, q| p + q), t.dtype())
        }
        _ => return Err(ctx.fail(format!("CumSum of {}", data.dtype))),
    };
    Ok(Lowered::one(same(data, out), How::Spec))
}

/// Trilu-14: zeroes the elements outside the kept triangle of the last two axes.
fn trilu(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let r = data.shape().len();
    let t = TriluAttrs::decode(ctx, x, r)?;
    let out = by_dtype!(data.data.dtype(), T => {
        let mut a = arr::<T>(&data.data).clone();
        for (idx, v) in a.indexed_iter_mut() {
            if !t.keeps(idx[r - 2], idx[r - 1]) {
                *v = T::default();
            }
        }
        T::wrap(a)
    });
    Ok(Lowered::one(same(data, out), How::Spec))
}

/// TopK's order of two (value, index) pairs: the wanted extreme first,
/// equal values by lower index; NaN counts as the largest value.
fn topk_order<T: PartialOrd>(a: &(T, usize), b: &(T, usize), largest: bool) -> Ordering {
    #[allow(clippy::eq_op)]
    let nan = |v: &T| v != v;
    let by_value = match (nan(&a.0), nan(&b.0)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.0.partial_cmp(&b.0).expect("not NaN"),
    };
    let by_value = if largest {
        by_value.reverse()
    } else {
        by_value
    };
    by_value.then(a.1.cmp(&b.1))
}

/// The k selected (values, indices) of `a` along the decoded axis.
fn topk_arrays<T: Pick + Copy>(a: &ArrayD<T>, t: TopKAttrs) -> (ArrayD<T>, ArrayD<i64>) {
    let mut shape = a.shape().to_vec();
    shape[t.axis] = t.k;
    let mut vals = ArrayD::from_elem(IxDyn(&shape), T::default());
    let mut idx = ArrayD::from_elem(IxDyn(&shape), 0i64);
    let lanes = a.lanes(Axis(t.axis)).into_iter();
    let outs = vals
        .lanes_mut(Axis(t.axis))
        .into_iter()
        .zip(idx.lanes_mut(Axis(t.axis)));
    for (lane, (mut v, mut i)) in lanes.zip(outs) {
        let mut pairs: Vec<(T, usize)> = lane.iter().copied().zip(0..).collect();
        pairs.sort_by(|p, q| topk_order(p, q, t.largest));
        for (j, (pv, pi)) in pairs.into_iter().take(t.k).enumerate() {
            v[j] = pv;
            i[j] = pi as i64;
        }
    }
    (vals, idx)
}

/// TopK-1/10/11: the k largest (or smallest) along `axis` and their int64
/// indices, sorted, equal values in index order. With `sorted=0` the order
/// is unspecified; the reference returns the sorted order.
fn topk(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    if data.shape().is_empty() {
        return Err(ctx.fail("input `X` must have rank >= 1"));
    }
    let t = TopKAttrs::decode(ctx, x, data.shape())?;
    let (vals, idx) = by_dtype!(data.data.dtype(), T => {
        let (v, i) = topk_arrays(arr::<T>(&data.data), t);
        (T::wrap(v), i)
    });
    let outs = vec![same(data, vals), RefTensor::exact(Tensor::I64(idx))];
    Ok(Lowered::many(outs, How::Spec))
}

/// Tile-6/13: each axis repeated `repeats[axis]` times.
fn tile(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let s = data.shape().to_vec();
    let reps = tile_repeats(ctx, x, s.len())?;
    let shape: Vec<usize> = s.iter().zip(&reps).map(|(d, r)| d * r).collect();
    let out = by_dtype!(data.data.dtype(), T => {
        let a = arr::<T>(&data.data);
        T::wrap(ArrayD::from_shape_fn(IxDyn(&shape), |o| {
            let src: Vec<usize> = (0..s.len()).map(|k| o[k] % s[k]).collect();
            a[IxDyn(&src)]
        }))
    });
    Ok(Lowered::one(same(data, out), How::Spec))
}

/// GatherElements-11/13: `out[i] = data[i with axis replaced by indices[i]]`.
fn gather_elements(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (data, ind) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let s = data.shape().to_vec();
    let a = gather_axis(ctx, s.len())?;
    if ind.shape().len() != s.len() {
        return Err(ctx.fail("inputs `data` and `indices` must have the same rank"));
    }
    let raw = ind.data.to_i64_vec().ok_or_else(|| {
        ctx.fail(format!(
            "input `indices` must be int32 or int64, got {}",
            ind.dtype
        ))
    })?;
    let flat = resolve_indices(ctx, &raw, s[a])?;
    let shape = ind.shape().to_vec();
    let within = shape
        .iter()
        .zip(&s)
        .enumerate()
        .all(|(k, (i, d))| k == a || i <= d);
    if !within {
        return Err(ctx.fail(format!(
            "input `indices` {shape:?} exceeds `data` {s:?} off the axis"
        )));
    }
    let out = by_dtype!(data.data.dtype(), T => {
        let src = arr::<T>(&data.data);
        let picked: Vec<T> = ndarray::indices(IxDyn(&shape))
            .into_iter()
            .zip(&flat)
            .map(|(o, &j)| {
                let mut at: Vec<usize> = o.as_array_view().to_vec();
                at[a] = j;
                src[IxDyn(&at)]
            })
            .collect();
        T::wrap(ArrayD::from_shape_vec(IxDyn(&shape), picked).expect("indices' shape"))
    });
    Ok(Lowered::one(same(data, out), How::Spec))
}

/// ScatterND (see `op::scatter`): `data` with each update row written over
/// (or combined with) the row its index tuple names, in index order.
fn scatter_nd(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (data, ind, upd) = (ctx.input(x, 0)?, ctx.input(x, 1)?, ctx.input(x, 2)?);
    let raw = ind
        .data
        .to_i64_vec()
        .ok_or_else(|| ctx.fail(format!("input `indices` must be int64, got {}", ind.dtype)))?;
    let plan = row_plan(ctx, data.shape(), ind.shape(), &raw, upd.shape())?;
    let reduction = Reduction::decode(ctx)?;
    let mut out = data.data.to_f64_vec();
    let updates = upd.data.to_f64_vec();
    for (j, &row) in plan.ids.iter().enumerate() {
        let dst = &mut out[row * plan.row_len..][..plan.row_len];
        let src = &updates[j * plan.row_len..][..plan.row_len];
        for (d, &u) in dst.iter_mut().zip(src) {
            *d = reduction.apply(*d, u);
        }
    }
    let t = Tensor::from_f64(data.data.dtype(), data.shape(), &out);
    Ok(Lowered::one(same(data, t), How::Spec))
}

/// GatherND (see `op::scatter`): the data row each index tuple names.
fn gather_nd(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (data, ind) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let raw = ind
        .data
        .to_i64_vec()
        .ok_or_else(|| ctx.fail(format!("input `indices` must be int64, got {}", ind.dtype)))?;
    let plan = gather_plan(ctx, data.shape(), ind.shape(), &raw)?;
    let src = data.data.to_f64_vec();
    let out: Vec<f64> = plan
        .ids
        .iter()
        .flat_map(|&row| src[row * plan.row_len..][..plan.row_len].iter().copied())
        .collect();
    let t = Tensor::from_f64(data.data.dtype(), &plan.out_shape, &out);
    Ok(Lowered::one(same(data, t), How::Spec))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use crate::graph::Attr;

    fn run(
        op: &str,
        opset: u32,
        attrs: Vec<(&str, Attr)>,
        ins: &[Option<&super::RefTensor>],
    ) -> Vec<super::RefTensor> {
        let node = test_node(op, ins.len(), 2, attrs);
        run_op(&node, opset, ins)
            .unwrap()
            .into_iter()
            .flatten()
            .collect()
    }

    #[test]
    fn cumsum_exclusive_reverse() {
        let x = f(&[4], &[1., 2., 3., 4.]);
        let ax = i(&[], &[0]);
        let y = run(
            "CumSum",
            14,
            vec![("exclusive", Attr::Int(1)), ("reverse", Attr::Int(1))],
            &[Some(&x), Some(&ax)],
        );
        assert_eq!(y[0].data.to_f64_vec(), vec![9., 7., 4., 0.]);
        let y = run(
            "CumSum",
            14,
            vec![],
            &[Some(&i(&[3], &[i64::MAX, 1, 1])), Some(&ax)],
        );
        assert_eq!(
            y[0].data.to_i64_vec().unwrap(),
            vec![i64::MAX, i64::MIN, i64::MIN + 1]
        );
    }

    #[test]
    fn topk_ties_take_the_lower_index_first() {
        let x = f(&[5], &[1., 3., 3., f64::NAN, 0.]);
        let k = i(&[1], &[3]);
        let y = run("TopK", 11, vec![], &[Some(&x), Some(&k)]);
        assert_eq!(y[1].data.to_i64_vec().unwrap(), vec![3, 1, 2]);
        let y = run(
            "TopK",
            11,
            vec![("largest", Attr::Int(0))],
            &[Some(&x), Some(&k)],
        );
        assert_eq!(y[0].data.to_f64_vec(), vec![0., 1., 3.]);
        assert_eq!(y[1].data.to_i64_vec().unwrap(), vec![4, 0, 1]);
    }

    #[test]
    fn trilu_tile_gather_elements() {
        let x = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let y = run("Trilu", 14, vec![("upper", Attr::Int(0))], &[Some(&x)]);
        assert_eq!(y[0].data.to_f64_vec(), vec![1., 0., 0., 4., 5., 0.]);
        let y = run("Tile", 13, vec![], &[Some(&x), Some(&i(&[2], &[2, 1]))]);
        assert_eq!(y[0].shape(), &[4, 3]);
        assert_eq!(y[0].data.to_f64_vec()[6..], [1., 2., 3., 4., 5., 6.]);
        let ind = i(&[2, 2], &[2, -3, 0, 1]);
        let y = run(
            "GatherElements",
            13,
            vec![("axis", Attr::Int(1))],
            &[Some(&x), Some(&ind)],
        );
        assert_eq!(y[0].data.to_f64_vec(), vec![3., 1., 4., 5.]);
        let bad = i(&[1, 1], &[3]);
        let node = test_node("GatherElements", 2, 1, vec![("axis", Attr::Int(1))]);
        assert!(run_op(&node, 13, &[Some(&x), Some(&bad)]).is_err());
    }
}
