//! Einsum-12 (<https://onnx.ai/onnx/operators/onnx__Einsum.html>): the
//! Einstein summation `equation` over its inputs, numpy's convention. Each
//! input has a term of letters (one per axis) and at most one `...` standing
//! for leading broadcast axes; a letter repeated within a term takes the
//! diagonal; letters absent from the output are summed over. With `->` the
//! output is given (explicit mode); without it (implicit mode) the output is
//! the ellipsis axes, then the letters used exactly once, in alphabetical
//! order. Opset history: 12 only (the op's first and current version).
//!
//! [`EinsumPlan::parse`] reads the equation once, against the input shapes:
//! every axis gets a label id (ellipsis axes first, right-aligned across the
//! inputs, then letters in order of appearance), sizes are checked (only
//! ellipsis axes broadcast), and the output's labels are settled. The
//! reference sums over the label space, candle composes from it, libtorch
//! gets [`EinsumPlan::equation`] (whitespace removed) for its native einsum.

use super::{OpCtx, OpResult};

/// A parsed equation, fitted to the input shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EinsumPlan {
    /// Per input, the label id of each axis.
    pub operands: Vec<Vec<usize>>,
    /// The output's label ids, in order.
    pub output: Vec<usize>,
    /// The size of each label id (broadcast ellipsis axes: the largest).
    pub sizes: Vec<usize>,
    /// The equation without whitespace.
    pub equation: String,
}

/// One term's axes: letters, with the ellipsis as `None`.
fn term(ctx: &OpCtx, s: &str) -> OpResult<Vec<Option<char>>> {
    let mut out = Vec::new();
    let mut rest = s;
    let mut ellipses = 0;
    while let Some(c) = rest.chars().next() {
        if let Some(r) = rest.strip_prefix("...") {
            out.push(None);
            ellipses += 1;
            rest = r;
        } else if c.is_ascii_alphabetic() {
            out.push(Some(c));
            rest = &rest[1..];
        } else {
            return Err(ctx.attr_error("equation", format!("term `{s}` has `{c}`")));
        }
    }
    if ellipses > 1 {
        return Err(ctx.attr_error("equation", format!("term `{s}` has two `...`")));
    }
    Ok(out)
}

impl EinsumPlan {
    /// Parses attribute `equation` for inputs of shapes `dims`.
    pub fn parse(ctx: &OpCtx, dims: &[Vec<usize>]) -> OpResult<EinsumPlan> {
        let equation: String = ctx
            .string("equation", "")?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let (lhs, rhs) = match equation.split_once("->") {
            Some((l, r)) => (l, Some(r)),
            None => (equation.as_str(), None),
        };
        let terms: Vec<Vec<Option<char>>> = lhs
            .split(',')
            .map(|t| term(ctx, t))
            .collect::<OpResult<_>>()?;
        if terms.len() != dims.len() {
            return Err(ctx.attr_error(
                "equation",
                format!(
                    "`{equation}` has {} terms for {} inputs",
                    terms.len(),
                    dims.len()
                ),
            ));
        }
        // The ellipsis covers the axes the letters leave over.
        let mut ell = Vec::with_capacity(dims.len());
        for (t, d) in terms.iter().zip(dims) {
            let letters = t.iter().filter(|a| a.is_some()).count();
            let has_ell = t.len() > letters;
            if d.len() < letters || (!has_ell && d.len() != letters) {
                return Err(ctx.attr_error(
                    "equation",
                    format!("`{equation}` does not fit an input of shape {d:?}"),
                ));
            }
            ell.push(d.len() - letters);
        }
        let ell_rank = ell.iter().copied().max().unwrap_or(0);
        let mut letters: Vec<char> = Vec::new();
        let mut sizes = vec![1; ell_rank];
        let mut operands = Vec::with_capacity(dims.len());
        for ((t, d), &e) in terms.iter().zip(dims).zip(&ell) {
            let mut labels = Vec::with_capacity(d.len());
            let mut axes = d.iter();
            for a in t {
                let ids: Vec<usize> = match a {
                    None => (ell_rank - e..ell_rank).collect(),
                    Some(c) => vec![match letters.iter().position(|l| l == c) {
                        Some(i) => ell_rank + i,
                        None => {
                            letters.push(*c);
                            sizes.push(0);
                            ell_rank + letters.len() - 1
                        }
                    }],
                };
                for id in ids {
                    let n = *axes.next().expect("ranks checked");
                    let s = &mut sizes[id];
                    let fits = *s == n
                        || (id >= ell_rank && *s == 0)
                        || (id < ell_rank && (n == 1 || *s == 1));
                    if !fits {
                        return Err(ctx.attr_error(
                            "equation",
                            format!("`{equation}`: an axis of size {n} meets one of size {s}"),
                        ));
                    }
                    if id >= ell_rank || n != 1 {
                        *s = n;
                    }
                    labels.push(id);
                }
            }
            operands.push(labels);
        }
        let output =
            match rhs {
                Some(r) => {
                    let mut out = Vec::new();
                    for a in term(ctx, r)? {
                        match a {
                            None => out.extend(0..ell_rank),
                            Some(c) => out.push(
                                ell_rank
                                    + letters.iter().position(|l| *l == c).ok_or_else(|| {
                                        ctx.attr_error(
                                            "equation",
                                            format!("output `{c}` is in no input"),
                                        )
                                    })?,
                            ),
                        }
                    }
                    out
                }
                None => {
                    let mut once: Vec<char> = letters
                        .iter()
                        .copied()
                        .filter(|c| terms.iter().flatten().filter(|a| **a == Some(*c)).count() == 1)
                        .collect();
                    once.sort_unstable();
                    (0..ell_rank)
                        .chain(once.iter().map(|c| {
                            ell_rank + letters.iter().position(|l| l == c).expect("a letter")
                        }))
                        .collect()
                }
            };
        let mut seen = vec![false; sizes.len()];
        for &o in &output {
            if std::mem::replace(&mut seen[o], true) {
                return Err(
                    ctx.attr_error("equation", format!("`{equation}` repeats an output label"))
                );
            }
        }
        Ok(EinsumPlan {
            operands,
            output,
            sizes,
            equation,
        })
    }

    /// Terms per output element (the summed labels' sizes multiplied) plus
    /// one rounding per product of the inputs: the K of its error bound.
    pub fn terms(&self) -> usize {
        let summed: usize = (0..self.sizes.len())
            .filter(|l| !self.output.contains(l))
            .map(|l| self.sizes[l])
            .product();
        summed + self.operands.len()
    }

    /// The output's shape.
    pub fn out_shape(&self) -> Vec<usize> {
        self.output.iter().map(|&l| self.sizes[l]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;

    fn parse(eq: &str, dims: &[Vec<usize>]) -> OpResult<EinsumPlan> {
        with(
            "Einsum",
            12,
            vec![("equation", Attr::String(eq.into()))],
            |c| EinsumPlan::parse(c, dims),
        )
    }

    #[test]
    fn explicit_implicit_and_diagonal() {
        let p = parse("ij, jk -> ik", &[vec![2, 3], vec![3, 4]]).unwrap();
        assert_eq!(
            (p.operands.clone(), p.output.clone()),
            (vec![vec![0, 1], vec![1, 2]], vec![0, 2])
        );
        assert_eq!(
            (p.out_shape(), p.equation.as_str()),
            (vec![2, 4], "ij,jk->ik")
        );
        // implicit: letters used once, alphabetically (b before a's order of appearance).
        let p = parse("ba,ac", &[vec![2, 3], vec![3, 4]]).unwrap();
        assert_eq!(p.out_shape(), vec![2, 4]);
        let p = parse("ii->i", &[vec![3, 3]]).unwrap();
        assert_eq!(
            (p.operands[0].clone(), p.out_shape()),
            (vec![0, 0], vec![3])
        );
        assert!(parse("ii->i", &[vec![3, 2]]).is_err());
    }

    #[test]
    fn ellipsis_broadcasts_right_aligned() {
        let p = parse("...ij,...jk->...ik", &[vec![5, 2, 3], vec![4, 1, 3, 2]]).unwrap();
        assert_eq!(p.operands[0], vec![1, 2, 3]);
        assert_eq!(p.out_shape(), vec![4, 5, 2, 2]);
        let p = parse("...ii", &[vec![2, 3, 3]]).unwrap();
        assert_eq!(p.out_shape(), vec![2]);
        assert!(parse("ij,jk", &[vec![2, 3]]).is_err());
        assert!(parse("ij->ii", &[vec![2, 2]]).is_err());
        assert!(parse("ij->k", &[vec![2, 2]]).is_err());
    }
}
