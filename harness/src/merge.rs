//! `xdiff merge`: the JSON reports of the shards of one run
//! (`xdiff run --partition ...`, `crate::partition`) read back and put
//! together into the report the unsharded run writes. Each shard's
//! `summary.partition` says which variants of the run's global order it
//! holds; the merge checks that the shards are one partition (same scheme,
//! N and run size, every shard 1..=N once, every variant in exactly one
//! shard, each where its scheme puts it) and restores the global order. The
//! binary (`app::merge`) then replays the cases as run events into the same
//! reporters a run feeds, so a merged report is written by the same code.

use std::path::Path;

use crate::outcome::CaseReport;
use crate::partition::{variant_key, Partition, ShardInfo};
use crate::report::json::ReportDoc;
use crate::report::{LoadError, FORMAT_VERSION};

/// Why shard reports cannot be merged; one line naming the report.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{file}: {msg}")]
    Read { file: String, msg: String },
    #[error("{file}: format_version {got}, this xdiff reads {FORMAT_VERSION}")]
    Version { file: String, got: u32 },
    #[error("{file}: not a shard report (no summary.partition: run it with --partition)")]
    NotShard { file: String },
    #[error(
        "{file}: shard {got} does not belong with {first} (same scheme, N and variants expected)"
    )]
    Mismatch {
        file: String,
        got: String,
        first: String,
    },
    #[error("{file}: summary.partition lists {indices} variants but the report has {cases} cases")]
    Count {
        file: String,
        indices: usize,
        cases: usize,
    },
    #[error("{file}: case `{id}` is variant {index}, which {shard} does not hold")]
    Misplaced {
        file: String,
        id: String,
        index: usize,
        shard: String,
    },
    #[error("{file}: shard {shard} overlaps {other}: variant {index} (`{id}`) is in both")]
    Overlap {
        file: String,
        shard: String,
        other: String,
        index: usize,
        id: String,
    },
    #[error("{file}: shard {shard} given twice (also {other})")]
    SameShard {
        file: String,
        shard: String,
        other: String,
    },
    #[error(
        "{missing} variant(s) of the run are in no shard report, the first is variant {first}"
    )]
    Unfilled { missing: usize, first: usize },
    #[error("shard(s) {missing} of {of} missing: merge needs every shard 1..={of}")]
    Missing { missing: String, of: usize },
}

/// One shard report, read.
#[derive(Debug)]
pub struct Shard {
    /// The report's path, as given (for messages).
    pub file: String,
    pub doc: ReportDoc,
}

/// Reads a shard's JSON report.
pub fn load(path: &Path) -> Result<Shard, MergeError> {
    let file = path.display().to_string();
    let read = |msg: String| MergeError::Read {
        file: file.clone(),
        msg,
    };
    let text = std::fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
    let doc: ReportDoc =
        serde_json::from_str(&text).map_err(|e| read(format!("not an xdiff JSON report: {e}")))?;
    if doc.format_version != FORMAT_VERSION {
        let got = doc.format_version;
        return Err(MergeError::Version { file, got });
    }
    Ok(Shard { file, doc })
}

/// The shards put together: every case in the run's global order.
#[derive(Debug)]
pub struct Merged {
    pub cases: Vec<CaseReport>,
    /// Case files that could not be loaded (every shard loads every file,
    /// so the first shard's list).
    pub not_loaded: Vec<LoadError>,
    /// The slowest shard's wall time (the sharded run's, run in parallel).
    pub wall_ms: f64,
}

fn partition_of(s: &Shard) -> Result<&ShardInfo, MergeError> {
    s.doc
        .summary
        .partition
        .as_ref()
        .ok_or_else(|| MergeError::NotShard {
            file: s.file.clone(),
        })
}

fn label(p: &ShardInfo) -> String {
    format!(
        "{}:{}/{} of {} variants",
        p.scheme, p.shard, p.of, p.variants
    )
}

/// Checks that `shards` are the whole of one partitioned run and merges them.
pub fn merge(shards: Vec<Shard>) -> Result<Merged, MergeError> {
    let mut slots: Vec<Option<(CaseReport, usize)>> = Vec::new();
    let mut seen: Vec<Option<usize>> = Vec::new();
    let mut first: Option<ShardInfo> = None;
    for (n, s) in shards.iter().enumerate() {
        let p = partition_of(s)?;
        let f = first.get_or_insert_with(|| p.clone());
        if (p.scheme, p.of, p.variants) != (f.scheme, f.of, f.variants) {
            return Err(MergeError::Mismatch {
                file: s.file.clone(),
                got: label(p),
                first: label(f),
            });
        }
        if seen.is_empty() {
            seen = vec![None; p.of + 1];
            slots = vec![None; p.variants];
        }
        if let Some(other) = seen[p.shard] {
            return Err(MergeError::SameShard {
                file: s.file.clone(),
                shard: label(p),
                other: shards[other].file.clone(),
            });
        }
        seen[p.shard] = Some(n);
        place(s, p, n, &shards, &mut slots)?;
    }
    let Some(f) = first else {
        return Err(MergeError::Missing {
            missing: "all".into(),
            of: 0,
        });
    };
    let missing: Vec<String> = (1..=f.of)
        .filter(|&k| seen[k].is_none())
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing {
            missing: missing.join(", "),
            of: f.of,
        });
    }
    let wall_ms = shards
        .iter()
        .map(|s| s.doc.summary.wall_ms)
        .fold(0.0, f64::max);
    let not_loaded = shards[0].doc.summary.not_loaded.clone();
    let unfilled: Vec<usize> = (0..slots.len()).filter(|&i| slots[i].is_none()).collect();
    if let Some(&first) = unfilled.first() {
        let missing = unfilled.len();
        return Err(MergeError::Unfilled { missing, first });
    }
    let cases = slots.into_iter().flatten().map(|(c, _)| c).collect();
    Ok(Merged {
        cases,
        not_loaded,
        wall_ms,
    })
}

/// Puts shard `n`'s cases into their global slots, checking each belongs there.
fn place(
    s: &Shard,
    p: &ShardInfo,
    n: usize,
    shards: &[Shard],
    slots: &mut [Option<(CaseReport, usize)>],
) -> Result<(), MergeError> {
    let cases = &s.doc.cases;
    if p.indices.len() != cases.len() {
        return Err(MergeError::Count {
            file: s.file.clone(),
            indices: p.indices.len(),
            cases: cases.len(),
        });
    }
    let partition = Partition {
        scheme: p.scheme,
        shard: p.shard,
        of: p.of,
    };
    for (&index, case) in p.indices.iter().zip(cases) {
        let id = case.id();
        let key = variant_key(&case.file, &id);
        if index >= slots.len() || partition.shard_of(index, &key) != p.shard {
            return Err(MergeError::Misplaced {
                file: s.file.clone(),
                id,
                index,
                shard: label(p),
            });
        }
        if let Some((_, other)) = &slots[index] {
            return Err(MergeError::Overlap {
                file: s.file.clone(),
                shard: label(p),
                other: shards[*other].file.clone(),
                index,
                id,
            });
        }
        slots[index] = Some((case.clone(), n));
    }
    Ok(())
}
