//! The stage graph (petgraph): order, cycles, and which stages a selection needs.
//!
//! Node `i` is stage `i` of the pipeline; an edge runs from a stage to each stage that
//! reads it, once however many roles read it, with those roles as its weight.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

use petgraph::Direction::{Incoming, Outgoing};
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, EdgeRef, IntoNeighbors, Reversed, VisitMap, Visitable};

use crate::pipeline::{Diagnostic, Pipeline};

/// The stages as nodes, each dependency as an edge from upstream to downstream.
#[derive(Debug, Default, Clone)]
pub struct StageGraph {
    graph: DiGraph<(), Vec<String>>,
}

impl StageGraph {
    pub fn new(pipeline: &Pipeline) -> StageGraph {
        let n = pipeline.stages.len();
        let mut graph = DiGraph::with_capacity(n, n);
        for _ in 0..n {
            graph.add_node(());
        }
        for (i, stage) in pipeline.stages.iter().enumerate() {
            let mut roles: BTreeMap<usize, Vec<String>> = BTreeMap::new();
            for dep in &stage.deps {
                for &u in &dep.stages {
                    roles.entry(u).or_default().push(dep.role.clone());
                }
            }
            for (u, roles) in roles {
                graph.add_edge(NodeIndex::new(u), NodeIndex::new(i), roles);
            }
        }
        StageGraph { graph }
    }

    /// Stage indices with every stage after its upstreams, ties broken by written
    /// order (a priority queue over the stages whose upstreams are all placed); or the
    /// stages of a cycle.
    pub fn order(&self) -> Result<Vec<usize>, Vec<usize>> {
        let n = self.graph.node_count();
        let mut waiting: Vec<usize> = self
            .graph
            .node_indices()
            .map(|i| self.graph.neighbors_directed(i, Incoming).count())
            .collect();
        let mut ready: BinaryHeap<Reverse<usize>> =
            (0..n).filter(|&i| waiting[i] == 0).map(Reverse).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse(i)) = ready.pop() {
            order.push(i);
            for d in self.graph.neighbors_directed(NodeIndex::new(i), Outgoing) {
                waiting[d.index()] -= 1;
                if waiting[d.index()] == 0 {
                    ready.push(Reverse(d.index()));
                }
            }
        }
        if order.len() == n {
            Ok(order)
        } else {
            Err(self.cycle())
        }
    }

    /// A cycle as a path that closes on itself, in reading order (`a` reads `b` reads …
    /// reads `a`): from the first strongly connected component of more than one stage
    /// (or a stage reading itself), the shortest way back to its first stage.
    fn cycle(&self) -> Vec<usize> {
        let component = tarjan_scc(&self.graph)
            .into_iter()
            .filter(|c| c.len() > 1 || self.graph.contains_edge(c[0], c[0]))
            .min_by_key(|c| c.iter().map(|i| i.index()).min())
            .expect("an unordered graph has a cycle");
        let members: BTreeSet<usize> = component.iter().map(|i| i.index()).collect();
        let start = *members.first().expect("a component has a stage");
        // Breadth first along "reads" (downstream to upstream) inside the component;
        // `read_by[u] = i`: `i` reads `u` on the way found to `u`.
        let mut read_by = vec![usize::MAX; self.graph.node_count()];
        read_by[start] = start;
        let mut queue = VecDeque::from([start]);
        while let Some(i) = queue.pop_front() {
            let mut upstream: Vec<usize> = self
                .graph
                .neighbors_directed(NodeIndex::new(i), Incoming)
                .map(|u| u.index())
                .filter(|u| members.contains(u))
                .collect();
            upstream.sort_unstable();
            for u in upstream {
                if u == start {
                    let mut path = vec![i];
                    while path[path.len() - 1] != start {
                        path.push(read_by[path[path.len() - 1]]);
                    }
                    path.reverse();
                    path.push(start);
                    return path;
                }
                if read_by[u] == usize::MAX {
                    read_by[u] = i;
                    queue.push_back(u);
                }
            }
        }
        unreachable!("a strongly connected component leads back to each of its stages")
    }

    /// `targets` and everything they read, transitively.
    pub fn with_upstream(&self, targets: &[usize]) -> BTreeSet<usize> {
        reach(Reversed(&self.graph), targets)
    }

    /// `targets` and everything that reads them, transitively.
    pub fn with_downstream(&self, targets: &[usize]) -> BTreeSet<usize> {
        reach(&self.graph, targets)
    }

    /// The stages `stage` reads, each with the roles it reads it under, in stage order.
    pub fn reads(&self, stage: usize) -> Vec<(usize, &[String])> {
        let mut reads: Vec<(usize, &[String])> = self
            .graph
            .edges_directed(NodeIndex::new(stage), Incoming)
            .map(|e| (e.source().index(), e.weight().as_slice()))
            .collect();
        reads.sort_unstable_by_key(|&(u, _)| u);
        reads
    }
}

/// Every stage reached from `targets` along `graph`'s edges, targets included: one
/// breadth-first walk from all of them at once, so that each stage is visited once
/// however many targets reach it (10,000 targets along a chain, for `--downstream`).
fn reach<G>(graph: G, targets: &[usize]) -> BTreeSet<usize>
where
    G: IntoNeighbors<NodeId = NodeIndex> + Visitable<NodeId = NodeIndex>,
{
    let mut bfs = Bfs {
        stack: VecDeque::new(),
        discovered: graph.visit_map(),
    };
    for &t in targets {
        if bfs.discovered.visit(NodeIndex::new(t)) {
            bfs.stack.push_back(NodeIndex::new(t));
        }
    }
    let mut seen = BTreeSet::new();
    while let Some(i) = bfs.next(graph) {
        seen.insert(i.index());
    }
    seen
}

/// The pipeline's stages in order, or the diagnostic of a cycle naming its stages and
/// pointing at the dependency that closes it.
pub fn order(pipeline: &Pipeline, graph: &StageGraph) -> Result<Vec<usize>, Diagnostic> {
    let cycle = match graph.order() {
        Ok(order) => return Ok(order),
        Err(cycle) => cycle,
    };
    let names = pipeline.names(&cycle);
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

#[cfg(test)]
mod tests {
    use contract::Registry;

    use crate::pipeline::Pipeline;

    /// A pipeline of `Command` stages, each reading the stages listed beside it.
    fn pipeline(stages: &[(&str, &[&str])]) -> Result<Pipeline, String> {
        let mut text = String::from("Pipeline(name: \"g\", stages: {\n");
        for (name, reads) in stages {
            let deps: Vec<String> = reads
                .iter()
                .enumerate()
                .map(|(r, u)| format!("\"r{r}\": \"{u}\""))
                .collect();
            text.push_str(&format!(
                "\"{name}\": Command(argv: [\"true\"], deps: {{{}}}),\n",
                deps.join(", ")
            ));
        }
        text.push_str("})\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.ron");
        std::fs::write(&path, text).unwrap();
        Pipeline::load(&path, &Registry::new(crate::kinds())).map_err(|e| e.to_string())
    }

    fn names(p: &Pipeline, indices: impl IntoIterator<Item = usize>) -> Vec<String> {
        indices
            .into_iter()
            .map(|i| p.stages[i].name.clone())
            .collect()
    }

    #[test]
    fn ties_keep_the_written_order() {
        // d reads a and c; b and c read a: after a, b before c as written, then d.
        let p = pipeline(&[("d", &["a", "c"]), ("a", &[]), ("b", &["a"]), ("c", &["a"])]).unwrap();
        assert_eq!(names(&p, p.order.clone()), ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_cycle_names_its_stages_and_not_those_below_it() {
        // e reads the cycle a -> b -> c -> a without being on it.
        let err = pipeline(&[("e", &["a"]), ("a", &["b"]), ("b", &["c"]), ("c", &["a"])])
            .err()
            .expect("a cycle");
        assert!(err.contains("dependency cycle: a -> b -> c -> a"), "{err}");
        let err = pipeline(&[("x", &["x"])]).err().expect("a cycle");
        assert!(err.contains("dependency cycle: x -> x"), "{err}");
    }

    #[test]
    fn selections_walk_the_graph_both_ways() {
        let p = pipeline(&[
            ("a", &[]),
            ("b", &["a"]),
            ("c", &["b"]),
            ("d", &["a"]),
            ("e", &[]),
        ])
        .unwrap();
        let at = |name: &str| p.index(name).unwrap();
        assert_eq!(
            names(&p, p.graph.with_upstream(&[at("c")])),
            ["a", "b", "c"]
        );
        assert_eq!(
            names(&p, p.graph.with_downstream(&[at("a")])),
            ["a", "b", "c", "d"]
        );
        assert_eq!(
            names(&p, p.graph.with_downstream(&[at("b"), at("e")])),
            ["b", "c", "e"]
        );
        let reads: Vec<(usize, Vec<String>)> = p
            .graph
            .reads(at("c"))
            .into_iter()
            .map(|(u, r)| (u, r.to_vec()))
            .collect();
        assert_eq!(reads, [(at("b"), vec!["r0".to_string()])]);
    }
}
