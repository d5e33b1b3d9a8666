//! A timer queue for timers whose duration is the same for every entry
//! (Timer J over UDP: always 64·T1). Armed in order of time, they also
//! come due in that order, so a ring buffer replaces the ordered map and
//! the hash index of [`super::TimerQueue`]: arming and popping are O(1)
//! and each entry holds its key once.
//!
//! There is no cancel: the owner stores a generation with the key and
//! ignores an entry whose generation is no longer live (found by
//! benches/register_load.sh: the ordered map plus index held each UDP
//! server transaction's key twice for its 32 s, and grew with rehashes).
//!
//! Generic over the instant type, so the driver uses the runtime's clock
//! and tests use plain numbers.

use std::collections::VecDeque;

/// Deadlines of one constant duration, in arming order.
#[derive(Debug)]
pub struct FifoTimers<K, T> {
    due: VecDeque<(T, K)>,
}

impl<K, T> Default for FifoTimers<K, T> {
    fn default() -> Self {
        Self {
            due: VecDeque::new(),
        }
    }
}

impl<K, T: Ord + Copy> FifoTimers<K, T> {
    /// Arms `key` for `at`. `at` must not be earlier than the last armed
    /// deadline (a constant duration on a monotonic clock); one that is
    /// is moved up to it, so it fires late rather than blocking the queue.
    pub fn arm(&mut self, key: K, at: T) {
        let at = match self.due.back() {
            Some((last, _)) if *last > at => *last,
            _ => at,
        };
        self.due.push_back((at, key));
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<T> {
        self.due.front().map(|(at, _)| *at)
    }

    /// The next key due at `now`; `None` when nothing is due.
    pub fn pop_due(&mut self, now: T) -> Option<K> {
        if self.due.front()?.0 > now {
            return None;
        }
        self.due.pop_front().map(|(_, k)| k)
    }

    /// How many entries are queued (stale ones included).
    pub fn len(&self) -> usize {
        self.due.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_due_in_arming_order_and_only_when_due() {
        let mut q: FifoTimers<&str, u64> = FifoTimers::default();
        assert_eq!(q.next_deadline(), None);
        q.arm("a", 10);
        q.arm("b", 10);
        q.arm("c", 12);
        assert_eq!(q.next_deadline(), Some(10));
        assert_eq!(q.pop_due(9), None);
        assert_eq!(q.pop_due(10), Some("a"));
        assert_eq!(q.pop_due(10), Some("b"));
        assert_eq!(q.pop_due(11), None);
        assert_eq!(q.next_deadline(), Some(12));
        assert_eq!(q.pop_due(100), Some("c"));
        assert_eq!(q.pop_due(100), None);
        assert!(q.is_empty());
    }

    #[test]
    fn an_earlier_deadline_armed_late_fires_with_the_one_before_it() {
        let mut q: FifoTimers<u8, u64> = FifoTimers::default();
        q.arm(1, 20);
        q.arm(2, 15);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop_due(19), None, "nothing overtakes the head");
        assert_eq!(q.pop_due(20), Some(1));
        assert_eq!(q.pop_due(20), Some(2));
    }

    #[test]
    fn the_same_key_can_be_queued_twice() {
        // No cancel and no index: the owner's generation tells a stale
        // entry from a live one.
        let mut q: FifoTimers<(&str, u64), u64> = FifoTimers::default();
        q.arm(("k", 1), 5);
        q.arm(("k", 2), 6);
        assert_eq!(q.pop_due(10), Some(("k", 1)));
        assert_eq!(q.pop_due(10), Some(("k", 2)));
    }
}
