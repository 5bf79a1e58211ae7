//! The JSON report (documented in docs/report-json.md): every case, node,
//! lane and metric, plus a summary, under a `format_version`. It loads back
//! ([`ReportDoc`], for `xdiff merge`), and [`mask`] blanks what is not
//! stable between runs, for comparing two reports byte for byte.

use std::io::Write;

use serde::{Deserialize, Serialize};

use super::{Event, Reporter, Summary, FORMAT_VERSION};
use crate::outcome::CaseReport;

/// Collects cases and writes one JSON document at the end (the summary,
/// known only then, comes first in the document).
pub struct JsonReporter<W: Write> {
    out: W,
    cases: Vec<CaseReport>,
}

impl<W: Write> JsonReporter<W> {
    pub fn new(out: W) -> Self {
        JsonReporter {
            out,
            cases: Vec::new(),
        }
    }
}

#[derive(Serialize)]
struct Document<'a> {
    format_version: u32,
    xdiff_version: &'static str,
    summary: &'a Summary,
    cases: &'a [CaseReport],
}

impl<W: Write> Reporter for JsonReporter<W> {
    fn handle(&mut self, event: &Event) -> std::io::Result<()> {
        match *event {
            Event::CaseFinished(run) => {
                self.cases.push(run.report.clone());
                Ok(())
            }
            Event::RunFinished { summary, .. } => {
                let doc = Document {
                    format_version: FORMAT_VERSION,
                    xdiff_version: env!("CARGO_PKG_VERSION"),
                    summary,
                    cases: &self.cases,
                };
                serde_json::to_writer_pretty(&mut self.out, &doc)?;
                writeln!(self.out)?;
                self.out.flush()
            }
            Event::HeatmapsWritten { .. } | Event::SweepFinished(_) | Event::CaseNotLoaded(_) => {
                Ok(())
            }
        }
    }
}

/// A JSON report read back (the owned form of what [`JsonReporter`] writes).
#[derive(Debug, Clone, Deserialize)]
pub struct ReportDoc {
    pub format_version: u32,
    pub xdiff_version: String,
    pub summary: Summary,
    pub cases: Vec<CaseReport>,
}

/// Keys whose values are timings (not stable between runs): every
/// `wall_ms` (summary, lanes) and `judge_ms` (cases), at any depth.
pub const TIMING_KEYS: [&str; 2] = ["wall_ms", "judge_ms"];

/// Lane settings that record how a lane ran, not what it found: its thread
/// count, whose pool its threads are (ORT's lane shares one unless a case
/// asks for another count), and its isolation mode (docs/isolation.md).
pub const MASKED_SETTINGS: [&str; 3] = ["threads", "thread pool", "isolation"];

/// A JSON report with what legitimately differs between runs of the same
/// cases and seeds blanked: each [`TIMING_KEYS`] value becomes `0`, and
/// each lane's [`MASKED_SETTINGS`] (how it ran, not what it found) become
/// `"*"`. Every other
/// value is kept digit for digit, so equal masked reports mean the same
/// cases in the same order with the same verdicts, metrics and messages.
/// Re-printed pretty with object keys sorted. Fails only on text that is
/// not JSON.
pub fn mask(report: &str) -> serde_json::Result<String> {
    let mut doc: serde_json::Value = serde_json::from_str(report)?;
    mask_value(&mut doc);
    let mut out = serde_json::to_string_pretty(&doc)?;
    out.push('\n');
    Ok(out)
}

fn mask_value(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if TIMING_KEYS.contains(&k.as_str()) {
                    *v = serde_json::Value::from(0);
                } else if k == "settings" {
                    for key in MASKED_SETTINGS {
                        if let Some(t) = v.get_mut(key) {
                            *t = serde_json::Value::from("*");
                        }
                    }
                } else {
                    mask_value(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn mask_blanks_timings_and_threads_only() {
        let a = r#"{"summary":{"wall_ms":12.5,"cases":1},"cases":[{"judge_ms":3.0,
            "lanes":[{"name":"tch","wall_ms":1.0,"settings":{"threads":"2","version":"2.4"}},
            {"name":"ort","settings":{"threads":"2","thread pool":"shared"}}]}]}"#;
        let b = a
            .replace("12.5", "99.0")
            .replace("\"2\"", "\"1\"")
            .replace("\"shared\"", "\"own\"")
            .replace("3.0", "4.0");
        assert_eq!(mask(a).unwrap(), mask(&b).unwrap());
        assert!(mask(a).unwrap().contains("\"version\": \"2.4\""));
        let c = a.replace("\"cases\":1", "\"cases\":2");
        assert_ne!(mask(a).unwrap(), mask(&c).unwrap());
    }
}
