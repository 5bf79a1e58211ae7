//! RotaryEmbedding-23 (<https://onnx.ai/onnx/operators/onnx__RotaryEmbedding.html>):
//! rotary positional embeddings. `X` is `[B, heads, S, head]` (4-D) or
//! `[B, S, heads·head]` (3-D, `num_heads` required); the first
//! `rotary_embedding_dim` (default: all) of each head's channels are rotated
//! in pairs `(x1, x2)` by angles whose cos/sin come from `cos_cache` and
//! `sin_cache`: rows picked by `position_ids` `[B, S]` (caches
//! `[positions, rot/2]`) or, without it, caches `[B, S, rot/2]`. Pairs are
//! the two halves (`interleaved=0`) or even/odd channels (`interleaved=1`):
//! `x1' = cos·x1 − sin·x2`, `x2' = sin·x1 + cos·x2`.
//!
//! The decode fixes the layout once; the reference and the compositions
//! index pairs and cache rows through it.

use super::{optional, HostView, OpCtx, OpResult};

/// RotaryEmbedding's decoded node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotaryPlan {
    pub interleaved: bool,
    /// `X` is `[B, heads, S, head]` (else `[B, S, heads·head]`).
    pub four_d: bool,
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub head: usize,
    /// Channels rotated per head (even).
    pub rot: usize,
    /// Cache rows for each `(b, s)`, `b·S + s` order: position ids, or the
    /// row `b·S + s` of a `[B, S, rot/2]` cache.
    pub rows: Vec<usize>,
}

impl RotaryPlan {
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<RotaryPlan> {
        let dims = ctx.input(x, 0)?.dims();
        let cos = ctx.input(x, 1)?.dims();
        let interleaved = ctx.int("interleaved", 0)? != 0;
        let num_heads = ctx.int("num_heads", 0)?;
        let (four_d, batch, seq, heads, head) = match dims[..] {
            [b, h, s, d] => (true, b, s, h, d),
            [b, s, hidden] if num_heads > 0 && hidden % num_heads as usize == 0 => {
                (false, b, s, num_heads as usize, hidden / num_heads as usize)
            }
            _ => {
                return Err(ctx.fail(format!(
                    "input `X` {dims:?} is neither 4-D nor 3-D with a `num_heads` ({num_heads}) dividing its last axis"
                )))
            }
        };
        let rot = match ctx.int("rotary_embedding_dim", 0)? {
            0 => head,
            r => r as usize,
        };
        if rot % 2 != 0 || rot > head {
            return Err(ctx.attr_error(
                "rotary_embedding_dim",
                format!("{rot} must be even and at most the head size {head}"),
            ));
        }
        let rows = match optional(x, 3) {
            Some(p) => {
                let limit = cos.first().copied().unwrap_or(0);
                p.host_ints()?
                    .into_iter()
                    .map(|v| {
                        usize::try_from(v)
                            .ok()
                            .filter(|&r| r < limit)
                            .ok_or_else(|| {
                                ctx.fail(format!(
                                    "position id {v} is outside the cache's {limit} rows"
                                ))
                            })
                    })
                    .collect::<OpResult<Vec<_>>>()?
            }
            None => (0..batch * seq).collect(),
        };
        let fits = match optional(x, 3) {
            Some(_) => cos.len() == 2 && cos[1] == rot / 2,
            None => cos[..] == [batch, seq, rot / 2],
        };
        if rows.len() != batch * seq || !fits {
            return Err(ctx.fail(format!(
                "caches {cos:?} (and position_ids) do not fit X {dims:?} with {rot} rotated channels"
            )));
        }
        Ok(RotaryPlan {
            interleaved,
            four_d,
            batch,
            seq,
            heads,
            head,
            rot,
            rows,
        })
    }

    /// The channels `(x1, x2)` of pair `j` within a head.
    pub fn pair(&self, j: usize) -> (usize, usize) {
        if self.interleaved {
            (2 * j, 2 * j + 1)
        } else {
            (j, j + self.rot / 2)
        }
    }

    /// The flat offset in `X` of channel `d` of head `h` at `(b, s)`.
    pub fn offset(&self, b: usize, s: usize, h: usize, d: usize) -> usize {
        if self.four_d {
            ((b * self.heads + h) * self.seq + s) * self.head + d
        } else {
            ((b * self.seq + s) * self.heads + h) * self.head + d
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Attr, Node};
    use crate::op::test_node;
    use crate::tensor::Tensor;
    use ndarray::{ArrayD, IxDyn};

    fn zeros(shape: &[usize]) -> Tensor {
        Tensor::F32(ArrayD::zeros(IxDyn(shape)))
    }
    fn decode(node: &Node, x: &[Option<&Tensor>]) -> OpResult<RotaryPlan> {
        crate::op::with_node(node, 23, |ctx| RotaryPlan::decode(ctx, x))
    }

    #[test]
    fn three_d_needs_heads_and_position_ids_index_the_cache() {
        let n = test_node(
            "RotaryEmbedding",
            4,
            1,
            vec![("num_heads", Attr::Int(2)), ("interleaved", Attr::Int(1))],
        );
        let (x, c) = (zeros(&[1, 3, 8]), zeros(&[5, 2]));
        let p = Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![4, 0, 2]).unwrap());
        let plan = decode(&n, &[Some(&x), Some(&c), Some(&c), Some(&p)]).unwrap();
        assert_eq!((plan.heads, plan.head, plan.rot), (2, 4, 4));
        assert_eq!(plan.rows, vec![4, 0, 2]);
        assert_eq!(plan.pair(1), (2, 3));
        assert_eq!(plan.offset(0, 1, 1, 2), 14);
        let bad = Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![5, 0, 2]).unwrap());
        assert!(decode(&n, &[Some(&x), Some(&c), Some(&c), Some(&bad)]).is_err());
        let no_heads = test_node("RotaryEmbedding", 4, 1, vec![]);
        assert!(decode(&no_heads, &[Some(&x), Some(&c), Some(&c), Some(&p)]).is_err());
    }
}
