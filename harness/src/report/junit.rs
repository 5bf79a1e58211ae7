//! The JUnit XML report (quick-junit): one test suite per case, one test case
//! per variant × lane. A lane fails when it has an undeclared divergence or a
//! declared one that did not happen; the failure carries the metrics of the
//! lane's first divergence.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::markdown::metrics_summary;
use super::{coverage, Event, LoadError, Reporter, Summary};
use crate::outcome::CaseReport;

/// Collects cases and writes one JUnit document at the end.
pub struct JunitReporter<W: Write> {
    out: W,
    /// Suites by case name, in first-seen order.
    suites: Vec<TestSuite>,
    index: BTreeMap<String, usize>,
}

impl<W: Write> JunitReporter<W> {
    pub fn new(out: W) -> Self {
        JunitReporter {
            out,
            suites: Vec::new(),
            index: BTreeMap::new(),
        }
    }
}

/// Failures that name no lane of the report (the reference's "cannot
/// judge" when the reference lane is not shown): one more test case.
fn case_failures(r: &CaseReport) -> Option<TestCase> {
    let unclaimed: Vec<&str> = r
        .failures
        .iter()
        .filter(|f| {
            !r.lanes
                .iter()
                .any(|l| f.starts_with(&format!("{}: ", l.name)))
        })
        .map(String::as_str)
        .collect();
    let first = unclaimed.first()?;
    let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
    st.set_message(first.to_string());
    st.set_type("cannot judge");
    st.set_description(unclaimed.join("\n"));
    let mut tc = TestCase::new(format!("{} · case", r.id()), st);
    tc.set_classname(format!("xdiff.{}", r.case));
    Some(tc)
}

/// The test cases of one case variant, one per lane (and one for failures
/// that name no lane).
pub fn test_cases(r: &CaseReport) -> Vec<TestCase> {
    let id = r.id();
    let mut out: Vec<TestCase> = case_failures(r).into_iter().collect();
    for lane in &r.lanes {
        let prefix = format!("{}: ", lane.name);
        let failures: Vec<&str> = r
            .failures
            .iter()
            .filter(|f| f.starts_with(&prefix))
            .map(String::as_str)
            .collect();
        let status = if failures.is_empty() {
            TestCaseStatus::success()
        } else {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let mut message = failures[0].to_string();
            if let Some(f) = r.first_divergence.get(&lane.name) {
                let first = r.nodes.get(f.index).and_then(|n| n.lanes.get(&lane.name));
                let metrics = first.map(metrics_summary).unwrap_or_default();
                message = format!(
                    "first divergence: node #{} `{}` ({}) {}: {metrics}",
                    f.index,
                    f.node,
                    f.op,
                    f.verdict.name()
                );
            }
            st.set_message(message);
            st.set_type(
                r.first_divergence
                    .get(&lane.name)
                    .map(|f| f.verdict.name())
                    .unwrap_or("expectation"),
            );
            st.set_description(failures.join("\n"));
            st
        };
        let mut tc = TestCase::new(format!("{id} · {}", lane.name), status);
        tc.set_classname(format!("xdiff.{}", r.case));
        tc.set_time(Duration::from_secs_f64((lane.wall_ms / 1e3).max(0.0)));
        let declared: Vec<String> = r
            .nodes
            .iter()
            .filter_map(|n| {
                n.lanes.get(&lane.name).and_then(|x| {
                    x.declared.as_ref().map(|d| {
                        format!(
                            "node `{}` ({}) {} as declared: {d}",
                            n.name,
                            n.op,
                            x.verdict.name()
                        )
                    })
                })
            })
            .collect();
        let mut out_text = format!(
            "{} (opset {}, {}); {}",
            r.file,
            r.opset,
            r.device,
            coverage(lane)
        );
        for d in declared {
            out_text.push('\n');
            out_text.push_str(&d);
        }
        if let Some(e) = &lane.error {
            out_text.push_str(&format!("\nlane failed: {e}"));
        }
        for w in &r.warnings {
            out_text.push_str(&format!("\nwarning: {w}"));
        }
        tc.set_system_out(out_text);
        out.push(tc);
    }
    out
}

impl<W: Write> JunitReporter<W> {
    fn case(&mut self, r: &CaseReport) {
        let i = *self.index.entry(r.case.clone()).or_insert_with(|| {
            self.suites.push(TestSuite::new(r.case.clone()));
            self.suites.len() - 1
        });
        self.suites[i].add_test_cases(test_cases(r));
    }

    /// A case file that could not be loaded: an `error` test case of its own suite.
    fn not_loaded(&mut self, e: &LoadError) {
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
        st.set_message(e.error.clone());
        st.set_type("not loaded");
        let mut tc = TestCase::new(format!("{} · load", e.file), st);
        tc.set_classname(format!("xdiff.{}", e.file));
        let mut suite = TestSuite::new(e.file.clone());
        suite.add_test_case(tc);
        self.suites.push(suite);
    }

    fn finish(&mut self, summary: &Summary) -> std::io::Result<()> {
        let mut report = Report::new("xdiff");
        report.set_time(Duration::from_secs_f64((summary.wall_ms / 1e3).max(0.0)));
        report.add_test_suites(std::mem::take(&mut self.suites));
        report
            .serialize(&mut self.out)
            .map_err(std::io::Error::other)?;
        writeln!(self.out)?;
        self.out.flush()
    }
}

impl<W: Write> Reporter for JunitReporter<W> {
    fn handle(&mut self, event: &Event) -> std::io::Result<()> {
        match *event {
            Event::CaseFinished(run) => {
                self.case(&run.report);
                Ok(())
            }
            Event::RunFinished { summary, .. } => self.finish(summary),
            Event::HeatmapsWritten { .. } | Event::SweepFinished(_) => Ok(()),
            Event::CaseNotLoaded(e) => {
                self.not_loaded(e);
                Ok(())
            }
        }
    }
}
