//! partnercloud: a Kubernetes operator that lets 1C:Enterprise franchisees
//! run their clients' servers declaratively on KubeVirt.

pub mod api;
pub mod controllers;
pub mod controlplane;
pub mod crdgen;
