//! The attributes of the elementwise math, logic and activation ops added for
//! issue 12, decoded once for the reference and every lowering.
//!
//! Mod-10/13 (<https://onnx.ai/onnx/operators/onnx__Mod.html>): `fmod` 0
//! (integer floor-mod, the divisor's sign) or 1 (C `fmod`, the dividend's
//! sign; required for floats). BitShift-11: `direction` LEFT | RIGHT. IsInf-10/20:
//! `detect_negative`/`detect_positive`. Shrink-9: `bias` 0, `lambd` 0.5.
//! Elu-6/22 (`alpha` 1), Selu-6/22 (`alpha` 1.67326…, `gamma` 1.05070…),
//! Celu-12 (`alpha` 1), ThresholdedRelu-10/22 (`alpha` 1): float attributes,
//! read as the f32 the model stores, widened to f64.

use super::{OpCtx, OpResult};

/// Mod's `fmod`: which remainder the node asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModKind {
    /// fmod = 0: the integer remainder with the divisor's sign (Python `%`).
    Floor,
    /// fmod = 1: C `fmod`, the dividend's sign.
    Trunc,
}

/// Mod's decode; a float input with `fmod` 0 is invalid per the spec.
pub fn mod_kind(ctx: &OpCtx, float_inputs: bool) -> OpResult<ModKind> {
    match ctx.int("fmod", 0)? {
        0 if float_inputs => Err(ctx.fail(
            "attribute `fmod`: must be 1 for floating-point inputs (the spec leaves fmod=0 undefined)",
        )),
        0 => Ok(ModKind::Floor),
        1 => Ok(ModKind::Trunc),
        v => Err(ctx.attr_error("fmod", format!("must be 0 or 1, got {v}"))),
    }
}

/// BitShift's `direction`: true for LEFT.
pub fn shift_left(ctx: &OpCtx) -> OpResult<bool> {
    match ctx.string("direction", "")?.as_str() {
        "LEFT" => Ok(true),
        "RIGHT" => Ok(false),
        other => Err(ctx.attr_error("direction", format!("must be LEFT or RIGHT, got `{other}`"))),
    }
}

/// IsInf's (detect_negative, detect_positive).
pub fn is_inf_signs(ctx: &OpCtx) -> OpResult<(bool, bool)> {
    Ok((
        ctx.int("detect_negative", 1)? != 0,
        ctx.int("detect_positive", 1)? != 0,
    ))
}

/// Shrink's (bias, lambd).
pub fn shrink(ctx: &OpCtx) -> OpResult<(f64, f64)> {
    Ok((
        ctx.float("bias", 0.0)? as f64,
        ctx.float("lambd", 0.5)? as f64,
    ))
}

/// The float parameters of the parametric activations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActParams {
    pub alpha: f64,
    /// Selu's `gamma` (1 for the others).
    pub gamma: f64,
}

/// Selu's default `alpha` and `gamma` (the spec's f32 values).
pub const SELU_ALPHA: f32 = 1.673_263_2;
pub const SELU_GAMMA: f32 = 1.050_701;

/// The `alpha` (and Selu's `gamma`) of Elu, Selu, Celu, ThresholdedRelu.
pub fn act_params(ctx: &OpCtx) -> OpResult<ActParams> {
    let op = ctx.node.op_type.as_str();
    let (alpha, gamma) = match op {
        "Selu" => (
            ctx.float("alpha", SELU_ALPHA)?,
            ctx.float("gamma", SELU_GAMMA)?,
        ),
        _ => (ctx.float("alpha", 1.0)?, 1.0),
    };
    Ok(ActParams {
        alpha: alpha as f64,
        gamma: gamma as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;

    #[test]
    fn decodes_refuse_bad_values() {
        assert_eq!(
            with("Mod", 13, vec![], |c| mod_kind(c, false).ok()),
            Some(ModKind::Floor)
        );
        assert!(with("Mod", 13, vec![], |c| mod_kind(c, true).ok()).is_none());
        assert!(with("Mod", 13, vec![("fmod", Attr::Int(2))], |c| mod_kind(
            c, false
        )
        .ok())
        .is_none());
        assert!(with(
            "BitShift",
            11,
            vec![("direction", Attr::String("UP".into()))],
            |c| { shift_left(c).ok() }
        )
        .is_none());
        let p = with("Selu", 6, vec![], |c| act_params(c).ok()).unwrap();
        assert_eq!(p.alpha, SELU_ALPHA as f64);
        assert_eq!(p.gamma, SELU_GAMMA as f64);
        assert_eq!(
            with("Shrink", 9, vec![("lambd", Attr::Float(1.5))], |c| shrink(
                c
            )
            .ok()),
            Some((0.0, 1.5))
        );
    }
}
