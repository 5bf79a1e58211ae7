//! candle lowerings: comparisons, boolean logic, Where, IsNaN and IsInf.
//!
//! candle has no bool dtype: bools are u8 0/1 marked in the session scope
//! (`Scope::mark_bool`), so every comparison marks its result, and And/Or/Xor
//! are min/max/ne on 0/1. `where_cond` and the cmp ops need one shape, so
//! inputs are broadcast first (numpy rules, as ONNX). BitShift is
//! unsupported: candle 0.11 has no shift kernel.

use candle_core::Tensor;

use super::{Ce, Scope};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpFn, OpRegistry, OpResult};
use crate::op::math;

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;
/// One registration: op, first opset, lowering, spec link, coverage.
type Row = (
    &'static str,
    u32,
    OpFn<Tensor>,
    &'static str,
    &'static [crate::op::Coverage],
);
type Bin = fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>;

pub fn register(r: &mut OpRegistry<Tensor>) {
    use Label::{Composed, Native, Unsupported};
    let ops: &[Row] = &[
        (
            "Equal",
            7,
            |c, x| cmp(c, x, "broadcast_eq", Tensor::broadcast_eq),
            spec!("Equal"),
            cov!["all" => Native("broadcast_eq")],
        ),
        (
            "Less",
            7,
            |c, x| cmp(c, x, "broadcast_lt", Tensor::broadcast_lt),
            spec!("Less"),
            cov!["all" => Native("broadcast_lt")],
        ),
        (
            "LessOrEqual",
            12,
            |c, x| cmp(c, x, "broadcast_le", Tensor::broadcast_le),
            spec!("LessOrEqual"),
            cov!["all" => Native("broadcast_le")],
        ),
        (
            "Greater",
            7,
            |c, x| cmp(c, x, "broadcast_gt", Tensor::broadcast_gt),
            spec!("Greater"),
            cov!["all" => Native("broadcast_gt")],
        ),
        (
            "GreaterOrEqual",
            12,
            |c, x| cmp(c, x, "broadcast_ge", Tensor::broadcast_ge),
            spec!("GreaterOrEqual"),
            cov!["all" => Native("broadcast_ge")],
        ),
        (
            "Not",
            1,
            not,
            spec!("Not"),
            cov!["all (no bool dtype)" => Composed("eq(0)")],
        ),
        (
            "And",
            7,
            |c, x| logic(c, x, "broadcast_minimum", Tensor::broadcast_minimum),
            spec!("And"),
            cov!["all (bools are u8 0/1)" => Composed("broadcast_minimum")],
        ),
        (
            "Or",
            7,
            |c, x| logic(c, x, "broadcast_maximum", Tensor::broadcast_maximum),
            spec!("Or"),
            cov!["all (bools are u8 0/1)" => Composed("broadcast_maximum")],
        ),
        (
            "Xor",
            7,
            |c, x| logic(c, x, "broadcast_ne", Tensor::broadcast_ne),
            spec!("Xor"),
            cov!["all (bools are u8 0/1)" => Composed("broadcast_ne")],
        ),
        (
            "Where",
            9,
            where_,
            spec!("Where"),
            cov!["all" => Native("where_cond (after broadcast_as)")],
        ),
        (
            "BitShift",
            11,
            |c, _| Err(c.unsupported("direction", "candle 0.11 has no bit-shift kernel")),
            spec!("BitShift"),
            cov!["all" => Unsupported("direction (no bit-shift kernel)")],
        ),
        (
            "IsNaN",
            9,
            is_nan,
            spec!("IsNaN"),
            cov!["all" => Composed("ne(x, x)")],
        ),
        (
            "IsInf",
            10,
            is_inf,
            spec!("IsInf"),
            cov!["all" => Composed("eq(±inf), maximum")],
        ),
    ];
    for &(op, since, run, spec, cov) in ops {
        r.range(op, since, u32::MAX, run, spec, cov);
    }
}

fn bool_out(ctx: &OpCtx, t: Tensor, how: How) -> Out {
    Ok(Lowered::one(Scope::of(ctx).mark_bool(t), how))
}

/// Equal/Less/LessOrEqual/Greater/GreaterOrEqual: candle's broadcasting cmp.
fn cmp(ctx: &OpCtx, x: &In, name: &'static str, f: Bin) -> Out {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    bool_out(ctx, f(a, b).ce()?, How::native(name))
}

/// Not-1: x == 0 on the u8 bools.
fn not(ctx: &OpCtx, x: &In) -> Out {
    bool_out(ctx, ctx.input(x, 0)?.eq(0f64).ce()?, How::composed("eq(0)"))
}

/// And/Or/Xor-7 on u8 0/1: minimum, maximum, ne.
fn logic(ctx: &OpCtx, x: &In, name: &'static str, f: Bin) -> Out {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    bool_out(ctx, f(a, b).ce()?, How::composed(name))
}

/// The numpy broadcast shape of several shapes.
fn broadcast_dims(ctx: &OpCtx, shapes: &[&[usize]]) -> OpResult<Vec<usize>> {
    let n = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1; n];
    for s in shapes {
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[n - s.len() + i];
            match (*o, d) {
                (a, b) if a == b => {}
                (1, b) => *o = b,
                (_, 1) => {}
                _ => return Err(ctx.fail(format!("shapes {shapes:?} cannot be broadcast"))),
            }
        }
    }
    Ok(out)
}

/// Where-9/16: `where_cond` on the three inputs broadcast to one shape.
fn where_(ctx: &OpCtx, x: &In) -> Out {
    let (c, a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?, ctx.input(x, 2)?);
    let shape = broadcast_dims(ctx, &[c.dims(), a.dims(), b.dims()])?;
    let [c, a2, b2] = [c, a, b].map(|t| t.broadcast_as(shape.as_slice()));
    let y = c.ce()?.where_cond(&a2.ce()?, &b2.ce()?).ce()?;
    Ok(Lowered::one(
        super::keep_bool(ctx, a, y),
        How::native("where_cond"),
    ))
}

/// IsNaN-9/13/20: x ≠ x.
fn is_nan(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    bool_out(ctx, a.ne(a).ce()?, How::composed("ne(x, x)"))
}

/// IsInf-10/20: x == +inf (if detect_positive) or x == −inf (if detect_negative).
fn is_inf(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let (neg, pos) = math::is_inf_signs(ctx)?;
    let pos = a
        .eq(f64::INFINITY)
        .ce()?
        .affine(pos as u8 as f64, 0.0)
        .ce()?;
    let neg = a
        .eq(f64::NEG_INFINITY)
        .ce()?
        .affine(neg as u8 as f64, 0.0)
        .ce()?;
    let y = pos.maximum(&neg).ce()?;
    bool_out(ctx, y, How::composed("eq(±inf), maximum"))
}
