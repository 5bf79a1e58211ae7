//! What a case sets besides its model and inputs, resolved from the raw
//! TOML and validated: tolerances, engine options, backends, idiomatic-port
//! lanes and declared divergences.

use std::path::Path;

use super::raw::{RawCase, RawTol, RawTolerance};
use super::{
    default_backends, parse_opt_level, CaseError, Declared, Expectation, Tolerance, Tolerances,
};
use crate::backend::{self, Device, EngineOptions};
use crate::tensor::DType;

fn tol(base: Tolerance, raw: Option<RawTol>) -> Tolerance {
    match raw {
        None => base,
        Some(r) => Tolerance {
            atol: r.atol.unwrap_or(base.atol),
            rtol: r.rtol.unwrap_or(base.rtol),
        },
    }
}

fn tolerances(raw: &RawTolerance, base: Tolerances) -> Tolerances {
    let mut t = base;
    for (d, r) in [
        (DType::F16, raw.float16),
        (DType::BF16, raw.bfloat16),
        (DType::F32, raw.float32),
        (DType::F64, raw.float64),
    ] {
        let b = t.per_dtype[&d];
        t.per_dtype.insert(d, tol(b, r));
    }
    for (op, r) in &raw.op {
        t.per_op.insert(
            op.clone(),
            tol(
                Tolerance {
                    atol: 1e-5,
                    rtol: 1e-4,
                },
                Some(*r),
            ),
        );
    }
    t
}

fn options(file: &Path, raw: &RawCase) -> Result<EngineOptions, CaseError> {
    let mut o = EngineOptions::default();
    if let Some(d) = &raw.device {
        o.device = Device::parse(d).ok_or_else(|| {
            CaseError::new(
                file,
                format!("key `device`: `{d}` is not a device (expected `cpu` or `cuda:N`)"),
            )
        })?;
    }
    if let Some(l) = &raw.options.ort_optimization {
        o.ort_optimization = parse_opt_level(l).ok_or_else(|| {
            CaseError::new(file, format!("key `options.ort_optimization`: `{l}` (expected disable, basic, extended or all)"))
        })?;
    }
    o.tf32 = raw.options.tf32;
    o.threads = raw.options.threads.unwrap_or(0);
    Ok(o)
}

fn expectations(file: &Path, raw: &RawCase) -> Result<Vec<Expectation>, CaseError> {
    raw.expect
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let verdict = Declared::parse(&e.verdict).ok_or_else(|| {
                CaseError::new(
                    file,
                    format!(
                        "key `expect[{i}].verdict`: `{}` (expected diverged, unsupported, error or skipped)",
                        e.verdict
                    ),
                )
            })?;
            Ok(Expectation {
                backend: e.backend.clone(),
                node: e.node.clone(),
                op: e.op.clone(),
                after: e.after.clone(),
                verdict,
                when: e.when.clone(),
                reason: e.reason.clone(),
            })
        })
        .collect()
}

fn backends(file: &Path, raw: &Option<Vec<String>>) -> Result<Vec<String>, CaseError> {
    let Some(list) = raw else {
        return Ok(default_backends());
    };
    if let Some(b) = list.iter().find(|b| backend::info(b).is_none()) {
        let expected = backend::names_where(|_| true, " or ");
        return Err(CaseError::new(
            file,
            format!("key `backends`: unknown backend `{b}` (expected {expected})"),
        ));
    }
    Ok(list.clone())
}

fn port(file: &Path, raw: &RawCase) -> Result<Vec<String>, CaseError> {
    if let Some(b) = raw.port.iter().find(|b| !backend::has_port_lane(b)) {
        let expected = backend::names_where(|b| b.port, " or ");
        return Err(CaseError::new(
            file,
            format!("key `port`: `{b}` has no idiomatic-port lane (expected {expected})"),
        ));
    }
    Ok(raw.port.clone())
}

/// A case's settings: everything but its model and inputs.
pub(super) struct Settings {
    pub backends: Vec<String>,
    pub options: EngineOptions,
    pub tolerances: Tolerances,
    pub expects: Vec<Expectation>,
    pub port: Vec<String>,
    pub cross_device: bool,
    pub seed: u64,
}

impl Settings {
    /// The settings `raw` gives, its tolerances on top of `base`.
    pub(super) fn from_raw(
        file: &Path,
        raw: &RawCase,
        base: Tolerances,
    ) -> Result<Settings, CaseError> {
        Ok(Settings {
            backends: backends(file, &raw.backends)?,
            options: options(file, raw)?,
            tolerances: tolerances(&raw.tolerance, base),
            expects: expectations(file, raw)?,
            port: port(file, raw)?,
            cross_device: raw.options.cross_device.unwrap_or(true),
            seed: raw.seed,
        })
    }

    /// The settings of a case file that sets nothing.
    pub(super) fn defaults(tolerances: Tolerances) -> Settings {
        Settings {
            backends: default_backends(),
            options: EngineOptions::default(),
            tolerances,
            expects: vec![],
            port: vec![],
            cross_device: true,
            seed: 0,
        }
    }
}

#[cfg(all(test, feature = "tch-backend", feature = "candle-backend"))]
mod tests {
    use super::*;

    #[test]
    fn unknown_backends_and_port_lanes_list_the_backend_table() {
        let file = Path::new("c.toml");
        let err = backends(file, &Some(vec!["tf".into()])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.toml: key `backends`: unknown backend `tf` (expected ort, tch, candle, onnx-ref or reference)"
        );
        let raw: RawCase =
            toml::from_str("port = [\"reference\"]\n[model]\npath = \"m.onnx\"").unwrap();
        assert_eq!(
            port(file, &raw).unwrap_err().to_string(),
            "c.toml: key `port`: `reference` has no idiomatic-port lane (expected tch or candle)"
        );
        assert_eq!(backends(file, &None).unwrap(), default_backends());
    }
}
