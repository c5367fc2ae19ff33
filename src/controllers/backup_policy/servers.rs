//! What a policy reads from the servers of its namespace, and what it
//! publishes on them: which servers it may select and back up, which of
//! its backups a restore is reading, and each server's `lastBackup`. Pure.

use std::collections::BTreeSet;

use kube::ResourceExt;

use super::judge::Judged;
use super::kube_time;
use super::naming;
use crate::api::VirtualServer;
use crate::api::conditions;
use crate::api::virtual_server::LastBackup;
use crate::controllers::virtual_server::status::DISKS_READY;

/// A server the policy may select: not being deleted, and not a restore
/// drill's temporary copy.
pub fn selectable(server: &VirtualServer) -> bool {
    server.metadata.deletion_timestamp.is_none()
        && server.labels().get(naming::ROLE_LABEL).map(String::as_str) != Some(naming::DRILL_ROLE)
}

/// Whether a server's disks exist and are ready, so its VM can be
/// snapshotted. A server still provisioning is skipped (and named in
/// `Ready`'s message) rather than given a snapshot that cannot succeed.
pub fn disks_ready(server: &VirtualServer) -> bool {
    server
        .status
        .as_ref()
        .is_some_and(|s| conditions::is_true(&s.conditions, DISKS_READY))
}

/// Snapshots a restore is reading from: those named in `source.backup` by
/// a server (a restore, or a drill) whose disks are not all restored yet.
pub fn restores_reading(servers: &[VirtualServer]) -> BTreeSet<String> {
    servers
        .iter()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .filter_map(|s| {
            let snapshot = &s.spec.source.backup.as_ref()?.snapshot;
            let restored = s.status.as_ref().is_some_and(|st| {
                st.disks.len() >= s.spec.disks.len()
                    && st
                        .disks
                        .iter()
                        .all(|d| d.phase.as_deref() == Some("Succeeded"))
            });
            (!restored).then(|| snapshot.clone())
        })
        .collect()
}

/// The UID of each server, by name.
pub fn uids(servers: &[VirtualServer]) -> std::collections::BTreeMap<String, String> {
    servers
        .iter()
        .filter_map(|s| Some((s.name_any(), s.uid()?)))
        .collect()
}

/// `status.lastBackup` for each existing server this policy has a good
/// backup of, where it differs from what the server shows. A newer backup
/// published there by another policy is left alone.
pub fn last_backups(
    policy: &str,
    judged: &[Judged],
    servers: &[VirtualServer],
) -> Vec<(String, LastBackup)> {
    let mut out = Vec::new();
    for server in servers.iter().filter(|s| selectable(s)) {
        let name = server.name_any();
        let Some(newest) = judged
            .iter()
            // Only this server's own backups: not an earlier server's of
            // the same name.
            .filter(|j| j.server == name && j.is_good())
            .filter(|j| j.server_uid.is_none() || j.server_uid == server.uid())
            .max_by_key(|j| j.slot)
        else {
            continue;
        };
        let ours = LastBackup {
            policy: policy.to_string(),
            snapshot: newest.snapshot.clone(),
            time: kube_time::to_time(newest.taken.unwrap_or(newest.slot)),
        };
        let shown = server.status.as_ref().and_then(|s| s.last_backup.as_ref());
        let publish = match shown {
            None => true,
            Some(shown) if *shown == ours => false,
            Some(shown) => shown.policy == policy || shown.time.0 <= ours.time.0,
        };
        if publish {
            out.push((name, ours));
        }
    }
    out
}
