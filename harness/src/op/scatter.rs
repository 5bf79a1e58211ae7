//! ScatterND-11/13/16/18 (<https://onnx.ai/onnx/operators/onnx__ScatterND.html>):
//! `output = data`, then for each index tuple `i` of `indices[..., :k]`,
//! `output[indices[i]] = updates[i]` (a slice of rank `r − k`), or combined
//! with it by `reduction` (opset 16: `add`, `mul`; 18: `max`, `min`).
//! Negative indices count from the end of their axis.
//!
//! GatherND-11/12/13 (<https://onnx.ai/onnx/operators/onnx__GatherND.html>)
//! is the same addressing read the other way: `output[i] = data[indices[i]]`
//! (with `batch_dims` leading axes shared by `data` and `indices`).
//!
//! Every backend scatters (and gathers) *rows*: `data` seen as `[Π d[..k], Π d[k..]]`,
//! each index tuple one row id. The decode turns the indices into those row
//! ids once (validated against `data`'s shape), so the reference and the
//! framework lowerings index the same rows.

use super::{OpCtx, OpResult};

/// How an update combines with what is in `data` (attribute `reduction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    None,
    Add,
    Mul,
    Max,
    Min,
}

impl Reduction {
    /// `old` combined with `new` (in f64: what the reference computes).
    pub fn apply(self, old: f64, new: f64) -> f64 {
        match self {
            Reduction::None => new,
            Reduction::Add => old + new,
            Reduction::Mul => old * new,
            Reduction::Max => old.max(new),
            Reduction::Min => old.min(new),
        }
    }

    pub fn decode(ctx: &OpCtx) -> OpResult<Reduction> {
        let r = ctx.string("reduction", "none")?;
        match (r.as_str(), ctx.opset) {
            ("none", _) => Ok(Reduction::None),
            ("add", 16..) => Ok(Reduction::Add),
            ("mul", 16..) => Ok(Reduction::Mul),
            ("max", 18..) => Ok(Reduction::Max),
            ("min", 18..) => Ok(Reduction::Min),
            _ => Err(ctx.fail(format!(
                "attribute `reduction` = `{r}` is not defined at opset {}",
                ctx.opset
            ))),
        }
    }
}

/// The rows a ScatterND writes: `data` as `[rows, row_len]`, `updates` as
/// `[ids.len(), row_len]`, update `j` going to row `ids[j]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowPlan {
    pub rows: usize,
    pub row_len: usize,
    pub ids: Vec<usize>,
}

/// Validates the shapes and turns `indices` (flat, int64) into row ids.
pub fn row_plan(
    ctx: &OpCtx,
    data: &[usize],
    indices_shape: &[usize],
    indices: &[i64],
    updates: &[usize],
) -> OpResult<RowPlan> {
    let k = *indices_shape
        .last()
        .ok_or_else(|| ctx.fail("input `indices` must have rank >= 1"))?;
    if k == 0 || k > data.len() {
        return Err(ctx.fail(format!(
            "input `indices` has index depth {k}, `data` has rank {}",
            data.len()
        )));
    }
    let lead = &indices_shape[..indices_shape.len() - 1];
    let want: Vec<usize> = lead.iter().chain(&data[k..]).copied().collect();
    if updates != want.as_slice() {
        return Err(ctx.fail(format!(
            "input `updates` has shape {updates:?}, expected {want:?} (indices {indices_shape:?}, data {data:?})"
        )));
    }
    let ids = indices
        .chunks(k)
        .map(|tuple| {
            tuple.iter().zip(data).try_fold(0usize, |acc, (&v, &d)| {
                let w = if v < 0 { v + d as i64 } else { v };
                if (0..d as i64).contains(&w) {
                    Ok(acc * d + w as usize)
                } else {
                    Err(ctx.fail(format!(
                        "input `indices`: {v} is out of range for an axis of size {d}"
                    )))
                }
            })
        })
        .collect::<OpResult<Vec<usize>>>()?;
    Ok(RowPlan {
        rows: data[..k].iter().product(),
        row_len: data[k..].iter().product(),
        ids,
    })
}

/// GatherND's rows: `data` as `[batch · rows, row_len]`, output row `j`
/// being data row `ids[j]`; `out_shape` is the output's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatherPlan {
    pub rows: usize,
    pub row_len: usize,
    pub ids: Vec<usize>,
    pub out_shape: Vec<usize>,
}

/// Validates GatherND's shapes and turns `indices` (flat) into row ids.
pub fn gather_plan(
    ctx: &OpCtx,
    data: &[usize],
    indices_shape: &[usize],
    indices: &[i64],
) -> OpResult<GatherPlan> {
    let b = usize::try_from(ctx.int("batch_dims", 0)?)
        .map_err(|_| ctx.fail("attribute `batch_dims` must be >= 0"))?;
    let q = indices_shape.len();
    let k = *indices_shape
        .last()
        .ok_or_else(|| ctx.fail("input `indices` must have rank >= 1"))?;
    if k == 0 || b >= q || b + k > data.len() || data[..b] != indices_shape[..b] {
        return Err(ctx.fail(format!(
            "inputs `data` {data:?} and `indices` {indices_shape:?} do not fit batch_dims = {b}"
        )));
    }
    let batch: usize = data[..b].iter().product();
    let per_batch: usize = indices_shape[b..q - 1].iter().product();
    let rows: usize = data[b..b + k].iter().product();
    let mut ids = Vec::with_capacity(batch * per_batch);
    for (t, tuple) in indices.chunks(k.max(1)).enumerate() {
        let base = (t / per_batch.max(1)) * rows;
        let row = tuple
            .iter()
            .zip(&data[b..])
            .try_fold(0usize, |acc, (&v, &d)| {
                let w = if v < 0 { v + d as i64 } else { v };
                if (0..d as i64).contains(&w) {
                    Ok(acc * d + w as usize)
                } else {
                    Err(ctx.fail(format!(
                        "input `indices`: {v} is out of range for an axis of size {d}"
                    )))
                }
            })?;
        ids.push(base + row);
    }
    let out_shape = indices_shape[..q - 1]
        .iter()
        .chain(&data[b + k..])
        .copied()
        .collect();
    Ok(GatherPlan {
        rows: batch * rows,
        row_len: data[b + k..].iter().product(),
        ids,
        out_shape,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::test_node;

    #[test]
    fn rows_wrap_negative_indices_and_check_shapes() {
        let node = test_node("ScatterND", 3, 1, vec![]);
        crate::op::with_node(&node, 18, |ctx| {
            // data [4, 2, 3], indices [[1, 0], [-1, 1]] (k = 2): rows of 3.
            let p = row_plan(ctx, &[4, 2, 3], &[2, 2], &[1, 0, -1, 1], &[2, 3]).unwrap();
            assert_eq!(
                p,
                RowPlan {
                    rows: 8,
                    row_len: 3,
                    ids: vec![2, 7]
                }
            );
            assert!(row_plan(ctx, &[4, 2, 3], &[2, 2], &[4, 0, 0, 0], &[2, 3]).is_err());
            assert!(row_plan(ctx, &[4, 2, 3], &[2, 2], &[1, 0, 0, 0], &[2, 2]).is_err());
            // GatherND with batch_dims = 0: the same rows read back.
            let g = gather_plan(ctx, &[4, 2, 3], &[2, 2], &[1, 0, -1, 1]).unwrap();
            assert_eq!((g.ids, g.out_shape, g.row_len), (vec![2, 7], vec![2, 3], 3));
        });
    }
}
