//! Server-side apply of children under one field manager, and the orphan
//! sweep that removes what a pass no longer wants.

use std::collections::BTreeSet;
use std::fmt::Debug;

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::labels::FIELD_MANAGER;

/// Why applying or sweeping a child failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("a built {kind} has no name (a builder bug)")]
    Unnamed { kind: String },
    #[error("applying {kind} {name}: {source}")]
    Apply {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("listing {kind} for the orphan sweep: {source}")]
    List { kind: String, source: kube::Error },
    #[error("deleting orphaned {kind} {name}: {source}")]
    Delete {
        kind: String,
        name: String,
        source: kube::Error,
    },
}

impl ApplyError {
    /// The API server's answer, when there was one.
    pub fn api_status(&self) -> Option<&kube::core::Status> {
        match self {
            Self::Apply {
                source: kube::Error::Api(s),
                ..
            }
            | Self::List {
                source: kube::Error::Api(s),
                ..
            }
            | Self::Delete {
                source: kube::Error::Api(s),
                ..
            } => Some(s),
            _ => None,
        }
    }
}

fn kind_of<K: Resource<DynamicType = ()>>() -> String {
    K::kind(&()).to_string()
}

/// Applies `object` with server-side apply, forcing ownership of the fields
/// it sets (we are the only writer of our children's desired state).
pub async fn apply<K>(api: &Api<K>, object: &K) -> Result<K, ApplyError>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = object
        .meta()
        .name
        .clone()
        .ok_or_else(|| ApplyError::Unnamed {
            kind: kind_of::<K>(),
        })?;
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|source| ApplyError::Apply {
        kind: kind_of::<K>(),
        name,
        source,
    })
}

/// Deletes the objects matching `selector` that are controlled by
/// `owner_uid` and not named in `keep`. Objects without that owner (for
/// example disks retained from an earlier server) are never touched.
/// Already gone counts as deleted. Returns the names deleted.
pub async fn sweep<K>(
    api: &Api<K>,
    selector: &str,
    owner_uid: &str,
    keep: &BTreeSet<String>,
) -> Result<Vec<String>, ApplyError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|source| ApplyError::List {
            kind: kind_of::<K>(),
            source,
        })?;
    let mut deleted = Vec::new();
    for item in list.items {
        let name = item.name_any();
        let owned = item.owner_references().iter().any(|o| o.uid == owner_uid);
        if !owned || keep.contains(&name) || item.meta().deletion_timestamp.is_some() {
            continue;
        }
        delete_if_present(api, &name).await?;
        deleted.push(name);
    }
    Ok(deleted)
}

/// A namespaced object's key, `(namespace, name)`.
pub type Key = (String, String);

/// [`sweep`] for children spread over many namespaces (a partner's, in
/// every client namespace): lists across all namespaces and keeps by
/// namespace *and* name, since the children share names.
pub async fn sweep_namespaced<K>(
    client: &Client,
    selector: &str,
    owner_uid: &str,
    keep: &BTreeSet<Key>,
) -> Result<Vec<Key>, ApplyError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + DeserializeOwned
        + Clone
        + Debug,
{
    let list = Api::<K>::all(client.clone())
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|source| ApplyError::List {
            kind: kind_of::<K>(),
            source,
        })?;
    let mut deleted = Vec::new();
    for item in list.items {
        let key = (item.namespace().unwrap_or_default(), item.name_any());
        let owned = item.owner_references().iter().any(|o| o.uid == owner_uid);
        if !owned || keep.contains(&key) || item.meta().deletion_timestamp.is_some() {
            continue;
        }
        delete_if_present(&Api::<K>::namespaced(client.clone(), &key.0), &key.1).await?;
        deleted.push(key);
    }
    Ok(deleted)
}

/// Keys of built namespaced objects, for [`sweep_namespaced`]'s keep-set.
pub fn keys<'a, K: Resource + 'a>(objects: impl IntoIterator<Item = &'a K>) -> BTreeSet<Key> {
    objects
        .into_iter()
        .filter_map(|o| Some((o.meta().namespace.clone()?, o.meta().name.clone()?)))
        .collect()
}

/// Deletes one object; NotFound is success.
pub async fn delete_if_present<K>(api: &Api<K>, name: &str) -> Result<(), ApplyError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(ApplyError::Delete {
            kind: kind_of::<K>(),
            name: name.to_string(),
            source,
        }),
    }
}

/// Names of built objects, for the sweep's keep-set.
pub fn names<'a, K: Resource + 'a>(objects: impl IntoIterator<Item = &'a K>) -> BTreeSet<String> {
    objects
        .into_iter()
        .filter_map(|o| o.meta().name.clone())
        .collect()
}
