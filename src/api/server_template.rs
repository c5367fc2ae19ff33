//! `ServerTemplate`: a golden image that servers are deployed from.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::schema;
use super::virtual_server::ImageSource;

/// A golden image: a prepared system disk (Windows or Linux with the
/// 1C:Enterprise platform, a DBMS and settings) that VirtualServers are
/// deployed from with `spec.source.template`. It is imported from a URL or
/// captured hot from a configured server into a golden CDI DataVolume, and
/// published as a CDI DataSource (named like the template) that new disks
/// clone from. Changing `spec.source` makes a new version: the image is
/// imported or captured again into a new golden DataVolume and republished
/// once ready; the previous golden image stays published until then and is
/// removed afterwards. Servers already deployed keep their own disks, which
/// are independent copies: deleting the template or changing its source
/// never touches them.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnercloud.io",
    version = "v1alpha1",
    kind = "ServerTemplate",
    namespaced,
    status = "ServerTemplateStatus",
    shortname = "st",
    category = "partnercloud",
    derive = "PartialEq",
    doc = "A golden image that VirtualServers are deployed from.",
    validation = Rule::new("size(self.metadata.name) <= 48").message("metadata.name of a ServerTemplate must be at most 48 characters (it is a label value and names the golden disk, <name>-golden-<hash>)"),
    printcolumn(name = "OS", type_ = "string", json_path = ".spec.os.name"),
    printcolumn(name = "Disk", type_ = "string", json_path = ".spec.diskSize"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Used By", type_ = "integer", json_path = ".status.usedBy"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("!has(self.defaults) || !has(self.minimums) || !has(self.defaults.cores) || !has(self.minimums.cores) || self.defaults.cores >= self.minimums.cores").message("spec.defaults.cores must be at least spec.minimums.cores"))]
#[x_kube(validation = Rule::new("!has(self.defaults) || !has(self.minimums) || !has(self.defaults.memory) || !has(self.minimums.memory) || !isQuantity(self.defaults.memory) || !isQuantity(self.minimums.memory) || quantity(self.defaults.memory).compareTo(quantity(self.minimums.memory)) >= 0").message("spec.defaults.memory must be at least spec.minimums.memory"))]
#[serde(rename_all = "camelCase")]
pub struct ServerTemplateSpec {
    /// The operating system inside the image.
    pub os: OperatingSystem,

    /// Where the image comes from: exactly one of `image` or `server`.
    pub source: TemplateSource,

    /// Size of the golden disk (1Gi–64Ti). Servers deployed from the
    /// template need a system disk at least this large.
    #[schemars(schema_with = "schema::quantity")]
    #[x_kube(validation = Rule::new(schema::quantity_rule("1Gi", "64Ti")).message(schema::quantity_message("spec.diskSize", "1Gi", "64Ti")))]
    pub disk_size: Quantity,

    /// Size used for servers that omit `cores` or `memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<TemplateDefaults>,

    /// The smallest server the image works on; smaller servers get a
    /// `BelowTemplateMinimum` condition and are not built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimums: Option<TemplateMinimums>,

    /// Which namespaces may deploy from this template; only its own
    /// namespace by default.
    #[serde(default)]
    pub sharing: Sharing,
}

/// The operating system of a template.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OperatingSystem {
    /// `windows` or `linux`; decides sysprep versus cloud-init and the
    /// default devices.
    #[serde(rename = "type")]
    pub type_: OsType,
    /// A human name, e.g. `Windows Server 2022 + 1C:Enterprise 8.3.25 + PostgreSQL 16`.
    #[schemars(length(min = 1, max = 128))]
    pub name: String,
}

/// Operating system family.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OsType {
    Windows,
    Linux,
}

/// Where a template's image comes from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.image), has(self.server)].filter(x, x).size() == 1").message("spec.source must set exactly one of image, server"))]
pub struct TemplateSource {
    /// Import the image over HTTP(S). With `sha256`, the operator streams
    /// the image itself and the template becomes Ready only if the digest
    /// matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSource>,
    /// Capture the system disk (the first disk) of a configured
    /// VirtualServer through a VM snapshot: online while it runs (no
    /// downtime), offline when it is stopped; the server is not modified.
    /// Its data disks are not part of the template. The capture is taken
    /// once per source; once captured, the server may change or go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerCapture>,
}

/// Capture a template from a server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServerCapture {
    /// The VirtualServer's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The server's namespace; the template's namespace when omitted. Only
    /// the template's own namespace is accepted (otherwise the template
    /// reports `SourceInOtherNamespace`): capturing another namespace's
    /// server would copy a tenant's disk out of its namespace, and CDI
    /// cannot restore a volume snapshot across namespaces anyway. Capture
    /// in the server's namespace and share the template with
    /// `spec.sharing` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
    /// Whether the captured image is meant to be generalized on first boot
    /// (default true). Every server deployed from any template always gets a
    /// fresh machine identity — MAC address, firmware UUID and hostname
    /// derived from the server itself, the same mechanism as a hot copy —
    /// whatever this says. `generalize` is recorded as the label
    /// `partnercloud.io/generalize` on the golden image and its DataSource,
    /// so guest tooling (e.g. a sysprep unattend in the server's `userData`)
    /// knows the image still carries its source's OS-level identity.
    #[serde(default = "default_true")]
    pub generalize: bool,
}

fn default_true() -> bool {
    true
}

/// Default size of servers deployed from a template.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TemplateDefaults {
    /// Default virtual CPU cores (1–128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 128))]
    pub cores: Option<u32>,
    /// Default memory (128Mi–1Ti).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_quantity")]
    #[x_kube(validation = Rule::new(schema::quantity_rule("128Mi", "1Ti")).message(schema::quantity_message("spec.defaults.memory", "128Mi", "1Ti")))]
    pub memory: Option<Quantity>,
}

/// Minimum size of servers deployed from a template.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMinimums {
    /// Minimum virtual CPU cores (1–128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 128))]
    pub cores: Option<u32>,
    /// Minimum memory (128Mi–1Ti).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_quantity")]
    #[x_kube(validation = Rule::new(schema::quantity_rule("128Mi", "1Ti")).message(schema::quantity_message("spec.minimums.memory", "128Mi", "1Ti")))]
    pub memory: Option<Quantity>,
}

/// Which namespaces may deploy from a template.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.scope == 'Selector' ? has(self.namespaceSelector) : !has(self.namespaceSelector)").message("spec.sharing.namespaceSelector is required with scope Selector and only allowed with it"))]
pub struct Sharing {
    /// `Namespace` (default): only the template's namespace; `Selector`:
    /// namespaces matching `namespaceSelector`; `All`: every namespace.
    #[serde(default)]
    pub scope: SharingScope,
    /// Label selector over namespaces, for scope `Selector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
}

/// Reach of a template.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum SharingScope {
    #[default]
    Namespace,
    Selector,
    All,
}

/// Observed state of a ServerTemplate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerTemplateStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Pending`, `Importing`, `Verifying`, `Capturing`, `Ready` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<TemplatePhase>,
    /// Import or capture progress, e.g. `45.5%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Size of the golden disk in canonical form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Whether the image's SHA-256 was checked and matched `spec.source.image.sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_verified: Option<bool>,
    /// Number of VirtualServers (in any namespace) whose
    /// `spec.source.template` names this template.
    #[serde(default)]
    pub used_by: i32,
    /// The outcome of the operator's own SHA-256 check of
    /// `spec.source.image`, remembered so the image is not downloaded again
    /// on every reconcile. Changing the URL or the digest checks again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<ChecksumStatus>,
    /// The golden DataVolume (and claim) last published through the
    /// template's DataSource. It is kept while a new version of the source
    /// is imported or captured, and removed once the new one is published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_volume: Option<String>,
    /// `Ready` with a reason: `Importing`, `Verifying`, `Capturing`,
    /// `Publishing`, `Ready`; or why not: `ImportFailed`,
    /// `ChecksumMismatch`, `SourceServerNotFound`, `SourceNotRunning`,
    /// `SourceInOtherNamespace`, `SnapshotFailed`, `DiskSizeTooSmall`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A remembered SHA-256 check of an image.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChecksumStatus {
    /// The image URL as written in `spec.source.image.url` (before mirrors).
    pub url: String,
    /// The digest `spec.source.image.sha256` expected.
    pub expected: String,
    /// The digest of the bytes the operator read.
    pub actual: String,
}

/// Lifecycle phase of a template.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum TemplatePhase {
    Pending,
    Importing,
    Verifying,
    Capturing,
    Ready,
    Failed,
}
