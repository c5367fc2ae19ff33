//! What happens to the backups when their policy is deleted.
//!
//! `deletionPolicy: Retain` (the default) keeps them: the snapshots carry
//! no owner reference, so garbage collection leaves them, and no finalizer
//! is needed. `Delete` needs one (kube-runtime's `finalizer()` helper),
//! because garbage collection cannot know which snapshots were the
//! policy's: cleanup deletes every snapshot with the policy's label — but
//! one a restore is still reading, which is kept — and is done as soon as
//! the deletes are issued — a stuck snapshot (one
//! KubeVirt never finishes, or never lets go of) does not hold the policy
//! up (ACCEPTANCE 13). Cleanup never depends on the policy still being
//! valid. Restore-drill servers are owned by the policy and go by
//! garbage collection either way.

use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::naming;
use crate::api::backup_policy::BackupDeletionPolicy;
use crate::api::{BackupPolicy, VirtualServer};
use crate::controllers::apply::{ApplyError, delete_if_present};
use crate::kubevirt::VirtualMachineSnapshot;

/// The finalizer a `deletionPolicy: Delete` policy carries.
pub const FINALIZER: &str = "partnercloud.io/backup-policy-cleanup";

/// Whether the policy goes through the finalizer helper: it wants its
/// backups deleted, or it still carries the finalizer from when it did
/// (switched to `Retain` since; cleanup then deletes nothing).
pub fn uses_finalizer(policy: &BackupPolicy) -> bool {
    policy.spec.deletion_policy == BackupDeletionPolicy::Delete
        || policy.finalizers().iter().any(|f| f == FINALIZER)
}

/// Deletes the policy's backups if its `deletionPolicy` says so. Returns
/// the names deleted.
pub async fn cleanup(client: &Client, policy: &BackupPolicy) -> Result<Vec<String>, ApplyError> {
    if policy.spec.deletion_policy != BackupDeletionPolicy::Delete {
        return Ok(Vec::new());
    }
    let api: Api<VirtualMachineSnapshot> =
        Api::namespaced(client.clone(), &policy.namespace().unwrap_or_default());
    let list = api
        .list(&ListParams::default().labels(&naming::policy_selector(&policy.name_any())))
        .await
        .map_err(|source| ApplyError::List {
            kind: "VirtualMachineSnapshot".into(),
            source,
        })?;
    // A backup a restore is still reading is kept (as retention keeps it):
    // deleting it would fail the restore. The policy's own drill servers
    // go with it, so what they read is not kept for them.
    let servers: Api<VirtualServer> =
        Api::namespaced(client.clone(), &policy.namespace().unwrap_or_default());
    let restores: Vec<VirtualServer> = servers
        .list(&ListParams::default())
        .await
        .map_err(|source| ApplyError::List {
            kind: "VirtualServer".into(),
            source,
        })?
        .items
        .into_iter()
        .filter(|s| !is_drill_of(s, policy))
        .collect();
    let reading = super::servers::restores_reading(&restores);
    let mut deleted = Vec::new();
    for snapshot in list.items {
        let name = snapshot.name_any();
        if reading.contains(&name) {
            tracing::info!(snapshot = %name, "backup kept: a restore is reading it");
            continue;
        }
        if snapshot.metadata.deletion_timestamp.is_none() {
            delete_if_present(&api, &name).await?;
        }
        deleted.push(name);
    }
    // A server must not show a deleted backup as its last one. (Another
    // policy's newer backup takes the field again on its next pass.)
    for server in &restores {
        let shown = server.status.as_ref().and_then(|s| s.last_backup.as_ref());
        if shown.is_some_and(|last| deleted.contains(&last.snapshot)) {
            super::apply::set_last_backup(&servers, &server.name_any(), None)
                .await
                .map_err(|source| ApplyError::Apply {
                    kind: "VirtualServer".into(),
                    name: server.name_any(),
                    source,
                })?;
        }
    }
    Ok(deleted)
}

/// Whether `server` is one of `policy`'s own restore-drill servers.
fn is_drill_of(server: &VirtualServer, policy: &BackupPolicy) -> bool {
    server.labels().get(naming::ROLE_LABEL).map(String::as_str) == Some(naming::DRILL_ROLE)
        && server
            .owner_references()
            .iter()
            .any(|o| Some(&o.uid) == policy.metadata.uid.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::backup_policy::tests_support::policy;

    #[test]
    fn only_a_delete_policy_or_one_still_carrying_the_finalizer_uses_it() {
        let mut p = policy();
        assert!(!uses_finalizer(&p), "Retain needs no finalizer");
        p.spec.deletion_policy = BackupDeletionPolicy::Delete;
        assert!(uses_finalizer(&p));
        p.spec.deletion_policy = BackupDeletionPolicy::Retain;
        p.metadata.finalizers = Some(vec![FINALIZER.into()]);
        assert!(
            uses_finalizer(&p),
            "switched back to Retain: the finalizer is still removed"
        );
    }
}
