//! The BackupPolicy controller's decisions, kept pure.
//!
//! Nothing here talks to the API server, reads the clock or does I/O: every
//! function takes the time it needs (`now`, creation times, deadlines) and
//! the state the driver already fetched, and returns what should happen.
//! That is where the behaviour lives, so it is tested here without waiting
//! and without a cluster; the reconcile driver only fetches, applies and
//! writes status around these calls.
//!
//! - [`schedule`]: `spec.schedule` in `spec.timeZone`, its slots and DST.
//! - [`decision`]: whether a slot runs now, what was missed, when to wake.
//! - [`run_now`]: the explicit "run now" annotation.
//! - [`overlap`]: which servers start a slot and which are still busy.
//! - [`naming`]: snapshot and restore-drill names, snapshot labels.
//! - [`outcome`]: a snapshot's observed status judged into a backup outcome.
//! - [`retention`]: grandfather-father-son selection of what to delete.
//! - [`health`]: consecutive failures and the `Healthy` condition.
//! - [`backup`] and [`kube_time`]: the shared input type and time conversion.

pub mod backup;
pub mod decision;
pub mod health;
pub mod kube_time;
pub mod naming;
pub mod outcome;
pub mod overlap;
pub mod retention;
pub mod run_now;
pub mod schedule;
