//! One timer queue for many owners: each key has at most one deadline;
//! re-arming replaces it, cancelling forgets it, both in O(log n) without
//! scanning (a stale queue entry is skipped when it comes due).
//!
//! Generic over the instant type, so the driver uses the runtime's clock
//! and tests use plain numbers.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Deadlines by key.
#[derive(Debug)]
pub struct TimerQueue<K, T> {
    due: BTreeMap<(T, u64), K>,
    armed: HashMap<K, u64>,
    seq: u64,
}

impl<K, T> Default for TimerQueue<K, T> {
    fn default() -> Self {
        Self {
            due: BTreeMap::new(),
            armed: HashMap::new(),
            seq: 0,
        }
    }
}

impl<K: Clone + Eq + Hash, T: Ord + Copy> TimerQueue<K, T> {
    /// Arms (or re-arms) `key` for `at`.
    pub fn arm(&mut self, key: K, at: T) {
        self.seq += 1;
        self.due.insert((at, self.seq), key.clone());
        self.armed.insert(key, self.seq);
    }

    /// Forgets `key`'s deadline, if any.
    pub fn cancel(&mut self, key: &K) {
        self.armed.remove(key);
    }

    /// Whether `key` is armed.
    pub fn is_armed(&self, key: &K) -> bool {
        self.armed.contains_key(key)
    }

    /// The earliest deadline in the queue (possibly a stale one, which
    /// [`TimerQueue::pop_due`] then skips).
    pub fn next_deadline(&self) -> Option<T> {
        self.due.keys().next().map(|(at, _)| *at)
    }

    /// The next key due at `now`, disarmed; `None` when nothing is due.
    pub fn pop_due(&mut self, now: T) -> Option<K> {
        while let Some(entry) = self.due.first_entry() {
            if entry.key().0 > now {
                return None;
            }
            let ((_, seq), key) = entry.remove_entry();
            // A re-armed timer leaves its old entry behind; only the latest counts.
            if self.armed.get(&key) == Some(&seq) {
                self.armed.remove(&key);
                return Some(key);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_due_in_order_and_rearming_replaces_the_deadline() {
        let mut q: TimerQueue<&str, u64> = TimerQueue::default();
        q.arm("a", 10);
        q.arm("b", 5);
        q.arm("a", 20);
        assert_eq!(q.next_deadline(), Some(5));
        assert_eq!(q.pop_due(4), None);
        assert_eq!(q.pop_due(15), Some("b"));
        assert_eq!(q.pop_due(15), None, "a's old deadline is stale");
        assert!(q.is_armed(&"a"));
        assert_eq!(q.pop_due(20), Some("a"));
        assert!(!q.is_armed(&"a"));
    }

    #[test]
    fn a_cancelled_key_never_comes_due() {
        let mut q: TimerQueue<u8, u64> = TimerQueue::default();
        q.arm(1, 1);
        q.cancel(&1);
        assert_eq!(q.pop_due(100), None);
    }
}
