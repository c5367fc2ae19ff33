//! The reconcilers. Each is a short pipeline — fetch, validate, build,
//! apply, status — with its own module per custom resource.

pub mod apply;
pub mod context;
pub mod labels;
pub mod names;
pub mod ownership;
pub mod reporter;
pub mod virtual_server;
