//! Work queues and informers, as controller-runtime gives them to kapp-controller: a FIFO of object
//! keys, de-duplicated, one reconcile per key at a time; and watches that feed it.
//!
//! Both also answer "has the controller caught up?" ([`Informer::seen`], [`WorkQueue::idle`]), which is
//! how the simulated kapp knows a controller has observed what it just applied, without racing it.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::{Notify, watch};

use crate::api::{Client, Gvr, ListOptions, WatchEvent};

/// `(namespace, name)` of the object a controller reconciles.
pub type Key = (String, String);

#[derive(Default)]
struct QueueState {
    order: VecDeque<Key>,
    queued: HashSet<Key>,
    in_flight: HashSet<Key>,
    /// Added again while being reconciled: queued once the reconcile is done.
    again: HashSet<Key>,
}

/// A FIFO of keys; a key is never reconciled by two workers at once.
#[derive(Default)]
pub struct WorkQueue {
    state: Mutex<QueueState>,
    ready: Notify,
    changed: Notify,
}

impl WorkQueue {
    pub fn add(&self, key: Key) {
        let mut state = self.state.lock().expect("queue lock");
        if state.in_flight.contains(&key) {
            state.again.insert(key);
        } else if state.queued.insert(key.clone()) {
            state.order.push_back(key);
            self.ready.notify_one();
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// Adds `key` after `delay` (a requeue timer; it does not make the queue busy meanwhile).
    pub fn add_after(self: &Arc<Self>, key: Key, delay: Duration) {
        let queue = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
    }

    /// The next key to reconcile; the caller must call [`WorkQueue::done`] with it.
    pub async fn next(&self) -> Key {
        loop {
            let notified = self.ready.notified();
            {
                let mut state = self.state.lock().expect("queue lock");
                if let Some(key) = state.order.pop_front() {
                    state.queued.remove(&key);
                    state.in_flight.insert(key.clone());
                    if !state.order.is_empty() {
                        self.ready.notify_one();
                    }
                    return key;
                }
            }
            notified.await;
        }
    }

    pub fn done(&self, key: &Key) {
        let mut state = self.state.lock().expect("queue lock");
        state.in_flight.remove(key);
        if state.again.remove(key) && state.queued.insert(key.clone()) {
            state.order.push_back(key.clone());
            self.ready.notify_one();
        }
        drop(state);
        self.changed.notify_waiters();
    }

    pub fn is_idle(&self) -> bool {
        let state = self.state.lock().expect("queue lock");
        state.order.is_empty() && state.in_flight.is_empty()
    }

    /// Whether `key` is neither waiting nor being reconciled.
    pub fn is_settled(&self, key: &Key) -> bool {
        let state = self.state.lock().expect("queue lock");
        !state.queued.contains(key) && !state.in_flight.contains(key) && !state.again.contains(key)
    }

    /// Waits until nothing is queued or being reconciled.
    pub async fn idle(&self) {
        loop {
            let changed = self.changed.notified();
            if self.is_idle() {
                return;
            }
            changed.await;
        }
    }
}

/// What an informer does with each event.
pub type Handler = Arc<dyn Fn(WatchEvent) -> BoxFuture<'static, ()> + Send + Sync>;

/// Watches one resource type for a controller, and remembers how far it has read.
pub struct Informer {
    seen: watch::Sender<u64>,
}

impl Informer {
    /// Starts watching `gvr` in every namespace; `handler` runs for each event, in order.
    pub fn spawn(client: Client, gvr: Gvr, handler: Handler) -> Arc<Informer> {
        let informer = Arc::new(Informer {
            seen: watch::Sender::new(0),
        });
        let this = Arc::clone(&informer);
        tokio::spawn(async move {
            let mut from: Option<u64> = None;
            loop {
                let stream = match client.watch(gvr, None, &ListOptions::default(), from).await {
                    Ok(stream) => stream,
                    Err(error) => {
                        tracing::warn!(resource = gvr.resource, %error, "watch failed; retrying");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        from = None;
                        continue;
                    }
                };
                let mut stream = stream;
                while let Some(event) = stream.next().await {
                    let rv = match &event {
                        WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
                            resource_version(o)
                        }
                        WatchEvent::Error(_) => {
                            from = None;
                            break;
                        }
                    };
                    handler(event).await;
                    if let Some(rv) = rv {
                        from = Some(rv);
                        this.seen.send_if_modified(|seen| {
                            let newer = rv > *seen;
                            if newer {
                                *seen = rv;
                            }
                            newer
                        });
                    }
                }
            }
        });
        informer
    }

    /// Waits until every event up to `resource_version` has been handled.
    pub async fn seen(&self, resource_version: u64) {
        let mut seen = self.seen.subscribe();
        let _ = seen.wait_for(|seen| *seen >= resource_version).await;
    }
}

pub fn resource_version(object: &serde_json::Value) -> Option<u64> {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
}

pub fn key_of(object: &serde_json::Value) -> Key {
    let metadata = &object["metadata"];
    (
        metadata["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        metadata["name"].as_str().unwrap_or_default().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        ("ns".into(), name.into())
    }

    #[tokio::test]
    async fn keys_are_deduplicated_and_served_in_order() {
        let queue = WorkQueue::default();
        queue.add(key("a"));
        queue.add(key("b"));
        queue.add(key("a"));
        assert_eq!(queue.next().await, key("a"));
        assert_eq!(queue.next().await, key("b"));
        assert!(!queue.is_idle());
        queue.done(&key("a"));
        queue.done(&key("b"));
        assert!(queue.is_idle());
    }

    #[tokio::test]
    async fn a_key_added_while_in_flight_is_reconciled_again_after_it_is_done() {
        let queue = WorkQueue::default();
        queue.add(key("a"));
        let a = queue.next().await;
        queue.add(key("a"));
        assert!(!queue.is_settled(&a));
        queue.done(&a);
        assert_eq!(queue.next().await, key("a"), "queued again, not lost");
        queue.done(&a);
        assert!(queue.is_settled(&a));
        tokio::time::timeout(Duration::from_secs(1), queue.idle())
            .await
            .unwrap();
    }
}
