//! candle lowering of RotaryEmbedding-23, composed (candle has no rotary
//! op over ONNX's layouts): `X` viewed as `[B, S, heads, head]`, cache rows
//! picked by `index_select`, pairs split by `narrow` (halves) or a trailing
//! axis of 2 (interleaved), rotated with broadcast mul/sub/add, put back.

use candle_core::Tensor;

use super::{index_tensor, Ce};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::rotary::RotaryPlan;

const HOW: &str = "index_select, narrow, broadcast_mul, sub, add, cat";

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
    let (b, s, h, d) = (plan.batch, plan.seq, plan.heads, plan.head);
    let (rot, half) = (plan.rot, plan.rot / 2);
    let xs = if plan.four_d {
        input.transpose(1, 2).ce()?
    } else {
        input.reshape((b, s, h, d)).ce()?
    };
    let rows = index_tensor(
        plan.rows.iter().map(|&r| r as i64).collect(),
        input.device(),
    )?;
    let cache = |i: usize| -> OpResult<Tensor> {
        let c = ctx.input(x, i)?;
        let c = c.reshape((c.elem_count() / half.max(1), half)).ce()?;
        c.index_select(&rows, 0).ce()?.reshape((b, s, 1, half)).ce()
    };
    let (cos, sin) = (cache(1)?, cache(2)?);
    let xr = xs.narrow(3, 0, rot).ce()?;
    let (x1, x2) = if plan.interleaved {
        let p = xr.reshape((b, s, h, half, 2)).ce()?;
        (
            p.narrow(4, 0, 1).ce()?.squeeze(4).ce()?,
            p.narrow(4, 1, 1).ce()?.squeeze(4).ce()?,
        )
    } else {
        (xr.narrow(3, 0, half).ce()?, xr.narrow(3, half, half).ce()?)
    };
    let real = cos
        .broadcast_mul(&x1)
        .ce()?
        .sub(&sin.broadcast_mul(&x2).ce()?)
        .ce()?;
    let imag = sin
        .broadcast_mul(&x1)
        .ce()?
        .add(&cos.broadcast_mul(&x2).ce()?)
        .ce()?;
    let turned = if plan.interleaved {
        Tensor::stack(&[real, imag], 4)
            .ce()?
            .reshape((b, s, h, rot))
            .ce()?
    } else {
        Tensor::cat(&[real, imag], 3).ce()?
    };
    let y = Tensor::cat(&[turned, xs.narrow(3, rot, d - rot).ce()?], 3).ce()?;
    let y = if plan.four_d {
        y.transpose(1, 2).ce()?.contiguous().ce()?
    } else {
        y.reshape(input.dims()).ce()?
    };
    Ok(Lowered::one(y, How::composed(HOW)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn three_d_halves_turn_by_the_cache_row() {
        // X [1, 1, 4] as one head of 4; a quarter turn at position 1.
        let x = f32t(&[1, 1, 4], &[1., 2., 3., 4.]);
        let cos = f32t(&[2, 2], &[1., 1., 0., 0.]);
        let sin = f32t(&[2, 2], &[0., 0., 1., 1.]);
        let pos = i64t(&[1]).reshape((1, 1)).unwrap();
        let n = node("RotaryEmbedding", 4, 1, vec![("num_heads", Attr::Int(1))]);
        let (v, dims, _) = run1(&n, 23, &[Some(&x), Some(&cos), Some(&sin), Some(&pos)]);
        assert_eq!(dims, vec![1, 1, 4]);
        assert_eq!(v, vec![-3., -4., 1., 2.]);
    }
}
