//! The Markdown report, sized for a pull-request comment: a summary line,
//! the first divergence per lane of every case that has one, the conformance
//! matrix of each swept case file, then per-case details in `<details>`
//! blocks.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use super::links::{HeatmapLink, MAX_IMAGES};
use super::rows::{rows, Row};
use super::sweep::Matrix;
use super::{coverage, sci, Event, Reporter, Summary};
use crate::diff::Comparison;
use crate::outcome::{CaseReport, LaneResult, NodeReport, Verdict};

/// GitHub refuses comments over 65,536 characters; details stop before that.
const DETAILS_BUDGET: usize = 50_000;

/// Collects cases and writes one Markdown document at the end.
pub struct MarkdownReporter<W: Write> {
    out: W,
    cases: Vec<CaseReport>,
    heatmaps: Heatmaps,
    /// Where heatmap files are, relative to this document; `None`: not shown.
    heatmap_dir: Option<String>,
    /// The folder this document is written to, when not the working
    /// directory: repro links are made relative to it.
    repro_base: Option<PathBuf>,
}

impl<W: Write> MarkdownReporter<W> {
    pub fn new(out: W) -> Self {
        MarkdownReporter {
            out,
            cases: Vec::new(),
            heatmaps: Heatmaps::default(),
            heatmap_dir: None,
            repro_base: None,
        }
    }

    /// Links repro directories relative to `dir`, where this document is written.
    pub fn with_repro_base(mut self, dir: impl Into<PathBuf>) -> Self {
        self.repro_base = Some(dir.into());
        self
    }

    /// Shows heatmaps, linked as `dir` + file name (`heatmaps/` for a
    /// `report.md` next to the `heatmaps` folder).
    pub fn with_heatmaps(mut self, dir: impl Into<String>) -> Self {
        self.heatmap_dir = Some(dir.into());
        self
    }
}

/// Heatmaps to embed: the written images and the divergences left undrawn.
#[derive(Debug, Clone, Default)]
pub struct Heatmaps {
    /// Folder prefix of the links (ends with `/`).
    pub dir: String,
    pub links: Vec<HeatmapLink>,
    pub skipped: usize,
}

/// The Markdown of one heatmap: a heading, the numeric scales, the images.
fn heatmap_section(dir: &str, h: &HeatmapLink) -> String {
    let mut s = String::new();
    let shape: Vec<String> = h.shape.iter().map(usize::to_string).collect();
    let node = if h.node.is_empty() { "?" } else { &h.node };
    let _ = writeln!(
        s,
        "#### `{}` · {} · node `{node}` ({}) → `{}` [{}]\n",
        cell(&h.case),
        h.lane,
        h.op,
        h.output,
        shape.join("×")
    );
    let channels = if h.channels_shown < h.channels_total {
        format!("channels 1–{} of {}", h.channels_shown, h.channels_total)
    } else {
        format!("{} channel(s)", h.channels_total)
    };
    let non_finite = if h.non_finite > 0 {
        format!(" · **{} non-finite** differences in cyan", h.non_finite)
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "Heatmap of |{} − reference|, batch item 0, {channels}, one tile per channel · scale (inferno, bar at the bottom): **0** black → **{}** pale yellow{non_finite}\n",
        h.lane,
        sci(h.max_diff)
    );
    let _ = writeln!(
        s,
        "![|{} − reference| of {} in {}]({dir}{})\n",
        h.lane,
        h.output,
        h.case.replace(['[', ']'], ""),
        h.file
    );
    if let Some(file) = &h.side_by_side {
        let (lo, hi) = h.grey.unwrap_or((0.0, 0.0));
        let _ = writeln!(
            s,
            "Side by side, one row per channel: {} | reference | |diff| · grey scale of both outputs: **{}** black → **{}** white; |diff| as above\n",
            h.lane,
            sci_signed(lo),
            sci_signed(hi)
        );
        let _ = writeln!(
            s,
            "![{} | reference | diff of {} in {}]({dir}{file})\n",
            h.lane,
            h.output,
            h.case.replace(['[', ']'], "")
        );
    }
    s
}

/// [`sci`] that keeps the sign.
fn sci_signed(v: f64) -> String {
    if v < 0.0 {
        format!("-{}", sci(-v))
    } else {
        sci(v)
    }
}

/// Escapes text for a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `max_abs / max_rel / mismatch%` of the worst output of a lane's node.
pub(crate) fn metrics_summary(x: &LaneResult) -> String {
    let worst = x
        .outputs
        .values()
        .filter_map(|o| o.comparison.as_ref())
        .max_by(|a, b| rank(a).total_cmp(&rank(b)));
    match worst {
        Some(Comparison::Metrics(m)) => format!(
            "max_abs {} · max_rel {} · mismatch {:.1}% ({}/{}) · max_ulp {}",
            sci(m.max_abs),
            sci(m.max_rel),
            m.mismatch_fraction * 100.0,
            m.mismatches,
            m.count,
            m.max_ulp
        ),
        Some(Comparison::ShapeMismatch { got, want }) => {
            format!("shape {got:?} vs reference {want:?}")
        }
        Some(Comparison::DtypeMismatch { got, want }) => format!("dtype {got} vs reference {want}"),
        None => x.message.clone().unwrap_or_default(),
    }
}

fn rank(c: &Comparison) -> f64 {
    match c {
        Comparison::Metrics(m) => m.mismatch_fraction,
        _ => 2.0,
    }
}

fn verdict_cell(x: &LaneResult) -> String {
    if x.declared.is_some() {
        format!("{} (declared)", x.verdict.name())
    } else {
        x.verdict.name().to_string()
    }
}

/// One row of a case's node table; a run of skipped nodes or a failed lane
/// spans the table as one row.
fn table_row(row: &Row) -> String {
    match row {
        Row::Node { node, lane, result } => node_row(node, lane, result),
        Row::Skipped(run) => {
            let first = run.nodes.first().map(|n| n.index).unwrap_or_default();
            let last = run.nodes.last().map(|n| n.index).unwrap_or_default();
            format!(
                "| {first}–{last} | {} nodes | | {} | skipped | | {} |",
                run.nodes.len(),
                run.lane,
                cell(&run.line())
            )
        }
        Row::LaneFailed { lane, nodes } => {
            format!("| | all {nodes} nodes | | {lane} | error | | the lane failed (see the lane table) |")
        }
    }
}

fn node_row(n: &NodeReport, lane: &str, x: &LaneResult) -> String {
    let mut origin = x
        .origin
        .map(|o| format!("{o:?}").to_lowercase())
        .unwrap_or_default();
    let local = x.local_summary();
    if !local.is_empty() {
        origin = format!("{origin} (local {local})");
    }
    let mut detail = metrics_summary(x);
    if let Some(note) = &x.local_note {
        detail = format!("{detail} — {note}");
    }
    if let Some(reason) = &x.declared {
        detail = format!("{detail} — declared: {reason}");
    }
    detail.push_str(&repro_link(x));
    format!(
        "| {} | `{}` | {} | {} | {} | {} | {} |",
        n.index,
        cell(&n.name),
        n.op,
        lane,
        verdict_cell(x),
        origin,
        cell(&detail)
    )
}

fn details(r: &CaseReport) -> String {
    let mut s = String::new();
    let status = if r.passed { "✅" } else { "❌" };
    let _ = writeln!(
        s,
        "<details><summary>{status} <code>{}</code></summary>\n",
        r.id()
    );
    let _ = writeln!(s, "`{}` · opset {} · {}\n", r.file, r.opset, r.device);
    if !r.params.is_empty() {
        let ps: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "params: `{}`\n", ps.join(" "));
    }
    for f in &r.failures {
        let _ = writeln!(s, "- ❗ {}", cell(f));
    }
    for w in &r.warnings {
        let _ = writeln!(s, "- ⚠️ {}", cell(w));
    }
    if !r.failures.is_empty() || !r.warnings.is_empty() {
        s.push('\n');
    }
    let _ = writeln!(s, "| lane | ms | compared | settings |\n|---|---:|---|---|");
    for l in &r.lanes {
        let settings: Vec<String> = l.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let err = l
            .error
            .as_ref()
            .map(|e| format!(" **lane failed:** {}", cell(e)))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "| {} | {:.2} | {} | {}{err} |",
            l.name,
            l.wall_ms,
            coverage(l),
            cell(&settings.join(" "))
        );
    }
    let rows = rows(r, |x| x.verdict != Verdict::Ok);
    if rows.is_empty() {
        let _ = writeln!(
            s,
            "\nevery node agrees within tolerance on every lane ({} nodes)",
            r.nodes.len()
        );
    } else {
        let _ = writeln!(s, "\n| # | node | op | lane | verdict | origin | metrics / message |\n|---:|---|---|---|---|---|---|");
        for row in rows {
            let _ = writeln!(s, "{}", table_row(&row));
        }
    }
    s.push_str("\n</details>\n");
    s
}

/// Renders the whole document.
pub fn render(
    cases: &[CaseReport],
    summary: &Summary,
    sweeps: &[Matrix],
    heatmaps: &Heatmaps,
) -> String {
    let mut s = String::new();
    let icon = if summary.all_passed() { "✅" } else { "❌" };
    let _ = writeln!(
        s,
        "## {icon} xdiff: {} cases, {} passed, {} failed{} ({:.1} s)\n",
        summary.cases,
        summary.passed,
        summary.failed,
        summary.not_loaded_count(),
        summary.wall_ms / 1e3
    );
    for e in &summary.not_loaded {
        let _ = writeln!(s, "- ❗ `{}` not loaded: {}", cell(&e.file), cell(&e.error));
    }
    if !summary.not_loaded.is_empty() {
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "| lane | cases ok | nodes compared | node verdicts |\n|---|---:|---:|---|"
    );
    for (lane, t) in &summary.lanes {
        let nodes: Vec<String> = t.nodes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(
            s,
            "| {lane} | {}/{} | {}/{} | {} |",
            t.cases_ok,
            t.cases,
            t.compared,
            t.total,
            nodes.join(", ")
        );
    }
    s.push_str("\nA lane's case is ok when each of its nodes is ok, declared or inherited (judged on its own inputs, it did not depart); a node is compared when the lane ran it and it was diffed against the reference.\n");
    if summary.vacuous > 0 {
        let _ = writeln!(
            s,
            "\n⚠️ {} vacuous outputs: zero or below tolerance everywhere in the reference, so they agree whatever a lane computes (try other inputs or weights).",
            summary.vacuous
        );
    }

    // First divergences: failing cases first, then declared ones.
    let mut fd = String::new();
    let mut shown = 0;
    let mut hidden = 0;
    let mut ordered: Vec<&CaseReport> = cases.iter().filter(|r| !r.passed).collect();
    ordered.extend(cases.iter().filter(|r| r.passed));
    for r in ordered {
        for (lane, f) in &r.first_divergence {
            let Some(x) = r.nodes.get(f.index).and_then(|n| n.lanes.get(lane)) else {
                continue;
            };
            if shown >= 50 {
                hidden += 1;
                continue;
            }
            shown += 1;
            let _ = writeln!(
                fd,
                "| `{}` | {lane} | #{} `{}` ({}) | {} | {} |",
                cell(&r.id()),
                f.index,
                cell(&f.node),
                f.op,
                verdict_cell(x),
                cell(&metrics_summary(x)) + &repro_link(x)
            );
        }
    }
    if shown > 0 {
        s.push_str("\n### First divergence per lane\n\n| case | lane | node | verdict | metrics / message |\n|---|---|---|---|---|\n");
        s.push_str(&fd);
        if hidden > 0 {
            let _ = writeln!(s, "\n…and {hidden} more (see report.json).");
        }
    }

    for m in sweeps {
        let _ = writeln!(s, "\n### Conformance matrix: {}\n", m.case);
        s.push_str(&m.to_markdown());
        if !s.ends_with('\n') {
            s.push('\n');
        }
    }

    if !heatmaps.links.is_empty() || heatmaps.skipped > 0 {
        s.push_str("\n### Heatmaps of first divergences\n\n");
        for h in &heatmaps.links {
            s.push_str(&heatmap_section(&heatmaps.dir, h));
        }
        if heatmaps.skipped > 0 {
            let _ = writeln!(
                s,
                "…and {} more divergences without heatmaps (at most {MAX_IMAGES} images per run).",
                heatmaps.skipped
            );
        }
    }

    s.push_str("\n### Cases\n\n");
    let mut budget = DETAILS_BUDGET;
    let mut quiet = Vec::new();
    let mut omitted = 0;
    for r in cases {
        let interesting = !r.passed
            || !r.warnings.is_empty()
            || r.nodes
                .iter()
                .any(|n| n.lanes.values().any(|x| x.verdict != Verdict::Ok));
        if !interesting {
            quiet.push(r.id());
            continue;
        }
        let d = details(r);
        if d.len() > budget {
            omitted += 1;
            continue;
        }
        budget -= d.len();
        s.push_str(&d);
    }
    if omitted > 0 {
        let _ = writeln!(s, "\n{omitted} more cases with divergences are omitted here for size (see report.json or report.txt).");
    }
    if !quiet.is_empty() {
        let _ = writeln!(
            s,
            "\n<details><summary>{} cases agree everywhere</summary>\n",
            quiet.len()
        );
        let mut list = quiet
            .iter()
            .map(|q| format!("`{}`", cell(q)))
            .collect::<Vec<_>>()
            .join(" · ");
        if list.len() > budget.max(2_000) {
            list = format!("{} cases (list omitted for size)", quiet.len());
        }
        let _ = writeln!(s, "{list}\n\n</details>");
    }
    s
}

impl<W: Write> Reporter for MarkdownReporter<W> {
    fn handle(&mut self, event: &Event) -> std::io::Result<()> {
        match *event {
            Event::HeatmapsWritten { links, skipped } => {
                if let Some(dir) = &self.heatmap_dir {
                    self.heatmaps.dir = dir.clone();
                    self.heatmaps.links.extend_from_slice(links);
                    self.heatmaps.skipped = skipped;
                }
                Ok(())
            }
            Event::CaseFinished(run) => {
                let mut report = run.report.clone();
                if let Some(base) = &self.repro_base {
                    relink_repros(&mut report, base);
                }
                self.cases.push(report);
                Ok(())
            }
            Event::SweepFinished(_) | Event::CaseNotLoaded(_) => Ok(()),
            Event::RunFinished { summary, sweeps } => {
                let doc = render(&self.cases, summary, sweeps, &self.heatmaps);
                self.out.write_all(doc.as_bytes())?;
                self.out.flush()
            }
        }
    }
}

/// ` — [repro](dir)` for a lane result with a repro directory, else empty.
fn repro_link(x: &LaneResult) -> String {
    x.repro
        .as_ref()
        .map(|d| format!(" — [repro]({})", d.replace(' ', "%20")))
        .unwrap_or_default()
}

/// Rewrites every repro path of `r` relative to `base` where both resolve
/// (else the path stays as written).
fn relink_repros(r: &mut CaseReport, base: &Path) {
    let lanes = r.nodes.iter_mut().flat_map(|n| n.lanes.values_mut());
    for x in lanes {
        if let Some(rel) = x
            .repro
            .as_deref()
            .and_then(|d| relative(base, Path::new(d)))
        {
            x.repro = Some(rel);
        }
    }
}

/// `target` as a path relative to the folder `base`, both resolved on disk.
fn relative(base: &Path, target: &Path) -> Option<String> {
    let (base, target) = (base.canonicalize().ok()?, target.canonicalize().ok()?);
    let b: Vec<Component> = base.components().collect();
    let t: Vec<Component> = target.components().collect();
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".into(); b.len() - common];
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    Some(parts.join("/"))
}
