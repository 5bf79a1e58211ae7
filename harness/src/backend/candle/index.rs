//! candle lowerings: CumSum, Trilu, TopK, Tile, GatherElements, GatherND and
//! ScatterND.
//!
//! Parameters come decoded from `op::index`. candle's `cumsum` is a matmul
//! with a triangular matrix (an accumulating op like any sum); Trilu has no
//! candle op and is a host-built mask; TopK sorts the axis moved last with
//! `arg_sort_last_dim`, whose CPU sort is stable (equal values keep index
//! order, as ONNX asks).

use candle_core::{DType as CDType, Tensor};

use super::{host_ints, index_tensor, is_float, keep_bool, Ce};
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::index::{
    gather_axis, resolve_indices, tile_repeats, CumSumAttrs, TopKAttrs, TriluAttrs,
};
use crate::op::scatter::{gather_plan, row_plan, Reduction};

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

pub fn register(r: &mut OpRegistry<Tensor>) {
    for (since, until) in [(11, 11), (12, 12), (13, u32::MAX)] {
        r.range("GatherND", since, until, gather_nd, spec!("GatherND"), cov![
            "all attributes (row ids from the indices on the host)" => Composed("reshape, index_select"),
        ]);
    }
    for (since, until) in [(11, 12), (13, 15), (16, 17), (18, u32::MAX)] {
        r.range("ScatterND", since, until, scatter_nd, spec!("ScatterND"), cov![
            "reduction=none (row ids from the indices on the host)" => Composed("reshape, scatter(dim 0)"),
            "reduction=add" => Composed("reshape, scatter_add(dim 0)"),
            "reduction=mul|max|min" => Unsupported("reduction: candle has no indexed product, max or min"),
        ]);
    }
    r.range(
        "CumSum",
        11,
        u32::MAX,
        cumsum,
        spec!("CumSum"),
        cov![
            "exclusive=0, reverse=0" => Native("cumsum"),
            "reverse=1" => Composed("flip, cumsum, flip"),
            "exclusive=1" => Composed("cumsum, shift by one (pad_with_zeros, narrow)"),
        "integer input" => Unsupported("candle's cumsum is a matmul, floats only"),
        ],
    );
    r.range(
        "Trilu",
        14,
        u32::MAX,
        trilu,
        spec!("Trilu"),
        cov![
            "all attributes" => Composed("host mask, where_cond"),
        ],
    );
    r.op(
        "TopK",
        topk,
        spec!("TopK"),
        cov![
            "all attributes" => Composed("transpose, arg_sort_last_dim, narrow, gather"),
            "NaN in the input" => Unsupported("arg_sort_last_dim places NaN arbitrarily"),
        ],
    );
    r.op(
        "Tile",
        tile,
        spec!("Tile"),
        cov!["all attributes" => Native("repeat")],
    );
    r.range(
        "GatherElements",
        11,
        u32::MAX,
        gather_elements,
        spec!("GatherElements"),
        cov![
            "all attributes (negative indices wrapped on the host)" => Native("gather"),
        ],
    );
}

/// CumSum-11/14.
fn cumsum(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let c = CumSumAttrs::decode(ctx, x, a.rank())?;
    if !is_float(a) {
        return Err(ctx.unsupported(
            "input",
            format!("{:?} (candle's cumsum is a matmul, floats only)", a.dtype()),
        ));
    }
    let mut steps = vec![];
    let mut t = a.clone();
    if c.reverse {
        t = t.contiguous().and_then(|t| t.flip(&[c.axis])).ce()?;
        steps.push("flip");
    }
    let mut y = t.cumsum(c.axis).ce()?;
    steps.push("cumsum");
    if c.exclusive {
        let n = a.dims()[c.axis];
        y = y
            .pad_with_zeros(c.axis, 1, 0)
            .and_then(|p| p.narrow(c.axis, 0, n))
            .ce()?;
        steps.push("shift");
    }
    if c.reverse {
        y = y.contiguous().and_then(|y| y.flip(&[c.axis])).ce()?;
        steps.push("flip");
    }
    let how = match steps.as_slice() {
        ["cumsum"] => How::native("cumsum"),
        s => How::composed(s.join(", ")),
    };
    Ok(Lowered::one(y, how))
}

/// Trilu-14: the kept triangle as a host mask of the last two axes.
fn trilu(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let t = TriluAttrs::decode(ctx, x, a.rank())?;
    let (rows, cols) = (a.dims()[a.rank() - 2], a.dims()[a.rank() - 1]);
    let mask: Vec<u8> = (0..rows * cols)
        .map(|p| u8::from(t.keeps(p / cols, p % cols)))
        .collect();
    let m = Tensor::from_vec(mask, (rows, cols), a.device()).ce()?;
    let zeros = a.zeros_like().ce()?;
    let y = m
        .broadcast_as(a.shape())
        .and_then(|m| m.where_cond(a, &zeros))
        .ce()?;
    Ok(Lowered::one(
        keep_bool(ctx, a, y),
        How::composed("host mask, where_cond"),
    ))
}

/// TopK-1/10/11: the axis moved last, sorted stably, the first k kept.
/// candle's sort compares with `<`, which puts a NaN anywhere, so an input
/// with NaN is unsupported (ONNX, numpy and torch rank NaN largest).
fn topk(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    if has_nan(a)? {
        return Err(ctx.unsupported(
            "X",
            "NaN in the input: candle's arg_sort_last_dim has no NaN order",
        ));
    }
    let t = TopKAttrs::decode(ctx, x, a.dims())?;
    let last = a.rank() - 1;
    let moved = a
        .transpose(t.axis, last)
        .and_then(|m| m.contiguous())
        .ce()?;
    let order = moved
        .arg_sort_last_dim(!t.largest)
        .and_then(|o| o.narrow(last, 0, t.k))
        .ce()?;
    let order = order.contiguous().ce()?;
    let vals = moved
        .gather(&order, last)
        .and_then(|v| v.transpose(t.axis, last))
        .ce()?;
    let idx = order
        .to_dtype(CDType::I64)
        .and_then(|i| i.transpose(t.axis, last))
        .ce()?;
    let outs = vec![vals.contiguous().ce()?, idx.contiguous().ce()?];
    Ok(Lowered::many(
        outs,
        How::composed("transpose, arg_sort_last_dim, narrow, gather"),
    ))
}

/// Whether a float tensor holds a NaN (integers never do).
fn has_nan(a: &Tensor) -> OpResult<bool> {
    if !is_float(a) {
        return Ok(false);
    }
    let nans = a
        .ne(a)
        .and_then(|m| m.flatten_all())
        .and_then(|m| m.max(0))
        .and_then(|m| m.to_scalar::<u8>())
        .ce()?;
    Ok(nans != 0)
}

/// Tile-6/13: candle's `repeat` with one count per axis.
fn tile(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let reps = tile_repeats(ctx, x, a.rank())?;
    let y = a.repeat(reps).ce()?;
    Ok(Lowered::one(keep_bool(ctx, a, y), How::native("repeat")))
}

/// GatherElements-11/13: candle's gather, indices wrapped and checked by the decode.
fn gather_elements(ctx: &OpCtx, x: &In) -> Out {
    let (a, ind) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let axis = gather_axis(ctx, a.rank())?;
    let fixed = resolve_indices(ctx, &host_ints(ind)?, a.dims()[axis])?;
    let index = index_tensor(fixed.into_iter().map(|v| v as i64).collect(), a.device())?
        .reshape(ind.dims())
        .ce()?;
    // candle's gather wants the source's extent off the axis to match the index's.
    let mut src = a.clone();
    for (k, &n) in ind.dims().iter().enumerate() {
        if k != axis && n < a.dims()[k] {
            src = src.narrow(k, 0, n).ce()?;
        }
    }
    let y = src.contiguous().and_then(|s| s.gather(&index, axis)).ce()?;
    Ok(Lowered::one(keep_bool(ctx, a, y), How::native("gather")))
}

/// GatherND (see `op::scatter`): `data` as rows, candle's `index_select`.
fn gather_nd(ctx: &OpCtx, x: &In) -> Out {
    let (data, ind) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let plan = gather_plan(ctx, data.dims(), ind.dims(), &host_ints(ind)?)?;
    let ids = index_tensor(plan.ids.iter().map(|&i| i as i64).collect(), data.device())?;
    let y = data
        .reshape((plan.rows, plan.row_len))
        .and_then(|r| r.index_select(&ids, 0))
        .and_then(|r| r.reshape(plan.out_shape.as_slice()))
        .ce()?;
    Ok(Lowered::one(
        keep_bool(ctx, data, y),
        How::composed("reshape, index_select"),
    ))
}

/// ScatterND (see `op::scatter`): `data` as rows, candle's `scatter`
/// (`scatter_add` for `add`) along the row axis.
fn scatter_nd(ctx: &OpCtx, x: &In) -> Out {
    let (data, ind, upd) = (ctx.input(x, 0)?, ctx.input(x, 1)?, ctx.input(x, 2)?);
    let plan = row_plan(ctx, data.dims(), ind.dims(), &host_ints(ind)?, upd.dims())?;
    let reduction = Reduction::decode(ctx)?;
    if !matches!(reduction, Reduction::None | Reduction::Add) {
        return Err(ctx.unsupported("reduction", "candle has no indexed product, max or min"));
    }
    let m = plan.ids.len();
    let ids: Vec<i64> = plan
        .ids
        .iter()
        .flat_map(|&i| std::iter::repeat_n(i as i64, plan.row_len))
        .collect();
    let index = index_tensor(ids, data.device())?
        .reshape((m, plan.row_len))
        .ce()?;
    let rows = data.reshape((plan.rows, plan.row_len)).ce()?;
    let src = upd
        .reshape((m, plan.row_len))
        .and_then(|u| u.to_dtype(data.dtype()))
        .ce()?;
    let (y, how) = match reduction {
        Reduction::None => (rows.scatter(&index, &src, 0).ce()?, "reshape, scatter"),
        _ => (
            rows.scatter_add(&index, &src, 0).ce()?,
            "reshape, scatter_add",
        ),
    };
    let y = y.reshape(data.dims()).ce()?;
    Ok(Lowered::one(keep_bool(ctx, data, y), How::composed(how)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn topk_sorts_and_cumsum_shifts() {
        let x = f32t(&[4], &[1.0, 3.0, 2.0, 0.0]);
        let k = i64t(&[2]);
        let (v, _, how) = run1(&node("TopK", 2, 2, vec![]), 11, &[Some(&x), Some(&k)]);
        assert_eq!(v, vec![3.0, 2.0]);
        assert!(how.starts_with("composed"), "{how}");
        let ax = i64t(&[0]);
        let n = node("CumSum", 2, 1, vec![("exclusive", Attr::Int(1))]);
        let (v, _, how) = run1(&n, 14, &[Some(&x), Some(&ax)]);
        close(&v, &[0.0, 1.0, 4.0, 6.0], 1e-6);
        assert_eq!(how, "composed: cumsum, shift");
    }

    #[test]
    fn topk_of_nan_is_unsupported() {
        use crate::backend::interp::OpError;
        let x = f32t(&[4], &[1.0, f32::NAN, 2.0, 0.0]);
        let k = i64t(&[2]);
        let n = node("TopK", 2, 2, vec![]);
        let e = super::super::run_op(&n, 11, &[Some(&x), Some(&k)]).unwrap_err();
        assert!(
            matches!(&e, OpError::Unsupported(m) if m.contains("NaN")),
            "{e:?}"
        );
    }
}
