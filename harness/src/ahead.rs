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
//! one case's.

use std::collections::VecDeque;

use crate::case::Case;

/// At most this many cases run at once.
pub const AHEAD: usize = 128;

/// A case that may run beside others: an inline graph (not a model file)
/// of at most [`SMALL_NODES`] nodes whose inputs hold at most
/// [`SMALL_ELEMENTS`] elements.
pub fn small(c: &Case) -> bool {
    c.graph.file.is_none()
        && c.graph.nodes.len() <= SMALL_NODES
        && c.inputs.values().map(|t| t.len()).sum::<usize>() <= SMALL_ELEMENTS
}

pub const SMALL_NODES: usize = 16;
pub const SMALL_ELEMENTS: usize = 1 << 16;

/// Runs `run` on every item, each in its own thread, and hands the results
/// to `each` in the items' order. A further item starts while at most
/// `ahead` run, and only when it and every item running are `small`; so a
/// large item always runs alone. An error from `each` ends the loop (items
/// already started finish first); a panic in `run` is `each`'s caller's.
pub fn in_order<T, R, E>(
    items: &[T],
    ahead: usize,
    small: impl Fn(&T) -> bool,
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
        let mut next = items.iter();
        let mut waiting = next.next();
        loop {
            while let Some(item) = waiting {
                let joins = flight.is_empty()
                    || (flight.len() < ahead.max(1)
                        && small(item)
                        && flight.iter().all(|(_, _, s)| *s));
                if !joins {
                    break;
                }
                flight.push_back((item, s.spawn(move || run(item)), small(item)));
                waiting = next.next();
            }
            let Some((item, handle, _)) = flight.pop_front() else {
                return Ok(());
            };
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

    /// Runs `in_order` over 0..n (items below `large_from` small), each run
    /// sleeping a little; gives the order `each` saw and the most runs at once.
    fn trial(n: usize, ahead: usize, large: &[usize]) -> (Vec<usize>, usize) {
        let items: Vec<usize> = (0..n).collect();
        let running = AtomicUsize::new(0);
        let most = Mutex::new(0);
        let mut seen = vec![];
        let done: Result<(), ()> = in_order(
            &items,
            ahead,
            |i| !large.contains(i),
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
    fn an_error_ends_the_loop() {
        let items: Vec<usize> = (0..5).collect();
        let mut seen = vec![];
        let r = in_order(
            &items,
            3,
            |_| true,
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
