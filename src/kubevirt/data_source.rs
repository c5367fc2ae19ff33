//! `cdi.kubevirt.io/v1beta1` DataSource: the stable name a golden image is
//! published under; new disks clone from it with `sourceRef`.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::data_volume::NamespacedName;
use super::{KvCondition, Other};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cdi.kubevirt.io",
    version = "v1beta1",
    kind = "DataSource",
    namespaced,
    status = "DataSourceStatus",
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceSpec {
    pub source: DataSourceSource,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceSource {
    /// The PVC holding the golden image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<NamespacedName>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceStatus {
    /// `Ready` says whether the source can be cloned from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<KvCondition>,
    #[serde(flatten)]
    pub other: Other,
}
