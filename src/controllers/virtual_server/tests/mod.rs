//! Pure tests of the VirtualServer controller, from the YAML fixtures under
//! `tests/fixtures/virtual_server/`: the plan (validate), every builder, and
//! the status. No cluster, no clock.

mod build;
mod fixtures;
mod plan;
mod status;
