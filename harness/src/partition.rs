//! Sharding a run across CI jobs (`xdiff run --partition hash:K/N` or
//! `count:K/N`): which case variants shard K of N runs. Every variant of
//! every case source has a place in the run's *global order* (sources as
//! named and discovered, each file's variants in sweep order: the order an
//! unsharded run reports them); `count` deals that order round-robin,
//! `hash` places each variant by a stable hash (FNV-1a, 64 bit) of its id
//! (case file and variant), so adding a variant never moves the others.
//! The shard records its place ([`ShardInfo`]) in the report, from which
//! `xdiff merge` (`crate::merge`) restores the global order.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::case::Case;

/// How variants are dealt to shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// The i-th variant of the global order goes to shard (i mod N) + 1.
    Count,
    /// A variant goes to shard (fnv1a(id) mod N) + 1.
    Hash,
}

/// `--partition <scheme>:K/N`: this run is shard `shard` of `of` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub scheme: Scheme,
    pub shard: usize,
    pub of: usize,
}

/// A `--partition` value that is not `hash:K/N` or `count:K/N` with K in 1..=N.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--partition: `{0}` is not hash:K/N or count:K/N with 1 <= K <= N")]
pub struct PartitionError(pub String);

impl FromStr for Partition {
    type Err = PartitionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PartitionError(s.to_string());
        let (scheme, kn) = s.split_once(':').ok_or_else(bad)?;
        let scheme = match scheme {
            "hash" => Scheme::Hash,
            "count" => Scheme::Count,
            _ => return Err(bad()),
        };
        let (k, n) = kn.split_once('/').ok_or_else(bad)?;
        let shard: usize = k.parse().map_err(|_| bad())?;
        let of: usize = n.parse().map_err(|_| bad())?;
        if shard == 0 || shard > of {
            return Err(bad());
        }
        Ok(Partition { scheme, shard, of })
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Count => "count",
            Scheme::Hash => "hash",
        })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.scheme, self.shard, self.of)
    }
}

/// What a shard's report records (`summary.partition`): the partition, the
/// number of variants in the whole run, and the global-order index of each
/// case the shard reports, in report order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub scheme: Scheme,
    pub shard: usize,
    pub of: usize,
    /// Variants of the whole (unsharded) run.
    pub variants: usize,
    /// Global-order index of each case of this shard's report, ascending.
    pub indices: Vec<usize>,
}

/// The id a variant is hashed by: its case file and its variant id
/// (`file::case[variant]`), stable across runs and machines.
pub fn variant_key(file: &str, id: &str) -> String {
    format!("{file}::{id}")
}

/// 64-bit FNV-1a: tiny, stable across platforms and Rust versions (unlike
/// `DefaultHasher`).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Partition {
    /// The shard (1-based) of the variant at global index `index` with key `key`.
    pub fn shard_of(&self, index: usize, key: &str) -> usize {
        let slot = match self.scheme {
            Scheme::Count => index as u64,
            Scheme::Hash => fnv1a(key.as_bytes()),
        };
        (slot % self.of as u64) as usize + 1
    }

    /// The global indices (ascending) of the variants this shard runs, of
    /// `keys` in global order.
    pub fn select<S: AsRef<str>>(&self, keys: &[S]) -> Vec<usize> {
        (0..keys.len())
            .filter(|&i| self.shard_of(i, keys[i].as_ref()) == self.shard)
            .collect()
    }

    /// The record of this shard in its report.
    pub fn info(&self, variants: usize, indices: Vec<usize>) -> ShardInfo {
        ShardInfo {
            scheme: self.scheme,
            shard: self.shard,
            of: self.of,
            variants,
            indices,
        }
    }
}

/// The cases of shard `p` of `cases` (every variant of the run, in global
/// order), and the record of the shard for its report.
pub fn apply(p: &Partition, cases: Vec<Case>) -> (Vec<Case>, ShardInfo) {
    let keys: Vec<String> = cases
        .iter()
        .map(|c| variant_key(&c.file.display().to_string(), &c.id()))
        .collect();
    let indices = p.select(&keys);
    let variants = cases.len();
    let mut keep = indices.iter().copied().peekable();
    let mine = cases
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.next_if_eq(i).is_some())
        .map(|(_, c)| c)
        .collect();
    (mine, p.info(variants, indices))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_schemes_and_rejects_the_rest() {
        let p: Partition = "hash:2/3".parse().unwrap();
        assert_eq!((p.scheme, p.shard, p.of), (Scheme::Hash, 2, 3));
        assert_eq!(p.to_string(), "hash:2/3");
        assert_eq!(
            "count:1/1".parse::<Partition>().unwrap().scheme,
            Scheme::Count
        );
        for bad in [
            "hash:0/3",
            "hash:4/3",
            "count:1/0",
            "mod:1/3",
            "hash:1",
            "1/3",
            "hash:a/3",
        ] {
            assert_eq!(
                bad.parse::<Partition>().unwrap_err().to_string(),
                format!("--partition: `{bad}` is not hash:K/N or count:K/N with 1 <= K <= N")
            );
        }
    }

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn every_variant_lands_in_exactly_one_shard() {
        let keys: Vec<String> = (0..50).map(|i| format!("cases/x.toml::x[v{i}]")).collect();
        for scheme in ["hash", "count"] {
            let mut seen = vec![0; keys.len()];
            for k in 1..=3 {
                let p: Partition = format!("{scheme}:{k}/3").parse().unwrap();
                for i in p.select(&keys) {
                    seen[i] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{scheme}: {seen:?}");
        }
        let count: Partition = "count:2/3".parse().unwrap();
        assert_eq!(count.select(&keys[..7]), vec![1, 4]);
    }

    #[test]
    fn a_hash_shard_keeps_its_variants_when_others_are_added() {
        let p: Partition = "hash:1/3".parse().unwrap();
        let keys: Vec<String> = (0..20).map(|i| format!("f::c[{i}]")).collect();
        let before: Vec<&String> = p.select(&keys).into_iter().map(|i| &keys[i]).collect();
        let mut more = vec!["f::c[new]".to_string(), "g::d".to_string()];
        more.extend(keys.iter().cloned());
        let after: Vec<&String> = p.select(&more).into_iter().map(|i| &more[i]).collect();
        assert!(before.iter().all(|k| after.contains(k)));
    }
}
