//! The `run` command: load every case (all bad input is found before
//! anything runs), run them, and feed each report to the reporters.

use std::fs::File;
use std::io::{self, BufWriter};
use std::time::Instant;

use anyhow::Context;

use crate::case::{self, Case};
use crate::cli::{Format, RunConfig};
use crate::report::json::JsonReporter;
use crate::report::text::TextReporter;
use crate::report::{Reporter, Summary};
use crate::run;

/// Loads every case named by `cfg`, applying command-line overrides.
pub fn load_cases(cfg: &RunConfig) -> Result<Vec<Case>, case::CaseError> {
    let mut cases = Vec::new();
    for source in case::discover(&cfg.paths)? {
        for mut c in case::load(&source)? {
            if let Some(b) = &cfg.backends {
                c.backends = b.clone();
            }
            if let Some(d) = cfg.device {
                c.options.device = d;
            }
            cases.push(c);
        }
    }
    Ok(cases)
}

/// Runs the cases; `Ok(true)` when every case passed.
pub fn run(cfg: &RunConfig) -> anyhow::Result<bool> {
    let start = Instant::now();
    let cases = load_cases(cfg)?;
    let stdout = io::stdout().lock();
    let mut reporters: Vec<Box<dyn Reporter>> = Vec::new();
    match cfg.format {
        Format::Text => reporters.push(Box::new(TextReporter::new(stdout, cfg.all))),
        Format::Json => reporters.push(Box::new(JsonReporter::new(stdout))),
    }
    if let Some(dir) = &cfg.out {
        std::fs::create_dir_all(dir).with_context(|| format!("--out {}", dir.display()))?;
        let json = File::create(dir.join("report.json")).with_context(|| format!("--out {}", dir.display()))?;
        reporters.push(Box::new(JsonReporter::new(BufWriter::new(json))));
        let txt = File::create(dir.join("report.txt")).with_context(|| format!("--out {}", dir.display()))?;
        reporters.push(Box::new(TextReporter::new(BufWriter::new(txt), true)));
    }
    let mut summary = Summary::default();
    for c in &cases {
        let report = run::run_case(c, &c.backends)?;
        summary.add(&report);
        for r in reporters.iter_mut() {
            r.case(&report)?;
        }
    }
    summary.wall_ms = start.elapsed().as_secs_f64() * 1e3;
    for r in reporters.iter_mut() {
        r.finish(&summary)?;
    }
    Ok(summary.failed == 0)
}
