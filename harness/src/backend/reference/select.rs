//! Reference ops: scatter, selection and data-dependent index ops
//! (ScatterElements, Scatter, OneHot, NonZero, Compress, Unique,
//! ReverseSequence, TensorScatter).
//!
//! They move or pick elements, so they are written on the flat f64 view of
//! the input (exact for every dtype xdiff compares: integers up to 2^53) and
//! rebuilt in the input's dtype. The index maps come decoded from
//! `op::select`; the data-dependent output shapes (NonZero, Compress,
//! Unique) are computed here from the spec text.

use std::cmp::Ordering;

use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::scatter::Reduction;
use crate::op::select::{
    coords, elements_plan, strides, CachePlan, CompressPlan, OneHotPlan, ReversePlan, UniqueAttrs,
};
use crate::tensor::{DType, Tensor};

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    for (since, until) in [(11, 12), (13, 15), (16, 17), (18, u32::MAX)] {
        let s = spec!("ScatterElements");
        r.range("ScatterElements", since, until, scatter_elements, s, SPEC);
    }
    r.range("Scatter", 9, 10, scatter_elements, spec!("Scatter"), SPEC);
    for (since, until) in [(9, 10), (11, u32::MAX)] {
        r.range("OneHot", since, until, one_hot, spec!("OneHot"), SPEC);
        r.range("Compress", since, until, compress, spec!("Compress"), SPEC);
    }
    for (since, until) in [(9, 12), (13, u32::MAX)] {
        r.range("NonZero", since, until, nonzero, spec!("NonZero"), SPEC);
    }
    r.range("Unique", 11, u32::MAX, unique, spec!("Unique"), SPEC);
    let s = spec!("ReverseSequence");
    r.range("ReverseSequence", 10, u32::MAX, reverse_sequence, s, SPEC);
    let s = spec!("TensorScatter");
    r.range("TensorScatter", 24, u32::MAX, tensor_scatter, s, SPEC);
}

/// `values` (flat, f64) as a tensor of `like`'s dtype and `shape`.
fn rebuild(like: &RefTensor, shape: &[usize], values: &[f64]) -> RefTensor {
    RefTensor::like(like, Tensor::from_f64(like.data.dtype(), shape, values))
}

fn int64(shape: &[usize], values: &[i64]) -> RefTensor {
    let v: Vec<f64> = values.iter().map(|&i| i as f64).collect();
    RefTensor::exact(Tensor::from_f64(DType::I64, shape, &v))
}

/// ScatterElements-11/13/16/18 and Scatter-9: each update written to (or
/// combined with) the element its index names, in index order.
fn scatter_elements(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (data, ind, upd) = (ctx.input(x, 0)?, ctx.input(x, 1)?, ctx.input(x, 2)?);
    let raw = ind.ints()?;
    let plan = elements_plan(ctx, data.shape(), ind.shape(), &raw, upd.shape())?;
    let reduction = Reduction::decode(ctx)?;
    let mut out = data.data.to_f64_vec();
    for (&d, u) in plan.dest.iter().zip(upd.data.to_f64_vec()) {
        out[d] = reduction.apply(out[d], u);
    }
    Ok(Lowered::one(rebuild(data, data.shape(), &out), How::Spec))
}

/// OneHot-9/11: `on` where the new axis' position equals the index's class.
fn one_hot(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let p = OneHotPlan::decode(ctx, x)?;
    let values = ctx.input(x, 2)?;
    let inner: usize = p.out_shape[p.axis + 1..].iter().product::<usize>().max(1);
    let mut out = vec![p.off; p.out_shape.iter().product()];
    for (j, &c) in p.class.iter().enumerate() {
        if c >= 0 {
            out[((j / inner) * p.depth + c as usize) * inner + j % inner] = p.on;
        }
    }
    Ok(Lowered::one(rebuild(values, &p.out_shape, &out), How::Spec))
}

/// NonZero-9/13: the coordinates of the non-zero elements, one row per
/// axis, in row-major order.
fn nonzero(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let s = data.shape();
    let hits: Vec<usize> = (0..data.data.len())
        .zip(data.data.to_f64_vec())
        .filter(|(_, v)| *v != 0.0)
        .map(|(p, _)| p)
        .collect();
    let rank = s.len().max(1);
    let mut out = vec![0i64; rank * hits.len()];
    for (n, &p) in hits.iter().enumerate() {
        for (k, c) in coords(p, s).into_iter().enumerate() {
            out[k * hits.len() + n] = c as i64;
        }
    }
    Ok(Lowered::one(int64(&[rank, hits.len()], &out), How::Spec))
}

/// The slices of `data` (flat, of `shape`) along `axis`, each flat.
fn slices(data: &[f64], shape: &[usize], axis: usize) -> Vec<Vec<f64>> {
    let mut out = vec![Vec::new(); shape[axis]];
    for (p, &v) in data.iter().enumerate() {
        out[coords(p, shape)[axis]].push(v);
    }
    out
}

/// Slices `picked` of `all` (each flat, along `axis` of `shape`) put back
/// together as one flat tensor.
fn join(
    all: &[Vec<f64>],
    picked: &[usize],
    shape: &[usize],
    axis: usize,
) -> (Vec<usize>, Vec<f64>) {
    let mut out_shape = shape.to_vec();
    out_shape[axis] = picked.len();
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let mut out = Vec::with_capacity(outer * picked.len() * inner);
    for o in 0..outer {
        for &k in picked {
            out.extend_from_slice(&all[k][o * inner..][..inner]);
        }
    }
    (out_shape, out)
}

/// Compress-9/11: the slices (or flat elements) the condition keeps.
fn compress(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let p = CompressPlan::decode(ctx, x)?;
    let flat = data.data.to_f64_vec();
    let out = match p.axis {
        None => p.kept.iter().map(|&k| flat[k]).collect(),
        Some(a) => join(&slices(&flat, data.shape(), a), &p.kept, data.shape(), a).1,
    };
    Ok(Lowered::one(rebuild(data, &p.out_shape, &out), How::Spec))
}

/// Lexicographic order of two slices (NaN after every number).
fn slice_order(a: &[f64], b: &[f64]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(p, q)| {
            p.partial_cmp(q)
                .unwrap_or_else(|| p.is_nan().cmp(&q.is_nan()))
        })
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// Unique-11: the distinct slices (first-occurrence order, or sorted), the
/// first index of each, each input slice's position among them, and counts.
fn unique(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let u = UniqueAttrs::decode(ctx, data.shape().len())?;
    let flat = data.data.to_f64_vec();
    let (shape, axis) = match u.axis {
        None => (vec![flat.len()], 0),
        Some(a) => (data.shape().to_vec(), a),
    };
    let all = slices(&flat, &shape, axis);
    // Distinct slices by first occurrence.
    let mut first: Vec<usize> = Vec::new();
    let mut inverse: Vec<usize> = Vec::with_capacity(all.len());
    for (k, s) in all.iter().enumerate() {
        match first.iter().position(|&f| slice_order(&all[f], s).is_eq()) {
            Some(j) => inverse.push(j),
            None => {
                inverse.push(first.len());
                first.push(k);
            }
        }
    }
    let mut order: Vec<usize> = (0..first.len()).collect();
    if u.sorted {
        order.sort_by(|&i, &j| slice_order(&all[first[i]], &all[first[j]]));
    }
    let mut rank = vec![0; order.len()];
    for (r, &o) in order.iter().enumerate() {
        rank[o] = r;
    }
    let picked: Vec<usize> = order.iter().map(|&o| first[o]).collect();
    let (y_shape, y) = join(&all, &picked, &shape, axis);
    let mut counts = vec![0i64; order.len()];
    for &i in &inverse {
        counts[rank[i]] += 1;
    }
    let n = order.len();
    let idx: Vec<i64> = picked.iter().map(|&k| k as i64).collect();
    let inv: Vec<i64> = inverse.iter().map(|&i| rank[i] as i64).collect();
    let outs = vec![
        rebuild(data, &y_shape, &y),
        int64(&[n], &idx),
        int64(&[inv.len()], &inv),
        int64(&[n], &counts),
    ];
    Ok(Lowered::many(outs, How::Spec))
}

/// ReverseSequence-10: each batch's first `sequence_lens[b]` time steps reversed.
fn reverse_sequence(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let p = ReversePlan::decode(ctx, x)?;
    let s = data.shape();
    let (flat, st) = (data.data.to_f64_vec(), strides(s));
    let out: Vec<f64> = (0..flat.len())
        .map(|q| {
            let mut c = coords(q, s);
            c[p.time_axis] = p.source(c[p.batch_axis], c[p.time_axis]);
            flat[c.iter().zip(&st).map(|(a, b)| a * b).sum::<usize>()]
        })
        .collect();
    Ok(Lowered::one(rebuild(data, s, &out), How::Spec))
}

/// TensorScatter-24: the cache with each update step written at its position.
fn tensor_scatter(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (past, upd) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let p = CachePlan::decode(ctx, x)?;
    let st = strides(past.shape());
    let mut out = past.data.to_f64_vec();
    for (q, u) in upd.data.to_f64_vec().into_iter().enumerate() {
        let mut c = coords(q, upd.shape());
        c[p.axis] = p.pos[c[0]][c[p.axis]];
        out[c.iter().zip(&st).map(|(a, b)| a * b).sum::<usize>()] = u;
    }
    Ok(Lowered::one(rebuild(past, past.shape(), &out), How::Spec))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use crate::graph::Attr;

    #[test]
    fn unique_unsorted_keeps_first_occurrence_order() {
        let x = f(&[6], &[2., 1., 1., 3., 4., 3.]);
        let node = test_node("Unique", 1, 4, vec![("sorted", Attr::Int(0))]);
        let y: Vec<_> = run_op(&node, 11, &[Some(&x)])
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(y[0].data.to_f64_vec(), vec![2., 1., 3., 4.]);
        assert_eq!(y[1].data.to_i64_vec().unwrap(), vec![0, 1, 3, 4]);
        assert_eq!(y[2].data.to_i64_vec().unwrap(), vec![0, 1, 1, 2, 3, 2]);
        assert_eq!(y[3].data.to_i64_vec().unwrap(), vec![1, 2, 2, 1]);
    }

    #[test]
    fn nonzero_and_onehot() {
        let x = f(&[2, 2], &[1., 0., 0., 2.]);
        let y = run_op(&test_node("NonZero", 1, 1, vec![]), 13, &[Some(&x)]).unwrap();
        let y = y[0].as_ref().unwrap();
        assert_eq!(
            (y.shape(), y.data.to_i64_vec().unwrap()),
            (&[2, 2][..], vec![0, 1, 0, 1])
        );
        let (ind, depth, vals) = (i(&[2], &[-1, 5]), i(&[], &[3]), f(&[2], &[0., 7.]));
        let node = test_node("OneHot", 3, 1, vec![("axis", Attr::Int(0))]);
        let y = run_op(&node, 11, &[Some(&ind), Some(&depth), Some(&vals)]).unwrap();
        assert_eq!(
            y[0].as_ref().unwrap().data.to_f64_vec(),
            vec![0., 0., 0., 0., 7., 0.]
        );
    }
}
