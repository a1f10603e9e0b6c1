//! A cache of decisions per subject, bounded in bytes, O(1) amortised per operation.
//!
//! nats-server keeps up to 128 publish decisions per client and prunes 32 at random when full.
//! Here two generations share a byte budget: new entries go into the young map; when it holds
//! half the budget, the old map is dropped and the young one becomes old. A hit in the old map
//! moves the entry back into the young one, so subjects in use survive every turnover and a
//! stream of one-off subjects (inboxes) only ever costs the budget. Each entry is counted as
//! its key plus [`ENTRY_OVERHEAD`].

use hashbrown::HashMap;

/// Bytes counted per entry beside its key: the boxed key's pointer and length, the value, and
/// the hash table's control byte and slack.
pub const ENTRY_OVERHEAD: usize = 32;

/// Subject (or any byte string) -> `V`, at most `budget` bytes.
#[derive(Debug)]
pub struct BoundedCache<V> {
    young: HashMap<Box<[u8]>, V>,
    old: HashMap<Box<[u8]>, V>,
    young_bytes: usize,
    old_bytes: usize,
    budget: usize,
}

impl<V: Copy> BoundedCache<V> {
    /// An empty cache of at most `budget` bytes (0 caches nothing).
    pub fn new(budget: usize) -> Self {
        BoundedCache {
            young: HashMap::new(),
            old: HashMap::new(),
            young_bytes: 0,
            old_bytes: 0,
            budget,
        }
    }

    /// The cached value for `key`.
    pub fn get(&mut self, key: &[u8]) -> Option<V> {
        if let Some(v) = self.young.get(key) {
            return Some(*v);
        }
        let (k, v) = self.old.remove_entry(key)?;
        self.old_bytes -= cost(&k);
        self.put_owned(k, v);
        Some(v)
    }

    /// Remembers `value` for `key` (an entry larger than half the budget is not kept).
    pub fn put(&mut self, key: &[u8], value: V) {
        if cost(key) > self.budget / 2 {
            return;
        }
        self.put_owned(key.into(), value);
    }

    fn put_owned(&mut self, key: Box<[u8]>, value: V) {
        let c = cost(&key);
        if c > self.budget / 2 {
            return;
        }
        if self.young_bytes + c > self.budget / 2 {
            self.old = std::mem::take(&mut self.young);
            self.old_bytes = self.young_bytes;
            self.young_bytes = 0;
        }
        if self.young.insert(key, value).is_none() {
            self.young_bytes += c;
        }
    }

    /// Forgets everything (the rules changed).
    pub fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
        self.young_bytes = 0;
        self.old_bytes = 0;
    }

    /// Bytes held, as counted against the budget.
    pub fn bytes(&self) -> usize {
        self.young_bytes + self.old_bytes
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn cost(key: &[u8]) -> usize {
    key.len() + ENTRY_OVERHEAD
}
