//! A cache of the model's pure but slow calls. Every transition signs or verifies with real
//! secp256k1, a fraction of a millisecond each in a debug build, and the same call recurs on
//! thousands of paths (the machine of one party in one state, receiving one message, does not
//! care what the network or the chain look like). Each cached function is deterministic, so
//! the cache changes how fast the check runs, never what it finds. One cache per model, so the
//! planted old rule never shares answers with the real one.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// One cached function from `K` to `V`.
#[derive(Debug)]
pub struct Cache<K, V>(Mutex<HashMap<K, V>>);

impl<K: Hash + Eq, V: Clone> Cache<K, V> {
    pub fn new() -> Self {
        Cache(Mutex::new(HashMap::new()))
    }

    /// `f()`, computed once per key. The lock is not held while `f` runs, so two threads may
    /// both compute a missing value; they get the same one.
    pub fn get(&self, key: K, f: impl FnOnce() -> V) -> V {
        if let Some(v) = self.lock().get(&key) {
            return v.clone();
        }
        let v = f();
        self.lock().insert(key, v.clone());
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
        // A panic elsewhere while inserting leaves the map whole: keep using it.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<K: Hash + Eq, V: Clone> Default for Cache<K, V> {
    fn default() -> Self {
        Self::new()
    }
}
