//! The in-process client: the one way anything inside the simulator reads or writes objects.
//!
//! CONTRACT (shared by the HTTP front and the kapp model): the signatures below are fixed; the bodies
//! are the API server's semantics (authorization, validation, admission, store).

use std::sync::Arc;

use futures::stream::BoxStream;
use serde_json::Value;

use super::{Gvr, ListOptions, ObjectList, Patch, Status, UserInfo, WatchEvent, WriteOptions};

/// The API server, shared by the HTTP front and the controllers.
pub struct ApiServer {
    _private: (),
}

impl ApiServer {
    pub fn new() -> Arc<Self> {
        todo!("api server")
    }

    /// A client that acts as `user`.
    pub fn client(self: &Arc<Self>, user: UserInfo) -> Client {
        Client { api: Arc::clone(self), user }
    }

    /// Accept `token` as a bearer token for `user` (the kubeconfig's users).
    pub fn add_token(&self, token: &str, user: UserInfo) {
        let _ = (token, user);
        todo!()
    }
}

/// Acts on the API server as one user.
#[derive(Clone)]
pub struct Client {
    api: Arc<ApiServer>,
    user: UserInfo,
}

impl Client {
    pub fn user(&self) -> &UserInfo {
        &self.user
    }

    pub async fn get(&self, gvr: Gvr, namespace: Option<&str>, name: &str) -> Result<Value, Status> {
        let _ = (&self.api, gvr, namespace, name);
        todo!()
    }

    pub async fn list(&self, gvr: Gvr, namespace: Option<&str>, opts: &ListOptions) -> Result<ObjectList, Status> {
        let _ = (gvr, namespace, opts);
        todo!()
    }

    /// `namespace` must match `metadata.namespace` when that is set; it is filled in when absent.
    pub async fn create(&self, gvr: Gvr, namespace: Option<&str>, object: Value, opts: &WriteOptions) -> Result<Value, Status> {
        let _ = (gvr, namespace, object, opts);
        todo!()
    }

    /// A PUT: 409 when `metadata.resourceVersion` is set and stale. Ignores `status` on types with a status subresource.
    pub async fn update(&self, gvr: Gvr, namespace: Option<&str>, object: Value, opts: &WriteOptions) -> Result<Value, Status> {
        let _ = (gvr, namespace, object, opts);
        todo!()
    }

    /// A PUT to the status subresource: only `status` changes.
    pub async fn update_status(&self, gvr: Gvr, namespace: Option<&str>, object: Value, opts: &WriteOptions) -> Result<Value, Status> {
        let _ = (gvr, namespace, object, opts);
        todo!()
    }

    pub async fn patch(&self, gvr: Gvr, namespace: Option<&str>, name: &str, patch: &Patch, opts: &WriteOptions) -> Result<Value, Status> {
        let _ = (gvr, namespace, name, patch, opts);
        todo!()
    }

    pub async fn patch_status(&self, gvr: Gvr, namespace: Option<&str>, name: &str, patch: &Patch, opts: &WriteOptions) -> Result<Value, Status> {
        let _ = (gvr, namespace, name, patch, opts);
        todo!()
    }

    /// Returns the object as it was deleted.
    pub async fn delete(&self, gvr: Gvr, namespace: Option<&str>, name: &str, opts: &WriteOptions) -> Result<Value, Status> {
        let _ = (gvr, namespace, name, opts);
        todo!()
    }

    /// Every change after `resource_version` (or, with `None`, the current objects as `Added` first, then changes).
    pub async fn watch(&self, gvr: Gvr, namespace: Option<&str>, opts: &ListOptions, resource_version: Option<u64>) -> Result<BoxStream<'static, WatchEvent>, Status> {
        let _ = (gvr, namespace, opts, resource_version);
        todo!()
    }
}
