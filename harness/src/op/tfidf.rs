//! TfIdfVectorizer-9 (<https://onnx.ai/onnx/operators/onnx__TfIdfVectorizer.html>):
//! counts the n-grams of each row of an int32/int64 `X` (`[C]` or `[N, C]`)
//! that appear in `pool_int64s`, into `Y[ngram_indexes[i]]`. An n-gram of
//! length `n` in `[min_gram_length, max_gram_length]` takes every
//! `(skip + 1)`-th item for each skip up to `max_skip_count`; unigrams are
//! counted once whatever the skip. `mode` TF keeps counts, IDF turns each
//! found n-gram into its weight, TFIDF multiplies the count by it
//! (`weights`, one per pool n-gram, default 1). The pool is split into
//! 1-grams, 2-grams, ... at the offsets `ngram_counts`. String pools are
//! outside xdiff's tensor types.
//!
//! The decode builds the n-gram table once; the reference counts with it.

use std::collections::BTreeMap;

use super::{OpCtx, OpResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tf,
    Idf,
    TfIdf,
}

/// TfIdfVectorizer's decoded node.
#[derive(Debug, Clone, PartialEq)]
pub struct TfIdfPlan {
    pub mode: Mode,
    pub min_len: usize,
    pub max_len: usize,
    pub max_skip: usize,
    /// Each pool n-gram: its output coordinate and weight.
    pub grams: BTreeMap<Vec<i64>, (usize, f64)>,
    /// Length of each output row (`max(ngram_indexes) + 1`).
    pub width: usize,
}

impl TfIdfPlan {
    pub fn decode(ctx: &OpCtx) -> OpResult<TfIdfPlan> {
        let mode = match ctx.string("mode", "")?.as_str() {
            "TF" => Mode::Tf,
            "IDF" => Mode::Idf,
            "TFIDF" => Mode::TfIdf,
            m => return Err(ctx.attr_error("mode", format!("`{m}` is not TF, IDF or TFIDF"))),
        };
        if ctx.has("pool_strings") {
            return Err(ctx.unsupported("pool_strings", "xdiff has no string tensors"));
        }
        let pool = ctx.ints("pool_int64s")?.unwrap_or_default();
        let counts = ctx.ints("ngram_counts")?.unwrap_or_default();
        let indexes = ctx.ints("ngram_indexes")?.unwrap_or_default();
        let n = |name: &str, d: i64| -> OpResult<usize> {
            let v = ctx.int(name, d)?;
            usize::try_from(v).map_err(|_| ctx.attr_error(name, format!("{v} is negative")))
        };
        let (min_len, max_len, max_skip) = (
            n("min_gram_length", 1)?,
            n("max_gram_length", 1)?,
            n("max_skip_count", 0)?,
        );
        if min_len == 0 || min_len > max_len {
            return Err(ctx.fail(format!(
                "gram lengths [{min_len}, {max_len}] are not a range of positive lengths"
            )));
        }
        let weights = ctx.floats("weights")?;
        let mut grams = BTreeMap::new();
        let mut i = 0;
        for (g, &start) in counts.iter().enumerate() {
            let end = counts.get(g + 1).map_or(pool.len() as i64, |&e| e);
            let len = g + 1;
            if start < 0
                || end < start
                || end as usize > pool.len()
                || (end - start) as usize % len != 0
            {
                return Err(ctx.attr_error(
                    "ngram_counts",
                    format!("{counts:?} does not split a pool of {}", pool.len()),
                ));
            }
            for gram in pool[start as usize..end as usize].chunks(len) {
                let at = indexes.get(i).copied().filter(|&v| v >= 0).ok_or_else(|| {
                    ctx.attr_error(
                        "ngram_indexes",
                        format!("has no valid entry for n-gram #{i}"),
                    )
                })?;
                let w = weights
                    .as_ref()
                    .map_or(Some(1.0), |w| w.get(i).map(|&v| v as f64));
                let w =
                    w.ok_or_else(|| ctx.attr_error("weights", "has fewer values than the pool"))?;
                grams.insert(gram.to_vec(), (at as usize, w));
                i += 1;
            }
        }
        let width = indexes.iter().map(|&v| v as usize + 1).max().unwrap_or(0);
        Ok(TfIdfPlan {
            mode,
            min_len,
            max_len,
            max_skip,
            grams,
            width,
        })
    }

    /// The output row of one input row.
    pub fn row(&self, items: &[i64]) -> Vec<f64> {
        let mut counts = vec![0usize; self.width];
        for len in self.min_len..=self.max_len {
            let skips = if len == 1 { 0 } else { self.max_skip };
            for step in 1..=skips + 1 {
                let span = step * (len - 1);
                for start in 0..items.len().saturating_sub(span) {
                    let gram: Vec<i64> = (0..len).map(|k| items[start + k * step]).collect();
                    if let Some(&(at, _)) = self.grams.get(&gram) {
                        counts[at] += 1;
                    }
                }
            }
        }
        let mut weight = vec![1.0; self.width];
        for &(at, w) in self.grams.values() {
            weight[at] = w;
        }
        counts
            .iter()
            .zip(&weight)
            .map(|(&c, &w)| match self.mode {
                Mode::Tf => c as f64,
                Mode::Idf => {
                    if c > 0 {
                        w
                    } else {
                        0.0
                    }
                }
                Mode::TfIdf => c as f64 * w,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;

    #[test]
    fn bigrams_with_skips_and_unigrams_counted_once() {
        let attrs = vec![
            ("mode", Attr::String("TFIDF".into())),
            ("min_gram_length", Attr::Int(1)),
            ("max_gram_length", Attr::Int(2)),
            ("max_skip_count", Attr::Int(1)),
            ("pool_int64s", Attr::Ints(vec![7, 7, 9, 5, 9])),
            ("ngram_counts", Attr::Ints(vec![0, 1])),
            ("ngram_indexes", Attr::Ints(vec![0, 1, 2])),
            ("weights", Attr::Floats(vec![1.0, 2.0, 0.5])),
        ];
        let plan = with("TfIdfVectorizer", 9, attrs, TfIdfPlan::decode).unwrap();
        // 7 twice; (7, 9) adjacent once and skipping one once; (5, 9) once.
        assert_eq!(plan.row(&[7, 9, 7, 5, 9]), vec![2.0, 4.0, 0.5]);
        let bad = vec![("mode", Attr::String("BM25".into()))];
        assert!(with("TfIdfVectorizer", 9, bad, TfIdfPlan::decode).is_err());
    }
}
