//! Reference op: TfIdfVectorizer-9 over `op::tfidf::TfIdfPlan`, one output
//! row per input row (float32 counts or weights).

use ndarray::{ArrayD, IxDyn};

use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::tfidf::TfIdfPlan;
use crate::tensor::DType;

const SPEC: &[Coverage] = &[Coverage {
    when: "pool_int64s (int32/int64 input)",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    r.range(
        "TfIdfVectorizer",
        9,
        u32::MAX,
        tfidf,
        spec!("TfIdfVectorizer"),
        SPEC,
    );
}

fn tfidf(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let plan = TfIdfPlan::decode(ctx)?;
    let input = ctx.input(x, 0)?;
    if !matches!(input.dtype, DType::I32 | DType::I64) {
        return Err(ctx.fail(format!(
            "input `X` must be int32 or int64, got {}",
            input.dtype
        )));
    }
    let items = input.ints()?;
    let (rows, shape) = match input.shape() {
        [_] => (vec![&items[..]], vec![plan.width]),
        [n, c] => (
            items.chunks(*c.max(&1)).take(*n).collect(),
            vec![*n, plan.width],
        ),
        s => return Err(ctx.fail(format!("input `X` must be 1-D or 2-D, got shape {s:?}"))),
    };
    let mut v: Vec<f64> = rows.iter().flat_map(|r| plan.row(r)).collect();
    v.resize(shape.iter().product(), 0.0);
    let out = ArrayD::from_shape_vec(IxDyn(&shape), v).expect("shape matches");
    Ok(Lowered::one(RefTensor::float(out, DType::F32), How::Spec))
}
