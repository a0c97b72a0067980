//! The stage graph: ordering, waves of concurrent stages, ancestry and cycle detection (petgraph).

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};

/// Stages by index, with an edge from each dependency to its dependent.
#[derive(Clone, Debug)]
pub struct Dag {
    graph: DiGraph<usize, ()>,
}

impl Dag {
    /// `needs[i]` lists the indices stage `i` depends on.
    pub fn new(needs: &[Vec<usize>]) -> Self {
        let mut graph = DiGraph::with_capacity(needs.len(), needs.iter().map(Vec::len).sum());
        for i in 0..needs.len() {
            graph.add_node(i);
        }
        for (i, deps) in needs.iter().enumerate() {
            for &dep in deps {
                graph.add_edge(NodeIndex::new(dep), NodeIndex::new(i), ());
            }
        }
        Dag { graph }
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Every cycle, as the stage indices on it (each sorted), in a stable order.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let mut cycles: Vec<Vec<usize>> = tarjan_scc(&self.graph)
            .into_iter()
            .filter(|scc| scc.len() > 1 || self.graph.contains_edge(scc[0], scc[0]))
            .map(|scc| {
                let mut v: Vec<usize> = scc.into_iter().map(NodeIndex::index).collect();
                v.sort_unstable();
                v
            })
            .collect();
        cycles.sort();
        cycles
    }

    /// The stages that stage `i` directly depends on.
    pub fn dependencies(&self, i: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(i), petgraph::Direction::Incoming)
            .map(NodeIndex::index)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The stages that directly depend on stage `i`.
    pub fn dependents(&self, i: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(i), petgraph::Direction::Outgoing)
            .map(NodeIndex::index)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Whether `ancestor` must finish before `i` starts (transitively).
    pub fn is_ancestor(&self, ancestor: usize, i: usize) -> bool {
        if ancestor == i {
            return false;
        }
        let reversed = Reversed(&self.graph);
        let mut dfs = Dfs::new(reversed, NodeIndex::new(i));
        while let Some(n) = dfs.next(reversed) {
            if n.index() == ancestor {
                return true;
            }
        }
        false
    }

    /// Stages grouped by depth: wave 0 has no dependencies, wave k depends only on earlier waves.
    /// Stages within a wave have no path between them. `None` if there is a cycle.
    pub fn waves(&self) -> Option<Vec<Vec<usize>>> {
        let order = toposort(&self.graph, None).ok()?;
        let mut depth = vec![0usize; self.len()];
        for n in &order {
            for dep in self.dependencies(n.index()) {
                depth[n.index()] = depth[n.index()].max(depth[dep] + 1);
            }
        }
        let max = depth.iter().copied().max().map_or(0, |m| m + 1);
        let mut waves = vec![Vec::new(); max];
        for (i, d) in depth.iter().enumerate() {
            waves[*d].push(i);
        }
        Some(waves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_ancestry_and_cycles() {
        // 0 → 1 → 3, 0 → 2, 4 alone
        let dag = Dag::new(&[vec![], vec![0], vec![0], vec![1], vec![]]);
        assert_eq!(dag.waves().unwrap(), vec![vec![0, 4], vec![1, 2], vec![3]]);
        assert!(dag.is_ancestor(0, 3));
        assert!(!dag.is_ancestor(2, 3));
        assert!(!dag.is_ancestor(3, 0));
        assert!(dag.cycles().is_empty());
        assert_eq!(dag.dependents(0), vec![1, 2]);

        let cyclic = Dag::new(&[vec![2], vec![0], vec![1], vec![3]]);
        assert_eq!(cyclic.cycles(), vec![vec![0, 1, 2], vec![3]]);
        assert!(cyclic.waves().is_none());
    }
}
