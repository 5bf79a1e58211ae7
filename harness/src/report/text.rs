//! The terminal report: a table a person reads at a glance. First divergence
//! per lane up top, then only the nodes that matter (every node with `--all`),
//! then what failed and why. Sweep variants that pass get one line each.

use std::io::Write;

use super::rows::{rows, Row};
use super::sweep::Matrix;
use super::{coverage, sci, Event, Reporter, Summary};
use crate::diff::Comparison;
use crate::lane::REFERENCE;
use crate::outcome::{CaseReport, LaneResult, NodeReport, Origin, Verdict};

/// Streams each case as it finishes; a swept case file's conformance
/// matrix is printed once the next file starts (or at the end).
pub struct TextReporter<W: Write> {
    out: W,
    pub all: bool,
    pub verbose_variants: bool,
}

impl<W: Write> TextReporter<W> {
    pub fn new(out: W, all: bool) -> Self {
        TextReporter {
            out,
            all,
            verbose_variants: all,
        }
    }

    /// Prints the matrix of a finished sweep.
    fn sweep(&mut self, m: &Matrix) -> std::io::Result<()> {
        let text = m.to_text();
        if text.trim().is_empty() {
            return Ok(());
        }
        writeln!(self.out, "\nconformance matrix: {}", m.case)?;
        write!(self.out, "{text}")?;
        if !text.ends_with('\n') {
            writeln!(self.out)?;
        }
        writeln!(self.out)
    }
}

/// The worst verdict of a lane over a case's nodes.
/// A lane's worst node verdict in a case (divergences it only inherited do
/// not count: judged on their own inputs those nodes agree), whether that
/// verdict is declared, and how many nodes inherited a divergence.
pub fn lane_verdict(r: &CaseReport, lane: &str) -> (Verdict, bool, usize) {
    let mut worst = Verdict::Ok;
    let mut declared = false;
    let mut inherited = 0;
    for x in r.nodes.iter().filter_map(|n| n.lanes.get(lane)) {
        if x.origin == Some(Origin::Inherited) {
            inherited += 1;
            continue;
        }
        if x.verdict > worst {
            worst = x.verdict;
            declared = x.declared.is_some();
        }
    }
    (worst, declared, inherited)
}

fn metrics_cells(x: &LaneResult) -> [String; 4] {
    let worst = x
        .outputs
        .values()
        .filter_map(|o| o.comparison.as_ref())
        .max_by(|a, b| mismatch(a).total_cmp(&mismatch(b)));
    match worst {
        Some(Comparison::Metrics(m)) => [
            sci(m.max_abs),
            sci(m.max_rel),
            format!("{:.1}%", m.mismatch_fraction * 100.0),
            m.max_ulp.to_string(),
        ],
        Some(Comparison::ShapeMismatch { got, want }) => [
            format!("shape {got:?} vs {want:?}"),
            String::new(),
            String::new(),
            String::new(),
        ],
        Some(Comparison::DtypeMismatch { got, want }) => [
            format!("dtype {got} vs {want}"),
            String::new(),
            String::new(),
            String::new(),
        ],
        None => Default::default(),
    }
}

fn mismatch(c: &Comparison) -> f64 {
    match c {
        Comparison::Metrics(m) => m.mismatch_fraction,
        _ => 2.0,
    }
}

/// Column widths of the node table.
struct Widths {
    name: usize,
    op: usize,
}

impl<W: Write> TextReporter<W> {
    fn header(&mut self, r: &CaseReport) -> std::io::Result<()> {
        let status = if r.passed { "PASS" } else { "FAIL" };
        let id = match &r.variant {
            Some(v) => format!("{}[{v}]", r.case),
            None => r.case.clone(),
        };
        writeln!(
            self.out,
            "{status} {id}  ({}, opset {}, {})",
            r.file, r.opset, r.device
        )?;
        for l in &r.lanes {
            let settings: Vec<String> =
                l.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let err = l
                .error
                .as_ref()
                .map(|e| format!("  LANE FAILED: {e}"))
                .unwrap_or_default();
            writeln!(
                self.out,
                "  lane {:<10} {:>9.2} ms  {:<16} {}{err}",
                l.name,
                l.wall_ms,
                coverage(l),
                settings.join(" ")
            )?;
            if let Some(m) = &l.model_outputs {
                writeln!(self.out, "       model outputs: {}", m.summary())?;
            }
            for note in &l.notes {
                writeln!(self.out, "       note: {note}")?;
            }
        }
        Ok(())
    }

    fn first_divergences(&mut self, r: &CaseReport) -> std::io::Result<()> {
        writeln!(self.out, "  first divergence:")?;
        for l in &r.lanes {
            match r.first_divergence.get(&l.name) {
                Some(f) => writeln!(
                    self.out,
                    "    {:<10} node #{} `{}` ({}) {}",
                    l.name,
                    f.index,
                    f.node,
                    f.op,
                    f.verdict.name()
                )?,
                None => writeln!(self.out, "    {:<10} none", l.name)?,
            }
        }
        Ok(())
    }

    fn node_table(&mut self, r: &CaseReport) -> std::io::Result<()> {
        let all = self.all;
        let rows = rows(r, |x| all || x.verdict != Verdict::Ok);
        if rows.is_empty() {
            return writeln!(
                self.out,
                "  every node agrees within tolerance on every lane ({} nodes)",
                r.nodes.len()
            );
        }
        // Full names: the name and op columns are as wide as their longest entry.
        let width = |f: fn(&NodeReport) -> &str, min: usize| {
            rows.iter()
                .filter_map(|row| match row {
                    Row::Node { node, .. } => Some(f(node).chars().count()),
                    _ => None,
                })
                .fold(min, usize::max)
        };
        let widths = Widths {
            name: width(|n| &n.name, 4),
            op: width(|n| &n.op, 2),
        };
        let head = ["max_abs", "max_rel", "mism", "max_ulp", "local", "origin"];
        let key = ["#", "node", "op", "lane", "verdict"];
        self.node_row(&widths, key, &head.map(String::from), "detail")?;
        for row in &rows {
            match row {
                Row::Node { node, lane, result } => self.node_line(&widths, node, lane, result)?,
                Row::Skipped(run) => writeln!(self.out, "        {}", run.line())?,
                Row::LaneFailed { lane, nodes, .. } => writeln!(
                    self.out,
                    "        {lane}: all {nodes} nodes not run: the lane failed (see its lane line)"
                )?,
            }
        }
        Ok(())
    }

    fn node_line(
        &mut self,
        w: &Widths,
        n: &NodeReport,
        lane: &str,
        x: &LaneResult,
    ) -> std::io::Result<()> {
        let [abs, rel, mism, ulp] = metrics_cells(x);
        let origin = x
            .origin
            .map(|o| format!("{o:?}").to_lowercase())
            .unwrap_or_default();
        let verdict = if x.declared.is_some() {
            format!("{}*", x.verdict.name())
        } else {
            x.verdict.name().to_string()
        };
        let mut detail = x
            .message
            .clone()
            .or_else(|| x.local_note.clone())
            .or_else(|| x.lowering.clone())
            .unwrap_or_default();
        if let Some(reason) = &x.declared {
            detail = format!("declared: {reason}; {detail}");
        }
        let cells = [abs, rel, mism, ulp, x.local_summary(), origin];
        let index = n.index.to_string();
        let key = [index.as_str(), &n.name, &n.op, lane, &verdict];
        self.node_row(w, key, &cells, &detail)
    }

    /// One line of the node table; `key`: index, node, op, lane, verdict;
    /// `cells`: max_abs, max_rel, mism, max_ulp, local, origin.
    fn node_row(
        &mut self,
        w: &Widths,
        key: [&str; 5],
        cells: &[String; 6],
        detail: &str,
    ) -> std::io::Result<()> {
        let [index, name, op, lane, verdict] = key;
        let [abs, rel, mism, ulp, local, origin] = cells;
        writeln!(
            self.out,
            "  {index:>4}  {name:<nw$} {op:<ow$} {lane:<10} {verdict:<12} {abs:>8} {rel:>8} {mism:>7} {ulp:>10} {local:>12}  {origin:<10} {detail}",
            nw = w.name,
            ow = w.op,
        )
    }

    fn failures(&mut self, r: &CaseReport) -> std::io::Result<()> {
        for f in &r.failures {
            writeln!(self.out, "  ! {f}")?;
        }
        for w in &r.warnings {
            writeln!(self.out, "  ~ {w}")?;
        }
        Ok(())
    }

    fn compact(&mut self, r: &CaseReport) -> std::io::Result<()> {
        let status = if r.passed { "PASS" } else { "FAIL" };
        let lanes: Vec<String> = r
            .lanes
            .iter()
            .filter(|l| l.name != REFERENCE)
            .map(|l| {
                let (v, declared, inherited) = lane_verdict(r, &l.name);
                let cov = l
                    .coverage
                    .map(|c| format!(" {}/{}", c.compared, c.total))
                    .unwrap_or_default();
                let mut notes = Vec::new();
                if inherited > 0 {
                    notes.push(format!("{inherited} inherited"));
                }
                notes.extend(l.model_outputs.as_ref().and_then(outputs_brief));
                let notes = if notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", notes.join("; "))
                };
                format!(
                    "{} {}{}{cov}{notes}",
                    l.name,
                    v.name(),
                    if declared { "*" } else { "" },
                )
            })
            .collect();
        writeln!(
            self.out,
            "{status} {}[{}]  {}",
            r.case,
            r.variant.as_deref().unwrap_or(""),
            lanes.join(" · ")
        )?;
        for w in &r.warnings {
            writeln!(self.out, "  ~ {w}")?;
        }
        self.repros(r)
    }

    /// One `repro: DIR/...` line per repro directory written for the case.
    fn repros(&mut self, r: &CaseReport) -> std::io::Result<()> {
        let dirs = r.nodes.iter().flat_map(|n| n.lanes.values());
        for dir in dirs.filter_map(|x| x.repro.as_ref()) {
            writeln!(self.out, "  repro: {dir}")?;
        }
        Ok(())
    }
}

impl<W: Write> TextReporter<W> {
    fn case(&mut self, r: &CaseReport) -> std::io::Result<()> {
        if r.variant.is_some() && r.passed && !self.verbose_variants {
            // Variants where every lane agrees everywhere are counted in the
            // matrix below; only the ones with something to say get a line.
            let quiet = r.warnings.is_empty()
                && r.nodes
                    .iter()
                    .all(|n| n.lanes.values().all(|x| x.verdict == Verdict::Ok));
            return if quiet { Ok(()) } else { self.compact(r) };
        }
        self.header(r)?;
        self.first_divergences(r)?;
        self.node_table(r)?;
        self.failures(r)?;
        self.repros(r)?;
        writeln!(self.out)
    }

    fn finish(&mut self, s: &Summary) -> std::io::Result<()> {
        let coverage: Vec<String> = s
            .lanes
            .iter()
            .filter(|(lane, _)| lane.as_str() != REFERENCE)
            .map(|(lane, t)| format!("{lane} {}", t.coverage()))
            .collect();
        writeln!(
            self.out,
            "\nsummary: {} cases, {} passed, {} failed{} ({:.1} s); {}",
            s.cases,
            s.passed,
            s.failed,
            s.not_loaded_count(),
            s.wall_ms / 1e3,
            coverage.join(", ")
        )?;
        let w = s.lanes.keys().map(String::len).max().unwrap_or(0).max(10);
        writeln!(
            self.out,
            "  {:<w$} cases ok   compared          node verdicts",
            "lane"
        )?;
        for (lane, t) in &s.lanes {
            let nodes: Vec<String> = t.nodes.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(
                self.out,
                "  {:<w$} {:>5}/{:<5}  {:<17} {}",
                lane,
                t.cases_ok,
                t.cases,
                format!("{}/{}", t.compared, t.total),
                nodes.join(", ")
            )?;
        }
        if s.vacuous > 0 {
            writeln!(
                self.out,
                "  {} vacuous outputs: zero or below tolerance everywhere in the reference, so they agree whatever a lane computes (see `~` lines; try other inputs or weights)",
                s.vacuous
            )?;
        }
        writeln!(self.out, "  (* = declared; a lane's case is ok when each of its nodes is ok, declared or inherited; compared = nodes diffed against the reference / nodes)")
    }
}

impl<W: Write> Reporter for TextReporter<W> {
    fn handle(&mut self, event: &Event) -> std::io::Result<()> {
        match *event {
            Event::SweepFinished(m) => self.sweep(m),
            Event::CaseFinished(run) => self.case(&run.report),
            Event::RunFinished { summary, .. } => self.finish(summary),
            Event::CaseNotLoaded(e) => writeln!(self.out, "ERROR {}: {}\n", e.file, e.error),
            Event::HeatmapsWritten { .. } => Ok(()),
        }
    }
}

/// `outputs within 4.1e-6` / `outputs DIFFER`: a lane's model outputs in a few words.
fn outputs_brief(m: &crate::outcome::ModelOutputs) -> Option<String> {
    let max_abs = m
        .worst
        .as_ref()
        .and_then(|w| w.comparison.metrics())
        .map(|x| x.max_abs);
    match (m.agree, max_abs) {
        (true, Some(e)) => Some(format!("outputs within {}", sci(e))),
        (true, None) => None,
        (false, _) => Some("outputs DIFFER".into()),
    }
}
