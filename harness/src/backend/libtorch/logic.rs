//! libtorch lowerings: comparisons, boolean logic, Where, BitShift, IsNaN
//! and IsInf, each torch's native op (`eq`, `lt`, `logical_and`, `where`,
//! `bitwise_left_shift`, `isnan`, `isposinf` ...); torch broadcasts as ONNX
//! does and returns bool for every comparison.

use tch::Tensor;

use crate::backend::interp::{How, Label, Lowered, OpCtx, OpFn, OpRegistry, OpResult};
use crate::op::math;

type X<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;
/// One registration: op, first opset, lowering, spec link, coverage.
type Row = (
    &'static str,
    u32,
    OpFn<Tensor>,
    &'static str,
    &'static [crate::op::Coverage],
);
type Bin = fn(&Tensor, &Tensor) -> Result<Tensor, tch::TchError>;

pub fn register(r: &mut OpRegistry<Tensor>) {
    use Label::Native;
    let ops: &[Row] = &[
        (
            "Equal",
            7,
            |c, x| bin(c, x, "eq", Tensor::f_eq_tensor),
            spec!("Equal"),
            cov!["all" => Native("eq")],
        ),
        (
            "Less",
            7,
            |c, x| bin(c, x, "lt", Tensor::f_lt_tensor),
            spec!("Less"),
            cov!["all" => Native("lt")],
        ),
        (
            "LessOrEqual",
            12,
            |c, x| bin(c, x, "le", Tensor::f_le_tensor),
            spec!("LessOrEqual"),
            cov!["all" => Native("le")],
        ),
        (
            "Greater",
            7,
            |c, x| bin(c, x, "gt", Tensor::f_gt_tensor),
            spec!("Greater"),
            cov!["all" => Native("gt")],
        ),
        (
            "GreaterOrEqual",
            12,
            |c, x| bin(c, x, "ge", Tensor::f_ge_tensor),
            spec!("GreaterOrEqual"),
            cov!["all" => Native("ge")],
        ),
        (
            "Not",
            1,
            |c, x| {
                Ok(Lowered::one(
                    c.input(x, 0)?.f_logical_not()?,
                    How::native("logical_not"),
                ))
            },
            spec!("Not"),
            cov!["all" => Native("logical_not")],
        ),
        (
            "And",
            7,
            |c, x| bin(c, x, "logical_and", Tensor::f_logical_and),
            spec!("And"),
            cov!["all" => Native("logical_and")],
        ),
        (
            "Or",
            7,
            |c, x| bin(c, x, "logical_or", Tensor::f_logical_or),
            spec!("Or"),
            cov!["all" => Native("logical_or")],
        ),
        (
            "Xor",
            7,
            |c, x| bin(c, x, "logical_xor", Tensor::f_logical_xor),
            spec!("Xor"),
            cov!["all" => Native("logical_xor")],
        ),
        (
            "Where",
            9,
            where_,
            spec!("Where"),
            cov!["all" => Native("where")],
        ),
        (
            "BitShift",
            11,
            bit_shift,
            spec!("BitShift"),
            cov!["uint8 (torch has no uint16/32/64 arithmetic)" => Native("bitwise_left_shift | bitwise_right_shift")],
        ),
        (
            "IsNaN",
            9,
            |c, x| {
                Ok(Lowered::one(
                    c.input(x, 0)?.f_isnan()?,
                    How::native("isnan"),
                ))
            },
            spec!("IsNaN"),
            cov!["all" => Native("isnan")],
        ),
        (
            "IsInf",
            10,
            is_inf,
            spec!("IsInf"),
            cov!["both signs" => Native("isinf"), "one sign" => Native("isposinf | isneginf"), "neither" => Label::Composed("zeros_like")],
        ),
    ];
    for &(op, since, run, spec, cov) in ops {
        r.range(op, since, u32::MAX, run, spec, cov);
    }
}

fn bin(ctx: &OpCtx, x: &X, name: &'static str, f: Bin) -> Out {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    Ok(Lowered::one(f(a, b)?, How::native(name)))
}

/// Where-9/16: torch.where(condition, X, Y).
fn where_(ctx: &OpCtx, x: &X) -> Out {
    let (c, a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?, ctx.input(x, 2)?);
    Ok(Lowered::one(a.f_where_self(c, b)?, How::native("where")))
}

/// BitShift-11: LEFT or RIGHT by `Y` bits.
fn bit_shift(ctx: &OpCtx, x: &X) -> Out {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    if math::shift_left(ctx)? {
        Ok(Lowered::one(
            a.f_bitwise_left_shift(b)?,
            How::native("bitwise_left_shift"),
        ))
    } else {
        Ok(Lowered::one(
            a.f_bitwise_right_shift(b)?,
            How::native("bitwise_right_shift"),
        ))
    }
}

/// IsInf-10/20: which infinities count follows `detect_negative`/`detect_positive`.
fn is_inf(ctx: &OpCtx, x: &X) -> Out {
    let a = ctx.input(x, 0)?;
    Ok(match math::is_inf_signs(ctx)? {
        (true, true) => Lowered::one(a.f_isinf()?, How::native("isinf")),
        (false, true) => Lowered::one(a.f_isposinf()?, How::native("isposinf")),
        (true, false) => Lowered::one(a.f_isneginf()?, How::native("isneginf")),
        (false, false) => Lowered::one(a.f_isinf()?.f_zeros_like()?, How::composed("zeros_like")),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn comparisons_are_bool_and_shift_saturates() {
        let (a, b) = (f32s(&[3], &[1.0, f32::NAN, 3.0]), f32s(&[1], &[3.0]));
        let l = run(
            &node("LessOrEqual", 2, 1, vec![]),
            16,
            &[Some(&a), Some(&b)],
        )
        .unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![1.0, 0.0, 1.0]);
        assert_eq!(l.outputs[0].as_ref().unwrap().kind(), tch::Kind::Bool);
        let u = tch::Tensor::from_slice(&[3u8, 200, 1]);
        let s = tch::Tensor::from_slice(&[1u8, 1, 8]);
        let n = node(
            "BitShift",
            2,
            1,
            vec![("direction", Attr::String("LEFT".into()))],
        );
        let l = run(&n, 11, &[Some(&u), Some(&s)]).unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![6.0, 144.0, 0.0]);
    }
}
