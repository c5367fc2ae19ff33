//! partnercloud: a Kubernetes operator that lets 1C:Enterprise franchisees
//! run their clients' servers declaratively on KubeVirt.

pub mod api;
pub mod controllers;
pub mod controlplane;
pub mod crdgen;
pub mod dev;
pub mod health;
pub mod http_fetch;
pub mod image_server;
pub mod kubevirt;
pub mod manifests;
pub mod simulator;
