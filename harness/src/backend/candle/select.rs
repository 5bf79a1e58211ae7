//! candle lowerings: ScatterElements, Scatter, OneHot, NonZero, Compress,
//! ReverseSequence and TensorScatter (Unique is unsupported).
//!
//! The index maps come decoded from `op::select`. candle's `scatter` wants
//! the updates to span `data` off the axis, so ScatterElements scatters the
//! flattened data at the decoded flat positions. NonZero's output shape
//! depends on the data: the comparison runs in candle, the coordinates of
//! its hits are read back on the host. candle has no unique op, and a host
//! computation would compare xdiff with itself.

use candle_core::Tensor;

use super::{host_ints, index_tensor, keep_bool, Ce};
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::scatter::Reduction;
use crate::op::select::{coords, elements_plan, CachePlan, CompressPlan, OneHotPlan, ReversePlan};

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

pub fn register(r: &mut OpRegistry<Tensor>) {
    let scatter = cov![
        "reduction=none (flat positions from the indices on the host)" => Composed("flatten, scatter(dim 0)"),
        "reduction=add" => Composed("flatten, scatter_add(dim 0)"),
        "reduction=mul|max|min" => Unsupported("reduction: candle has no indexed product, max or min"),
    ];
    for (since, until) in [(11, 12), (13, 15), (16, 17), (18, u32::MAX)] {
        let s = spec!("ScatterElements");
        r.range(
            "ScatterElements",
            since,
            until,
            scatter_elements,
            s,
            scatter,
        );
    }
    r.range(
        "Scatter",
        9,
        10,
        scatter_elements,
        spec!("Scatter"),
        scatter,
    );
    for (since, until) in [(9, 10), (11, u32::MAX)] {
        r.range("OneHot", since, until, one_hot, spec!("OneHot"), cov![
            "all attributes (indices wrapped on the host)" => Composed("broadcast_eq(arange(depth)), where_cond(on, off)"),
        ]);
        r.range("Compress", since, until, compress, spec!("Compress"), cov![
            "all attributes (kept positions from the condition on the host: data-dependent shape)" => Composed("flatten_all, index_select"),
        ]);
    }
    for (since, until) in [(9, 12), (13, u32::MAX)] {
        r.range("NonZero", since, until, nonzero, spec!("NonZero"), cov![
            "all inputs (data-dependent shape)" => Composed("ne(0), coordinates of the hits read on the host"),
        ]);
    }
    r.range("Unique", 11, u32::MAX, unique, spec!("Unique"), cov![
        "all attributes" => Unsupported("candle has no unique (sort by slices, inverse, counts)"),
    ]);
    r.range("ReverseSequence", 10, u32::MAX, reverse_sequence, spec!("ReverseSequence"), cov![
        "all attributes (time map from sequence_lens on the host)" => Composed("gather(time_axis)"),
    ]);
    r.range("TensorScatter", 24, u32::MAX, tensor_scatter, spec!("TensorScatter"), cov![
        "all attributes (positions from write_indices on the host)" => Composed("scatter(axis)"),
    ]);
}

/// An int64 tensor of `shape` on `a`'s device.
fn index_like(a: &Tensor, values: Vec<i64>, shape: &[usize]) -> OpResult<Tensor> {
    index_tensor(values, a.device())?.reshape(shape).ce()
}

/// ScatterElements-11/13/16/18 and Scatter-9: the flattened data scattered.
fn scatter_elements(ctx: &OpCtx, x: &In) -> Out {
    let (data, ind, upd) = (ctx.input(x, 0)?, ctx.input(x, 1)?, ctx.input(x, 2)?);
    let plan = elements_plan(ctx, data.dims(), ind.dims(), &host_ints(ind)?, upd.dims())?;
    let reduction = Reduction::decode(ctx)?;
    if !matches!(reduction, Reduction::None | Reduction::Add) {
        return Err(ctx.unsupported("reduction", "candle has no indexed product, max or min"));
    }
    let m = plan.dest.len();
    let dest = index_like(data, plan.dest.iter().map(|&d| d as i64).collect(), &[m])?;
    let flat = data.flatten_all().ce()?;
    let src = upd
        .flatten_all()
        .and_then(|u| u.to_dtype(data.dtype()))
        .ce()?;
    let (y, how) = match reduction {
        Reduction::None => (flat.scatter(&dest, &src, 0).ce()?, "flatten, scatter"),
        _ => (
            flat.scatter_add(&dest, &src, 0).ce()?,
            "flatten, scatter_add",
        ),
    };
    let y = y.reshape(data.dims()).ce()?;
    Ok(Lowered::one(keep_bool(ctx, data, y), How::composed(how)))
}

/// OneHot-9/11: the wrapped classes compared with `arange(depth)` on the new axis.
fn one_hot(ctx: &OpCtx, x: &In) -> Out {
    let p = OneHotPlan::decode(ctx, x)?;
    let (ind, values) = (ctx.input(x, 0)?, ctx.input(x, 2)?);
    let class = index_like(values, p.class.clone(), ind.dims())?
        .unsqueeze(p.axis)
        .ce()?;
    let mut at = vec![1; p.out_shape.len()];
    at[p.axis] = p.depth;
    let classes = Tensor::arange(0i64, p.depth as i64, values.device())
        .and_then(|c| c.reshape(at))
        .ce()?;
    let pick = |i: usize| {
        values
            .get(i)
            .and_then(|v| v.broadcast_as(p.out_shape.as_slice()))
            .ce()
    };
    let (on, off) = (pick(1)?, pick(0)?);
    let y = class
        .broadcast_eq(&classes)
        .and_then(|m| m.where_cond(&on, &off))
        .ce()?;
    Ok(Lowered::one(
        keep_bool(ctx, values, y),
        How::composed("broadcast_eq(arange(depth)), where_cond"),
    ))
}

/// NonZero-9/13: `ne(0)` in candle, the hits' coordinates on the host.
fn nonzero(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let hits: Vec<usize> = a
        .ne(&a.zeros_like().ce()?)
        .and_then(|m| m.flatten_all())
        .and_then(|m| m.to_vec1::<u8>())
        .ce()?
        .into_iter()
        .enumerate()
        .filter(|(_, h)| *h != 0)
        .map(|(p, _)| p)
        .collect();
    let rank = a.rank().max(1);
    let mut out = vec![0i64; rank * hits.len()];
    for (n, &p) in hits.iter().enumerate() {
        for (k, c) in coords(p, a.dims()).into_iter().enumerate() {
            out[k * hits.len() + n] = c as i64;
        }
    }
    let y = index_like(a, out, &[rank, hits.len()])?;
    Ok(Lowered::one(y, How::composed("ne(0), host coordinates")))
}

/// Compress-9/11: the kept positions selected with `index_select`.
fn compress(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let p = CompressPlan::decode(ctx, x)?;
    let n = p.kept.len();
    let kept = index_like(a, p.kept.iter().map(|&k| k as i64).collect(), &[n])?;
    let y = match p.axis {
        None => a
            .flatten_all()
            .and_then(|f| f.index_select(&kept, 0))
            .ce()?,
        Some(axis) => a.index_select(&kept, axis).ce()?,
    };
    Ok(Lowered::one(
        keep_bool(ctx, a, y),
        How::composed("index_select"),
    ))
}

/// Unique-11: candle has no unique.
fn unique(ctx: &OpCtx, _x: &In) -> Out {
    Err(ctx.unsupported(
        "Unique",
        "candle has no unique (sort by slices, inverse, counts)",
    ))
}

/// ReverseSequence-10: each element gathered from its source time step.
fn reverse_sequence(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let p = ReversePlan::decode(ctx, x)?;
    let idx = index_like(a, p.time_index(a.dims()), a.dims())?;
    let y = a
        .contiguous()
        .and_then(|c| c.gather(&idx, p.time_axis))
        .ce()?;
    Ok(Lowered::one(
        keep_bool(ctx, a, y),
        How::composed("gather(time_axis)"),
    ))
}

/// TensorScatter-24: each update step scattered to its cache position.
fn tensor_scatter(ctx: &OpCtx, x: &In) -> Out {
    let (past, upd) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let p = CachePlan::decode(ctx, x)?;
    let idx = index_like(past, p.scatter_index(upd.dims()), upd.dims())?;
    let src = upd.to_dtype(past.dtype()).ce()?;
    let y = past.scatter(&idx, &src, p.axis).ce()?;
    Ok(Lowered::one(
        keep_bool(ctx, past, y),
        How::composed("scatter(axis)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn scatter_elements_wraps_and_onehot_selects() {
        let data = f32t(&[2, 2], &[0.0; 4]);
        let ind =
            super::Tensor::from_vec(vec![-1i64, 0], (1, 2), &super::super::CDevice::Cpu).unwrap();
        let upd = f32t(&[1, 2], &[5.0, 6.0]);
        let n = node("ScatterElements", 3, 1, vec![("axis", Attr::Int(0))]);
        let (v, _, how) = run1(&n, 13, &[Some(&data), Some(&ind), Some(&upd)]);
        assert_eq!(v, vec![0.0, 6.0, 5.0, 0.0]);
        assert_eq!(how, "composed: flatten, scatter");
        let (i, d, vals) = (i64t(&[2, -4]), i64t(&[3]), f32t(&[2], &[1.0, 9.0]));
        let (v, dims, _) = run1(
            &node("OneHot", 3, 1, vec![]),
            11,
            &[Some(&i), Some(&d), Some(&vals)],
        );
        assert_eq!((v, dims), (vec![1.0, 1.0, 9.0, 1.0, 1.0, 1.0], vec![2, 3]));
    }
}
