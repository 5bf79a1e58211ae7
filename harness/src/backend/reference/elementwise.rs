//! Reference ops: elementwise arithmetic and activations.
//!
//! Binary ops follow ONNX multidirectional broadcasting
//! (<https://onnx.ai/onnx/repo-docs/Broadcasting.html>).

use super::util::broadcast_map;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::tensor::Tensor;

const SPEC: &[Coverage] = &[Coverage { when: "all attributes", label: Label::Spec }];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    r.op("Add", add, "https://onnx.ai/onnx/operators/onnx__Add.html", SPEC);
    r.op("Relu", relu, "https://onnx.ai/onnx/operators/onnx__Relu.html", SPEC);
}

/// Add-7/13/14: C = A + B with broadcasting; integers wrap.
fn add(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let out = match (&a.data, &b.data) {
        (Tensor::F64(p), Tensor::F64(q)) => Tensor::F64(broadcast_map(p, q, |u, v| u + v)?),
        (Tensor::I64(p), Tensor::I64(q)) => Tensor::I64(broadcast_map(p, q, i64::wrapping_add)?),
        (Tensor::I32(p), Tensor::I32(q)) => Tensor::I32(broadcast_map(p, q, i32::wrapping_add)?),
        _ => return Err(ctx.fail(format!("Add of {} and {}", a.dtype, b.dtype))),
    };
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}

/// Relu-6/13/14: max(0, x).
fn relu(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let a = ctx.input(x, 0)?;
    let out = Tensor::F64(a.f64()?.mapv(|v| if v < 0.0 { 0.0 } else { v }));
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}
