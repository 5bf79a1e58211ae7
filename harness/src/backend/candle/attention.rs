//! candle lowering of Attention-23/24, composed (candle-core has no
//! attention op over ONNX's conventions): heads split by reshape/transpose,
//! the present caches by `cat`, GQA by broadcasting each key/value head over
//! its query group, then `matmul`, the scale (`affine`), the decoded bias
//! (`broadcast_add`), the softcap (`tanh`), candle's own softmax over the
//! last axis (`candle_nn::ops::softmax_last_dim`, as the Softmax lowering)
//! and `matmul` with the values.

use candle_core::Tensor;

use super::Ce;
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::attention::{AttentionPlan, QkMode};
use crate::op::optional;

const HOW: &str =
    "matmul, affine, broadcast_add, tanh, candle_nn::ops::softmax_last_dim, matmul, cat";

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.range(
        "Attention",
        23,
        u32::MAX,
        attention,
        spec!("Attention"),
        cov![
            "all attributes (mask, causal and padding as the decoded bias)" => Label::Composed(HOW),
        ],
    );
}

/// A 3-D `[B, S, H·D]` input as `[B, H, S, D]` (a 4-D one as it is).
fn heads(plan: &AttentionPlan, t: &Tensor, h: usize) -> OpResult<Tensor> {
    if !plan.three_d {
        return Ok(t.clone());
    }
    let (b, s, hidden) = t.dims3().ce()?;
    t.reshape((b, s, h, hidden / h))
        .ce()?
        .transpose(1, 2)
        .ce()?
        .contiguous()
        .ce()
}

/// `concat(past, new)` on the sequence axis, each key/value head repeated
/// over its `group` query heads (`[B, Hkv, T, d]` → `[B, Hq, T, d]`).
fn present(new: Tensor, past: Option<&Tensor>, group: usize) -> OpResult<(Tensor, Tensor)> {
    let full = match past {
        Some(p) => Tensor::cat(&[p, &new], 2).ce()?,
        None => new,
    };
    let (b, h, t, d) = full.dims4().ce()?;
    let spread = full
        .unsqueeze(2)
        .ce()?
        .broadcast_as((b, h, group, t, d))
        .ce()?
        .contiguous()
        .ce()?
        .reshape((b, h * group, t, d))
        .ce()?;
    Ok((full, spread))
}

/// The decoded bias `[B, Hq, Sq, T]` in `like`'s dtype and device.
fn bias(plan: &AttentionPlan, like: &Tensor) -> OpResult<Option<Tensor>> {
    let Some(b) = plan.bias() else {
        return Ok(None);
    };
    let dims = (plan.batch, plan.q_heads, plan.q_len, plan.total());
    Tensor::from_vec(b, dims, like.device())
        .ce()?
        .to_dtype(like.dtype())
        .ce()
        .map(Some)
}

fn attention(ctx: &OpCtx, x: &[Option<&Tensor>]) -> OpResult<Lowered<Tensor>> {
    let plan = AttentionPlan::decode(ctx, x)?;
    let g = plan.group();
    let q = heads(&plan, ctx.input(x, 0)?, plan.q_heads)?;
    let (k, ks) = present(
        heads(&plan, ctx.input(x, 1)?, plan.kv_heads)?,
        optional(x, 4),
        g,
    )?;
    let (v, vs) = present(
        heads(&plan, ctx.input(x, 2)?, plan.kv_heads)?,
        optional(x, 5),
        g,
    )?;
    let raw = q
        .matmul(&ks.transpose(2, 3).ce()?.contiguous().ce()?)
        .ce()?
        .affine(plan.scale, 0.0)
        .ce()?;
    let biased = match bias(&plan, &q)? {
        Some(b) => raw.broadcast_add(&b).ce()?,
        None => raw.clone(),
    };
    let c = plan.softcap;
    let capped = match c > 0.0 {
        true => biased
            .affine(1.0 / c, 0.0)
            .ce()?
            .tanh()
            .ce()?
            .affine(c, 0.0)
            .ce()?,
        false => biased.clone(),
    };
    let p = candle_nn::ops::softmax_last_dim(&capped).ce()?;
    let y = p.matmul(&vs).ce()?;
    let y = match plan.three_d {
        true => y
            .transpose(1, 2)
            .ce()?
            .contiguous()
            .ce()?
            .reshape(plan.y_shape())
            .ce()?,
        false => y,
    };
    let scores = match plan.mode {
        QkMode::Raw => raw,
        QkMode::Biased => biased,
        QkMode::Capped => capped,
        QkMode::Softmax => p,
    };
    let outputs = vec![
        Some(y),
        ctx.wants_output(1).then_some(k),
        ctx.wants_output(2).then_some(v),
        ctx.wants_output(3).then_some(scores),
    ];
    Ok(Lowered {
        outputs,
        how: How::composed(HOW),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn gqa_heads_share_their_key_head_and_3d_merges_heads() {
        // Q [1, 1, 2] as two heads of 1, one key/value head of 1, two keys.
        // Both query heads read the same key head; head 0 (q = 0) averages
        // the values, head 1 (q = ln 3, scale 1) weighs them 1/4, 3/4.
        let q = f32t(&[1, 1, 2], &[0., 3f32.ln()]);
        let k = f32t(&[1, 2, 1], &[0., 1.]);
        let v = f32t(&[1, 2, 1], &[4., 8.]);
        let n = node(
            "Attention",
            3,
            1,
            vec![
                ("q_num_heads", Attr::Int(2)),
                ("kv_num_heads", Attr::Int(1)),
                ("scale", Attr::Float(1.0)),
            ],
        );
        let (y, dims, _) = run1(&n, 23, &[Some(&q), Some(&k), Some(&v)]);
        assert_eq!(dims, vec![1, 1, 2]);
        close(&y, &[6., 7.], 1e-5);
    }
}
