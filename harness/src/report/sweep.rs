//! Conformance matrix for sweep cases (issue 5): attribute combination ×
//! backend → matches spec / differs / unsupported / error.
//!
//! One matrix per swept case (reports sharing `file` + `case` with a
//! variant); one row per variant (its varying params), one column per lane
//! other than the reference / expected data. A cell reads `ok`,
//! `differs <max_abs> <mismatch%> [= <fingerprint>]` (`~` when the
//! fingerprint is only the closest convention), `unsupported: <why>` or
//! `error`; `*` marks a declared divergence.
//!
//! The matrices are a view model built once per run ([`Sweeps`], fed each
//! finished case by the run loop) and handed to every reporter: a streaming
//! reporter gets each file's matrix as soon as its variants are done, the
//! others all of them at the end.

use std::collections::BTreeMap;

use crate::diff::Comparison;
use crate::fingerprint::Fingerprint;
use crate::lane::{EXPECTED, REFERENCE};
use crate::outcome::{CaseReport, Origin, Verdict};

/// The matrix of one swept case file.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Matrix {
    pub case: String,
    pub file: String,
    pub lanes: Vec<String>,
    /// Params that vary across rows (row labels), in first-seen order.
    pub params: Vec<String>,
    /// Params equal in every row.
    pub fixed: BTreeMap<String, String>,
    pub rows: Vec<MatrixRow>,
    /// One line per lane (column): how its variants came out.
    pub summary: Vec<LaneSummary>,
}

/// A lane's column of a matrix in one line: the issue-13 "matrix summary
/// line" (variants, ok, declared divergences with their fingerprints, and
/// what fails).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LaneSummary {
    pub lane: String,
    pub variants: usize,
    pub ok: usize,
    /// Variants whose worst verdict is declared by the case.
    pub declared: usize,
    /// Variants not ok and not declared: what fails the case.
    pub failing: usize,
    /// Convention fingerprints of the not-ok variants (`=` exact / `~`
    /// closest; a tie as its first member and `| …`) with how
    /// many variants showed each.
    pub fingerprints: BTreeMap<String, usize>,
    /// Not-ok variants by status (`differs`, `unsupported`, `error`, `skipped`).
    pub statuses: BTreeMap<String, usize>,
}

impl LaneSummary {
    fn of(lane: &str, rows: &[MatrixRow]) -> LaneSummary {
        let mut s = LaneSummary {
            lane: lane.to_string(),
            ..Default::default()
        };
        for c in rows.iter().filter_map(|r| r.details.get(lane)) {
            s.variants += 1;
            if c.status == "ok" {
                s.ok += 1;
                continue;
            }
            *s.statuses.entry(c.status.clone()).or_default() += 1;
            if c.declared {
                s.declared += 1;
            } else {
                s.failing += 1;
            }
            if let Some(fp) = c.fingerprint.as_ref().filter(|fp| !fp.attrs.is_empty()) {
                let mark = if fp.exact { "=" } else { "~" };
                *s.fingerprints
                    .entry(format!("{mark} {}", fp.headline()))
                    .or_default() += 1;
            }
        }
        s
    }

    /// `tch: 12 variants, 10 ok, 2 declared (differs 2; = mode=CRD ×2), 0 failing`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{}: {} variants, {} ok, {} declared",
            self.lane, self.variants, self.ok, self.declared
        );
        let mut what: Vec<String> = self
            .statuses
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        what.extend(self.fingerprints.iter().map(|(f, n)| format!("{f} ×{n}")));
        if !what.is_empty() {
            s.push_str(&format!(" ({})", what.join("; ")));
        }
        s.push_str(&format!(", {} failing", self.failing));
        s
    }
}

/// One variant (attribute combination).
#[derive(Debug, Clone, serde::Serialize)]
pub struct MatrixRow {
    pub variant: String,
    pub params: BTreeMap<String, String>,
    /// Lane -> cell text (e.g. `ok`, `differs 5.0e-1 25% = asymmetric+floor`).
    pub cells: BTreeMap<String, String>,
    /// Lane -> the cell's facts.
    pub details: BTreeMap<String, Cell>,
}

/// One lane's outcome on one variant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cell {
    /// `ok`, `differs`, `unsupported`, `error` or `skipped`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_abs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatch_fraction: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    pub declared: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Cell {
    fn of(report: &CaseReport, lane: &str) -> Cell {
        let mut cell = Cell {
            status: "ok".into(),
            max_abs: None,
            mismatch_fraction: None,
            shape: None,
            fingerprint: None,
            declared: false,
            message: None,
        };
        if let Some(info) = report.lanes.iter().find(|l| l.name == lane) {
            if let Some(e) = &info.error {
                cell.status = "error".into();
                cell.message = Some(e.clone());
                cell.declared = report
                    .nodes
                    .iter()
                    .any(|n| n.lanes.get(lane).is_some_and(|r| r.declared.is_some()));
                return cell;
            }
        }
        let results: Vec<_> = report
            .nodes
            .iter()
            .filter_map(|n| n.lanes.get(lane))
            .collect();
        let Some(worst) = results.iter().map(|r| r.verdict).max() else {
            cell.status = "skipped".into();
            cell.message = Some("lane not run".into());
            return cell;
        };
        let at_worst: Vec<_> = results.iter().filter(|r| r.verdict == worst).collect();
        // Declared: the case declares the worst verdict wherever a node
        // introduced it (nodes that only inherited it fail nothing).
        cell.declared = worst != Verdict::Ok
            && at_worst.iter().any(|r| r.declared.is_some())
            && at_worst
                .iter()
                .all(|r| r.declared.is_some() || r.origin == Some(Origin::Inherited));
        cell.status = match worst {
            Verdict::Ok => "ok",
            Verdict::Skipped => "skipped",
            Verdict::Unsupported => "unsupported",
            Verdict::Diverged => "differs",
            Verdict::Error => "error",
        }
        .into();
        cell.message = at_worst.iter().find_map(|r| r.message.clone());
        if worst == Verdict::Diverged {
            for r in &at_worst {
                for o in r
                    .outputs
                    .values()
                    .filter(|o| o.verdict == Verdict::Diverged)
                {
                    match o.comparison.as_ref() {
                        Some(Comparison::Metrics(m))
                            if cell
                                .max_abs
                                .is_none_or(|a| m.max_abs > a || m.max_abs.is_nan()) =>
                        {
                            cell.max_abs = Some(m.max_abs);
                            cell.mismatch_fraction = Some(m.mismatch_fraction);
                        }
                        Some(Comparison::ShapeMismatch { got, want }) if cell.shape.is_none() => {
                            cell.shape = Some(format!("{}≠{}", dims(got), dims(want)));
                        }
                        Some(Comparison::DtypeMismatch { got, want }) if cell.shape.is_none() => {
                            cell.shape = Some(format!("{got}≠{want}"));
                        }
                        _ => {}
                    }
                }
            }
            cell.fingerprint = at_worst
                .iter()
                .filter(|r| r.origin == Some(Origin::Introduced))
                .find_map(|r| r.fingerprint.clone());
        }
        cell
    }

    /// The cell's text; `short` abbreviates values for the text table.
    fn text(&self, short: bool) -> String {
        let mut s = match self.status.as_str() {
            "differs" => {
                let mut s = "differs".to_string();
                if let Some(a) = self.max_abs {
                    s.push_str(&format!(" {a:.1e}"));
                }
                if let Some(f) = self.mismatch_fraction {
                    s.push_str(&format!(" {}%", pct(f)));
                }
                if let Some(sh) = &self.shape {
                    s.push_str(&format!(" shape {sh}"));
                }
                if let Some(fp) = self.fingerprint.as_ref().filter(|fp| !fp.attrs.is_empty()) {
                    let f = if short {
                        abbreviate_all(&fp.short())
                    } else {
                        fp.short()
                    };
                    s.push_str(&format!(" {} {f}", if fp.exact { "=" } else { "~" }));
                }
                s
            }
            "unsupported" => {
                let why = self.message.clone().unwrap_or_default();
                let why = if short {
                    truncate(why.lines().next().unwrap_or(""), 24)
                } else {
                    why
                };
                format!("unsupported: {why}")
            }
            other => other.to_string(),
        };
        if self.declared {
            s.push('*');
        }
        s
    }
}

fn dims(s: &[usize]) -> String {
    s.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

fn pct(f: f64) -> String {
    let p = f * 100.0;
    if p > 0.0 && p < 1.0 {
        format!("{p:.1}")
    } else {
        format!("{p:.0}")
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// Abbreviations used by the text table (value or param name -> short).
const ABBREV: &[(&str, &str)] = &[
    ("coordinate_transformation_mode", "ctm"),
    ("half_pixel_symmetric", "hp_sym"),
    ("pytorch_half_pixel", "pt_hp"),
    ("tf_half_pixel_for_nn", "tf_nn"),
    ("tf_crop_and_resize", "tf_crop"),
    ("half_pixel", "hp"),
    ("align_corners", "ac"),
    ("asymmetric", "asym"),
    ("round_prefer_floor", "rpf"),
    ("round_prefer_ceil", "rpc"),
    ("nearest_mode", "nm"),
    ("cubic_coeff_a", "a"),
    ("exclude_outside", "excl"),
    ("antialias", "aa"),
    ("count_include_pad", "cip"),
    ("geometry", "geom"),
];

fn abbreviate(s: &str) -> String {
    ABBREV
        .iter()
        .find(|(l, _)| *l == s)
        .map(|(_, a)| a.to_string())
        .unwrap_or_else(|| s.to_string())
}

/// Abbreviates each `+`/`=`-separated token.
fn abbreviate_all(s: &str) -> String {
    s.split('+')
        .map(|part| {
            part.split('=')
                .map(abbreviate)
                .collect::<Vec<_>>()
                .join("=")
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// The lanes of a report that get a matrix column: all but the reference
/// and the expected data.
fn columns(r: &CaseReport) -> impl Iterator<Item = &String> {
    r.lanes
        .iter()
        .map(|l| &l.name)
        .filter(|l| *l != REFERENCE && *l != EXPECTED)
}

impl MatrixRow {
    /// The row of one variant; `None` for a report without a variant.
    fn of(r: &CaseReport) -> Option<MatrixRow> {
        let mut row = MatrixRow {
            variant: r.variant.clone()?,
            params: r.params.clone(),
            cells: BTreeMap::new(),
            details: BTreeMap::new(),
        };
        for l in columns(r) {
            let cell = Cell::of(r, l);
            row.cells.insert(l.clone(), cell.text(false));
            row.details.insert(l.clone(), cell);
        }
        Some(row)
    }
}

/// The conformance matrices of a run, built case by case.
///
/// `all` groups every variant by case file (what the Markdown and matrix
/// files show); `current` is the run of consecutive variants of one case
/// file streaming now (what the terminal prints once that file is done).
#[derive(Debug, Default)]
pub struct Sweeps {
    all: Vec<Matrix>,
    current: Option<Matrix>,
}

impl Sweeps {
    /// Adds a finished case; returns the matrix of the streaming sweep this
    /// case ends (a case of another file follows it).
    pub fn add(&mut self, r: &CaseReport) -> Option<Matrix> {
        let ended = match &self.current {
            Some(m) if m.file != r.file || m.case != r.case => self.current.take(),
            _ => None,
        };
        if let Some(row) = MatrixRow::of(r) {
            let all = match self
                .all
                .iter()
                .position(|m| m.file == r.file && m.case == r.case)
            {
                Some(i) => &mut self.all[i],
                None => push_new(&mut self.all, r),
            };
            all.push(r, row.clone());
            self.current
                .get_or_insert_with(|| Matrix::new(r))
                .push(r, row);
        }
        ended.map(Matrix::finished)
    }

    /// The matrix of the sweep still streaming at the end of the run.
    pub fn end_current(&mut self) -> Option<Matrix> {
        self.current.take().map(Matrix::finished)
    }

    /// Every matrix of the run, one per swept case file.
    pub fn finish(self) -> Vec<Matrix> {
        self.all.into_iter().map(Matrix::finished).collect()
    }
}

fn push_new<'a>(all: &'a mut Vec<Matrix>, r: &CaseReport) -> &'a mut Matrix {
    all.push(Matrix::new(r));
    all.last_mut().expect("pushed")
}

impl Matrix {
    /// Builds one matrix per case file from the reports of its variants
    /// (reports without a variant are ignored).
    pub fn from_reports(reports: &[CaseReport]) -> Vec<Matrix> {
        let mut sweeps = Sweeps::default();
        for r in reports {
            sweeps.add(r);
        }
        sweeps.finish()
    }

    /// An empty matrix for the case file of `r`.
    fn new(r: &CaseReport) -> Matrix {
        Matrix {
            case: r.case.clone(),
            file: r.file.clone(),
            ..Default::default()
        }
    }

    /// Adds the row of one variant of this case file, and its lanes as columns.
    fn push(&mut self, r: &CaseReport, row: MatrixRow) {
        for l in columns(r) {
            if !self.lanes.contains(l) {
                self.lanes.push(l.clone());
            }
        }
        self.rows.push(row);
    }

    /// Splits the params into row labels (those that vary) and fixed ones.
    fn finished(mut self) -> Matrix {
        let mut names: Vec<String> = Vec::new();
        for row in &self.rows {
            for k in row.params.keys() {
                if !names.contains(k) {
                    names.push(k.clone());
                }
            }
        }
        for k in names {
            let first = self.rows[0].params.get(&k);
            if self.rows.iter().all(|r| r.params.get(&k) == first) {
                if let Some(v) = first {
                    self.fixed.insert(k, v.clone());
                }
            } else {
                self.params.push(k);
            }
        }
        self.summary = self
            .lanes
            .iter()
            .map(|l| LaneSummary::of(l, &self.rows))
            .collect();
        self
    }

    fn cell(&self, row: &MatrixRow, lane: &str, short: bool) -> String {
        match row.details.get(lane) {
            Some(c) => c.text(short),
            None => row.cells.get(lane).cloned().unwrap_or_else(|| "-".into()),
        }
    }

    /// A compact aligned table, one line per variant.
    pub fn to_text(&self) -> String {
        let mut header: Vec<String> = self.params.iter().map(|p| abbreviate(p)).collect();
        header.extend(self.lanes.iter().cloned());
        let mut lines: Vec<Vec<String>> = vec![header];
        for row in &self.rows {
            let mut l: Vec<String> = self
                .params
                .iter()
                .map(|p| {
                    row.params
                        .get(p)
                        .map(|v| abbreviate(v))
                        .unwrap_or_else(|| "-".into())
                })
                .collect();
            if self.params.is_empty() {
                l.push(row.variant.clone());
            }
            l.extend(self.lanes.iter().map(|lane| self.cell(row, lane, true)));
            lines.push(l);
        }
        if self.params.is_empty() {
            lines[0].insert(0, "variant".into());
        }
        let ncol = lines[0].len();
        let widths: Vec<usize> = (0..ncol)
            .map(|i| {
                lines
                    .iter()
                    .map(|l| l.get(i).map_or(0, |c| c.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut s = format!(
            "{} ({}): {} variants",
            self.case,
            self.file,
            self.rows.len()
        );
        if !self.fixed.is_empty() {
            let f: Vec<String> = self.fixed.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("; fixed: {}", f.join(", ")));
        }
        s.push('\n');
        for l in &lines {
            let cells: Vec<String> = l
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i + 1 == ncol {
                        c.clone()
                    } else {
                        format!("{c}{}", " ".repeat(widths[i] - c.chars().count()))
                    }
                })
                .collect();
            s.push_str(cells.join("  ").trim_end());
            s.push('\n');
        }
        let mut used: Vec<String> = Vec::new();
        let mut note = |x: &str| {
            for t in x.split(['+', '=']) {
                let a = abbreviate(t);
                let entry = format!("{a}={t}");
                if a != t && !used.contains(&entry) {
                    used.push(entry);
                }
            }
        };
        for p in &self.params {
            note(p);
            self.rows
                .iter()
                .filter_map(|r| r.params.get(p))
                .for_each(|v| note(v));
        }
        for c in self.rows.iter().flat_map(|r| r.details.values()) {
            if let Some(fp) = &c.fingerprint {
                note(&fp.short());
            }
        }
        for l in &self.summary {
            s.push_str(&format!("  {}\n", l.line()));
        }
        s.push_str("= output equals the reference under that convention, ~ closest convention, * declared divergence");
        let mut line = String::new();
        for u in used {
            if !line.is_empty() && line.len() + u.len() + 1 > 100 {
                s.push_str(&format!("\n{line}"));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&u);
        }
        if !line.is_empty() {
            s.push_str(&format!("\n{line}"));
        }
        s.push('\n');
        s
    }

    /// A Markdown table.
    pub fn to_markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let mut s = format!("### {} (`{}`)\n\n", esc(&self.case), esc(&self.file));
        if !self.fixed.is_empty() {
            let f: Vec<String> = self
                .fixed
                .iter()
                .map(|(k, v)| format!("`{k}={}`", esc(v)))
                .collect();
            s.push_str(&format!("Fixed: {}\n\n", f.join(", ")));
        }
        let mut head: Vec<String> = if self.params.is_empty() {
            vec!["variant".into()]
        } else {
            self.params.clone()
        };
        head.extend(self.lanes.iter().cloned());
        s.push_str(&format!(
            "| {} |\n",
            head.iter().map(|h| esc(h)).collect::<Vec<_>>().join(" | ")
        ));
        s.push_str(&format!("|{}\n", "---|".repeat(head.len())));
        for row in &self.rows {
            let mut c: Vec<String> = if self.params.is_empty() {
                vec![row.variant.clone()]
            } else {
                self.params
                    .iter()
                    .map(|p| row.params.get(p).cloned().unwrap_or_else(|| "-".into()))
                    .collect()
            };
            c.extend(self.lanes.iter().map(|l| self.cell(row, l, false)));
            s.push_str(&format!(
                "| {} |\n",
                c.iter().map(|x| esc(x)).collect::<Vec<_>>().join(" | ")
            ));
        }
        s.push('\n');
        for l in &self.summary {
            s.push_str(&format!("- {}\n", esc(&l.line())));
        }
        s.push_str("\n`=` output equals the reference under that convention, `~` closest convention, `*` declared divergence.\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::Metrics;
    use crate::outcome::{LaneInfo, LaneResult, NodeReport, OutputResult};

    fn lane(name: &str, error: Option<&str>) -> LaneInfo {
        LaneInfo {
            name: name.into(),
            settings: BTreeMap::new(),
            wall_ms: 0.0,
            notes: vec![],
            error: error.map(str::to_string),
            coverage: None,
            model_outputs: None,
        }
    }

    fn result(verdict: Verdict) -> LaneResult {
        LaneResult::new(verdict)
    }

    fn diverged(max_abs: f64, frac: f64, fp: Option<Fingerprint>, declared: bool) -> LaneResult {
        let m = Metrics {
            count: 4,
            max_abs,
            max_rel: 0.0,
            mismatches: 1,
            mismatch_fraction: frac,
            max_ulp: 0,
            cosine: 1.0,
            nan_mismatches: 0,
            inf_mismatches: 0,
            worst_index: None,
            worst_value: None,
            worst_reference: None,
            bound_ratio: None,
        };
        let mut r = result(Verdict::Diverged);
        r.origin = Some(Origin::Introduced);
        r.fingerprint = fp;
        r.declared = declared.then(|| "known".to_string());
        r.outputs.insert(
            "Y".into(),
            OutputResult::new(Verdict::Diverged, Some(Comparison::Metrics(m))),
        );
        r
    }

    fn report(
        variant: &str,
        params: &[(&str, &str)],
        lanes: Vec<(&str, LaneResult)>,
    ) -> CaseReport {
        let mut infos = vec![lane("reference", None)];
        let mut by_lane = BTreeMap::new();
        by_lane.insert("reference".to_string(), result(Verdict::Ok));
        for (n, r) in lanes {
            let err = (r.verdict == Verdict::Error).then_some("session failed");
            infos.push(lane(n, err));
            by_lane.insert(n.to_string(), r);
        }
        CaseReport {
            file: "cases/resize.toml".into(),
            case: "resize".into(),
            variant: Some(variant.into()),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            opset: 19,
            device: "cpu".into(),
            lanes: infos,
            warnings: vec![],
            judge_ms: 0.0,
            nodes: vec![NodeReport {
                index: 0,
                name: "resize".into(),
                op: "Resize".into(),
                class: "exact".into(),
                outputs: vec![],
                lanes: by_lane,
            }],
            first_divergence: BTreeMap::new(),
            failures: vec![],
            passed: true,
        }
    }

    fn reports() -> Vec<CaseReport> {
        let fp = Fingerprint {
            exact: true,
            attrs: vec![
                ("coordinate_transformation_mode".into(), "asymmetric".into()),
                ("nearest_mode".into(), "floor".into()),
            ],
            max_abs: 0.0,
            description:
                "behaves as asymmetric + floor (model asks half_pixel + round_prefer_floor)".into(),
            ambiguous: vec![],
            separated_by: None,
            tried: 56,
            output: 0,
            verified: true,
        };
        let mut unsupported = result(Verdict::Unsupported);
        unsupported.message = Some("antialias | not lowered".into());
        vec![
            report(
                "nearest:ctm=half_pixel",
                &[("mode", "nearest"), ("ctm", "half_pixel"), ("dist", "ramp")],
                vec![
                    ("ort", result(Verdict::Ok)),
                    ("tch", diverged(0.5, 0.25, Some(fp), false)),
                ],
            ),
            report(
                "nearest:ctm=align_corners",
                &[
                    ("mode", "nearest"),
                    ("ctm", "align_corners"),
                    ("dist", "ramp"),
                ],
                vec![
                    ("ort", diverged(0.125, 0.004, None, true)),
                    ("tch", unsupported),
                ],
            ),
            report(
                "linear:ctm=asymmetric",
                &[("mode", "linear"), ("ctm", "asymmetric"), ("dist", "ramp")],
                vec![
                    ("ort", result(Verdict::Ok)),
                    ("tch", result(Verdict::Error)),
                ],
            ),
        ]
    }

    #[test]
    fn matrix_groups_rows_and_cells() {
        let mut rs = reports();
        let mut plain = rs[0].clone();
        plain.variant = None;
        rs.push(plain);
        let ms = Matrix::from_reports(&rs);
        assert_eq!(ms.len(), 1);
        let m = &ms[0];
        assert_eq!(m.lanes, vec!["ort", "tch"]);
        assert_eq!(m.params, vec!["ctm", "mode"]);
        assert_eq!(m.fixed.get("dist").map(String::as_str), Some("ramp"));
        assert_eq!(m.rows.len(), 3);
        assert_eq!(m.rows[0].cells["ort"], "ok");
        assert_eq!(
            m.rows[0].cells["tch"],
            "differs 5.0e-1 25% = asymmetric+floor"
        );
        assert_eq!(m.rows[1].cells["ort"], "differs 1.2e-1 0.4%*");
        assert_eq!(
            m.rows[1].cells["tch"],
            "unsupported: antialias | not lowered"
        );
        assert_eq!(m.rows[2].cells["tch"], "error");
        let json = serde_json::to_value(m).unwrap();
        assert_eq!(
            json["rows"][0]["details"]["tch"]["fingerprint"]["exact"],
            true
        );
    }

    #[test]
    fn matrix_text_and_markdown() {
        let m = &Matrix::from_reports(&reports())[0];
        let text = m.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "resize (cases/resize.toml): 3 variants; fixed: dist=ramp"
        );
        assert!(
            lines[1].starts_with("ctm ") && lines[1].contains("ort") && lines[1].ends_with("tch"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("hp ") && lines[2].ends_with("differs 5.0e-1 25% = asym+floor"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("ac ") && lines[3].contains("differs 1.2e-1 0.4%*"),
            "{text}"
        );
        assert!(
            lines[4].starts_with("asym ") && lines[4].ends_with("error"),
            "{text}"
        );
        // Columns are aligned: every lane column starts at the same offset.
        let col = lines[1].find("ort").unwrap();
        assert_eq!(&lines[2][col..col + 2], "ok");
        assert!(
            text.contains("ac=align_corners") && text.contains("hp=half_pixel"),
            "{text}"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 120), "{text}");

        let md = m.to_markdown();
        assert!(
            md.contains("| ctm | mode | ort | tch |\n|---|---|---|---|\n"),
            "{md}"
        );
        assert!(
            md.contains("| half_pixel | nearest | ok | differs 5.0e-1 25% = asymmetric+floor |"),
            "{md}"
        );
        assert!(md.contains("| align_corners | nearest | differs 1.2e-1 0.4%* | unsupported: antialias \\| not lowered |"), "{md}");
    }

    #[test]
    fn matrix_lane_summary_lines() {
        let m = &Matrix::from_reports(&reports())[0];
        let lines: Vec<String> = m.summary.iter().map(LaneSummary::line).collect();
        assert_eq!(
            lines,
            vec![
                "ort: 3 variants, 2 ok, 1 declared (differs 1), 0 failing",
                "tch: 3 variants, 0 ok, 0 declared (differs 1; error 1; unsupported 1; \
                 = asymmetric+floor ×1), 3 failing",
            ]
        );
        assert!(m.to_text().contains(&format!("  {}\n", lines[0])));
        assert!(m.to_markdown().contains(&format!("- {}\n", lines[0])));
        let json = serde_json::to_value(m).unwrap();
        assert_eq!(json["summary"][1]["failing"], 3);
    }
}
