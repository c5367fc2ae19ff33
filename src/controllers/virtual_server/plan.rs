//! The plan for one server: what its disks are made from and how big it
//! is, after run-time checks. Produced by `validate`, consumed by `build`.

use crate::api::virtual_server::DiskSpec;

/// Where one disk's contents come from.
#[derive(Debug, Clone, PartialEq)]
pub enum DiskContent {
    /// Import from an HTTP(S) URL.
    Http { url: String },
    /// An empty disk.
    Blank,
    /// Clone a golden image published as a CDI DataSource.
    DataSource { namespace: String, name: String },
    /// Restore a CSI volume snapshot captured by a VM snapshot.
    VolumeSnapshot { namespace: String, name: String },
    /// The disk exists already; its source is fixed (CDI refuses changes),
    /// so the DataVolume is applied with the source it was created with.
    Existing(Box<crate::kubevirt::data_volume::DataVolumeSpec>),
}

/// One disk to provide.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedDisk {
    pub spec: DiskSpec,
    pub bytes: u64,
    pub system: bool,
    /// `None` while the content cannot be known yet (a snapshot that is
    /// not ready); such a disk and the VM wait.
    pub content: Option<DiskContent>,
}

/// The temporary VM snapshot a hot copy is restored from.
#[derive(Debug, Clone, PartialEq)]
pub struct CloneSnapshot {
    /// The VM of the server being copied.
    pub source_vm: String,
}

/// Everything `build` needs beyond the VirtualServer itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub cores: u32,
    pub memory_bytes: u64,
    pub disks: Vec<PlannedDisk>,
    /// The installation ISO, while not ejected.
    pub iso_url: Option<String>,
    /// Present while a hot copy still needs its source snapshot.
    pub clone_snapshot: Option<CloneSnapshot>,
    /// The template deployed from, for labels.
    pub template: Option<String>,
    /// Partner and client of the namespace, for labels.
    pub partner: Option<String>,
    pub client: Option<String>,
    /// Storage the server's detached disks hold: taken out of
    /// `spec.disks`, they are not deleted, and count against quota all the
    /// same.
    pub detached_bytes: u64,
}

impl Plan {
    /// Whether every disk's content is known, so the VM can be built.
    pub fn disks_known(&self) -> bool {
        self.disks.iter().all(|d| d.content.is_some())
    }
}

/// Why the server cannot be built now. Nothing is applied or deleted while
/// blocked; the status says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub reason: &'static str,
    pub message: String,
}

impl Blocked {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Stable condition reasons of a VirtualServer.
pub mod reason {
    pub const TEMPLATE_NOT_FOUND: &str = "TemplateNotFound";
    pub const TEMPLATE_NOT_SHARED: &str = "TemplateNotShared";
    pub const TEMPLATE_NOT_READY: &str = "TemplateNotReady";
    pub const BELOW_TEMPLATE_MINIMUM: &str = "BelowTemplateMinimum";
    pub const CLONE_SOURCE_NOT_FOUND: &str = "CloneSourceNotFound";
    pub const CLONE_SOURCE_NOT_READY: &str = "CloneSourceNotReady";
    pub const BACKUP_NOT_FOUND: &str = "BackupNotFound";
    pub const SNAPSHOT_NOT_READY: &str = "SnapshotNotReady";
    pub const SNAPSHOT_FAILED: &str = "SnapshotFailed";
    pub const QUOTA_EXCEEDED: &str = "QuotaExceeded";
    pub const NAME_CONFLICT: &str = "NameConflict";
    pub const DISK_SMALLER_THAN_SOURCE: &str = "DiskSmallerThanSource";
    pub const DISK_CANNOT_GROW: &str = "DiskCannotGrow";
    pub const DISK_CANNOT_SHRINK: &str = "DiskCannotShrink";
    pub const VOLUMES_NOT_RESTORED: &str = "VolumesNotRestored";
    pub const SUSPENDED: &str = "Suspended";
    pub const ORPHANED: &str = "Orphaned";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const PROVISIONING: &str = "Provisioning";
    pub const IMPORTING: &str = "Importing";
    pub const IMPORT_FAILED: &str = "ImportFailed";
    pub const CLONING: &str = "Cloning";
    pub const DISKS_READY: &str = "DisksReady";
    pub const STARTING: &str = "Starting";
    pub const RUNNING: &str = "Running";
    pub const STOPPING: &str = "Stopping";
    pub const STOPPED: &str = "Stopped";
    pub const START_FAILED: &str = "StartFailed";
    pub const RESTART_REQUIRED: &str = "RestartRequired";
    pub const NO_EXPOSURES: &str = "NoExposures";
    pub const EXPOSED: &str = "Exposed";
    pub const WAITING_FOR_ADDRESS: &str = "WaitingForAddress";
    pub const TERMINATING: &str = "Terminating";
}
