//! Reference op: RotaryEmbedding-23, written from the spec over
//! `op::rotary::RotaryPlan`: each pair `(x1, x2)` of the rotated channels
//! becomes `(cos·x1 − sin·x2, sin·x1 + cos·x2)` in f64; the channels past
//! `rotary_embedding_dim` pass through.

use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::rotary::RotaryPlan;

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    r.range(
        "RotaryEmbedding",
        23,
        u32::MAX,
        rotary,
        spec!("RotaryEmbedding"),
        SPEC,
    );
}

fn floats(ctx: &OpCtx, x: &[Option<&RefTensor>], i: usize) -> OpResult<Vec<f64>> {
    let t = ctx.input(x, i)?;
    t.floats().map_err(|_| {
        ctx.fail(format!(
            "input #{i} must be a float tensor, got {}",
            t.dtype
        ))
    })
}

fn rotary(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let plan = RotaryPlan::decode(ctx, x)?;
    let input = ctx.input(x, 0)?;
    let (cos, sin) = (floats(ctx, x, 1)?, floats(ctx, x, 2)?);
    let src: Vec<f64> = input.f64()?.iter().copied().collect();
    let mut flat = src.clone();
    let half = plan.rot / 2;
    for b in 0..plan.batch {
        for s in 0..plan.seq {
            let row = plan.rows[b * plan.seq + s] * half;
            for h in 0..plan.heads {
                for j in 0..half {
                    let (d1, d2) = plan.pair(j);
                    let (o1, o2) = (plan.offset(b, s, h, d1), plan.offset(b, s, h, d2));
                    let (c, n) = (cos[row + j], sin[row + j]);
                    flat[o1] = c * src[o1] - n * src[o2];
                    flat[o2] = n * src[o1] + c * src[o2];
                }
            }
        }
    }
    let out = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(input.shape()), flat)
        .expect("shape matches");
    Ok(Lowered::one(RefTensor::float(out, input.dtype), How::Spec))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, test_node};

    #[test]
    fn a_quarter_turn_swaps_halves_and_the_tail_passes() {
        // X [1, 1, 1, 4], rotary dim 2: pair (0, 1) turned by 90°; 2 and 3 pass.
        let x = f(&[1, 1, 1, 4], &[1., 2., 3., 4.]);
        let (cos, sin) = (f(&[1, 1, 1], &[0.]), f(&[1, 1, 1], &[1.]));
        let n = test_node(
            "RotaryEmbedding",
            3,
            1,
            vec![("rotary_embedding_dim", crate::graph::Attr::Int(2))],
        );
        let y = run_op(&n, 23, &[Some(&x), Some(&cos), Some(&sin)])
            .unwrap()
            .remove(0)
            .unwrap();
        assert_eq!(y.data.to_f64_vec(), vec![-2., 1., 3., 4.]);
    }
}
