//! Small cases run ahead of the one being reported. A run of many small
//! cases (an op sweep: `cases/resize.toml` is 292 one-node variants) is
//! bound by round trips, not by work: run one at a time, every case waits
//! for its slowest lane (libtorch's worker alone takes ~0.4 s to load), and
//! meanwhile the other lanes' workers and the second core idle. So while a
//! case is reported, the small cases after it already run: their lanes
//! queue for the lane workers (`crate::isolate`'s pool lends each worker to
//! one job at a time) and the parent judges whichever finishes. They are
//! reported in order, each exactly as if it had run alone.
//!
//! A large case (a model file, or a graph with many nodes or large inputs)
//! runs alone: its values, not round trips, are its cost, and memory stays
//! one case's. Small cases run ahead within a budget of input elements
//! ([`BUDGET`]), which bounds the values they hold while they wait to be
//! reported; within it, a whole sweep runs ahead while libtorch loads
//! (`cases/resize.toml`'s 292 variants hold 28,952 input elements; with
//! at most 128 cases ahead, ORT's worker and the parent ran out of work
//! 350 ms into the run and waited 100 ms for libtorch's worker).

use std::collections::VecDeque;

use crate::case::Case;

/// At most this many cases run at once: enough for a sweep the size of
/// `cases/resize.toml` to run ahead whole, and few enough that their
/// threads (a case holds two while it waits for a lane's worker) stay
/// within the hundreds, as a container's limit on processes may demand.
pub const AHEAD: usize = 320;

/// At most this many input elements among the cases running at once (the
/// first always runs, whatever its size).
pub const BUDGET: usize = 1 << 20;

/// What a case costs to run beside others: `None` for a large case, which
/// runs alone; else its inputs' elements. A small case is an inline graph
/// (not a model file) of at most [`SMALL_NODES`] nodes whose inputs hold at
/// most [`SMALL_ELEMENTS`] elements.
pub fn cost(c: &Case) -> Option<usize> {
    let elements = c.inputs.values().map(|t| t.len()).sum::<usize>();
    let small =
        c.graph.file.is_none() && c.graph.nodes.len() <= SMALL_NODES && elements <= SMALL_ELEMENTS;
    small.then_some(elements)
}

pub const SMALL_NODES: usize = 16;
pub const SMALL_ELEMENTS: usize = 1 << 16;

/// Runs `run` on every item, each in its own thread, and hands the results
/// to `each` in the items' order. A further item starts while at most
/// `ahead` run, and only when it and every item running are small (`cost`
/// is `Some`) and their costs stay within `budget`; so a large item always
/// runs alone. An error from `each` ends the loop (items already started
/// finish first); a panic in `run` is `each`'s caller's.
pub fn in_order<T, R, E>(
    items: &[T],
    ahead: usize,
    budget: usize,
    cost: impl Fn(&T) -> Option<usize>,
    run: impl Fn(&T) -> R + Sync,
    mut each: impl FnMut(&T, R) -> Result<(), E>,
) -> Result<(), E>
where
    T: Sync,
    R: Send,
{
    std::thread::scope(|s| {
        let run = &run;
        let mut flight = VecDeque::new();
        // The summed cost of the items in flight (all small while it counts).
        let mut spent = 0usize;
        let mut next = items.iter();
        let mut waiting = next.next();
        loop {
            while let Some(item) = waiting {
                let c = cost(item);
                let joins = flight.is_empty()
                    || (flight.len() < ahead.max(1)
                        && c.is_some_and(|c| spent.saturating_add(c) <= budget)
                        && flight
                            .iter()
                            .all(|(_, _, c): &(_, _, Option<usize>)| c.is_some()));
                if !joins {
                    break;
                }
                spent = spent.saturating_add(c.unwrap_or(0));
                flight.push_back((item, s.spawn(move || run(item)), c));
                waiting = next.next();
            }
            let Some((item, handle, c)) = flight.pop_front() else {
                return Ok(());
            };
            spent -= c.unwrap_or(0);
            let result = handle
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            each(item, result)?;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    /// Runs `in_order` over 0..n (the items in `large` large, the others
    /// costing 1), each run sleeping a little; gives the order `each` saw
    /// and the most runs at once.
    fn trial(n: usize, ahead: usize, large: &[usize]) -> (Vec<usize>, usize) {
        budget_trial(n, ahead, usize::MAX, large)
    }

    fn budget_trial(n: usize, ahead: usize, budget: usize, large: &[usize]) -> (Vec<usize>, usize) {
        let items: Vec<usize> = (0..n).collect();
        let running = AtomicUsize::new(0);
        let most = Mutex::new(0);
        let mut seen = vec![];
        let done: Result<(), ()> = in_order(
            &items,
            ahead,
            budget,
            |i| (!large.contains(i)).then_some(1),
            |&i| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                {
                    let mut m = most.lock().unwrap();
                    *m = (*m).max(now);
                }
                // Later items finish first, so the order is the loop's doing.
                std::thread::sleep(Duration::from_millis(2 * (n - i) as u64));
                if large.contains(&i) {
                    assert_eq!(running.load(Ordering::SeqCst), 1, "item {i} is large");
                }
                running.fetch_sub(1, Ordering::SeqCst);
                i * 10
            },
            |&i, r| {
                assert_eq!(r, i * 10);
                seen.push(i);
                Ok(())
            },
        );
        done.unwrap();
        let most = *most.lock().unwrap();
        (seen, most)
    }

    #[test]
    fn results_come_in_order_with_small_items_running_ahead() {
        let (seen, most) = trial(12, 4, &[]);
        assert_eq!(seen, (0..12).collect::<Vec<_>>());
        assert!(most > 1 && most <= 4, "at most 4 at once, saw {most}");
    }

    #[test]
    fn a_large_item_runs_alone_and_one_ahead_is_sequential() {
        let (seen, _) = trial(10, 8, &[0, 4, 9]);
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        let (seen, most) = trial(6, 1, &[]);
        assert_eq!(seen, (0..6).collect::<Vec<_>>());
        assert_eq!(most, 1);
    }

    #[test]
    fn the_budget_bounds_what_runs_at_once() {
        let (seen, most) = budget_trial(12, 8, 3, &[]);
        assert_eq!(seen, (0..12).collect::<Vec<_>>());
        assert!(most > 1 && most <= 3, "a budget of 3 items, saw {most}");
        // An item over the budget still runs, alone.
        let (seen, most) = budget_trial(4, 8, 0, &[]);
        assert_eq!(seen, (0..4).collect::<Vec<_>>());
        assert_eq!(most, 1);
    }

    #[test]
    fn an_error_ends_the_loop() {
        let items: Vec<usize> = (0..5).collect();
        let mut seen = vec![];
        let r = in_order(
            &items,
            3,
            usize::MAX,
            |_| Some(1),
            |&i| i,
            |&i, _| {
                seen.push(i);
                if i == 2 {
                    Err("stop")
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(r, Err("stop"));
        assert_eq!(seen, vec![0, 1, 2]);
    }
}
