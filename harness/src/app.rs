//! The `run` command: load every case (all bad input is found before
//! anything runs; a case file named on the command line that cannot be
//! loaded stops the run, one found in a directory is reported and the others
//! run), run them, and feed one event stream to the reporters
//! (each finished case with its evidence, its heatmaps, each finished
//! sweep, the end of the run). A model file (`*.onnx`) is a case made from
//! the command line (`case::model_file`); the `case` command prints it as
//! a starter case file. With `--partition`, only one shard of the variants
//! runs (`crate::partition`); the `merge` command replays shard reports
//! (`crate::merge`) through the same events and reporters. Also the
//! binary's exit codes.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::ahead;
use crate::case::{self, model_file, Case};
use crate::cli::{CaseArgs, Format, MergeArgs, RunConfig};
use crate::outcome::{CaseRun, Evidence};
use crate::report::heatmap::HeatmapWriter;
use crate::report::json::JsonReporter;
use crate::report::junit::JunitReporter;
use crate::report::links::HeatmapLink;
use crate::report::markdown::MarkdownReporter;
use crate::report::matrix::MatrixReporter;
use crate::report::sweep::Matrix;
use crate::report::sweep::Sweeps;
use crate::report::text::TextReporter;
use crate::report::{Event, LoadError, Reporter, Summary};
use crate::repro::ReproWriter;
use crate::run;

/// The binary's exit codes (README, "Exit codes").
pub mod exit {
    /// Every node compared and within tolerance, or as the case declares.
    pub const OK: u8 = 0;
    /// An undeclared divergence or uncompared node (unsupported, error,
    /// skipped, or not judged by the reference), or a declaration that
    /// stopped happening or never applies.
    pub const FAILED: u8 = 1;
    /// Bad input, usage or environment (one line on stderr).
    pub const BAD_INPUT: u8 = 2;
}

/// More cases than this get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_CASES: usize = 10;

/// Heatmaps of diverged nodes go to this folder under `--out`.
pub const HEATMAP_DIR: &str = "heatmaps";

/// One case source of a run: its variants (with the command-line overrides
/// applied) or, for a file found by walking a directory, why it could not be
/// loaded.
pub type Source = Result<Vec<Case>, LoadError>;

/// Loads every case source named by `cfg` before anything runs. A source
/// named on the command line that cannot be loaded is an error (exit 2, one
/// line); one found by walking a directory is kept as its [`LoadError`], so
/// that the other cases still run.
pub fn load_sources(cfg: &RunConfig) -> Result<Vec<Source>, case::CaseError> {
    let mut sources = Vec::new();
    for path in &cfg.paths {
        let walked = path.is_dir() && !path.join("model.onnx").is_file();
        for source in case::discover(std::slice::from_ref(path))? {
            let loaded = if model_file::is_model_file(&source) {
                model_file::load(&source, &cfg.model)
            } else {
                case::load(&source)
            };
            match loaded {
                Ok(cases) => sources.push(Ok(cases
                    .into_iter()
                    .map(|c| with_overrides(cfg, c))
                    .collect())),
                Err(e) if walked => sources.push(Err(LoadError {
                    file: e.file,
                    error: e.msg,
                })),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(sources)
}

/// Loads every case named by `cfg`, every source strictly (the first that
/// cannot be loaded is the error).
pub fn load_cases(cfg: &RunConfig) -> Result<Vec<Case>, case::CaseError> {
    let mut cases = Vec::new();
    for source in load_sources(cfg)? {
        cases.extend(source.map_err(|e| case::CaseError {
            file: e.file,
            msg: e.error,
        })?);
    }
    Ok(cases)
}

/// `c` with the command-line overrides of `cfg` applied.
fn with_overrides(cfg: &RunConfig, mut c: Case) -> Case {
    if let Some(b) = &cfg.backends {
        c.backends = b.clone();
    }
    if let Some(d) = cfg.device {
        c.options.device = d;
    }
    if let Some(p) = &cfg.port {
        c.port = p.clone();
    }
    c
}

fn create(dir: &Path, name: &str) -> anyhow::Result<BufWriter<File>> {
    let path = dir.join(name);
    Ok(BufWriter::new(
        File::create(&path).with_context(|| format!("--out: {}", path.display()))?,
    ))
}

/// The reporters for stdout (in `format`) and, with `--out`, every format as files.
pub fn reporters(
    format: Format,
    out: Option<&Path>,
    all: bool,
) -> anyhow::Result<Vec<Box<dyn Reporter>>> {
    let stdout = io::stdout();
    let mut reporters: Vec<Box<dyn Reporter>> = Vec::new();
    match format {
        Format::Text => reporters.push(Box::new(TextReporter::new(stdout, all))),
        // One document at the end: buffered, not stdout's line by line (a
        // swin_t report is ~50 000 lines, as many write calls).
        Format::Json => reporters.push(Box::new(JsonReporter::new(BufWriter::new(stdout)))),
        Format::Markdown => {
            let md = MarkdownReporter::new(stdout);
            // With --out, heatmaps are linked by their path from the working directory.
            let md = match out {
                Some(dir) => md.with_heatmaps(format!("{}/", dir.join(HEATMAP_DIR).display())),
                None => md,
            };
            reporters.push(Box::new(md))
        }
        Format::Junit => reporters.push(Box::new(JunitReporter::new(stdout))),
    }
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("--out {}", dir.display()))?;
        reporters.push(Box::new(JsonReporter::new(create(dir, "report.json")?)));
        reporters.push(Box::new(TextReporter::new(
            create(dir, "report.txt")?,
            true,
        )));
        reporters.push(Box::new(
            MarkdownReporter::new(create(dir, "report.md")?)
                .with_heatmaps(format!("{HEATMAP_DIR}/"))
                .with_repro_base(dir),
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

/// Sends `event` to every reporter.
fn emit(reporters: &mut [Box<dyn Reporter>], event: Event) -> io::Result<()> {
    reporters.iter_mut().try_for_each(|r| r.handle(&event))
}

/// Sends the events of one finished case: the heatmaps drawn for it (with
/// `--out`), the sweep it ended, the case.
fn emit_case(
    reporters: &mut [Box<dyn Reporter>],
    heatmaps: Option<(&[HeatmapLink], usize)>,
    ended: Option<&Matrix>,
    run: &CaseRun,
) -> io::Result<()> {
    if let Some((links, skipped)) = heatmaps {
        emit(reporters, Event::HeatmapsWritten { links, skipped })?;
    }
    if let Some(m) = ended {
        emit(reporters, Event::SweepFinished(m))?;
    }
    emit(reporters, Event::CaseFinished(run))
}

/// Sends the end of a run: the sweep still open, then the totals.
fn emit_end(
    reporters: &mut [Box<dyn Reporter>],
    mut sweeps: Sweeps,
    summary: &Summary,
) -> io::Result<()> {
    if let Some(m) = sweeps.end_current() {
        emit(reporters, Event::SweepFinished(&m))?;
    }
    let sweeps = sweeps.finish();
    emit(
        reporters,
        Event::RunFinished {
            summary,
            sweeps: &sweeps,
        },
    )
}

/// The cases of `sources`, and the sources that could not be loaded.
fn split(sources: Vec<Source>) -> (Vec<Case>, Vec<LoadError>) {
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for source in sources {
        match source {
            Ok(c) => cases.extend(c),
            Err(e) => errors.push(e),
        }
    }
    (cases, errors)
}

/// Makes this process's threads share one malloc arena (glibc's
/// `M_ARENA_MAX`; other C libraries ignore it). Under `--isolation lane` the
/// parent runs only xdiff's own threads: the reference, the shared bounds
/// and judging (rayon), the threads that wait on the lane workers and
/// decode their traces. With an arena per thread, what one thread frees
/// (the reference's intermediate values, the bounds' copies, a decoded
/// frame) stays resident in its arena while another thread allocates anew
/// in its own: on swin_t (`ort,reference`) the parent's peak RSS was
/// 356–408 MB with the default arenas and 251–280 MB with one, at the same
/// wall time (docs/performance.md, "After issue 15's fifth round"). The
/// frameworks' processes keep the default: ONNX Runtime's lane, whose
/// intra-op threads allocate, ran 96 → 130–168 ms with one arena.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; M_ARENA_MAX may be
    // changed at any time (arenas made before keep serving their threads).
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Starts the lane workers of the first case (`--isolation lane`) before
/// it runs, so they load their frameworks in parallel with the parent.
fn prewarm(cfg: &RunConfig, cases: &[Case]) {
    if let Some(c) = cases.first() {
        prewarm_lanes(cfg, &c.backends, c.options.device);
    }
}

/// Starts the lane workers that the first case file names (with the
/// command line's overrides) before its cases load: expanding a sweep
/// takes as long as libtorch takes to load (`cases/resize.toml`: ~80 ms).
/// What the file does not plainly say waits for [`prewarm`].
fn prewarm_early(cfg: &RunConfig) {
    let Some(first) = cfg.paths.first() else {
        return;
    };
    let named = case::named_lanes(first);
    let backends = match (&cfg.backends, &named) {
        (Some(b), _) => b.clone(),
        (None, Some((Some(b), _))) => b.clone(),
        (None, Some((None, _))) => case::default_backends(),
        (None, None) => return,
    };
    let device = match (cfg.device, &named) {
        (Some(d), _) => d,
        (None, Some((_, Some(d)))) => match crate::options::Device::parse(d) {
            Some(d) => d,
            None => return,
        },
        (None, _) => crate::options::EngineOptions::default().device,
    };
    prewarm_lanes(cfg, &backends, device);
}

fn prewarm_lanes(cfg: &RunConfig, backends: &[String], device: crate::options::Device) {
    let lanes: Vec<(crate::isolate::Isolation, String, &String)> = backends
        .iter()
        .filter(|b| ![crate::lane::REFERENCE, crate::lane::EXPECTED].contains(&b.as_str()))
        .filter_map(|b| {
            let iso = crate::isolate::for_backend(cfg.isolation.as_ref(), b).ok()??;
            Some((
                iso,
                crate::lane::EngineLane::backend(b, device).to_string(),
                b,
            ))
        })
        .collect();
    let lanes = lanes.iter();
    crate::isolate::prewarm(lanes.map(|(iso, lane, b)| (iso, lane.as_str(), b.as_str())));
}

/// Where a run's wall time went, by phase, printed to stderr when
/// `XDIFF_TIMINGS` is set (docs/performance.md, "Where the wall time goes").
#[derive(Default)]
struct Timings(Vec<(&'static str, f64)>);

impl Timings {
    fn add_ms(&mut self, phase: &'static str, ms: f64) {
        match self.0.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, total)) => *total += ms,
            None => self.0.push((phase, ms)),
        }
    }

    fn add(&mut self, phase: &'static str, since: Instant) {
        self.add_ms(phase, since.elapsed().as_secs_f64() * 1e3);
    }

    /// One case's run (`took` from its start to its report), split into
    /// its lanes, its judging and the rest.
    fn case(&mut self, took: std::time::Duration, report: &crate::outcome::CaseReport) {
        let total = took.as_secs_f64() * 1e3;
        let lanes: f64 = report.lanes.iter().map(|l| l.wall_ms).sum();
        self.add_ms("lanes (wall_ms)", lanes);
        self.add_ms("judging (judge_ms)", report.judge_ms);
        self.add_ms("cases, other", total - lanes - report.judge_ms);
    }

    fn print(&self, start: Instant) {
        if !crate::isolate::timings_on() {
            return;
        }
        let line = |p: &str, ms: f64| eprintln!("xdiff timings: {p:<26} {ms:>9.1} ms");
        for (p, ms) in &self.0 {
            line(p, *ms);
        }
        for (p, d) in crate::isolate::timings() {
            line(p, d.as_secs_f64() * 1e3);
        }
        line("run, total", start.elapsed().as_secs_f64() * 1e3);
    }
}

/// Runs the cases; `Ok(true)` when every case passed. Case files of a
/// directory that could not be loaded are reported first, the other cases
/// run, and the run then ends with an error (exit 2) naming them.
pub fn run(cfg: &RunConfig) -> anyhow::Result<bool> {
    let start = Instant::now();
    if cfg.isolation.is_some() {
        one_malloc_arena();
    }
    let mut timings = Timings::default();
    prewarm_early(cfg);
    let (cases, not_loaded) = split(load_sources(cfg)?);
    timings.add("load cases", start);
    let (cases, partition) = match &cfg.partition {
        Some(p) => {
            let (mine, info) = crate::partition::apply(p, cases);
            (mine, Some(info))
        }
        None => (cases, None),
    };
    let mut reporters = reporters(cfg.format, cfg.out.as_deref(), cfg.all)?;
    let pb = progress(cases.len());
    let mut summary = Summary {
        not_loaded,
        partition,
        ..Summary::default()
    };
    let mut sweeps = Sweeps::default();
    let mut heatmaps = cfg
        .out
        .as_ref()
        .map(|d| HeatmapWriter::new(d.join(HEATMAP_DIR)));
    for e in &summary.not_loaded {
        emit(&mut reporters, Event::CaseNotLoaded(e))?;
    }
    let mut repro = cfg.repro.as_ref().map(ReproWriter::new);
    prewarm(cfg, &cases);
    let keep_repro = repro.is_some();
    let run_one = |c: &Case| {
        let opts = run::RunOptions {
            repro: keep_repro,
            isolation: cfg.isolation.clone(),
            ..run::RunOptions::for_case(c)
        };
        let t = Instant::now();
        let run = run::run_case_with(c, &c.backends, opts);
        (t.elapsed(), run)
    };
    // Small cases run ahead only in lane workers: in-process frameworks
    // would share this process's threads and kept models.
    let ahead = if cfg.isolation.is_some() {
        ahead::AHEAD
    } else {
        1
    };
    let budget = ahead::BUDGET;
    ahead::in_order(
        &cases,
        ahead,
        budget,
        ahead::cost,
        run_one,
        |c, (took, run)| {
            if let Some(pb) = &pb {
                pb.set_message(c.id());
            }
            let mut run = run?;
            timings.case(took, &run.report);
            let t = Instant::now();
            if let Some(w) = repro.as_mut() {
                w.case(c, &mut run)?;
            }
            summary.add(&run.report);
            let ended = sweeps.add(&run.report);
            let mut case_events = |reporters: &mut [Box<dyn Reporter>]| -> anyhow::Result<()> {
                let drawn = match heatmaps.as_mut() {
                    Some(h) => Some((
                        h.case(&run)
                            .with_context(|| format!("--out: {}", h.dir().display()))?,
                        h.skipped,
                    )),
                    None => None,
                };
                let drawn = drawn.as_ref().map(|(l, s)| (l.as_slice(), *s));
                Ok(emit_case(reporters, drawn, ended.as_ref(), &run)?)
            };
            match &pb {
                Some(pb) => pb.suspend(|| case_events(&mut reporters))?,
                None => case_events(&mut reporters)?,
            }
            if let Some(pb) = &pb {
                pb.inc(1);
            }
            timings.add("report cases", t);
            anyhow::Ok(())
        },
    )?;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    summary.wall_ms = start.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    emit_end(&mut reporters, sweeps, &summary)?;
    drop(reporters);
    timings.add("report end", t);
    let t = Instant::now();
    drop(cases);
    timings.add("free cases", t);
    timings.print(start);
    bad_sources(&summary.not_loaded)?;
    Ok(summary.failed == 0)
}

/// The `merge` command: the shards' reports put together and replayed, in
/// the run's global order, as the events of one run (no heatmaps: a report
/// keeps no tensors). Exits like the run it stands for.
pub fn merge(args: MergeArgs) -> anyhow::Result<bool> {
    let shards = args
        .reports
        .iter()
        .map(|p| crate::merge::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = crate::merge::merge(shards)?;
    let mut reporters = reporters(
        args.report.format,
        args.report.out.as_deref(),
        args.report.all,
    )?;
    let mut summary = Summary {
        not_loaded: merged.not_loaded,
        ..Summary::default()
    };
    for e in &summary.not_loaded {
        emit(&mut reporters, Event::CaseNotLoaded(e))?;
    }
    let mut sweeps = Sweeps::default();
    for report in merged.cases {
        summary.add(&report);
        let ended = sweeps.add(&report);
        let run = CaseRun {
            report,
            evidence: Evidence::default(),
        };
        emit_case(&mut reporters, None, ended.as_ref(), &run)?;
    }
    summary.wall_ms = merged.wall_ms;
    emit_end(&mut reporters, sweeps, &summary)?;
    bad_sources(&summary.not_loaded)?;
    Ok(summary.failed == 0)
}

/// The `case` command: the starter case file for a model, on stdout.
pub fn starter(args: CaseArgs) -> anyhow::Result<bool> {
    let text = model_file::starter(&args.model, &args.spec.spec())?;
    io::stdout().write_all(text.as_bytes())?;
    Ok(true)
}

/// The error a run ends with when case files could not be loaded (exit 2).
fn bad_sources(errors: &[LoadError]) -> anyhow::Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    let files: Vec<&str> = errors.iter().map(|e| e.file.as_str()).collect();
    anyhow::bail!(
        "{} case file(s) could not be loaded (reported with the run; the other cases ran): {}",
        errors.len(),
        files.join(", ")
    )
}
