//! The BackupPolicy controller: fetch → validate → plan (pure) → write →
//! status.
//!
//! The decisions are pure and live in their own modules; nothing in them
//! talks to the API server, reads the clock or does I/O. Every function
//! takes the time it needs and the state the driver already fetched, and
//! returns what should happen, so the behaviour is tested without waiting
//! and without a cluster:
//!
//! - [`schedule`]: `spec.schedule` in `spec.timeZone`, its slots and DST.
//! - [`decision`]: whether a slot runs now, what was missed, when to wake.
//! - [`run_now`]: the explicit "run now" annotation.
//! - [`overlap`]: which servers start a slot and which are still busy.
//! - [`naming`]: snapshot and restore-drill names, labels, annotations.
//! - [`outcome`]: a snapshot's observed status judged into a backup outcome.
//! - [`judge`]: a listed snapshot read back into a judged backup.
//! - [`drill`]: where a restore drill in flight stands.
//! - [`retention`]: grandfather-father-son selection of what to delete.
//! - [`health`]: consecutive failures and the `Healthy` condition.
//! - [`plan`]: one pass, decided — everything to write, and the status.
//! - [`build`]: the snapshot and drill server a pass creates.
//! - [`status`]: the status and whether it changed.
//! - [`backup`] and [`kube_time`]: the shared input type and time conversion.
//!
//! Around them the driver: [`fetch`] and [`validate`].

pub mod backup;
pub mod build;
pub mod decision;
pub mod drill;
pub mod fetch;
pub mod health;
pub mod judge;
pub mod kube_time;
pub mod naming;
pub mod outcome;
pub mod overlap;
pub mod plan;
pub mod retention;
pub mod run_now;
pub mod schedule;
pub mod status;
pub mod validate;

#[cfg(test)]
mod tests_support;
