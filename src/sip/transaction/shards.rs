//! A hash map split into [`SHARDS`] maps by a cheap hash of the key, so
//! that it grows one small shard at a time.
//!
//! A `HashMap` grows by doubling: it allocates a table twice the size and
//! moves and rehashes every entry at once. The server transaction table
//! and its merge index hold ~192,000 entries at 3000 registrations/s (a
//! UDP non-INVITE transaction lives 32 s), and while both doubled together
//! the SIP loop stopped for tens of milliseconds, the socket's receive
//! buffer overflowed and phones retransmitted (hundreds of retransmissions
//! in the first 20 s at 3000/s, none with the tables reserved up front:
//! benches/register_load.sh). Split in 64, one doubling moves 1/64 of the
//! entries, and the shards reach their thresholds at different moments.
//!
//! Which shard a key goes to needs no protection against chosen keys: the
//! map inside a shard keeps std's keyed hasher, so a peer that crowds one
//! shard only makes that shard as big as the whole map would have been.

use std::collections::HashMap;
use std::hash::Hash;

/// How many maps a [`Sharded`] map is split into.
pub const SHARDS: usize = 64;

/// A key that says which shard it belongs to.
pub trait ShardOf {
    /// Any number; only its value modulo [`SHARDS`] counts.
    fn shard_of(&self) -> usize;
}

/// A cheap fold of some bytes (FNV-1a over at most the last 32 bytes: the
/// part of a branch, Call-ID or tag that varies most).
pub fn fold(bytes: &[u8]) -> usize {
    let tail = &bytes[bytes.len().saturating_sub(32)..];
    tail.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    }) as usize
}

impl ShardOf for std::sync::Arc<str> {
    fn shard_of(&self) -> usize {
        fold(self.as_bytes())
    }
}

/// The sharded map.
#[derive(Debug)]
pub struct Sharded<K, V> {
    shards: Vec<HashMap<K, V>>,
}

impl<K, V> Default for Sharded<K, V> {
    fn default() -> Self {
        // An empty HashMap allocates nothing.
        Self {
            shards: (0..SHARDS).map(|_| HashMap::new()).collect(),
        }
    }
}

impl<K: Hash + Eq + ShardOf, V> Sharded<K, V> {
    fn shard(&self, key: &K) -> &HashMap<K, V> {
        &self.shards[key.shard_of() % SHARDS]
    }

    fn shard_mut(&mut self, key: &K) -> &mut HashMap<K, V> {
        &mut self.shards[key.shard_of() % SHARDS]
    }

    /// The value under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.shard(key).get(key)
    }

    /// The value under `key`, mutably.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.shard_mut(key).get_mut(key)
    }

    /// Whether `key` is there.
    pub fn contains_key(&self, key: &K) -> bool {
        self.shard(key).contains_key(key)
    }

    /// Inserts, returning the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.shard_mut(&key).insert(key, value)
    }

    /// Removes and returns the value under `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.shard_mut(key).remove(key)
    }

    /// How many entries there are in all.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn behaves_as_one_map_and_spreads_keys_over_the_shards() {
        let mut m: Sharded<Arc<str>, u32> = Sharded::default();
        for i in 0..4096u32 {
            let k: Arc<str> = format!("z9hG4bK-1234-{i}-0").into();
            assert_eq!(m.insert(k, i), None);
        }
        assert_eq!(m.len(), 4096);
        let k: Arc<str> = "z9hG4bK-1234-77-0".into();
        assert_eq!(m.get(&k), Some(&77));
        *m.get_mut(&k).expect("there") += 1;
        assert_eq!(m.remove(&k), Some(78));
        assert!(!m.contains_key(&k));
        let used = m.shards.iter().filter(|s| !s.is_empty()).count();
        assert_eq!(used, SHARDS, "sequential branches reach every shard");
        let fullest = m.shards.iter().map(HashMap::len).max().unwrap_or(0);
        assert!(
            fullest < 2 * 4096 / SHARDS,
            "none holds twice its share ({fullest})"
        );
    }
}
