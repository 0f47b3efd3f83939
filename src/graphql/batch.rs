//! Batching relation loads without a timer or a spawned task.
//!
//! async-graphql resolves the items of a list, and the fields of an object, as futures
//! joined inside one task. Each `load_one` adds its key to the pending batch of its key
//! type and yields once; tokio defers that wake-up until the task has polled every sibling,
//! so by the time any of them runs again, the whole page has registered its keys. The
//! first to run again takes the batch and runs its one statement; the others wait on the
//! same shared future. No timer thread, no `tokio::spawn`, no cross-thread wake-ups.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use async_graphql::dataloader::Loader;
use futures::future::{BoxFuture, FutureExt, Shared};

type BatchResult<K, V, E> = Result<Arc<HashMap<K, V>>, E>;
type BoxedBatch<K, V, E> = BoxFuture<'static, BatchResult<K, V, E>>;
type SharedBatch<K, V, E> = Shared<BoxedBatch<K, V, E>>;

/// The keys of one key type waiting for the next statement, and the statements under way.
struct KeyState<K, V, E: Clone> {
    /// The batch being gathered: its keys, and its number.
    pending: Vec<K>,
    generation: u64,
    /// Batches already started, by number, until every waiter has taken its result.
    started: HashMap<u64, (SharedBatch<K, V, E>, usize)>,
    /// How many callers wait on the pending batch.
    waiting: usize,
    /// Keys registered so far, over every batch: a waiter that sees it move since it last
    /// looked knows a sibling is still gathering.
    registered: u64,
}

impl<K, V, E: Clone> Default for KeyState<K, V, E> {
    fn default() -> Self {
        KeyState {
            pending: Vec::new(),
            generation: 0,
            started: HashMap::new(),
            waiting: 0,
            registered: 0,
        }
    }
}

/// Loads relations for one request, batching by key type.
pub struct Batcher<L> {
    loader: Arc<L>,
    state: Mutex<HashMap<TypeId, Box<dyn Any + Send>>>,
    /// Values a list already read in its own statement (a join), by key type.
    primed: Mutex<HashMap<TypeId, Box<dyn Any + Send>>>,
}

impl<L: Send + Sync + 'static> Batcher<L> {
    pub fn new(loader: L) -> Self {
        Batcher {
            loader: Arc::new(loader),
            state: Mutex::new(HashMap::new()),
            primed: Mutex::new(HashMap::new()),
        }
    }

    /// Gives the loader values read elsewhere in this request (a list that joined them), so
    /// loading those keys costs no statement and no wait.
    pub fn prime<K>(&self, values: impl IntoIterator<Item = (K, <L as Loader<K>>::Value)>)
    where
        K: Send + Sync + Hash + Eq + Clone + 'static,
        L: Loader<K>,
    {
        let mut primed = self
            .primed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = primed
            .entry(TypeId::of::<HashMap<K, <L as Loader<K>>::Value>>())
            .or_insert_with(|| Box::new(HashMap::<K, <L as Loader<K>>::Value>::new()));
        if let Some(map) = entry.downcast_mut::<HashMap<K, <L as Loader<K>>::Value>>() {
            map.extend(values);
        }
    }

    /// The primed values of `keys`, and the keys that still need loading.
    fn take_primed<K, V>(&self, keys: Vec<K>) -> (HashMap<K, V>, Vec<K>)
    where
        K: Hash + Eq + Clone + 'static,
        V: Clone + 'static,
    {
        let primed = self
            .primed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(map) = primed
            .get(&TypeId::of::<HashMap<K, V>>())
            .and_then(|m| m.downcast_ref::<HashMap<K, V>>())
        else {
            return (HashMap::new(), keys);
        };
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for k in keys {
            match map.get(&k) {
                Some(v) => {
                    found.insert(k, v.clone());
                }
                None => missing.push(k),
            }
        }
        (found, missing)
    }

    /// The value primed for `key`, if any.
    fn primed_one<K, V>(&self, key: &K) -> Option<V>
    where
        K: Hash + Eq + 'static,
        V: Clone + 'static,
    {
        let primed = self
            .primed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        primed
            .get(&TypeId::of::<HashMap<K, V>>())?
            .downcast_ref::<HashMap<K, V>>()?
            .get(key)
            .cloned()
    }

    fn with_state<K, V, E, R>(&self, f: impl FnOnce(&mut KeyState<K, V, E>) -> R) -> R
    where
        K: Send + Sync + 'static,
        V: Send + Sync + 'static,
        E: Clone + Send + Sync + 'static,
    {
        let mut all = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = all
            .entry(TypeId::of::<KeyState<K, V, E>>())
            .or_insert_with(|| Box::new(KeyState::<K, V, E>::default()));
        match entry.downcast_mut::<KeyState<K, V, E>>() {
            Some(state) => f(state),
            // The map is keyed by the state's own type, so this never happens; if it did,
            // a throw-away state only costs the batching.
            None => f(&mut KeyState::default()),
        }
    }

    /// Loads the values of `keys`, in one statement with every other key of the same type
    /// requested in the same round.
    pub async fn load_many<K, I>(
        &self,
        keys: I,
    ) -> Result<HashMap<K, <L as Loader<K>>::Value>, <L as Loader<K>>::Error>
    where
        K: Send + Sync + Hash + Eq + Clone + 'static,
        I: IntoIterator<Item = K>,
        L: Loader<K>,
        <L as Loader<K>>::Error: Sync,
    {
        type V<L, K> = <L as Loader<K>>::Value;
        type E<L, K> = <L as Loader<K>>::Error;
        let (mut found, wanted) = self.take_primed::<K, V<L, K>>(keys.into_iter().collect());
        if wanted.is_empty() {
            return Ok(found);
        }
        let (generation, mut seen) = self.with_state::<K, V<L, K>, E<L, K>, _>(|s| {
            for k in &wanted {
                if !s.pending.contains(k) {
                    s.pending.push(k.clone());
                }
            }
            s.waiting += 1;
            s.registered += 1;
            (s.generation, s.registered)
        });
        // Yield until a whole round passes in which no sibling added a key: siblings do not
        // always all reach their load in one round (a set of more than a few dozen futures
        // polls some, then yields itself), and a batch started early splits the page.
        loop {
            tokio::task::yield_now().await;
            let still_gathering = self.with_state::<K, V<L, K>, E<L, K>, _>(|s| {
                let moved = s.generation == generation && s.registered != seen;
                seen = s.registered;
                moved
            });
            if !still_gathering {
                break;
            }
        }
        let loader = self.loader.clone();
        let batch = self.with_state::<K, V<L, K>, E<L, K>, _>(|s| {
            if s.generation == generation {
                // First back: start the batch that every waiter of this round joins.
                let keys = std::mem::take(&mut s.pending);
                let fut: BoxedBatch<K, V<L, K>, E<L, K>> =
                    async move { loader.load(&keys).await.map(Arc::new) }.boxed();
                s.started
                    .insert(generation, (fut.shared(), std::mem::take(&mut s.waiting)));
                s.generation += 1;
            }
            let (fut, waiters) = s.started.get_mut(&generation).map(|(f, w)| {
                *w = w.saturating_sub(1);
                (f.clone(), *w)
            })?;
            if waiters == 0 {
                s.started.remove(&generation);
            }
            Some(fut)
        });
        // A batch is kept until its last waiter took it; without one, load alone.
        let loaded = match batch {
            Some(batch) => batch.await?,
            // Boxed: every resolver that loads would otherwise carry a statement's state,
            // and a type's every field is as large as its largest.
            None => Arc::new(Box::pin(self.loader.load(&wanted)).await?),
        };
        found.extend(
            wanted
                .into_iter()
                .filter_map(|k| loaded.get(&k).cloned().map(|v| (k, v))),
        );
        Ok(found)
    }

    /// Loads the value of one key; see `load_many`.
    pub async fn load_one<K>(
        &self,
        key: K,
    ) -> Result<Option<<L as Loader<K>>::Value>, <L as Loader<K>>::Error>
    where
        K: Send + Sync + Hash + Eq + Clone + 'static,
        L: Loader<K>,
        <L as Loader<K>>::Error: Sync,
    {
        // What a list already joined (an author, a commitment) costs one map lookup.
        if let Some(value) = self.primed_one::<K, <L as Loader<K>>::Value>(&key) {
            return Ok(Some(value));
        }
        let mut found = self.load_many(std::iter::once(key.clone())).await?;
        Ok(found.remove(&key))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[derive(Default)]
    struct Doubler {
        calls: AtomicUsize,
        keys: Mutex<Vec<Vec<u32>>>,
    }

    impl Loader<u32> for Doubler {
        type Value = u64;
        type Error = Arc<String>;
        async fn load(&self, keys: &[u32]) -> Result<HashMap<u32, u64>, Arc<String>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.keys.lock().unwrap().push(keys.to_vec());
            Ok(keys
                .iter()
                .filter(|k| **k != 13)
                .map(|k| (*k, u64::from(*k) * 2))
                .collect())
        }
    }

    #[tokio::test]
    async fn joined_loads_run_as_one_batch_with_each_key_once() {
        let batcher = Batcher::new(Doubler::default());
        let loads = (0..50u32).map(|i| batcher.load_one(i % 25));
        let found = futures::future::join_all(loads).await;
        assert_eq!(batcher.loader.calls.load(Ordering::SeqCst), 1);
        let keys = batcher.loader.keys.lock().unwrap().clone();
        assert_eq!(keys[0].len(), 25, "each key once: {keys:?}");
        for (i, v) in found.into_iter().enumerate() {
            let k = (i % 25) as u32;
            let expected = (k != 13).then_some(u64::from(k) * 2);
            assert_eq!(v.unwrap(), expected);
        }
    }

    #[tokio::test]
    async fn loads_after_a_batch_started_form_the_next_one() {
        let batcher = Batcher::new(Doubler::default());
        assert_eq!(batcher.load_one(1).await.unwrap(), Some(2));
        let both = futures::future::join(batcher.load_one(2), batcher.load_one(3)).await;
        assert_eq!((both.0.unwrap(), both.1.unwrap()), (Some(4), Some(6)));
        assert_eq!(batcher.loader.calls.load(Ordering::SeqCst), 2);
        // Every started batch was collected by its waiters.
        let state = batcher.state.lock().unwrap();
        let s = state
            .values()
            .next()
            .and_then(|b| b.downcast_ref::<KeyState<u32, u64, Arc<String>>>())
            .unwrap();
        assert!(s.started.is_empty() && s.pending.is_empty() && s.waiting == 0);
    }
}
