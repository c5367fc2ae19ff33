//! `VirtualServer`: one client server — its size, disks, where its system
//! disk comes from, whether it runs, and how the client reaches it.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::schema;

/// A client's virtual server. partnercloud renders it as a KubeVirt
/// VirtualMachine with one CDI DataVolume per disk, plus a Service and a
/// NetworkPolicy for each exposure, and reports progress in `status`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnercloud.io",
    version = "v1alpha1",
    kind = "VirtualServer",
    namespaced,
    status = "VirtualServerStatus",
    shortname = "vs",
    category = "partnercloud",
    derive = "PartialEq",
    doc = "A client's virtual server: size, disks, system disk source, power state and network exposure.",
    validation = Rule::new("size(self.metadata.name) <= 40").message("metadata.name of a VirtualServer must be at most 40 characters (it names the server's disks and services)"),
    validation = Rule::new("!has(self.spec.source.clone) || self.spec.source.clone.server != self.metadata.name").message("spec.source.clone.server cannot be the server itself"),
    printcolumn(name = "Cores", type_ = "integer", json_path = ".spec.cores"),
    printcolumn(name = "Memory", type_ = "string", json_path = ".spec.memory"),
    printcolumn(name = "Power", type_ = "string", json_path = ".spec.powerState"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Address",
        type_ = "string",
        json_path = ".status.addresses[0].ip"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.cores) || has(self.source.template)").message("spec.cores is required unless spec.source.template is set (then the template's defaults apply)"))]
#[x_kube(validation = Rule::new("self.network != 'Isolated' || !has(self.expose) || size(self.expose) == 0").message("spec.expose needs a network: a server with spec.network Isolated has no network interface to expose"))]
#[x_kube(validation = Rule::new("has(self.memory) || has(self.source.template)").message("spec.memory is required unless spec.source.template is set (then the template's defaults apply)"))]
#[serde(rename_all = "camelCase")]
pub struct VirtualServerSpec {
    /// Virtual CPU cores (1–128). May be omitted when deploying from a
    /// template: the template's `defaults.cores` is used. Changing it on a
    /// running server takes effect after a restart (condition
    /// `RestartRequired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 128))]
    pub cores: Option<u32>,

    /// Guest memory, e.g. `8Gi` (128Mi–1Ti, whole bytes). May be omitted
    /// when deploying from a template: the template's `defaults.memory` is
    /// used. Changing it on a running server takes effect after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_quantity")]
    #[x_kube(validation = Rule::new(schema::quantity_rule("128Mi", "1Ti")).message(schema::quantity_message("spec.memory", "128Mi", "1Ti")))]
    pub memory: Option<Quantity>,

    /// The server's disks. The first is the system disk and receives
    /// `spec.source`; the others are blank data disks. Names are unique.
    #[schemars(length(min = 1, max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    #[x_kube(validation = Rule::new("self[0].name == oldSelf[0].name").message("spec.disks[0] is the system disk: it cannot be renamed, replaced or moved (add data disks after it)"))]
    pub disks: Vec<DiskSpec>,

    /// Where the system disk comes from: exactly one of `template`,
    /// `image`, `iso`, `blank`, `clone`, `backup`. Fixed at creation, except
    /// `iso.eject`.
    #[x_kube(validation = Rule::new("has(self.iso) ? (has(oldSelf.iso) && self.iso.url == oldSelf.iso.url) : self == oldSelf").message("spec.source cannot change after the server is created (only spec.source.iso.eject may)"))]
    #[x_kube(validation = Rule::new("!has(oldSelf.iso) || !has(oldSelf.iso.eject) || !oldSelf.iso.eject || (has(self.iso) && has(self.iso.eject) && self.iso.eject)").message("spec.source.iso.eject cannot be undone: an ejected ISO stays ejected (its CD-ROM would boot before the installed system again)"))]
    pub source: ServerSource,

    /// `Running` (default) keeps the server on; `Stopped` shuts it down.
    /// Disks are kept either way.
    #[serde(default)]
    pub power_state: PowerState,

    /// Network services reachable from outside the cluster, each a
    /// LoadBalancer Service limited to `allowFrom` plus a matching
    /// NetworkPolicy. Names are unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub expose: Vec<Exposure>,

    /// `Pod` (default): one network interface on the cluster network, the
    /// way exposures reach the server. `Isolated`: no network interface at
    /// all, so nothing reaches the server and it reaches nothing — what a
    /// restore drill boots a copy of a client's data with (a NetworkPolicy
    /// cannot do that: policies only ever add allowed traffic). Fixed at
    /// creation, since the guest sees it as hardware.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.network is fixed once the server is created"))]
    pub network: NetworkMode,

    /// First-boot configuration from a Secret in this namespace:
    /// cloud-init user data for Linux, an unattend.xml for Windows sysprep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<UserData>,

    /// What happens to the disks when this server is deleted: `Delete`
    /// (default) removes them with the server; `Retain` keeps its
    /// DataVolumes and volumes, labelled with the server's name, for a later
    /// restore or inspection.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// One disk of the server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DiskSpec {
    /// Disk name, a DNS label (e.g. `system`, `data`) of at most 20
    /// characters; its DataVolume is named `<server>-<name>`. `cdrom` and
    /// `firstboot` are reserved for the installation ISO and first-boot data.
    #[schemars(
        length(min = 1, max = 20),
        regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    #[x_kube(validation = Rule::new("!(self in ['cdrom', 'firstboot'])").message("spec.disks[].name cdrom and firstboot are reserved"))]
    pub name: String,

    /// Disk size, e.g. `80Gi` (1Mi–64Ti, whole bytes). A disk deployed
    /// from a template must be at least the template's disk size.
    #[schemars(schema_with = "schema::quantity")]
    #[x_kube(validation = Rule::new(schema::quantity_rule("1Mi", "64Ti")).message(schema::quantity_message("spec.disks[].size", "1Mi", "64Ti")))]
    #[x_kube(validation = Rule::new("!isQuantity(self) || !isQuantity(oldSelf) || quantity(self).compareTo(quantity(oldSelf)) >= 0").message("spec.disks[].size cannot shrink: the disk's data would not fit"))]
    #[x_kube(validation = Rule::new("!isQuantity(self) || !isQuantity(oldSelf) || quantity(self).compareTo(quantity(oldSelf)) <= 0").message("spec.disks[].size cannot grow yet: an existing disk keeps the size it was created with (add a data disk for more space)"))]
    pub size: Quantity,

    /// StorageClass for the disk; the cluster default when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class: Option<String>,
}

/// Where the system disk's contents come from. Exactly one member is set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.template), has(self.image), has(self.iso), has(self.blank), has(self.clone), has(self.backup)].filter(x, x).size() == 1").message("spec.source must set exactly one of template, image, iso, blank, clone, backup"))]
pub struct ServerSource {
    /// Deploy from a ServerTemplate (a golden image). The template must be
    /// Ready and shared with this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateRef>,

    /// Import a disk image (qcow2, raw, or compressed) over HTTP(S).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSource>,

    /// Install from an ISO: the system disk starts blank and the ISO is
    /// attached as a bootable CD-ROM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso: Option<IsoSource>,

    /// Start with an empty system disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blank: Option<BlankSource>,

    /// Hot copy of another server in this namespace: its disks are
    /// snapshotted while it runs (no downtime) and the copy gets a fresh
    /// identity (MAC address, firmware UUID, hostname).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone: Option<CloneSource>,

    /// Restore a backup (a VirtualMachineSnapshot in this namespace) as a
    /// new server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSource>,
}

/// A reference to a ServerTemplate.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRef {
    /// The ServerTemplate's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The template's namespace; this server's namespace when omitted. The
    /// template's `spec.sharing` must allow this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
}

/// A disk image fetched over HTTP(S).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageSource {
    /// The image URL (http or https).
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new(schema::HTTP_URL_RULE).message("url must be an http:// or https:// URL with a host"))]
    pub url: String,
    /// Expected SHA-256 of the image file, 64 lower-case hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[a-f0-9]{64}$"))]
    pub sha256: Option<String>,
}

/// An installation ISO.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IsoSource {
    /// The ISO URL (http or https). Fixed at creation.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new(schema::HTTP_URL_RULE).message("spec.source.iso.url must be an http:// or https:// URL with a host"))]
    pub url: String,
    /// Set to `true` once the operating system is installed: the CD-ROM is
    /// removed from the server and its imported ISO volume deleted. Leaving
    /// it `false` never blocks anything; the server simply boots from its
    /// system disk first once that disk is bootable.
    #[serde(default)]
    pub eject: bool,
}

/// An empty system disk.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct BlankSource {}

/// A hot copy of a running server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CloneSource {
    /// Name of the VirtualServer to copy, in this namespace.
    #[schemars(length(min = 1, max = 253))]
    pub server: String,
}

/// A backup to restore.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupSource {
    /// Name of the VirtualMachineSnapshot (as listed in a BackupPolicy's
    /// `status.backups[].snapshot`), in this namespace.
    #[schemars(length(min = 1, max = 253))]
    pub snapshot: String,
}

/// Whether the server should be running.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum PowerState {
    #[default]
    Running,
    Stopped,
}

/// Whether the server has a network interface.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum NetworkMode {
    #[default]
    Pod,
    Isolated,
}

/// What happens to disks when their owner is deleted.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum DeletionPolicy {
    #[default]
    Delete,
    Retain,
}

/// A network service of the server, reachable from `allowFrom`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.preset != 'custom' || has(self.port)").message("spec.expose[].port is required for the custom preset"))]
#[x_kube(validation = Rule::new("!(self.preset in ['rdp', 'smb']) || (has(self.allowFrom) && size(self.allowFrom) > 0)").message("spec.expose[].allowFrom is required for rdp and smb: list the client's networks (0.0.0.0/0 only if you really mean the whole internet)"))]
pub struct Exposure {
    /// Exposure name: lower-case letters, digits and '-', starting with a
    /// letter, unique within the server. The Service and NetworkPolicy for
    /// it are named `<name>-<server>`.
    #[schemars(
        length(min = 1, max = 15),
        regex(pattern = "^[a-z]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,

    /// The service: `rdp` (3389/TCP), `smb` (445/TCP), `ftp` (21/TCP plus
    /// passive ports 30000–30009), `sftp` and `ssh` (22/TCP), or `custom`
    /// with `port` and `protocol`.
    pub preset: Preset,

    /// Port in the guest (1–65535). Overrides the preset's port; required
    /// for `custom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,

    /// `TCP` (default) or `UDP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,

    /// Source networks allowed to connect, as CIDRs (`203.0.113.0/24`,
    /// `2001:db8::/32`). Required for `rdp` and `smb`; when omitted for other
    /// presets, any source may connect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 3, max = 43)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[x_kube(validation = Rule::new("self.all(c, isCIDR(c))").message("spec.expose[].allowFrom entries must be CIDRs such as 203.0.113.0/24 or 2001:db8::/32"))]
    pub allow_from: Vec<String>,
}

/// Known exposure presets.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Rdp,
    Smb,
    Ftp,
    Sftp,
    Ssh,
    Custom,
}

/// Transport protocol of an exposure.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum Protocol {
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
}

/// First-boot configuration taken from a Secret. KubeVirt reads fixed
/// keys: `userdata` (and optionally `networkdata`) for cloud-init,
/// `unattend.xml` or `autounattend.xml` for sysprep.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserData {
    /// Name of the Secret in this namespace.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// `CloudInit` (default, Linux) or `Sysprep` (Windows unattend.xml).
    #[serde(default)]
    pub format: UserDataFormat,
}

/// How the guest consumes its first-boot configuration.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum UserDataFormat {
    #[default]
    CloudInit,
    Sysprep,
}

/// Observed state of a VirtualServer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServerStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Summary of where the server is in its life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ServerPhase>,

    /// `Ready`, `DisksReady`, `Running`, `Exposed`, each with a reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// Guest IP addresses as reported by the virtualization layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<ServerAddress>,

    /// Provisioning state of each disk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<DiskStatus>,

    /// Where each exposure can be reached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointStatus>,

    /// The newest good backup of this server, written by the BackupPolicy
    /// that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<LastBackup>,

    /// The size this server was admitted at against its client's quota and
    /// its partner's pool (servers in a partner's client namespaces only).
    /// It is the server's share of the quota: the operator counts every
    /// server at its admitted size and decides a resize on the difference.
    /// Kept in status, which only the operator may write, so it cannot be
    /// forged by editing the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted: Option<AdmittedSize>,
}

/// A server's admitted share of its client's quota and its partner's pool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdmittedSize {
    /// Guest cores.
    pub cores: u32,
    /// Guest memory, canonical form (e.g. `8Gi`).
    pub memory: String,
    /// Sum of the disk sizes, canonical form (e.g. `620Gi`).
    pub storage: String,
}

/// Lifecycle phase of a server.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum ServerPhase {
    Pending,
    Provisioning,
    Starting,
    Running,
    Stopping,
    Stopped,
    Failed,
    Terminating,
}

/// One guest address.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerAddress {
    /// The IP address.
    pub ip: String,
    /// The guest interface it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

/// Provisioning state of one disk.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiskStatus {
    /// The disk's name from `spec.disks`.
    pub name: String,
    /// The DataVolume's phase (e.g. `ImportInProgress`, `Succeeded`, `Failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Import or clone progress, e.g. `45.5%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Size in canonical form, e.g. `80Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

/// Where one exposure is reachable.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointStatus {
    /// The exposure's name from `spec.expose`.
    pub name: String,
    /// External address of the load balancer, once assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Port clients connect to.
    pub port: u16,
    /// `TCP` or `UDP`.
    pub protocol: Protocol,
}

/// The newest good backup of a server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastBackup {
    /// The BackupPolicy that made it.
    pub policy: String,
    /// The VirtualMachineSnapshot's name (usable in `spec.source.backup`).
    pub snapshot: String,
    /// When the backup completed.
    pub time: Time,
}
