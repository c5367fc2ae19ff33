//! What a pass creates, as pure functions of the policy, the server and
//! the time: a backup snapshot, and a restore drill's temporary server.
//! No client, no clock (the time is passed in), no randomness.

pub mod drill_server;
pub mod snapshot;
