//! Reshape: the `shape` input resolved once against the data's shape, so the
//! meaning of 0 (copy the input dimension, or a literal 0 with `allowzero`)
//! and -1 (infer) has one answer for every backend.
//!
//! Spec and opset history (<https://onnx.ai/onnx/operators/onnx__Reshape.html>):
//! Reshape-1 takes `shape` as an attribute (not supported by xdiff: opsets
//! below 5 are not loaded for it); 5 moves it to an input; 13 adds bfloat16;
//! 14 adds `allowzero` (a 0 stays a literal 0 instead of copying the input
//! dimension, and then -1 may not appear with it); 19 and 21 add types only.
//! At most one entry is -1; it takes whatever size makes the element counts
//! match.

use super::{HostView, OpCtx, OpResult};

/// The fully resolved target shape of a Reshape node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReshapeAttrs {
    pub target: Vec<usize>,
}

impl ReshapeAttrs {
    /// Decodes `shape` (input 1) against the data (input 0).
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<ReshapeAttrs> {
        let input = ctx.input(x, 0)?.dims();
        let spec = ctx
            .input(x, 1)
            .map_err(|_| ctx.fail("required input `shape` is missing"))?
            .host_ints()
            .map_err(|e| ctx.fail(format!("input `shape`: {e:?}")))?;
        let allowzero = ctx.opset >= 14 && ctx.int("allowzero", 0)? != 0;
        if allowzero && spec.contains(&0) && spec.contains(&-1) {
            return Err(ctx.fail(format!(
                "input `shape` {spec:?}: -1 with a literal 0 (allowzero=1) is invalid"
            )));
        }
        let target = resolve(ctx, &input, &spec, allowzero)?;
        Ok(ReshapeAttrs { target })
    }
}

/// The target shape: 0 copies the input dimension (unless `allowzero`), -1
/// infers; the element counts must match.
fn resolve(ctx: &OpCtx, input: &[usize], spec: &[i64], allowzero: bool) -> OpResult<Vec<usize>> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (k, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(k);
                out.push(1);
            }
            -1 => return Err(ctx.fail("input `shape` has more than one -1")),
            0 if !allowzero => match input.get(k) {
                Some(&v) => out.push(v),
                None => {
                    return Err(ctx.fail(format!(
                        "input `shape`: 0 at position {k} is past the input rank"
                    )))
                }
            },
            d if d < 0 => return Err(ctx.fail(format!("input `shape`: invalid dimension {d}"))),
            d => out.push(d as usize),
        }
    }
    let known: usize = out.iter().product();
    if let Some(k) = infer {
        if known == 0 || total % known != 0 {
            return Err(ctx.fail(format!("input `shape` {spec:?} cannot hold {input:?}")));
        }
        out[k] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(ctx.fail(format!(
            "input `shape` {spec:?} does not hold {total} elements of {input:?}"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::slice::tests::Host;
    use crate::op::window::tests::with;

    fn target(opset: u32, allowzero: i64, input: &[usize], spec: &[i64]) -> OpResult<Vec<usize>> {
        let data = Host(input.to_vec(), vec![]);
        let shape = Host(vec![spec.len()], spec.to_vec());
        let attrs = vec![("allowzero", Attr::Int(allowzero))];
        with("Reshape", opset, attrs, |c| {
            ReshapeAttrs::decode(c, &[Some(&data), Some(&shape)]).map(|a| a.target)
        })
    }

    #[test]
    fn zero_copies_and_minus_one_infers() {
        assert_eq!(target(13, 0, &[2, 3, 4], &[0, -1]).unwrap(), vec![2, 12]);
        assert_eq!(
            target(13, 0, &[2, 3, 4], &[4, 0, 2]).unwrap(),
            vec![4, 3, 2]
        );
        assert!(target(13, 0, &[2, 3, 4], &[-1, -1]).is_err());
        assert!(target(13, 0, &[2, 3, 4], &[5, -1]).is_err());
        assert!(target(13, 0, &[2, 3], &[0, 0, 0]).is_err());
        assert!(target(13, 0, &[2, 3], &[7]).is_err());
    }

    #[test]
    fn allowzero_keeps_a_literal_zero_from_opset_14() {
        assert_eq!(target(14, 1, &[0, 3], &[3, 0]).unwrap(), vec![3, 0]);
        // Before opset 14 the attribute does not exist: 0 copies.
        assert_eq!(target(13, 1, &[2, 3], &[0, 3]).unwrap(), vec![2, 3]);
        // Without allowzero the 0 copies dim 1 (3): 3*3 != 0 elements.
        assert!(target(14, 0, &[0, 3], &[3, 0]).is_err());
        assert!(target(14, 1, &[0, 3], &[0, -1]).is_err());
    }
}
