//! The stage graph: order, cycles, and which stages a selection needs.

use std::collections::{BTreeSet, VecDeque};

use crate::pipeline::{Diagnostic, Pipeline};

/// Stage indices with every stage after its upstreams, ties broken by written order;
/// or the cycle, as a path that closes on itself.
pub fn order(pipeline: &Pipeline) -> Result<Vec<usize>, Diagnostic> {
    let n = pipeline.stages.len();
    let upstream: Vec<Vec<usize>> = (0..n).map(|i| pipeline.upstream(i)).collect();
    let mut downstream = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = upstream.iter().map(Vec::len).collect();
    for (i, ups) in upstream.iter().enumerate() {
        for &u in ups {
            downstream[u].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &downstream[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.insert(d);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    let cycle = find_cycle(
        &upstream,
        (0..n).find(|&i| waiting[i] > 0).expect("some stage waits"),
    );
    let names: Vec<&str> = cycle
        .iter()
        .map(|&i| pipeline.stages[i].name.as_str())
        .collect();
    let (first, second) = (cycle[0], cycle[1]);
    let span = pipeline.stages[first]
        .deps
        .iter()
        .find(|d| d.stages.contains(&second))
        .map(|d| d.span);
    Err(
        Diagnostic::new(format!("dependency cycle: {}", names.join(" -> ")), span)
            .in_stage(&pipeline.stages[first].name)
            .help("a stage cannot read its own output, directly or through other stages"),
    )
}

/// Follows upstream edges from a stage on a cycle until a stage repeats; returns the
/// loop in reading order (`a` reads `b` reads … reads `a`).
fn find_cycle(upstream: &[Vec<usize>], start: usize) -> Vec<usize> {
    // Walk while staying among stages that are themselves blocked: from a stage left
    // unordered, some upstream is also unordered, so the walk must loop.
    let blocked = blocked_set(upstream);
    let mut path = vec![start];
    loop {
        let last = *path.last().expect("path starts non-empty");
        let next = *upstream[last]
            .iter()
            .find(|u| blocked.contains(u))
            .expect("a blocked stage has a blocked upstream");
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut cycle = path[pos..].to_vec();
            cycle.push(next);
            return cycle;
        }
        path.push(next);
    }
}

/// Stages that can never be ordered: on a cycle, or downstream of one.
fn blocked_set(upstream: &[Vec<usize>]) -> BTreeSet<usize> {
    let n = upstream.len();
    let mut done = vec![false; n];
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..n {
            if !done[i] && upstream[i].iter().all(|&u| done[u]) {
                done[i] = true;
                changed = true;
            }
        }
    }
    (0..n).filter(|&i| !done[i]).collect()
}

/// `targets` and everything they read, transitively.
pub fn with_upstream(pipeline: &Pipeline, targets: &[usize]) -> BTreeSet<usize> {
    closure(targets, |i| pipeline.upstream(i))
}

/// `targets` and everything that reads them, transitively.
pub fn with_downstream(pipeline: &Pipeline, targets: &[usize]) -> BTreeSet<usize> {
    closure(targets, |i| {
        (0..pipeline.stages.len())
            .filter(|&d| pipeline.upstream(d).contains(&i))
            .collect()
    })
}

fn closure(start: &[usize], next: impl Fn(usize) -> Vec<usize>) -> BTreeSet<usize> {
    let mut seen: BTreeSet<usize> = start.iter().copied().collect();
    let mut queue: VecDeque<usize> = start.iter().copied().collect();
    while let Some(i) = queue.pop_front() {
        for j in next(i) {
            if seen.insert(j) {
                queue.push_back(j);
            }
        }
    }
    seen
}
