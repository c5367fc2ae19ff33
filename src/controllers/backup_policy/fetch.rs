//! Fetch: the policy as it is now, the servers of its namespace, its
//! backups and their contents. Reads only.

use std::collections::BTreeMap;

use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::naming;
use crate::api::{BackupPolicy, VirtualServer};
use crate::kubevirt::{VirtualMachineSnapshot, VirtualMachineSnapshotContent};

/// Why reading the cluster failed.
#[derive(Debug, thiserror::Error)]
#[error("reading {what}: {source}")]
pub struct FetchError {
    what: String,
    #[source]
    source: kube::Error,
}

fn read(what: impl Into<String>) -> impl FnOnce(kube::Error) -> FetchError {
    let what = what.into();
    move |source| FetchError { what, source }
}

/// What a pass is decided from.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Every VirtualServer in the policy's namespace: the ones it selects,
    /// its restore drills, and restores reading from its backups.
    pub servers: Vec<VirtualServer>,
    /// The snapshots this policy made (by label), including those of
    /// servers deleted since.
    pub snapshots: Vec<VirtualMachineSnapshot>,
    /// Their contents, by name (volume restore sizes).
    pub contents: BTreeMap<String, VirtualMachineSnapshotContent>,
}

/// The policy as the API server has it now (the controller's cached copy
/// may not show the status this controller wrote a moment ago), or `None`
/// once it is gone.
pub async fn fresh(
    client: &Client,
    policy: &BackupPolicy,
) -> Result<Option<BackupPolicy>, FetchError> {
    Api::<BackupPolicy>::namespaced(client.clone(), &policy.namespace().unwrap_or_default())
        .get_opt(&policy.name_any())
        .await
        .map_err(read(format!("policy {}", policy.name_any())))
}

pub async fn observe(client: &Client, policy: &BackupPolicy) -> Result<Observed, FetchError> {
    let ns = policy.namespace().unwrap_or_default();
    let servers = Api::<VirtualServer>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .map_err(read("virtual servers"))?
        .items;
    let snapshots = Api::<VirtualMachineSnapshot>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels(&naming::policy_selector(&policy.name_any())))
        .await
        .map_err(read("backup snapshots"))?
        .items;
    let contents = if snapshots.is_empty() {
        BTreeMap::new()
    } else {
        // Contents carry no label of ours (KubeVirt makes them); one list
        // of the namespace is cheaper than a read per snapshot.
        Api::<VirtualMachineSnapshotContent>::namespaced(client.clone(), &ns)
            .list(&ListParams::default())
            .await
            .map_err(read("snapshot contents"))?
            .items
            .into_iter()
            .map(|c| (c.name_any(), c))
            .collect()
    };
    Ok(Observed {
        servers,
        snapshots,
        contents,
    })
}
