//! Activations whose attributes frameworks fill in differently: Gelu and
//! HardSigmoid.
//!
//! Gelu-20 (<https://onnx.ai/onnx/operators/onnx__Gelu.html>): `approximate`
//! is "none" (the erf form, default) or "tanh". HardSigmoid-1/6/22
//! (<https://onnx.ai/onnx/operators/onnx__HardSigmoid.html>): max(0, min(1,
//! alpha·x + beta)) with `alpha` 0.2 and `beta` 0.5 (6 dropped
//! `consumed_inputs`, 22 added bfloat16).
//!
//! Their fingerprint spaces confuse Gelu's `approximate` (PyTorch's tanh
//! approximation) and HardSigmoid's `alpha` (PyTorch's hardsigmoid uses
//! 1/6) and `beta`. The lowerings read these attributes themselves: each is
//! one typed read with no opset gating.

use super::space::{float_dim_of, Dim, Kind, Space};
use super::OpCtx;
use crate::tensor::Tensor;

/// Gelu's fingerprint space: `approximate`.
pub fn gelu_space(ctx: &OpCtx, _: &[Option<&Tensor>]) -> Option<Space> {
    let model = ctx.string("approximate", "none").ok()?;
    Some(Space::plain(vec![Dim::new(
        "approximate",
        Kind::Str,
        model,
        &["none", "tanh"],
    )]))
}

/// HardSigmoid's fingerprint space: `alpha` (0.2 or 1/6) and `beta`.
pub fn hard_sigmoid_space(ctx: &OpCtx, _: &[Option<&Tensor>]) -> Option<Space> {
    let alpha = ctx.float("alpha", 0.2).ok()?;
    let beta = ctx.float("beta", 0.5).ok()?;
    Some(Space::plain(vec![
        float_dim_of("alpha", alpha, &["0.2", "0.16666667"]),
        float_dim_of("beta", beta, &["0.5"]),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;

    #[test]
    fn spaces_start_from_the_model_and_refuse_a_mistyped_attribute() {
        let s = with(
            "HardSigmoid",
            6,
            vec![("alpha", Attr::Float(1.0 / 6.0))],
            |c| hard_sigmoid_space(c, &[]),
        )
        .unwrap();
        assert_eq!(s.dims[0].values, vec!["0.16666667", "0.2"]);
        let s = with("Gelu", 20, vec![], |c| gelu_space(c, &[])).unwrap();
        assert_eq!(s.dims[0].values, vec!["none", "tanh"]);
        // A kind mismatch is a decode error, not a silent default.
        assert!(with("Gelu", 20, vec![("approximate", Attr::Int(1))], |c| {
            gelu_space(c, &[])
        })
        .is_none());
        assert!(with("HardSigmoid", 6, vec![("beta", Attr::Int(1))], |c| {
            hard_sigmoid_space(c, &[])
        })
        .is_none());
    }
}
