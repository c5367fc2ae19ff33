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
    #[error(
        "{kind} {name} already exists and belongs to {holder}; rename this server, its disk or its exposure"
    )]
    Taken {
        kind: String,
        name: String,
        holder: String,
    },
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

/// Applies `desired` unless `observed` already says everything it says,
/// so a converged child costs no write. Labels and owner references are
/// compared exactly (dropping an owner reference, as `Retain` does, must
/// reach the server); every other field of `desired` must be present with
/// the same value. Returns the applied object when a write happened.
///
/// A child not observed yet must have passed [`refuse_takeover`] first —
/// every one of an owner's new children before any is applied, so that a
/// name conflict builds nothing at all.
pub async fn ensure<K>(
    api: &Api<K>,
    desired: &K,
    observed: Option<&K>,
    owner: &str,
) -> Result<Option<K>, ApplyError>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    if observed.is_some_and(|o| satisfied(desired, o)) {
        return Ok(None);
    }
    super::writes::record(owner);
    apply(api, desired).await.map(Some)
}

/// Names are derived (`<server>-<disk>`, `<exposure>-<server>`), so two
/// owners can derive the same one. An existing object labelled for another
/// owner is never taken over: forcing server-side apply onto it would hand
/// one server's disk or port to another.
pub async fn refuse_takeover<K>(api: &Api<K>, desired: &K) -> Result<(), ApplyError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let name = desired.meta().name.clone().unwrap_or_default();
    let Some(existing) = api
        .get_opt(&name)
        .await
        .map_err(|source| ApplyError::List {
            kind: kind_of::<K>(),
            source,
        })?
    else {
        return Ok(());
    };
    let label = |k: &K| {
        k.meta()
            .labels
            .as_ref()
            .and_then(|l| l.get(super::labels::SERVER))
            .cloned()
    };
    let (ours, theirs) = (label(desired), label(&existing));
    if ours.is_some() && theirs != ours {
        return Err(ApplyError::Taken {
            kind: kind_of::<K>(),
            name,
            holder: theirs.unwrap_or_else(|| "something not managed by partnercloud".into()),
        });
    }
    Ok(())
}

/// Whether `observed` already carries everything `desired` sets.
pub fn satisfied<K: Resource + Serialize>(desired: &K, observed: &K) -> bool {
    let (d, o) = (desired.meta(), observed.meta());
    let labels = d.labels.clone().unwrap_or_default() == o.labels.clone().unwrap_or_default();
    let owners = d.owner_references.clone().unwrap_or_default()
        == o.owner_references.clone().unwrap_or_default();
    let (Ok(mut dv), Ok(mut ov)) = (
        serde_json::to_value(desired),
        serde_json::to_value(observed),
    ) else {
        return false;
    };
    for v in [&mut dv, &mut ov] {
        if let Some(map) = v.as_object_mut() {
            map.remove("metadata");
            map.remove("status");
        }
    }
    labels && owners && contains(&ov, &dv)
}

/// `outer` has every field of `inner` with the same value; lists must
/// match element by element.
fn contains(outer: &serde_json::Value, inner: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (outer, inner) {
        (Value::Object(o), Value::Object(i)) => i.iter().all(|(k, iv)| {
            o.get(k).is_some_and(|ov| contains(ov, iv)) || (iv.is_null() && !o.contains_key(k))
        }),
        (Value::Array(o), Value::Array(i)) => {
            o.len() == i.len() && o.iter().zip(i).all(|(ov, iv)| contains(ov, iv))
        }
        (o, i) => o == i,
    }
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
    sweep_observed(api, &list.items, owner_uid, keep).await
}

/// [`sweep`] over objects the caller has already listed.
pub async fn sweep_observed<K>(
    api: &Api<K>,
    existing: &[K],
    owner_uid: &str,
    keep: &BTreeSet<String>,
) -> Result<Vec<String>, ApplyError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let mut deleted = Vec::new();
    for item in existing {
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn map(
        labels: serde_json::Value,
        data: serde_json::Value,
        owners: serde_json::Value,
    ) -> ConfigMap {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "c", "labels": labels, "ownerReferences": owners, "resourceVersion": "7"}, "data": data})).unwrap()
    }

    #[test]
    fn a_child_with_extra_server_fields_is_satisfied() {
        let desired = map(
            serde_json::json!({"a": "1"}),
            serde_json::json!({"k": "v"}),
            serde_json::json!([]),
        );
        let observed = map(
            serde_json::json!({"a": "1"}),
            serde_json::json!({"k": "v", "extra": "x"}),
            serde_json::json!([]),
        );
        assert!(satisfied(&desired, &observed));
    }

    #[test]
    fn changed_values_labels_and_owner_references_need_a_write() {
        let owner = serde_json::json!([{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "u"}]);
        let desired = map(
            serde_json::json!({"a": "1"}),
            serde_json::json!({"k": "v"}),
            serde_json::json!([]),
        );
        assert!(!satisfied(
            &desired,
            &map(
                serde_json::json!({"a": "1"}),
                serde_json::json!({"k": "w"}),
                serde_json::json!([])
            )
        ));
        assert!(!satisfied(
            &desired,
            &map(
                serde_json::json!({"a": "2"}),
                serde_json::json!({"k": "v"}),
                serde_json::json!([])
            )
        ));
        // Retain drops the owner reference: that must be written.
        assert!(!satisfied(
            &desired,
            &map(
                serde_json::json!({"a": "1"}),
                serde_json::json!({"k": "v"}),
                owner
            )
        ));
    }
}
