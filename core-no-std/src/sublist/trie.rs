//! The subscription trie: one node per subject prefix, wildcards on their own edges.
//!
//! Nodes live in one `Vec` (freed slots are reused) and literal edges in one hash map keyed by
//! `(parent, token)`. Nothing is a recursive structure, so no subject, however many tokens it
//! has, can make a walk, an insert or a drop recurse deeply; and a lookup costs one hash probe
//! per token plus one per level that holds a `*`.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hash::{Hash, Hasher};

use hashbrown::{Equivalent, HashMap};

use super::result::MatchResult;
use crate::subject::{SEPARATOR, is_full_wildcard, is_single_wildcard, tokens};

/// Index of a node in [`Trie::nodes`].
pub(super) type NodeId = usize;

/// The root node: the empty prefix. It never holds subscriptions (subjects are never empty).
pub(super) const ROOT: NodeId = 0;

/// How many entries a [`SubSet`] scans linearly before it builds a hash index.
const INDEX_AT: usize = 16;

/// The subscribers on one node (plain, or one queue group) with their reference counts, in a
/// `Vec` so results copy them with one contiguous pass; a hash index is added once the set is
/// large, so removing from a node with thousands of subscribers stays O(1).
#[derive(Debug)]
pub(super) struct SubSet<T> {
    pub(super) entries: Vec<(T, u32)>,
    index: Option<HashMap<T, usize>>,
}

impl<T> SubSet<T> {
    pub(super) const fn new() -> Self {
        SubSet {
            entries: Vec::new(),
            index: None,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn subscribers(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|(t, _)| t)
    }
}

impl<T: Clone + Eq + Hash> SubSet<T> {
    fn position(&self, sub: &T) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(sub).copied(),
            None => self.entries.iter().position(|(t, _)| t == sub),
        }
    }

    /// Adds one reference to `sub`; its new count, or `None` on overflow.
    pub(super) fn add(&mut self, sub: &T) -> Option<u32> {
        if let Some(i) = self.position(sub) {
            let (_, refs) = self.entries.get_mut(i)?;
            *refs = refs.checked_add(1)?;
            return Some(*refs);
        }
        let slot = self.entries.len();
        self.entries.push((sub.clone(), 1));
        match &mut self.index {
            Some(index) => {
                index.insert(sub.clone(), slot);
            }
            None if self.entries.len() > INDEX_AT => {
                let index = self
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(i, (t, _))| (t.clone(), i))
                    .collect();
                self.index = Some(index);
            }
            None => {}
        }
        Some(1)
    }

    /// Drops one reference to `sub`; the count left (the entry is gone at 0), or `None` if
    /// `sub` is not here.
    pub(super) fn release(&mut self, sub: &T) -> Option<u32> {
        let i = self.position(sub)?;
        let (_, refs) = self.entries.get_mut(i)?;
        *refs = refs.saturating_sub(1);
        if *refs > 0 {
            return Some(*refs);
        }
        self.entries.swap_remove(i);
        if let Some(index) = &mut self.index {
            index.remove(sub);
            // The former last entry now sits at `i`.
            if let Some((moved, _)) = self.entries.get(i) {
                index.insert(moved.clone(), i);
            }
            if self.entries.is_empty() {
                self.index = None;
            }
        }
        Some(0)
    }
}

/// A queue group on one node.
#[derive(Debug)]
pub(super) struct Group<T> {
    /// Shared with every result that lists this group, so results never copy names.
    pub(super) name: Arc<[u8]>,
    pub(super) members: SubSet<T>,
}

/// One subject prefix.
#[derive(Debug)]
pub(super) struct Node<T> {
    /// The full subject, kept while the node holds subscriptions (for iteration); intermediate
    /// nodes keep none, so a long subject costs O(length) memory, not O(length^2).
    pub(super) subject: Option<Box<[u8]>>,
    pub(super) plain: SubSet<T>,
    pub(super) groups: Vec<Group<T>>,
    /// Child through a `*` token.
    pwc: Option<NodeId>,
    /// Child through a `>` token.
    fwc: Option<NodeId>,
    /// Children through literal tokens (their edges are in [`Trie::edges`]).
    literal_children: usize,
}

impl<T> Node<T> {
    const fn new() -> Self {
        Node {
            subject: None,
            plain: SubSet::new(),
            groups: Vec::new(),
            pwc: None,
            fwc: None,
            literal_children: 0,
        }
    }

    pub(super) fn has_subscriptions(&self) -> bool {
        !self.plain.is_empty() || !self.groups.is_empty()
    }

    fn is_prunable(&self) -> bool {
        !self.has_subscriptions()
            && self.pwc.is_none()
            && self.fwc.is_none()
            && self.literal_children == 0
    }

    /// Adds everything this node holds to a result.
    fn add_to(&self, result: &mut MatchResult<T>)
    where
        T: Clone,
    {
        result.extend(None, self.plain.subscribers());
        for g in &self.groups {
            result.extend(Some(&g.name), g.members.subscribers());
        }
    }
}

/// A literal edge, owned (stored in the map).
#[derive(Debug, PartialEq, Eq)]
struct EdgeKey {
    parent: NodeId,
    token: Box<[u8]>,
}

/// A literal edge, borrowed (for lookups without allocating). Hashes exactly like [`EdgeKey`].
struct EdgeRef<'a> {
    parent: NodeId,
    token: &'a [u8],
}

impl Hash for EdgeKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parent.hash(state);
        self.token.hash(state);
    }
}

impl Hash for EdgeRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parent.hash(state);
        self.token.hash(state);
    }
}

impl Equivalent<EdgeKey> for EdgeRef<'_> {
    fn equivalent(&self, key: &EdgeKey) -> bool {
        self.parent == key.parent && *self.token == *key.token
    }
}

/// One step of a path from the root: `parent --token--> node`.
pub(super) struct Step<'a> {
    parent: NodeId,
    node: NodeId,
    token: &'a [u8],
}

impl Step<'_> {
    /// The node this step reaches.
    pub(super) fn node_id(&self) -> NodeId {
        self.node
    }
}

/// The trie. See the module docs.
#[derive(Debug)]
pub(super) struct Trie<T> {
    pub(super) nodes: Vec<Node<T>>,
    free: Vec<NodeId>,
    edges: HashMap<EdgeKey, NodeId>,
}

impl<T> Trie<T> {
    pub(super) fn new() -> Self {
        Trie {
            nodes: alloc::vec![Node::new()],
            free: Vec::new(),
            edges: HashMap::new(),
        }
    }

    pub(super) fn node(&self, id: NodeId) -> Option<&Node<T>> {
        self.nodes.get(id)
    }

    pub(super) fn node_mut(&mut self, id: NodeId) -> Option<&mut Node<T>> {
        self.nodes.get_mut(id)
    }

    fn alloc(&mut self) -> NodeId {
        if let Some(id) = self.free.pop() {
            return id;
        }
        let id = self.nodes.len();
        self.nodes.push(Node::new());
        id
    }

    /// The child of `parent` through `token`, if any.
    fn child(&self, parent: NodeId, token: &[u8]) -> Option<NodeId> {
        let node = self.node(parent)?;
        if is_full_wildcard(token) {
            node.fwc
        } else if is_single_wildcard(token) {
            node.pwc
        } else {
            self.edges.get(&EdgeRef { parent, token }).copied()
        }
    }

    /// The child of `parent` through `token`, created if missing.
    fn child_or_insert(&mut self, parent: NodeId, token: &[u8]) -> Option<NodeId> {
        if let Some(id) = self.child(parent, token) {
            return Some(id);
        }
        let id = self.alloc();
        let node = self.nodes.get_mut(parent)?;
        if is_full_wildcard(token) {
            node.fwc = Some(id);
        } else if is_single_wildcard(token) {
            node.pwc = Some(id);
        } else {
            node.literal_children = node.literal_children.saturating_add(1);
            let key = EdgeKey {
                parent,
                token: token.into(),
            };
            self.edges.insert(key, id);
        }
        Some(id)
    }

    /// The node for a (validated) subscription subject, creating the path as needed.
    pub(super) fn insert_path(&mut self, subject: &[u8]) -> Option<NodeId> {
        let mut at = ROOT;
        for token in tokens(subject) {
            at = self.child_or_insert(at, token)?;
        }
        Some(at)
    }

    /// The path to an existing subject's node, root first; `None` if some prefix is missing.
    pub(super) fn find_path<'a>(&self, subject: &'a [u8]) -> Option<Vec<Step<'a>>> {
        let mut path = Vec::new();
        let mut at = ROOT;
        for token in tokens(subject) {
            let node = self.child(at, token)?;
            path.push(Step {
                parent: at,
                node,
                token,
            });
            at = node;
        }
        Some(path)
    }

    /// Frees the now-empty nodes at the end of `path`, leaf first, and unlinks them.
    pub(super) fn prune(&mut self, path: &[Step<'_>]) {
        for step in path.iter().rev() {
            match self.nodes.get(step.node) {
                Some(node) if node.is_prunable() => {}
                // A node that stays keeps all its ancestors.
                _ => return,
            }
            if let Some(slot) = self.nodes.get_mut(step.node) {
                *slot = Node::new();
            }
            self.free.push(step.node);
            let token = step.token;
            if let Some(parent) = self.nodes.get_mut(step.parent) {
                if is_full_wildcard(token) {
                    parent.fwc = None;
                } else if is_single_wildcard(token) {
                    parent.pwc = None;
                } else {
                    parent.literal_children = parent.literal_children.saturating_sub(1);
                    let key = EdgeRef {
                        parent: step.parent,
                        token,
                    };
                    self.edges.remove(&key);
                }
            }
        }
    }

    /// The number of live nodes (root included); for tests of pruning.
    #[cfg(test)]
    pub(super) fn live_nodes(&self) -> usize {
        self.nodes.len().saturating_sub(self.free.len())
    }

    /// Adds every subscription matching `subject` to `result`. `subject` must be non-empty with
    /// no empty token (the caller checks). Iterative: each `*` met on the way is a branch pushed
    /// on a small stack, so the walk never recurses.
    pub(super) fn collect(&self, subject: &[u8], result: &mut MatchResult<T>)
    where
        T: Clone,
    {
        // (node, offset of the token to consume next). Few lookups branch more than a handful
        // of times; deeper branching spills to the heap.
        let mut inline: heapless::Vec<(NodeId, usize), 16> = heapless::Vec::new();
        let mut spill: Vec<(NodeId, usize)> = Vec::new();
        let mut next = Some((ROOT, 0));
        while let Some((mut at, mut offset)) = next {
            while let Some(rest) = subject.get(offset..) {
                let (token, last, after) = match rest.iter().position(|&b| b == SEPARATOR) {
                    Some(dot) => {
                        let after = offset.saturating_add(dot).saturating_add(1);
                        (rest.get(..dot).unwrap_or(rest), false, after)
                    }
                    None => (rest, true, subject.len()),
                };
                let Some(node) = self.node(at) else {
                    break;
                };
                if let Some(full) = node.fwc.and_then(|id| self.node(id)) {
                    full.add_to(result);
                }
                if let Some(single) = node.pwc {
                    if last {
                        if let Some(n) = self.node(single) {
                            n.add_to(result);
                        }
                    } else if let Err(branch) = inline.push((single, after)) {
                        spill.push(branch);
                    }
                }
                match self.edges.get(&EdgeRef { parent: at, token }) {
                    Some(&child) if last => {
                        if let Some(n) = self.node(child) {
                            n.add_to(result);
                        }
                        break;
                    }
                    Some(&child) => {
                        at = child;
                        offset = after;
                    }
                    None => break,
                }
            }
            next = spill.pop().or_else(|| inline.pop());
        }
    }
}
