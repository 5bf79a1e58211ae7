//! The JSON report (documented in docs/report-json.md): every case, node,
//! lane and metric, plus a summary, under a `format_version`.

use std::io::Write;

use serde::Serialize;

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
                writeln!(self.out)
            }
            Event::HeatmapsWritten { .. } | Event::SweepFinished(_) | Event::CaseNotLoaded(_) => {
                Ok(())
            }
        }
    }
}
