//! The rows of a case's node table, shared by the text and Markdown reports
//! so that a 1,000-node model reads in a screenful: a lane that failed as a
//! whole is one row (not one `error` per node), and a run of nodes a lane
//! skipped for the same upstream cause is one row naming the cause and the
//! first and last node of the run (not one `skipped` per node). Every other
//! node of a lane that the report shows is a row of its own.

use std::collections::BTreeMap;

use crate::outcome::{CaseReport, LaneResult, NodeReport, Verdict};

/// One row of a case's node table, in graph order.
#[derive(Debug)]
pub enum Row<'a> {
    /// One node in one lane.
    Node {
        node: &'a NodeReport,
        lane: &'a str,
        result: &'a LaneResult,
    },
    /// Nodes of one lane skipped for one reason (two or more).
    Skipped(SkipRun<'a>),
    /// A lane that failed as a whole: every node of it is `error`.
    LaneFailed { lane: &'a str, nodes: usize },
}

/// Nodes a lane skipped for the same reason (the same message and declaration).
#[derive(Debug)]
pub struct SkipRun<'a> {
    pub lane: &'a str,
    /// The message the skipped nodes share (`upstream `x` unsupported`).
    pub why: &'a str,
    /// The declaration the nodes match, if any (its reason).
    pub declared: Option<&'a str>,
    /// In graph order.
    pub nodes: Vec<&'a NodeReport>,
    /// The node the message names that this lane could not run, with its result.
    pub cause: Option<(&'a NodeReport, &'a LaneResult)>,
}

impl SkipRun<'_> {
    /// `tch: 229 nodes skipped after `Conv_12` (Conv) unsupported: strides ...: `a` … `z``
    pub fn line(&self) -> String {
        let n = self.nodes.len();
        let why = match self.cause {
            Some((node, r)) => {
                let msg = r.message.as_deref().map(|m| format!(": {m}"));
                format!(
                    "after `{}` ({}) {}{}",
                    node.name,
                    node.op,
                    r.verdict.name(),
                    msg.unwrap_or_default()
                )
            }
            None => format!("({})", self.why),
        };
        let declared = self
            .declared
            .map(|d| format!(" (declared: {d})"))
            .unwrap_or_default();
        format!(
            "{}: {n} nodes skipped {why}{declared}: {}",
            self.lane,
            span(&self.nodes)
        )
    }
}

/// `` `a`, `b` `` for two nodes, `` `a` … `z` `` for more: the ends of a run.
fn span(nodes: &[&NodeReport]) -> String {
    match nodes {
        [a, b] => format!("`{}`, `{}`", a.name, b.name),
        [a, .., z] => format!("`{}` … `{}`", a.name, z.name),
        [a] => format!("`{}`", a.name),
        [] => String::new(),
    }
}

/// The rows of `r` for the lane results `shown` keeps, in graph order: each
/// failed lane once (first), each run of skipped nodes at its first node.
pub fn rows<'a>(r: &'a CaseReport, shown: impl Fn(&LaneResult) -> bool) -> Vec<Row<'a>> {
    let failed: Vec<&str> = r
        .lanes
        .iter()
        .filter(|l| l.error.is_some())
        .map(|l| l.name.as_str())
        .collect();
    let mut rows: Vec<Row> = failed
        .iter()
        .map(|&lane| Row::LaneFailed {
            lane,
            nodes: r.nodes.len(),
        })
        .collect();
    // Runs by (lane, message, declaration) -> the row that holds them.
    let mut runs: BTreeMap<(&str, &str, Option<&str>), usize> = BTreeMap::new();
    for node in &r.nodes {
        for (lane, x) in &node.lanes {
            if failed.contains(&lane.as_str()) || !shown(x) {
                continue;
            }
            let why = x
                .message
                .as_deref()
                .filter(|_| x.verdict == Verdict::Skipped);
            let Some(why) = why else {
                rows.push(Row::Node {
                    node,
                    lane,
                    result: x,
                });
                continue;
            };
            let key = (lane.as_str(), why, x.declared.as_deref());
            if let Some(&i) = runs.get(&key) {
                if let Row::Skipped(run) = &mut rows[i] {
                    run.nodes.push(node);
                }
                continue;
            }
            runs.insert(key, rows.len());
            rows.push(Row::Skipped(SkipRun {
                lane,
                why,
                declared: key.2,
                nodes: vec![node],
                cause: cause(r, lane, why),
            }));
        }
    }
    rows.into_iter().map(single_node).collect()
}

/// A run of one node is a node row.
fn single_node(row: Row) -> Row {
    match row {
        Row::Skipped(run) if run.nodes.len() == 1 => {
            let node = run.nodes[0];
            Row::Node {
                node,
                lane: run.lane,
                result: &node.lanes[run.lane],
            }
        }
        other => other,
    }
}

/// The node `why` names (`` `name` ``) that `lane` could not run.
fn cause<'a>(r: &'a CaseReport, lane: &str, why: &str) -> Option<(&'a NodeReport, &'a LaneResult)> {
    r.nodes.iter().find_map(|n| {
        let x = n.lanes.get(lane)?;
        let named = why.contains(&format!("`{}`", n.name));
        (named && matches!(x.verdict, Verdict::Unsupported | Verdict::Error)).then_some((n, x))
    })
}
