//! The plan for one template: which golden image versions exist, what is
//! published, who may clone it, and where the current version stands.
//! Produced by `validate`, consumed by `build` and `status`.

use crate::api::server_template::{ChecksumStatus, TemplatePhase};
use crate::kubevirt::data_volume::DataVolumeSpec;

/// Where the current version's golden disk comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum GoldenContent {
    /// Import over HTTP(S) (the URL after mirrors).
    Http { url: String },
    /// Restore the server's system disk from the capture's volume snapshot.
    VolumeSnapshot { namespace: String, name: String },
    /// The DataVolume exists; CDI refuses source changes, so it is applied
    /// with the spec it was created with.
    Existing(Box<DataVolumeSpec>),
}

/// A golden DataVolume to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct Golden {
    pub name: String,
    pub content: GoldenContent,
}

/// The VM snapshot a captured version is restored from.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureSnapshot {
    pub name: String,
    /// The VM of the server captured.
    pub vm: String,
}

/// Where the current version stands; becomes `phase`, `progress` and the
/// `Ready` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub phase: TemplatePhase,
    pub reason: &'static str,
    pub message: String,
    pub progress: Option<String>,
}

impl Stage {
    pub fn new(phase: TemplatePhase, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            phase,
            reason,
            message: message.into(),
            progress: None,
        }
    }

    pub fn with_progress(mut self, progress: Option<String>) -> Self {
        self.progress = progress;
        self
    }

    pub fn is_ready(&self) -> bool {
        self.phase == TemplatePhase::Ready
    }
}

/// Everything `build` and `status` need beyond the template itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The golden DataVolume name of the current source version.
    pub version: String,
    /// The current version's golden disk, unless it is not known yet
    /// (capture not ready) or rejected (checksum mismatch).
    pub golden: Option<Golden>,
    /// The golden disk published before the current source, kept until the
    /// current one is published.
    pub previous: Option<Golden>,
    /// For `source.server`: the snapshot to take, while it is needed.
    pub capture: Option<CaptureSnapshot>,
    /// The golden DataVolume whose claim the DataSource points at; none
    /// while nothing usable is published.
    pub publish: Option<String>,
    /// RBAC groups (besides the template's namespace) allowed to clone the
    /// published image; empty grants nothing.
    pub clone_groups: Vec<String>,
    /// `spec.source.server.generalize`, for the image's label.
    pub generalize: Option<bool>,
    /// The checksum result to remember in status.
    pub checksum: Option<ChecksumStatus>,
    pub stage: Stage,
}

impl Plan {
    /// The golden DataVolume the status remembers as last published.
    pub fn published_volume(&self) -> Option<String> {
        self.publish
            .clone()
            .or_else(|| self.previous.as_ref().map(|p| p.name.clone()))
    }
}

/// Stable condition reasons of a ServerTemplate.
pub mod reason {
    pub const IMPORTING: &str = "Importing";
    pub const IMPORT_FAILED: &str = "ImportFailed";
    pub const VERIFYING: &str = "Verifying";
    pub const CHECKSUM_MISMATCH: &str = "ChecksumMismatch";
    pub const CAPTURING: &str = "Capturing";
    pub const SOURCE_SERVER_NOT_FOUND: &str = "SourceServerNotFound";
    pub const SOURCE_NOT_RUNNING: &str = "SourceNotRunning";
    pub const SOURCE_IN_OTHER_NAMESPACE: &str = "SourceInOtherNamespace";
    pub const SNAPSHOT_FAILED: &str = "SnapshotFailed";
    pub const DISK_SIZE_TOO_SMALL: &str = "DiskSizeTooSmall";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const PUBLISHING: &str = "Publishing";
    pub const READY: &str = "Ready";
}
