//! Apply: carry out what the pass decided.
//!
//! Backups and drill servers are created once (POST), not server-side
//! applied: a snapshot's name is its slot, so "already exists" is the API
//! server telling a retry (or a second replica) that this backup was
//! taken — exactly the answer wanted, and never a second snapshot. Applying
//! instead would re-create a backup that retention had just deleted.
//! Deleting something already gone is success.

use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

use super::plan::Writes;
use crate::api::virtual_server::LastBackup;
use crate::api::{BackupPolicy, VirtualServer};
use crate::controllers::apply::{ApplyError, delete_if_present};
use crate::kubevirt::VirtualMachineSnapshot;

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("creating {kind} {name}: {source}")]
    Create {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error(transparent)]
    Delete(#[from] ApplyError),
    #[error("recording the restore drill's verdict on snapshot {name}: {source}")]
    Mark { name: String, source: kube::Error },
    #[error("publishing status.lastBackup on VirtualServer {name}: {source}")]
    Publish { name: String, source: kube::Error },
}

pub async fn write(
    client: &Client,
    policy: &BackupPolicy,
    writes: Writes,
) -> Result<(), WriteError> {
    let ns = policy.namespace().unwrap_or_default();
    let snapshots: Api<VirtualMachineSnapshot> = Api::namespaced(client.clone(), &ns);
    let servers: Api<VirtualServer> = Api::namespaced(client.clone(), &ns);
    // No `..`: a new kind of write must be carried out here.
    let Writes {
        create_snapshots,
        delete_snapshots,
        mark_snapshots,
        create_drills,
        delete_drills,
        last_backups,
    } = writes;

    for snapshot in &create_snapshots {
        create(&snapshots, snapshot, "VirtualMachineSnapshot").await?;
    }
    // Verdicts first, then the drill servers go: a verdict is never lost
    // to a drill server deleted before it was recorded.
    for (name, annotations) in &mark_snapshots {
        let patch = serde_json::json!({"metadata": {"annotations": annotations}});
        match snapshots
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(source) => {
                return Err(WriteError::Mark {
                    name: name.clone(),
                    source,
                });
            }
        }
    }
    for name in &delete_drills {
        delete_if_present(&servers, name).await?;
    }
    for drill in &create_drills {
        create(&servers, drill, "VirtualServer").await?;
    }
    for name in &delete_snapshots {
        delete_if_present(&snapshots, name).await?;
    }
    for (name, last) in &last_backups {
        set_last_backup(&servers, name, Some(last))
            .await
            .map_err(|source| WriteError::Publish {
                name: name.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Sets (or, with `None`, clears) `status.lastBackup` of server `name`. A
/// merge patch of this one field: the VirtualServer controller owns the
/// rest of the status and keeps this field as it finds it. A server gone
/// already needs nothing.
pub async fn set_last_backup(
    servers: &Api<VirtualServer>,
    name: &str,
    last: Option<&LastBackup>,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({"status": {"lastBackup": last}});
    match servers
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `object`; one that exists already counts as created.
async fn create<K>(api: &Api<K>, object: &K, kind: &'static str) -> Result<(), WriteError>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(source) => Err(WriteError::Create {
            kind,
            name: object.meta().name.clone().unwrap_or_default(),
            source,
        }),
    }
}
