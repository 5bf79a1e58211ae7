//! The `run` command: load every case (all bad input is found before
//! anything runs), run them, and feed each report to the reporters.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::case::{self, Case};
use crate::cli::{Format, RunConfig};
use crate::report::heatmap::HeatmapWriter;
use crate::report::json::JsonReporter;
use crate::report::junit::JunitReporter;
use crate::report::markdown::MarkdownReporter;
use crate::report::matrix::MatrixReporter;
use crate::report::text::TextReporter;
use crate::report::{Reporter, Summary};
use crate::run;

/// More cases than this get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_CASES: usize = 10;

/// Heatmaps of diverged nodes go to this folder under `--out`.
pub const HEATMAP_DIR: &str = "heatmaps";

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
            if let Some(p) = &cfg.port {
                c.port = p.clone();
            }
            cases.push(c);
        }
    }
    Ok(cases)
}

fn create(dir: &Path, name: &str) -> anyhow::Result<BufWriter<File>> {
    let path = dir.join(name);
    Ok(BufWriter::new(
        File::create(&path).with_context(|| format!("--out: {}", path.display()))?,
    ))
}

/// The reporters for stdout (in `format`) and, with `--out`, every format as files.
pub fn reporters(cfg: &RunConfig) -> anyhow::Result<Vec<Box<dyn Reporter>>> {
    let stdout = io::stdout();
    let mut reporters: Vec<Box<dyn Reporter>> = Vec::new();
    match cfg.format {
        Format::Text => reporters.push(Box::new(TextReporter::new(stdout, cfg.all))),
        Format::Json => reporters.push(Box::new(JsonReporter::new(stdout))),
        Format::Markdown => {
            let md = MarkdownReporter::new(stdout);
            // With --out, heatmaps are linked by their path from the working directory.
            let md = match &cfg.out {
                Some(dir) => md.with_heatmaps(format!("{}/", dir.join(HEATMAP_DIR).display())),
                None => md,
            };
            reporters.push(Box::new(md))
        }
        Format::Junit => reporters.push(Box::new(JunitReporter::new(stdout))),
    }
    if let Some(dir) = &cfg.out {
        std::fs::create_dir_all(dir).with_context(|| format!("--out {}", dir.display()))?;
        reporters.push(Box::new(JsonReporter::new(create(dir, "report.json")?)));
        reporters.push(Box::new(TextReporter::new(
            create(dir, "report.txt")?,
            true,
        )));
        reporters.push(Box::new(
            MarkdownReporter::new(create(dir, "report.md")?)
                .with_heatmaps(format!("{HEATMAP_DIR}/")),
        ));
        reporters.push(Box::new(JunitReporter::new(create(dir, "junit.xml")?)));
        reporters.push(Box::new(MatrixReporter::new(dir)));
    }
    Ok(reporters)
}

/// A progress bar over cases on stderr, only for a terminal and a long run.
fn progress(n: usize) -> Option<ProgressBar> {
    if n <= PROGRESS_MIN_CASES || !io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new(n as u64);
    let style = ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed_precise} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    Some(pb)
}

/// Runs the cases; `Ok(true)` when every case passed.
pub fn run(cfg: &RunConfig) -> anyhow::Result<bool> {
    let start = Instant::now();
    let cases = load_cases(cfg)?;
    let mut reporters = reporters(cfg)?;
    let pb = progress(cases.len());
    let mut summary = Summary::default();
    let mut heatmaps = cfg
        .out
        .as_ref()
        .map(|d| HeatmapWriter::new(d.join(HEATMAP_DIR)));
    for c in &cases {
        if let Some(pb) = &pb {
            pb.set_message(c.id());
        }
        let report = run::run_case(c, &c.backends)?;
        summary.add(&report);
        // Heatmaps need the tensors: the writer re-runs the diverged lanes.
        let links = match heatmaps.as_mut() {
            Some(h) => h
                .case(c, &report)
                .with_context(|| format!("--out: {}", h.dir().display()))?,
            None => vec![],
        };
        let skipped = heatmaps.as_ref().map_or(0, |h| h.skipped);
        let mut emit = || -> io::Result<()> {
            for r in reporters.iter_mut() {
                r.heatmaps(&links, skipped)?;
                r.case(&report)?;
            }
            Ok(())
        };
        match &pb {
            Some(pb) => pb.suspend(emit)?,
            None => emit()?,
        }
        if let Some(pb) = &pb {
            pb.inc(1);
        }
    }
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    summary.wall_ms = start.elapsed().as_secs_f64() * 1e3;
    for r in reporters.iter_mut() {
        r.finish(&summary)?;
    }
    Ok(summary.failed == 0)
}
