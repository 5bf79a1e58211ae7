//! libtorch lowerings: ScatterElements, Scatter, OneHot, NonZero, Compress,
//! Unique, ReverseSequence and TensorScatter.
//!
//! The index maps come decoded from `op::select`; what is left is torch
//! calls. ScatterElements' reductions are torch's `scatter_reduce` with
//! `include_self` (tch names it `internal_scatter_reduce`). torch's
//! `unique_dim` always sorts and returns no first indices: those are a
//! `scatter_reduce(amin)` of
//! the positions, and ONNX's unsorted (first-occurrence) order a reordering
//! by them.

use tch::{Device, Kind, Tensor};

use super::host_ints;
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::scatter::Reduction;
use crate::op::select::{
    elements_plan, CachePlan, CompressPlan, OneHotPlan, ReversePlan, UniqueAttrs,
};

type X<'a> = [Option<&'a Tensor>];

pub fn register(r: &mut OpRegistry<Tensor>) {
    let scatter = cov![
        "reduction=none (negative indices wrapped on the host)" => Label::Native("scatter(dim)"),
        "reduction=add" => Label::Native("scatter_add(dim)"),
        "reduction=mul|max|min" => Label::Native("scatter_reduce(dim, prod|amax|amin, include_self)"),
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
            "all attributes (indices wrapped on the host)" => Label::Composed("eq(arange(depth)), where(on, off)"),
        ]);
        r.range("Compress", since, until, compress, spec!("Compress"), cov![
            "all attributes (kept positions from the condition on the host: data-dependent shape)" => Label::Composed("reshape, index_select"),
        ]);
    }
    for (since, until) in [(9, 12), (13, u32::MAX)] {
        r.range(
            "NonZero",
            since,
            until,
            nonzero,
            spec!("NonZero"),
            cov![
                "all inputs" => Label::Native("nonzero (transposed)"),
            ],
        );
    }
    r.range("Unique", 11, u32::MAX, unique, spec!("Unique"), cov![
        "sorted=1" => Label::Composed("unique_dim(sorted, inverse, counts), scatter_reduce(amin) for first indices"),
        "sorted=0" => Label::Composed("unique_dim, scatter_reduce(amin), argsort into first-occurrence order"),
    ]);
    r.range("ReverseSequence", 10, u32::MAX, reverse_sequence, spec!("ReverseSequence"), cov![
        "all attributes (time map from sequence_lens on the host)" => Label::Composed("gather(time_axis)"),
    ]);
    r.range("TensorScatter", 24, u32::MAX, tensor_scatter, spec!("TensorScatter"), cov![
        "all attributes (positions from write_indices on the host)" => Label::Composed("scatter(axis)"),
    ]);
}

fn udims(t: &Tensor) -> Vec<usize> {
    t.size().iter().map(|&d| d as usize).collect()
}

/// An int64 tensor of `shape` on `device`.
fn index(values: &[i64], shape: &[usize], device: Device) -> OpResult<Tensor> {
    let s: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Ok(Tensor::from_slice(values)
        .f_reshape(s.as_slice())?
        .f_to_device(device)?)
}

/// ScatterElements-11/13/16/18 and Scatter-9: torch's scatter family.
fn scatter_elements(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (data, ind, upd) = (ctx.input(x, 0)?, ctx.input(x, 1)?, ctx.input(x, 2)?);
    let plan = elements_plan(
        ctx,
        &udims(data),
        &udims(ind),
        &host_ints(ind)?,
        &udims(upd),
    )?;
    let src = upd.f_to_kind(data.kind())?;
    let dim = plan.axis as i64;
    let along = index(&plan.along, &udims(ind), data.device())?;
    let (y, how) = match Reduction::decode(ctx)? {
        Reduction::None => (
            data.f_scatter(dim, &along, &src)?,
            How::native("scatter(dim)"),
        ),
        Reduction::Add => (
            data.f_scatter_add(dim, &along, &src)?,
            How::native("scatter_add(dim)"),
        ),
        // torch's `scatter_reduce(include_self=True)` (tch names it
        // `internal_scatter_reduce`): ONNX reduces into the existing data.
        // Not `scatter(reduce=multiply)` or `index_reduce`: libtorch prints a
        // deprecation / "in beta" warning on stderr for those.
        r => {
            let reduce = match r {
                Reduction::Mul => "prod",
                Reduction::Max => "amax",
                _ => "amin",
            };
            (
                data.f_internal_scatter_reduce(dim, &along, &src, reduce, true)?,
                How::native("scatter_reduce(dim, include_self)"),
            )
        }
    };
    Ok(Lowered::one(y, how))
}

/// OneHot-9/11: the wrapped classes compared with `arange(depth)` on the new axis.
fn one_hot(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let p = OneHotPlan::decode(ctx, x)?;
    let (ind, values) = (ctx.input(x, 0)?, ctx.input(x, 2)?);
    let dev = values.device();
    let class = index(&p.class, &udims(ind), dev)?.f_unsqueeze(p.axis as i64)?;
    let mut at = vec![1i64; p.out_shape.len()];
    at[p.axis] = p.depth as i64;
    let classes = Tensor::f_arange(p.depth as i64, (Kind::Int64, dev))?.f_reshape(at.as_slice())?;
    let (off, on) = (values.f_select(0, 0)?, values.f_select(0, 1)?);
    let y = on.f_where_self(&class.f_eq_tensor(&classes)?, &off)?;
    Ok(Lowered::one(y, How::composed("eq(arange(depth)), where")))
}

/// NonZero-9/13: torch's `nonzero` is `[nnz, rank]`; ONNX wants `[rank, nnz]`.
fn nonzero(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let data = ctx.input(x, 0)?;
    let data = if data.dim() == 0 {
        data.f_reshape([1])?
    } else {
        data.shallow_clone()
    };
    let y = data.f_nonzero()?.f_transpose(0, 1)?.f_contiguous()?;
    Ok(Lowered::one(y, How::native("nonzero (transposed)")))
}

/// Compress-9/11: the kept positions selected with `index_select`.
fn compress(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let data = ctx.input(x, 0)?;
    let p = CompressPlan::decode(ctx, x)?;
    let kept: Vec<i64> = p.kept.iter().map(|&k| k as i64).collect();
    let kept = index(&kept, &[kept.len()], data.device())?;
    let y = match p.axis {
        None => data.f_reshape([-1])?.f_index_select(0, &kept)?,
        Some(a) => data.f_index_select(a as i64, &kept)?,
    };
    Ok(Lowered::one(y, How::composed("reshape, index_select")))
}

/// Unique-11: `unique_dim` (sorted), first indices by `scatter_reduce(amin)`,
/// reordered by them when `sorted=0`.
fn unique(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let data = ctx.input(x, 0)?;
    let u = UniqueAttrs::decode(ctx, data.dim())?;
    let (src, axis) = match u.axis {
        None => (data.f_reshape([-1])?, 0i64),
        Some(a) => (data.shallow_clone(), a as i64),
    };
    let (y, inverse, counts) = src.f_unique_dim(axis, true, true, true)?;
    let (n, dev) = (y.size()[axis as usize], data.device());
    let m = inverse.size()[0];
    let first = Tensor::f_full([n], m, (Kind::Int64, dev))?.f_internal_scatter_reduce(
        0,
        &inverse,
        &Tensor::f_arange(m, (Kind::Int64, dev))?,
        "amin",
        false,
    )?;
    if u.sorted {
        let outs = vec![y, first, inverse, counts];
        return Ok(Lowered::many(
            outs,
            How::composed("unique_dim, scatter_reduce(amin)"),
        ));
    }
    let order = first.f_argsort(0, false)?;
    let rank = order.f_argsort(0, false)?;
    let outs = vec![
        y.f_index_select(axis, &order)?,
        first.f_index_select(0, &order)?,
        rank.f_index_select(0, &inverse)?,
        counts.f_index_select(0, &order)?,
    ];
    Ok(Lowered::many(
        outs,
        How::composed("unique_dim, scatter_reduce(amin), argsort"),
    ))
}

/// ReverseSequence-10: each element gathered from its source time step.
fn reverse_sequence(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let data = ctx.input(x, 0)?;
    let p = ReversePlan::decode(ctx, x)?;
    let shape = udims(data);
    let idx = index(&p.time_index(&shape), &shape, data.device())?;
    let y = data.f_gather(p.time_axis as i64, &idx, false)?;
    Ok(Lowered::one(y, How::composed("gather(time_axis)")))
}

/// TensorScatter-24: each update step scattered to its cache position.
fn tensor_scatter(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (past, upd) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let p = CachePlan::decode(ctx, x)?;
    let shape = udims(upd);
    let idx = index(&p.scatter_index(&shape), &shape, past.device())?;
    let y = past.f_scatter(p.axis as i64, &idx, &upd.f_to_kind(past.kind())?)?;
    Ok(Lowered::one(y, How::composed("scatter(axis)")))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn unique_unsorted_is_first_occurrence_order() {
        let x = f32s(&[6], &[2.0, 1.0, 1.0, 3.0, 4.0, 3.0]);
        let n = node("Unique", 1, 4, vec![("sorted", Attr::Int(0))]);
        let l = run(&n, 11, &[Some(&x)]).unwrap();
        let out = |i: usize| vals(l.outputs[i].as_ref().unwrap());
        assert_eq!(out(0), vec![2.0, 1.0, 3.0, 4.0]);
        assert_eq!(out(1), vec![0.0, 1.0, 3.0, 4.0]);
        assert_eq!(out(2), vec![0.0, 1.0, 1.0, 2.0, 3.0, 2.0]);
        assert_eq!(out(3), vec![1.0, 2.0, 2.0, 1.0]);
    }
}
