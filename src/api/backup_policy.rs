//! `BackupPolicy`: scheduled, verified backups of selected servers, with
//! grandfather-father-son retention.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::schema;

/// Backs up the VirtualServers in this namespace that match `selector`, on
/// a cron schedule in a time zone. Each run takes one VirtualMachineSnapshot
/// per server, named from server, policy and slot so that a retry never
/// makes a second one; a backup counts as good only when its snapshot is
/// complete and ready. Retention keeps the newest good backup of every
/// server whatever the rules say.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnercloud.io",
    version = "v1alpha1",
    kind = "BackupPolicy",
    namespaced,
    status = "BackupPolicyStatus",
    shortname = "bp",
    category = "partnercloud",
    derive = "PartialEq",
    doc = "Scheduled, verified backups of selected VirtualServers with retention rules.",
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(name = "Zone", type_ = "string", json_path = ".spec.timeZone"),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspend"),
    printcolumn(
        name = "Last Success",
        type_ = "date",
        json_path = ".status.lastSuccessfulTime"
    ),
    printcolumn(
        name = "Next",
        type_ = "string",
        json_path = ".status.nextScheduleTime"
    ),
    printcolumn(
        name = "Healthy",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Healthy\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct BackupPolicySpec {
    /// Which VirtualServers in this namespace to back up, by label. An
    /// empty selector selects every server in the namespace.
    pub selector: LabelSelector,

    /// When to take backups: a 5-field cron expression (minute hour
    /// day-of-month month day-of-week), e.g. `0 2 * * *` for 02:00 daily,
    /// or a macro such as `@daily`. Evaluated in `timeZone`.
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new(schema::cron_rule()).message("spec.schedule must be a 5-field cron expression (minute hour day-of-month month day-of-week, e.g. '0 2 * * *') or a macro like @daily"))]
    pub schedule: String,

    /// IANA time zone the schedule and the daily/weekly/monthly/yearly
    /// retention buckets are evaluated in, e.g. `Europe/Moscow`. Default `UTC`.
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new(schema::time_zone_rule()).message("spec.timeZone must be an IANA time zone name such as Europe/Moscow or UTC"))]
    pub time_zone: String,

    /// How many backups to keep.
    #[serde(default)]
    pub retention: Retention,

    /// Pause the schedule; resuming does not run missed slots.
    #[serde(default)]
    pub suspend: bool,

    /// If the newest missed slot is older than this when the operator gets
    /// to it (after downtime), it is skipped and counted as missed rather
    /// than run late. Default 3600 seconds.
    #[serde(default = "default_starting_deadline")]
    #[schemars(range(min = 60, max = 86400))]
    pub starting_deadline_seconds: i64,

    /// Time a run may take; a snapshot that is not ready by then fails the
    /// run for that server. Default 3600 seconds.
    #[serde(default = "default_run_deadline")]
    #[schemars(range(min = 60, max = 86400))]
    pub run_deadline_seconds: i64,

    /// After this many failed runs in a row the policy reports
    /// `Healthy=False` and emits a Warning event; it keeps trying. Default 3.
    #[serde(default = "default_max_failures")]
    #[schemars(range(min = 1, max = 100))]
    pub max_consecutive_failures: i32,

    /// `Filesystem` (default) freezes guest file systems through the guest
    /// agent; when the agent cannot freeze, the backup is recorded as
    /// `Crash` consistent. `Crash` never asks the guest.
    #[serde(default)]
    pub consistency: Consistency,

    /// Proof that backups can be restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,

    /// What happens to the backups when this policy is deleted: `Retain`
    /// (default) keeps them; `Delete` removes them.
    #[serde(default)]
    pub deletion_policy: BackupDeletionPolicy,
}

fn default_time_zone() -> String {
    "UTC".to_string()
}
fn default_starting_deadline() -> i64 {
    3600
}
fn default_run_deadline() -> i64 {
    3600
}
fn default_max_failures() -> i32 {
    3
}

/// Grandfather-father-son retention. Each rule keeps the newest good
/// backup of each of the last N periods (days, ISO weeks, months, years in
/// the policy's time zone); a backup kept by any rule is kept. At least one
/// rule must keep something. Default: `keepLast: 7`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.keepLast) ? self.keepLast : 0) + (has(self.keepDaily) ? self.keepDaily : 0) + (has(self.keepWeekly) ? self.keepWeekly : 0) + (has(self.keepMonthly) ? self.keepMonthly : 0) + (has(self.keepYearly) ? self.keepYearly : 0) > 0").message("spec.retention must keep at least one backup (set keepLast, keepDaily, keepWeekly, keepMonthly or keepYearly above 0)"))]
pub struct Retention {
    /// Keep the N newest good backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub keep_last: Option<u32>,
    /// Keep the newest good backup of each of the last N days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub keep_daily: Option<u32>,
    /// Keep the newest good backup of each of the last N ISO weeks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub keep_weekly: Option<u32>,
    /// Keep the newest good backup of each of the last N months.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub keep_monthly: Option<u32>,
    /// Keep the newest good backup of each of the last N years.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub keep_yearly: Option<u32>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep_last: Some(7),
            keep_daily: None,
            keep_weekly: None,
            keep_monthly: None,
            keep_yearly: None,
        }
    }
}

/// Consistency of a backup.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum Consistency {
    /// As if the power was cut: what was on disk at that instant.
    Crash,
    /// File systems frozen by the guest agent while the snapshot was taken.
    #[default]
    Filesystem,
}

/// Backup verification.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Verify {
    /// Restore drills: on this schedule, the newest good backup of each
    /// server is restored into a temporary server with no network, which
    /// must start; the backup is then marked verified and the temporary
    /// server deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_drill: Option<RestoreDrill>,
}

/// A scheduled restore drill.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreDrill {
    /// When to drill, a 5-field cron expression in the policy's time zone.
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new(schema::cron_rule()).message("spec.verify.restoreDrill.schedule must be a 5-field cron expression (minute hour day-of-month month day-of-week) or a macro like @weekly"))]
    pub schedule: String,
    /// How long the restored server may take to start. Default 1800 seconds.
    #[serde(default = "default_drill_timeout")]
    #[schemars(range(min = 60, max = 86400))]
    pub timeout_seconds: i64,
}

fn default_drill_timeout() -> i64 {
    1800
}

/// What happens to backups when their policy is deleted.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum BackupDeletionPolicy {
    #[default]
    Retain,
    Delete,
}

/// Observed state of a BackupPolicy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupPolicyStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The slot of the latest run that was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// When the latest run in which every server got a good backup finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,
    /// The next slot, in RFC 3339 with the policy's UTC offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<String>,
    /// Failed runs since the last fully successful one.
    #[serde(default)]
    pub consecutive_failures: i32,
    /// Slots skipped because a run was still in progress or the operator
    /// was down past the starting deadline.
    #[serde(default)]
    pub missed_runs: i64,
    /// The last "run now" token that was honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_now_token: Option<String>,
    /// The schedule settings `scheduleEffectiveSince` applies to, as last
    /// seen: when `schedule`, `timeZone`, `suspend` or the restore drill's
    /// schedule differ from these, the schedule has changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_schedule: Option<ObservedSchedule>,
    /// When the current schedule took effect: when the operator first saw
    /// the policy, or saw `schedule`, `timeZone`, `suspend` or the drill
    /// schedule change. Slots at or before it never run, so creating,
    /// editing or resuming a policy never fires a run by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_effective_since: Option<Time>,
    /// The slot of the latest restore drill started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drill_time: Option<Time>,
    /// The slot (or "run now" time) of the latest run whose outcome is
    /// counted in `consecutiveFailures`. A run is counted once, when none
    /// of its backups is in progress any more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_judged_run_time: Option<Time>,
    /// Backups made by this policy, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<BackupRecord>,
    /// `Ready` (the policy is valid and scheduled) and `Healthy` (recent
    /// runs succeed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One backup of one server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    /// The VirtualServer backed up.
    pub server: String,
    /// The VirtualMachineSnapshot's name (restore with `spec.source.backup.snapshot`).
    pub snapshot: String,
    /// The schedule slot the backup belongs to.
    pub slot: Time,
    /// `InProgress`, `Succeeded` or `Failed`.
    pub phase: BackupPhase,
    /// `Filesystem` when the guest was frozen, else `Crash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<Consistency>,
    /// When a restore drill last proved this backup restorable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Time>,
    /// Total restore size of the snapshot's volumes, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// Why a failed backup failed, a stable name: `SnapshotFailed`,
    /// `DeadlineExceeded` or `RestoreDrillFailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why a failed backup failed, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The settings that decide when runs happen, as the operator last saw
/// them (see `scheduleEffectiveSince`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedSchedule {
    /// `spec.schedule`.
    pub schedule: String,
    /// `spec.timeZone`.
    pub time_zone: String,
    /// `spec.suspend`.
    #[serde(default)]
    pub suspend: bool,
    /// `spec.verify.restoreDrill.schedule`, when drills are on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill_schedule: Option<String>,
}

/// Outcome of one backup.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum BackupPhase {
    InProgress,
    Succeeded,
    Failed,
}
