//! libtorch lowering of RotaryEmbedding-23, composed (torch has no rotary
//! op): `X` viewed as `[B, S, heads, head]`, cache rows picked by
//! `index_select` on the position ids, pairs split by `narrow` (halves) or
//! a trailing axis of 2 (interleaved), rotated with mul/sub/add and put back.

use tch::Tensor;

use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::rotary::RotaryPlan;

const HOW: &str = "index_select, narrow, mul, sub, add, cat";

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.range(
        "RotaryEmbedding",
        23,
        u32::MAX,
        rotary,
        spec!("RotaryEmbedding"),
        cov![
            "all attributes" => Label::Composed(HOW),
        ],
    );
}

fn rotary(ctx: &OpCtx, x: &[Option<&Tensor>]) -> OpResult<Lowered<Tensor>> {
    let plan = RotaryPlan::decode(ctx, x)?;
    let input = ctx.input(x, 0)?;
    let (b, s, h, d) = (
        plan.batch as i64,
        plan.seq as i64,
        plan.heads as i64,
        plan.head as i64,
    );
    let (rot, half) = (plan.rot as i64, plan.rot as i64 / 2);
    let xs = if plan.four_d {
        input.f_permute([0, 2, 1, 3])?
    } else {
        input.f_reshape([b, s, h, d])?
    };
    let rows: Vec<i64> = plan.rows.iter().map(|&r| r as i64).collect();
    let rows = Tensor::from_slice(&rows).f_to_device(input.device())?;
    let cache = |i: usize| -> OpResult<Tensor> {
        let c = ctx.input(x, i)?.f_reshape([-1, half])?;
        Ok(c.f_index_select(0, &rows)?.f_reshape([b, s, 1, half])?)
    };
    let (cos, sin) = (cache(1)?, cache(2)?);
    let xr = xs.f_narrow(3, 0, rot)?;
    let (x1, x2) = if plan.interleaved {
        let p = xr.f_reshape([b, s, h, half, 2])?;
        (p.f_select(4, 0)?, p.f_select(4, 1)?)
    } else {
        (xr.f_narrow(3, 0, half)?, xr.f_narrow(3, half, half)?)
    };
    let real = cos.f_mul(&x1)?.f_sub(&sin.f_mul(&x2)?)?;
    let imag = sin.f_mul(&x1)?.f_add(&cos.f_mul(&x2)?)?;
    let turned = if plan.interleaved {
        Tensor::f_stack(&[real, imag], 4)?.f_reshape([b, s, h, rot])?
    } else {
        Tensor::f_cat(&[real, imag], 3)?
    };
    let y = Tensor::f_cat(&[turned, xs.f_narrow(3, rot, d - rot)?], 3)?;
    let y = if plan.four_d {
        y.f_permute([0, 2, 1, 3])?.f_contiguous()?
    } else {
        y.f_reshape(input.size())?
    };
    Ok(Lowered::one(y, How::composed(HOW)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn interleaved_pairs_turn_and_the_tail_passes() {
        let x = f32s(&[1, 1, 1, 6], &[1., 2., 3., 4., 5., 6.]);
        let cos = f32s(&[2, 2], &[0., 1., 1., 0.]);
        let sin = f32s(&[2, 2], &[1., 0., 0., 1.]);
        let pos = i64s(&[1, 1], &[0]);
        let n = node(
            "RotaryEmbedding",
            4,
            1,
            vec![
                ("interleaved", Attr::Int(1)),
                ("rotary_embedding_dim", Attr::Int(4)),
            ],
        );
        let y = run(&n, 23, &[Some(&x), Some(&cos), Some(&sin), Some(&pos)]).unwrap();
        // Pair (1, 2) by 90°, pair (3, 4) unturned; 5, 6 pass.
        assert_eq!(
            vals(y.outputs[0].as_ref().unwrap()),
            vec![-2., 1., 3., 4., 5., 6.]
        );
    }
}
