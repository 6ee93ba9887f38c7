//! Runs a dependency graph of build steps on up to `jobs` worker threads: a step starts once every step it
//! depends on has succeeded; when a step fails, everything that depends on it is skipped and the rest goes on.
//! Of the steps ready to run, the one heading the longest chain of estimated costs still to do goes first
//! (critical-path scheduling), so a long step, or a step many others wait behind, does not start last.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Condvar, Mutex};

use anyhow::Error;

/// The most steps one batch takes: one command line stays far below the kernel's argument limit.
const MAX_BATCH: usize = 256;

/// One step, the indices of the steps it needs, and what it is estimated to cost (any unit, the same for all).
pub struct Node<T> {
    pub step: T,
    pub deps: Vec<usize>,
    pub cost: u64,
    /// Steps marked so may run together in one call (one tool process for many files): a worker that takes one
    /// takes every other such step ready then.
    pub batch: bool,
}

#[derive(Debug)]
pub enum Status {
    /// The step did its work.
    Ran,
    /// Its output was up to date.
    Fresh,
    Failed(Error),
    /// Not run, because the step at this index failed.
    Skipped {
        failed: usize,
    },
}

struct State {
    /// Steps whose dependencies have all succeeded, by urgency: the longest chain of costs from the step to the
    /// end of the graph first, then the lowest index.
    ready: BTreeSet<(Reverse<u64>, usize)>,
    /// Each step's chain: its cost plus the longest chain of the steps that depend on it.
    chain: Vec<u64>,
    waiting_on: Vec<usize>,
    statuses: Vec<Option<Status>>,
    unfinished: usize,
}

/// Runs every step with `execute(index, step, worker)`, which returns whether it did work (`Ok(false)`: fresh).
/// `finished` is told of each step's outcome as it happens (skips included), on the worker that settled it.
/// Returns the statuses in step order.
#[cfg(test)]
pub fn run_graph<T: Sync>(
    nodes: &[Node<T>],
    jobs: usize,
    execute: impl Fn(usize, &T, usize) -> anyhow::Result<bool> + Sync,
    finished: impl Fn(usize, &Status) + Sync,
) -> Vec<Status> {
    run_graph_batched(
        nodes,
        jobs,
        |indices: &[usize], worker| {
            indices
                .iter()
                .map(|&index| execute(index, &nodes[index].step, worker))
                .collect()
        },
        finished,
    )
}

/// `run_graph`, where `execute(indices, worker)` runs one step, or several `batch` steps at once, and returns
/// each one's outcome in the same order.
pub fn run_graph_batched<T: Sync>(
    nodes: &[Node<T>],
    jobs: usize,
    execute: impl Fn(&[usize], usize) -> Vec<anyhow::Result<bool>> + Sync,
    finished: impl Fn(usize, &Status) + Sync,
) -> Vec<Status> {
    let mut dependents = vec![Vec::new(); nodes.len()];
    for (index, node) in nodes.iter().enumerate() {
        for &dep in &node.deps {
            assert!(
                dep < nodes.len() && dep != index,
                "step {index} depends on step {dep}, which does not exist"
            );
            dependents[dep].push(index);
        }
    }
    let chain = chains(nodes, &dependents);
    let waiting_on: Vec<usize> = nodes.iter().map(|n| n.deps.len()).collect();
    let state = Mutex::new(State {
        ready: (0..nodes.len())
            .filter(|&i| waiting_on[i] == 0)
            .map(|i| (Reverse(chain[i]), i))
            .collect(),
        chain,
        waiting_on,
        statuses: (0..nodes.len()).map(|_| None).collect(),
        unfinished: nodes.len(),
    });
    let changed = Condvar::new();

    std::thread::scope(|scope| {
        for worker in 0..jobs.clamp(1, nodes.len().max(1)) {
            let (state, changed, dependents) = (&state, &changed, &dependents);
            let (execute, finished) = (&execute, &finished);
            scope.spawn(move || loop {
                let indices = {
                    let mut guard = state.lock().unwrap();
                    loop {
                        if guard.unfinished == 0 {
                            return;
                        }
                        if let Some((_, index)) = guard.ready.pop_first() {
                            let mut indices = vec![index];
                            if nodes[index].batch {
                                let others: Vec<_> = guard
                                    .ready
                                    .iter()
                                    .filter(|(_, i)| nodes[*i].batch)
                                    .take(MAX_BATCH - 1)
                                    .copied()
                                    .collect();
                                for entry in others {
                                    guard.ready.remove(&entry);
                                    indices.push(entry.1);
                                }
                            }
                            break indices;
                        }
                        guard = changed.wait(guard).unwrap();
                    }
                };
                // A panicking step must still settle, or the other workers would wait for it forever.
                let outcome =
                    std::panic::catch_unwind(AssertUnwindSafe(|| execute(&indices, worker)));
                let mut outcomes: Vec<anyhow::Result<bool>> = match outcome {
                    Ok(outcomes) => outcomes,
                    Err(panic) => {
                        let message = panic_message(&*panic);
                        indices
                            .iter()
                            .map(|_| {
                                Err(anyhow::anyhow!(
                                    "internal error: the step panicked: {message}"
                                ))
                            })
                            .collect()
                    }
                };
                assert_eq!(outcomes.len(), indices.len(), "one outcome per step");
                let statuses: Vec<Status> = outcomes
                    .drain(..)
                    .map(|outcome| match outcome {
                        Ok(true) => Status::Ran,
                        Ok(false) => Status::Fresh,
                        Err(e) => Status::Failed(e),
                    })
                    .collect();
                for (&index, status) in indices.iter().zip(&statuses) {
                    finished(index, status);
                }
                let mut guard = state.lock().unwrap();
                for (index, status) in indices.into_iter().zip(statuses) {
                    settle(&mut guard, dependents, index, status, &finished);
                }
                changed.notify_all();
            });
        }
    });
    let state = state.into_inner().unwrap();
    assert!(
        state.ready.is_empty(),
        "every step settles: a dependency cycle would leave some waiting"
    );
    state
        .statuses
        .into_iter()
        .map(|s| s.expect("every step has settled"))
        .collect()
}

/// Each step's cost plus the longest chain of costs among the steps that depend on it, transitively. Computed
/// without assuming an order of the steps; a cycle (which `run_graph` reports) stops the walk.
fn chains<T>(nodes: &[Node<T>], dependents: &[Vec<usize>]) -> Vec<u64> {
    let mut chain: Vec<Option<u64>> = vec![None; nodes.len()];
    let mut on_stack = vec![false; nodes.len()];
    // Depth-first, iteratively: a deep graph must not overflow the stack.
    for root in 0..nodes.len() {
        let mut stack = vec![(root, false)];
        while let Some((index, expanded)) = stack.pop() {
            if chain[index].is_some() {
                continue;
            }
            if expanded {
                let longest = dependents[index]
                    .iter()
                    .map(|&d| chain[d].unwrap_or(0))
                    .max()
                    .unwrap_or(0);
                chain[index] = Some(nodes[index].cost + longest);
                on_stack[index] = false;
                continue;
            }
            if on_stack[index] {
                continue;
            }
            on_stack[index] = true;
            stack.push((index, true));
            for &dependent in &dependents[index] {
                if chain[dependent].is_none() && !on_stack[dependent] {
                    stack.push((dependent, false));
                }
            }
        }
    }
    chain.into_iter().map(|c| c.unwrap_or(0)).collect()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

fn settle(
    state: &mut State,
    dependents: &[Vec<usize>],
    index: usize,
    status: Status,
    finished: &impl Fn(usize, &Status),
) {
    let failed_at = match &status {
        Status::Failed(_) => Some(index),
        Status::Skipped { failed } => Some(*failed),
        Status::Ran | Status::Fresh => None,
    };
    state.statuses[index] = Some(status);
    state.unfinished -= 1;
    for &dependent in &dependents[index] {
        if state.statuses[dependent].is_some() {
            continue;
        }
        match failed_at {
            Some(failed) => {
                let skipped = Status::Skipped { failed };
                finished(dependent, &skipped);
                settle(state, dependents, dependent, skipped, finished);
            }
            None => {
                state.waiting_on[dependent] -= 1;
                if state.waiting_on[dependent] == 0 {
                    let urgency = Reverse(state.chain[dependent]);
                    state.ready.insert((urgency, dependent));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn node(step: &'static str, deps: &[usize]) -> Node<&'static str> {
        Node {
            step,
            deps: deps.to_vec(),
            cost: 1,
            batch: false,
        }
    }

    #[test]
    fn steps_run_after_their_dependencies_and_failures_skip_only_dependents() {
        // 0 ← 1 ← 3, 0 ← 2; 4 alone; 1 fails.
        let nodes = [
            node("pch", &[]),
            node("bad", &[0]),
            node("good", &[0]),
            node("link-bad", &[1, 2]),
            node("lib", &[]),
        ];
        let order = Mutex::new(Vec::new());
        let reported = AtomicUsize::new(0);
        let statuses = run_graph(
            &nodes,
            3,
            |_, step, _| {
                order.lock().unwrap().push(*step);
                match *step {
                    "bad" => anyhow::bail!("broken"),
                    "lib" => Ok(false),
                    _ => Ok(true),
                }
            },
            |_, _| {
                reported.fetch_add(1, Ordering::SeqCst);
            },
        );
        let order = order.into_inner().unwrap();
        assert!(matches!(statuses[0], Status::Ran));
        assert!(matches!(statuses[1], Status::Failed(_)));
        assert!(matches!(statuses[2], Status::Ran));
        assert!(matches!(statuses[3], Status::Skipped { failed: 1 }));
        assert!(matches!(statuses[4], Status::Fresh));
        assert!(!order.contains(&"link-bad"));
        let position = |s| order.iter().position(|o| *o == s).unwrap();
        assert!(position("pch") < position("bad") && position("pch") < position("good"));
        assert_eq!(reported.load(Ordering::SeqCst), nodes.len());
    }

    #[test]
    fn independent_steps_run_at_the_same_time() {
        let nodes: Vec<_> = (0..4).map(|_| node("sleep", &[])).collect();
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        run_graph(
            &nodes,
            2,
            |_, _, _| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(30));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(true)
            },
            |_, _| {},
        );
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_panicking_step_fails_instead_of_hanging_the_build() {
        let nodes = [node("boom", &[]), node("after", &[0]), node("other", &[])];
        let statuses = run_graph(
            &nodes,
            2,
            |_, step, _| {
                if *step == "boom" {
                    panic!("printing failed");
                }
                Ok(true)
            },
            |_, _| {},
        );
        assert!(
            matches!(&statuses[0], Status::Failed(e) if e.to_string().contains("printing failed"))
        );
        assert!(matches!(statuses[1], Status::Skipped { failed: 0 }));
        assert!(matches!(statuses[2], Status::Ran));
    }

    #[test]
    fn the_step_heading_the_longest_chain_starts_first() {
        // One worker: 0 is cheap and alone; 1 is cheap but 2 (long) waits for it; 3 is middling.
        let mut nodes = vec![
            node("alone", &[]),
            node("before-long", &[]),
            node("long", &[1]),
            node("middle", &[]),
        ];
        nodes[2].cost = 100;
        nodes[3].cost = 10;
        let order = Mutex::new(Vec::new());
        run_graph(
            &nodes,
            1,
            |_, step, _| {
                order.lock().unwrap().push(*step);
                Ok(true)
            },
            |_, _| {},
        );
        assert_eq!(
            order.into_inner().unwrap(),
            ["before-long", "long", "middle", "alone"]
        );
    }

    #[test]
    fn batch_steps_ready_together_run_in_one_call_after_the_longer_chains() {
        // One worker: the two compiles head longer chains than the strips, so both strips are ready together.
        let mut nodes = vec![
            node("compile-a", &[]),
            node("compile-b", &[]),
            node("strip-a", &[0]),
            node("strip-b", &[1]),
            node("other", &[]),
        ];
        nodes[0].cost = 10;
        nodes[1].cost = 10;
        nodes[2].batch = true;
        nodes[3].batch = true;
        let calls = Mutex::new(Vec::new());
        let statuses = run_graph_batched(
            &nodes,
            1,
            |indices, _| {
                calls
                    .lock()
                    .unwrap()
                    .push(indices.iter().map(|&i| nodes[i].step).collect::<Vec<_>>());
                indices
                    .iter()
                    .map(|&i| match nodes[i].step {
                        "strip-b" => Err(anyhow::anyhow!("bad object")),
                        _ => Ok(true),
                    })
                    .collect()
            },
            |_, _| {},
        );
        let calls = calls.into_inner().unwrap();
        assert!(calls.contains(&vec!["strip-a", "strip-b"]), "{calls:?}");
        assert_eq!(calls.len(), 4, "{calls:?}");
        assert!(matches!(statuses[2], Status::Ran));
        assert!(matches!(statuses[3], Status::Failed(_)));
    }

    #[test]
    fn an_empty_graph_runs_nothing() {
        let nodes: Vec<Node<()>> = Vec::new();
        assert!(run_graph(&nodes, 4, |_, _, _| Ok(true), |_, _| {}).is_empty());
    }
}
