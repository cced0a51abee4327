//! The versioned object store: one global, monotonically increasing resourceVersion; a bounded history of
//! changes from which watches are served in order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::watch;

use super::registry::ResourceType;
use super::{Gvr, Status, gvr};

/// `(namespace or "", name)`.
pub type Key = (String, String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// One committed change.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub gvr: Gvr,
    pub kind: ChangeType,
    pub object: Arc<Value>,
    /// The object before the change (for watches with a selector: an object leaving it is a DELETED).
    pub old: Option<Arc<Value>>,
}

struct Inner {
    rv: u64,
    objects: HashMap<Gvr, BTreeMap<Key, Arc<Value>>>,
    history: VecDeque<Arc<Change>>,
    /// Every change after this resourceVersion is still in `history`.
    floor: u64,
    capacity: usize,
}

pub struct Store {
    inner: Mutex<Inner>,
    notify: watch::Sender<u64>,
}

/// `metadata.resourceVersion` as a number.
pub fn rv_of(object: &Value) -> Option<u64> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

pub fn key_of(object: &Value) -> Key {
    let s = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (s("/metadata/namespace"), s("/metadata/name"))
}

fn set_rv(object: &mut Value, rv: u64) {
    if let Some(Value::Object(m)) = object.get_mut("metadata") {
        m.insert("resourceVersion".into(), Value::from(rv.to_string()));
    }
}

impl Store {
    /// A store that keeps the last `history` changes for watches.
    pub fn new(history: usize) -> Self {
        let (notify, _) = watch::channel(0);
        Store {
            inner: Mutex::new(Inner {
                rv: 0,
                objects: HashMap::new(),
                history: VecDeque::new(),
                floor: 0,
                capacity: history.max(1),
            }),
            notify,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-written in a way that matters more
        // than stopping every request, so recover the guard.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }

    pub fn get(&self, gvr: Gvr, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let inner = self.lock();
        inner
            .objects
            .get(&gvr.stored())?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.get(gvr::NAMESPACES, "", namespace).is_some()
    }

    /// The objects of a type (in one namespace, or all), in key order, and the resourceVersion they are at.
    pub fn list(&self, gvr: Gvr, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.lock();
        (Self::list_locked(&inner, gvr, namespace), inner.rv)
    }

    fn list_locked(inner: &Inner, gvr: Gvr, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let Some(objects) = inner.objects.get(&gvr.stored()) else {
            return Vec::new();
        };
        match namespace {
            Some(ns) => objects
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| Arc::clone(v))
                .collect(),
            None => objects.values().cloned().collect(),
        }
    }

    /// A list and every change after it, atomically: what a watch without a resourceVersion starts from.
    pub fn list_for_watch(
        &self,
        gvr: Gvr,
        namespace: Option<&str>,
    ) -> (Vec<Arc<Value>>, u64, watch::Receiver<u64>) {
        let inner = self.lock();
        let rx = self.notify.subscribe();
        (Self::list_locked(&inner, gvr, namespace), inner.rv, rx)
    }

    fn record(
        &self,
        inner: &mut Inner,
        gvr: Gvr,
        kind: ChangeType,
        object: Arc<Value>,
        old: Option<Arc<Value>>,
    ) {
        let rv = inner.rv;
        inner.history.push_back(Arc::new(Change {
            rv,
            gvr,
            kind,
            object,
            old,
        }));
        while inner.history.len() > inner.capacity {
            if let Some(c) = inner.history.pop_front() {
                inner.floor = c.rv;
            }
        }
    }

    fn publish(&self, rv: u64) {
        self.notify.send_replace(rv);
    }

    /// Stores a new object. Fails if it exists or its namespace does not.
    pub fn create(&self, rt: &ResourceType, mut object: Value) -> Result<Value, Status> {
        let key = key_of(&object);
        let rv = {
            let mut inner = self.lock();
            if rt.namespaced {
                let ns_exists = inner
                    .objects
                    .get(&gvr::NAMESPACES.stored())
                    .is_some_and(|m| m.contains_key(&(String::new(), key.0.clone())));
                if !ns_exists {
                    return Err(Status::namespace_not_found(&key.0));
                }
            }
            if inner
                .objects
                .get(&rt.gvr.stored())
                .is_some_and(|m| m.contains_key(&key))
            {
                return Err(Status::already_exists(rt, &key.1));
            }
            inner.rv += 1;
            let rv = inner.rv;
            set_rv(&mut object, rv);
            let stored = Arc::new(object.clone());
            inner
                .objects
                .entry(rt.gvr.stored())
                .or_default()
                .insert(key, Arc::clone(&stored));
            self.record(&mut inner, rt.gvr.stored(), ChangeType::Added, stored, None);
            rv
        };
        self.publish(rv);
        Ok(object)
    }

    /// Replaces an object, if it is still at `expected_rv`.
    pub fn replace(
        &self,
        rt: &ResourceType,
        mut object: Value,
        expected_rv: u64,
    ) -> Result<Value, Status> {
        let key = key_of(&object);
        let rv = {
            let mut inner = self.lock();
            let current = inner
                .objects
                .get(&rt.gvr.stored())
                .and_then(|m| m.get(&key))
                .cloned();
            let Some(current) = current else {
                return Err(Status::not_found(rt, &key.1));
            };
            if rv_of(&current) != Some(expected_rv) {
                return Err(Status::conflict(rt, &key.1));
            }
            inner.rv += 1;
            let rv = inner.rv;
            set_rv(&mut object, rv);
            let stored = Arc::new(object.clone());
            inner
                .objects
                .entry(rt.gvr.stored())
                .or_default()
                .insert(key, Arc::clone(&stored));
            self.record(
                &mut inner,
                rt.gvr.stored(),
                ChangeType::Modified,
                stored,
                Some(current),
            );
            rv
        };
        self.publish(rv);
        Ok(object)
    }

    /// Removes every object of a type (in every version: what deleting a CRD does to its objects).
    pub fn delete_all(&self, rt: &ResourceType) {
        let rv = {
            let mut inner = self.lock();
            let key = rt.gvr.stored();
            let Some(objects) = inner.objects.remove(&key) else {
                return;
            };
            for (_, old) in objects {
                self.remove_record(&mut inner, key, old);
            }
            inner.rv
        };
        self.publish(rv);
    }

    /// Removes an object (if still at `expected_rv`, when given). A namespace takes its objects with it.
    pub fn delete(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        expected_rv: Option<u64>,
    ) -> Result<Value, Status> {
        let key = (namespace.to_string(), name.to_string());
        let (rv, deleted) = {
            let mut inner = self.lock();
            let current = inner
                .objects
                .get(&rt.gvr.stored())
                .and_then(|m| m.get(&key))
                .cloned();
            let Some(current) = current else {
                return Err(Status::not_found(rt, name));
            };
            if expected_rv.is_some_and(|e| rv_of(&current) != Some(e)) {
                return Err(Status::conflict(rt, name));
            }
            if rt.gvr == gvr::NAMESPACES {
                // Every namespaced object of the namespace (cluster-scoped ones have no namespace).
                let kinds: Vec<Gvr> = inner.objects.keys().copied().collect();
                for other in kinds {
                    let keys: Vec<Key> = inner
                        .objects
                        .get(&other)
                        .map(|m| m.keys().filter(|(ns, _)| ns == name).cloned().collect())
                        .unwrap_or_default();
                    for k in keys {
                        if let Some(old) = inner.objects.get_mut(&other).and_then(|m| m.remove(&k))
                        {
                            self.remove_record(&mut inner, other, old);
                        }
                    }
                }
            }
            inner
                .objects
                .get_mut(&rt.gvr.stored())
                .and_then(|m| m.remove(&key));
            let deleted = self.remove_record(&mut inner, rt.gvr.stored(), current);
            (inner.rv, deleted)
        };
        self.publish(rv);
        Ok(deleted)
    }

    fn remove_record(&self, inner: &mut Inner, gvr: Gvr, old: Arc<Value>) -> Value {
        inner.rv += 1;
        let mut gone = (*old).clone();
        set_rv(&mut gone, inner.rv);
        let gone_arc = Arc::new(gone.clone());
        self.record(inner, gvr, ChangeType::Deleted, gone_arc, Some(old));
        gone
    }

    /// The changes after `rv`, or `None` when some of them have left the history window.
    pub fn changes_since(&self, rv: u64) -> Option<Vec<Arc<Change>>> {
        let inner = self.lock();
        if rv < inner.floor {
            return None;
        }
        let start = inner.history.partition_point(|c| c.rv <= rv);
        Some(inner.history.range(start..).cloned().collect())
    }

    /// The oldest resourceVersion a watch may still start from.
    pub fn floor(&self) -> u64 {
        self.lock().floor
    }

    /// How many objects are stored, all types together.
    pub fn len(&self) -> usize {
        self.lock().objects.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ns(name: &str) -> Value {
        json!({"metadata": {"name": name}})
    }
    fn cm(ns: &str, name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": ns}})
    }

    #[test]
    fn versions_conflicts_and_cascade() {
        let store = Store::new(3);
        let nsrt = super::super::registry::lookup(gvr::NAMESPACES).unwrap();
        let cmrt = super::super::registry::lookup(gvr::CONFIG_MAPS).unwrap();
        assert_eq!(
            store.create(cmrt, cm("a", "x")).unwrap_err().message,
            "namespaces \"a\" not found"
        );
        store.create(nsrt, ns("a")).unwrap();
        let x = store.create(cmrt, cm("a", "x")).unwrap();
        assert_eq!(x["metadata"]["resourceVersion"], "2");
        assert_eq!(
            store.create(cmrt, cm("a", "x")).unwrap_err().reason,
            "AlreadyExists"
        );
        store.replace(cmrt, x.clone(), 2).unwrap();
        assert!(store.replace(cmrt, x, 2).unwrap_err().is_conflict());
        store.create(cmrt, cm("a", "y")).unwrap();
        assert_eq!(store.list(gvr::CONFIG_MAPS, Some("a")).0.len(), 2);
        // History of 3: changes after rv 1 are gone once rv 5 is reached.
        assert!(store.changes_since(4).is_some());
        store.delete(nsrt, "", "a", None).unwrap();
        assert_eq!(store.list(gvr::CONFIG_MAPS, None).0.len(), 0);
        assert!(store.changes_since(1).is_none());
        let last: Vec<(u64, ChangeType)> = store
            .changes_since(5)
            .unwrap()
            .iter()
            .map(|c| (c.rv, c.kind))
            .collect();
        assert_eq!(last, [(6, ChangeType::Deleted), (7, ChangeType::Deleted)]);
    }
}
