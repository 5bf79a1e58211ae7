//! A stable digest of case reports, for snapshot tests: per variant, node and
//! lane the verdict, the error magnitude bucketed by decade relative to the
//! tolerance, the mismatch fraction rounded to 2 significant digits, the
//! fingerprint description and the declared flag. Never raw floats or
//! timings, so the digest is identical across machines and thread counts.
//!
//! Works on the JSON form of [`CaseReport`] so that the same function digests
//! an in-process report and the `--format json` output of the binary.

use std::fmt::Write;

use serde_json::Value;

use crate::outcome::CaseReport;

/// Digest of reports (in order) built in this process.
pub fn digest_reports(reports: &[CaseReport]) -> String {
    let values: Vec<Value> = reports
        .iter()
        .map(|r| serde_json::to_value(r).expect("CaseReport serializes"))
        .collect();
    digest_values(&values)
}

/// Digest of a `--format json` document (its `cases`).
pub fn digest_document(doc: &Value) -> String {
    digest_values(doc["cases"].as_array().map(Vec::as_slice).unwrap_or(&[]))
}

/// Digest of reports in their JSON form.
pub fn digest_values(cases: &[Value]) -> String {
    let mut out = String::new();
    for c in cases {
        let id = match c["variant"].as_str() {
            Some(v) => format!("{}[{v}]", str_of(&c["case"])),
            None => str_of(&c["case"]).to_string(),
        };
        let status = if c["passed"].as_bool() == Some(true) {
            "PASS"
        } else {
            "FAIL"
        };
        let _ = writeln!(out, "{status} {id}");
        if let Some(line) = incomplete_coverage(c) {
            let _ = writeln!(out, "  {line}");
        }
        for n in c["nodes"].as_array().into_iter().flatten() {
            let vacuous: Vec<&str> = n["outputs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|o| o["vacuous"].as_bool() == Some(true))
                .map(|o| str_of(&o["name"]))
                .collect();
            let vacuous = if vacuous.is_empty() {
                String::new()
            } else {
                format!(" vacuous: {}", vacuous.join(","))
            };
            let _ = writeln!(
                out,
                "  #{} {} ({}){vacuous}",
                n["index"],
                str_of(&n["name"]),
                str_of(&n["op"])
            );
            let tolerances: Vec<(&str, &Value)> = n["outputs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| (o["name"].as_str().unwrap_or(""), &o["tolerance"]))
                .collect();
            for (lane, x) in n["lanes"].as_object().into_iter().flatten() {
                let mut line = format!("    {lane}: {}", str_of(&x["verdict"]));
                if !x["declared"].is_null() {
                    line.push_str(" declared");
                }
                if let Some(o) = x["origin"].as_str() {
                    let _ = write!(line, " {o}");
                }
                for (out_name, r) in x["outputs"].as_object().into_iter().flatten() {
                    let tol = tolerances
                        .iter()
                        .find(|(n, _)| *n == out_name)
                        .map(|(_, t)| *t)
                        .unwrap_or(&Value::Null);
                    if let Some(cmp) = r.get("comparison") {
                        let _ = write!(line, " | {out_name}: {}", comparison(cmp, tol));
                    }
                }
                if let Some(l) = local(x) {
                    let _ = write!(line, " | local: {l}");
                }
                if let Some(fp) = fingerprint(&x["fingerprint"]) {
                    let _ = write!(line, " | fingerprint: {fp}");
                }
                let _ = writeln!(out, "{line}");
            }
        }
    }
    out
}

/// The local comparison, bucketed by decade of error over bound, on lanes
/// where it matters: a node not ok, or a node past its bound; `n/a` where
/// the reference could not evaluate the node on the lane's inputs.
fn local(x: &Value) -> Option<String> {
    if !x["local_note"].is_null() {
        return Some("n/a".into());
    }
    let c = &x["local"];
    let past = c["mismatches"].as_u64().unwrap_or(0) > 0 || c["kind"] != "metrics";
    if c.is_null() || (x["verdict"] == "ok" && !past) {
        return None;
    }
    if c["kind"] != "metrics" {
        return Some(comparison(c, &Value::Null));
    }
    // An infinite ratio (an exact op off at all, or a NaN disagreement)
    // serializes as null.
    match c["bound_ratio"].as_f64() {
        Some(ratio) => Some(bucket(ratio, 1.0).replace("tol", "bound")),
        None => Some("∞x bound".into()),
    }
}

/// `coverage: tch 1/19, candle 0/19`: the lanes that did not compare every
/// node (`None` when all did, so complete cases add no line).
fn incomplete_coverage(c: &Value) -> Option<String> {
    let partial: Vec<String> = c["lanes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let cov = &l["coverage"];
            let (done, total) = (cov["compared"].as_u64()?, cov["total"].as_u64()?);
            (done < total).then(|| format!("{} {done}/{total}", str_of(&l["name"])))
        })
        .collect();
    (!partial.is_empty()).then(|| format!("coverage: {}", partial.join(", ")))
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

fn comparison(c: &Value, tol: &Value) -> String {
    match c["kind"].as_str() {
        Some("metrics") => {
            let mism = c["mismatch_fraction"].as_f64().unwrap_or(0.0);
            let mut s = magnitude(c, tol);
            if c["mismatches"].as_u64().unwrap_or(0) > 0 {
                let _ = write!(s, ", mismatch {}", round_sig2(mism));
            }
            let nan = c["nan_mismatches"].as_u64().unwrap_or(0);
            let inf = c["inf_mismatches"].as_u64().unwrap_or(0);
            if nan > 0 || inf > 0 {
                let _ = write!(s, ", nan/inf disagree");
            }
            s
        }
        Some("shape_mismatch") => format!("shape {} vs {}", c["got"], c["want"]),
        Some("dtype_mismatch") => format!("dtype {} vs {}", str_of(&c["got"]), str_of(&c["want"])),
        _ => "?".into(),
    }
}

/// The worst element's error over its tolerance, as a decade bucket.
fn magnitude(c: &Value, tol: &Value) -> String {
    if c["mismatches"].as_u64().unwrap_or(0) == 0 {
        return "<=tol".into();
    }
    let (Some(v), Some(r)) = (c["worst_value"].as_f64(), c["worst_reference"].as_f64()) else {
        // Non-finite values serialize as null.
        return "non-finite".into();
    };
    let atol = tol["atol"].as_f64().unwrap_or(0.0);
    let rtol = tol["rtol"].as_f64().unwrap_or(0.0);
    let allowed = atol + rtol * r.abs();
    let err = (v - r).abs();
    bucket(err, allowed)
}

/// `<=tol`, `10x tol`, `1e2x tol`, ... (the smallest decade the error is under).
pub fn bucket(err: f64, allowed: f64) -> String {
    if !err.is_finite() {
        return "non-finite".into();
    }
    if err <= allowed {
        return "<=tol".into();
    }
    if allowed <= 0.0 {
        return ">0 (tol 0)".into();
    }
    let k = (err / allowed).log10().ceil().max(1.0) as i32;
    if k == 1 {
        "10x tol".into()
    } else {
        format!("1e{k}x tol")
    }
}

/// Rounds to 2 significant digits and prints the shortest form.
pub fn round_sig2(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let d = x.abs().log10().floor() as i32;
    let p = 1 - d;
    if p >= 0 {
        let s = 10f64.powi(p);
        format!("{}", (x * s).round() / s)
    } else {
        let s = 10f64.powi(-p);
        format!("{}", (x / s).round() * s)
    }
}

/// A fingerprint's description: the string itself, or its `description`
/// (else `name`) field, with raw floats (`max abs 1.2e-3`) masked.
fn fingerprint(v: &Value) -> Option<String> {
    fingerprint_text(v).map(|s| mask_floats(&s))
}

/// Replaces the number after each `max abs ` with `…`.
fn mask_floats(s: &str) -> String {
    const KEY: &str = "max abs ";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(KEY) {
        out.push_str(&rest[..i + KEY.len()]);
        rest = &rest[i + KEY.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+')))
            .unwrap_or(rest.len());
        out.push('…');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn fingerprint_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o
            .get("description")
            .or_else(|| o.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| Some(v.to_string())),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        assert_eq!(bucket(1e-6, 1e-5), "<=tol");
        assert_eq!(bucket(5e-5, 1e-5), "10x tol");
        assert_eq!(bucket(1e-5 * 10.5, 1e-5), "1e2x tol");
        assert_eq!(bucket(0.5, 1e-5), "1e5x tol");
    }

    #[test]
    fn masks_floats() {
        assert_eq!(
            mask_floats("closest to x (model asks y), max abs 1.2e-3, not exact"),
            "closest to x (model asks y), max abs …, not exact"
        );
        assert_eq!(
            mask_floats("within rounding (max abs 0e0)"),
            "within rounding (max abs …)"
        );
    }

    #[test]
    fn sig2() {
        assert_eq!(round_sig2(0.25), "0.25");
        assert_eq!(round_sig2(0.2549), "0.25");
        assert_eq!(round_sig2(0.0033333), "0.0033");
        assert_eq!(round_sig2(1.0), "1");
        assert_eq!(round_sig2(0.123456), "0.12");
    }
}
