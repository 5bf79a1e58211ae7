//! libtorch lowerings: CumSum, Trilu, TopK, Tile, GatherElements, GatherND
//! and ScatterND.
//!
//! Their parameters come decoded from `op::index`; what is left here is
//! torch calls. TopK is composed from a *stable* sort because torch's `topk`
//! does not promise ONNX's tie order (equal values, lower index first).

use tch::{Kind, Tensor};

use super::host_ints;
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::index::{
    gather_axis, resolve_indices, tile_repeats, CumSumAttrs, TopKAttrs, TriluAttrs,
};
use crate::op::scatter::{gather_plan, row_plan, Reduction};

type X<'a> = [Option<&'a Tensor>];

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.range(
        "CumSum",
        11,
        u32::MAX,
        cumsum,
        spec!("CumSum"),
        cov![
            "exclusive=0, reverse=0" => Label::Native("cumsum(dim, dtype)"),
            "reverse=1" => Label::Composed("flip, cumsum, flip"),
            "exclusive=1" => Label::Composed("cumsum, shift by one (narrow, cat zeros)"),
        ],
    );
    r.range(
        "Trilu",
        14,
        u32::MAX,
        trilu,
        spec!("Trilu"),
        cov![
            "upper=1" => Label::Native("triu(k)"),
            "upper=0" => Label::Native("tril(k)"),
        ],
    );
    r.op("TopK", topk, spec!("TopK"), cov![
        "all attributes (ties: lower index first)" => Label::Composed("sort(stable, descending), narrow"),
    ]);
    r.op(
        "Tile",
        tile,
        spec!("Tile"),
        cov!["all attributes" => Label::Native("repeat")],
    );
    for (since, until) in [(11, 12), (13, 15), (16, 17), (18, u32::MAX)] {
        r.range("ScatterND", since, until, scatter_nd, spec!("ScatterND"), cov![
            "reduction=none|add (row ids from the indices on the host)" => Label::Composed("reshape, index_put(accumulate)"),
            "reduction=mul|max|min" => Label::Composed("reshape, scatter_reduce(prod|amax|amin, include_self)"),
        ]);
    }
    for (since, until) in [(11, 11), (12, 12), (13, u32::MAX)] {
        r.range("GatherND", since, until, gather_nd, spec!("GatherND"), cov![
            "all attributes (row ids from the indices on the host)" => Label::Composed("reshape, index_select"),
        ]);
    }
    r.range(
        "GatherElements",
        11,
        u32::MAX,
        gather_elements,
        spec!("GatherElements"),
        cov![
            "all attributes (negative indices wrapped on the host)" => Label::Native("gather(dim)"),
        ],
    );
}

/// CumSum-11/14 (integers keep their dtype, so they wrap).
fn cumsum(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let c = CumSumAttrs::decode(ctx, x, input.dim())?;
    let (axis, kind) = (c.axis as i64, input.f_kind()?);
    let mut steps = vec![];
    let mut t = input.shallow_clone();
    if c.reverse {
        t = t.f_flip([axis])?;
        steps.push("flip");
    }
    let mut y = t.f_cumsum(axis, kind)?;
    steps.push("cumsum");
    if c.exclusive {
        let n = input.size()[c.axis];
        let zero = y.f_narrow(axis, 0, 1.min(n))?.f_zeros_like()?;
        y = Tensor::f_cat(&[zero, y.f_narrow(axis, 0, (n - 1).max(0))?], axis)?;
        steps.push("shift");
    }
    if c.reverse {
        y = y.f_flip([axis])?;
        steps.push("flip");
    }
    let how = match steps.as_slice() {
        ["cumsum"] => How::native("cumsum(dim, dtype)"),
        s => How::composed(s.join(", ")),
    };
    Ok(Lowered::one(y, how))
}

/// Trilu-14: torch's triu/tril take the same diagonal offset `k`.
fn trilu(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let t = TriluAttrs::decode(ctx, x, input.dim())?;
    if t.upper {
        Ok(Lowered::one(input.f_triu(t.k)?, How::native("triu(k)")))
    } else {
        Ok(Lowered::one(input.f_tril(t.k)?, How::native("tril(k)")))
    }
}

/// TopK-1/10/11: a stable sort keeps equal values in index order.
fn topk(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let dims: Vec<usize> = input.size().iter().map(|&d| d as usize).collect();
    let t = TopKAttrs::decode(ctx, x, &dims)?;
    let axis = t.axis as i64;
    let (vals, idx) = input.f_sort_stable(true, axis, t.largest)?;
    let k = t.k as i64;
    let outs = vec![vals.f_narrow(axis, 0, k)?, idx.f_narrow(axis, 0, k)?];
    Ok(Lowered::many(
        outs,
        How::composed("sort(stable, descending), narrow"),
    ))
}

/// Tile-6/13: torch's `repeat` with one count per axis.
fn tile(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let reps: Vec<i64> = tile_repeats(ctx, x, input.dim())?
        .into_iter()
        .map(|r| r as i64)
        .collect();
    Ok(Lowered::one(
        input.f_repeat(reps.as_slice())?,
        How::native("repeat"),
    ))
}

/// GatherElements-11/13: torch's gather, indices wrapped and checked by the decode.
fn gather_elements(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (input, ind) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let axis = gather_axis(ctx, input.dim())?;
    let raw = host_ints(ind)?;
    let fixed: Vec<i64> = resolve_indices(ctx, &raw, input.size()[axis] as usize)?
        .into_iter()
        .map(|v| v as i64)
        .collect();
    let index = Tensor::from_slice(&fixed)
        .f_reshape(ind.size().as_slice())?
        .f_to_device(input.device())?
        .f_to_kind(Kind::Int64)?;
    let y = input.f_gather(axis as i64, &index, false)?;
    Ok(Lowered::one(y, How::native("gather(dim)")))
}

/// GatherND (see `op::scatter`): `data` as rows, torch's `index_select`.
fn gather_nd(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (data, ind) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let dims = |t: &Tensor| t.size().iter().map(|&d| d as usize).collect::<Vec<_>>();
    let plan = gather_plan(ctx, &dims(data), &dims(ind), &host_ints(ind)?)?;
    let ids: Vec<i64> = plan.ids.iter().map(|&i| i as i64).collect();
    let ids = Tensor::from_slice(&ids).f_to_device(data.device())?;
    let out: Vec<i64> = plan.out_shape.iter().map(|&d| d as i64).collect();
    let y = data
        .f_reshape([plan.rows as i64, plan.row_len as i64])?
        .f_index_select(0, &ids)?
        .f_reshape(out.as_slice())?;
    Ok(Lowered::one(y, How::composed("reshape, index_select")))
}

/// ScatterND (see `op::scatter`): `data` as rows, torch's own indexed write
/// (`index_put`, accumulating for `add`) or indexed reduction.
fn scatter_nd(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (data, ind, upd) = (ctx.input(x, 0)?, ctx.input(x, 1)?, ctx.input(x, 2)?);
    let dims = |t: &Tensor| t.size().iter().map(|&d| d as usize).collect::<Vec<_>>();
    let plan = row_plan(ctx, &dims(data), &dims(ind), &host_ints(ind)?, &dims(upd))?;
    let ids: Vec<i64> = plan.ids.iter().map(|&i| i as i64).collect();
    let ids = Tensor::from_slice(&ids).f_to_device(data.device())?;
    let rows = data.f_reshape([plan.rows as i64, plan.row_len as i64])?;
    let src = upd
        .f_reshape([plan.ids.len() as i64, plan.row_len as i64])?
        .f_to_kind(data.kind())?;
    let (y, how) = match Reduction::decode(ctx)? {
        Reduction::None => (
            rows.f_index_put(&[Some(&ids)], &src, false)?,
            "reshape, index_put",
        ),
        Reduction::Add => (
            rows.f_index_put(&[Some(&ids)], &src, true)?,
            "reshape, index_put(accumulate)",
        ),
        r => {
            let reduce = match r {
                Reduction::Mul => "prod",
                Reduction::Max => "amax",
                _ => "amin",
            };
            // scatter_reduce (tch names it `internal_scatter_reduce`), not
            // index_reduce: the same reduction, but
            // index_reduce prints libtorch's "is in beta" warning on stderr.
            let cols = ids
                .f_unsqueeze(1)?
                .f_expand([plan.ids.len() as i64, plan.row_len as i64], false)?;
            (
                rows.f_internal_scatter_reduce(0, &cols, &src, reduce, true)?,
                "reshape, scatter_reduce",
            )
        }
    };
    let y = y.f_reshape(data.size().as_slice())?;
    Ok(Lowered::one(y, How::composed(how)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn topk_keeps_index_order_on_ties_and_cumsum_shifts() {
        let x = f32s(&[4], &[1.0, 3.0, 3.0, 0.0]);
        let k = i64s(&[1], &[2]);
        let l = run(&node("TopK", 2, 2, vec![]), 11, &[Some(&x), Some(&k)]).unwrap();
        assert_eq!(vals(l.outputs[1].as_ref().unwrap()), vec![1.0, 2.0]);
        let ax = i64s(&[], &[0]);
        let n = node(
            "CumSum",
            2,
            1,
            vec![("exclusive", Attr::Int(1)), ("reverse", Attr::Int(1))],
        );
        let l = run(&n, 14, &[Some(&x), Some(&ax)]).unwrap();
        assert_eq!(
            vals(l.outputs[0].as_ref().unwrap()),
            vec![6.0, 3.0, 0.0, 0.0]
        );
        assert_eq!(l.how.label(), "composed: flip, cumsum, shift, flip");
    }
}
