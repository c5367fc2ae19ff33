//! `PartnerAccount`: a franchisee, its clients, their quotas and its brand.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::schema;

/// A partner (1C:Enterprise franchisee) and its clients. Each client gets
/// its own namespace `<partner>-<client>` with a quota, the partner's admins
/// bound to manage partnercloud objects there, and a network policy that
/// keeps clients apart. Cluster-scoped; names are at most 30 characters so
/// that namespace names fit.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "partnercloud.io",
    version = "v1alpha1",
    kind = "PartnerAccount",
    status = "PartnerAccountStatus",
    shortname = "pa",
    category = "partnercloud",
    derive = "PartialEq",
    doc = "A partner (franchisee): its program, admins, clients with their namespaces and quotas, and branding.",
    validation = Rule::new("size(self.metadata.name) <= 30").message("metadata.name of a PartnerAccount must be at most 30 characters (it prefixes client namespace names)"),
    printcolumn(name = "Display Name", type_ = "string", json_path = ".spec.displayName"),
    printcolumn(name = "Program", type_ = "string", json_path = ".spec.program"),
    printcolumn(name = "Clients", type_ = "integer", json_path = ".status.clientCount"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("!has(self.branding) || self.program == 'WhiteLabel'").message("spec.branding is only allowed with program WhiteLabel"))]
#[x_kube(validation = Rule::new("self.program != 'WhiteLabel' || has(self.branding)").message("spec.branding is required with program WhiteLabel"))]
#[serde(rename_all = "camelCase")]
pub struct PartnerAccountSpec {
    /// The partner's name as shown to people.
    #[schemars(length(min = 1, max = 128))]
    pub display_name: String,

    /// The partner program: `Consolidated` (the partner pays for all its
    /// clients and earns a top-up bonus), `Referral` (each client pays for
    /// itself; the partner earns a commission), or `WhiteLabel` (the partner
    /// resells under its own brand and prices).
    pub program: Program,

    /// The partner's staff who manage its clients' servers, bound in every
    /// client namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub admins: Vec<AdminSubject>,

    /// The partner's clients; each gets its own namespace. Names are unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub clients: Vec<Client>,

    /// The pool shared by all clients together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<ResourceLimits>,

    /// White-label branding, published for the control panel. Only (and
    /// always) with program `WhiteLabel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding: Option<Branding>,

    /// Suspend the whole partner: every client's servers are stopped (never
    /// deleted) and new ones refused until this is false again.
    #[serde(default)]
    pub suspended: bool,

    /// What happens to client namespaces when the account (or a client) is
    /// removed: `Retain` (default) keeps them and their data, labelled
    /// orphaned; `Delete` deletes them.
    #[serde(default)]
    pub deletion_policy: PartnerDeletionPolicy,
}

/// Partner programs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Program {
    Consolidated,
    Referral,
    WhiteLabel,
}

/// A person, group or service account of the partner.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.kind == 'ServiceAccount' ? has(self.namespace) : !has(self.namespace)").message("spec.admins[].namespace is required for kind ServiceAccount and only allowed with it"))]
pub struct AdminSubject {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: SubjectKind,
    /// The user, group or service account name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The service account's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// Kinds of RBAC subject.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum SubjectKind {
    User,
    Group,
    ServiceAccount,
}

/// One client of the partner.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(oldSelf.namespace) || has(self.namespace)").message("spec.clients[].namespace cannot be removed once set"))]
pub struct Client {
    /// Client key, a DNS label of at most 32 characters; with the partner's
    /// name it forms the namespace name `<partner>-<client>`.
    #[schemars(
        length(min = 1, max = 32),
        regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// The client's company name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub display_name: Option<String>,
    /// When the client joined (YYYY-MM-DD); referral commission depends on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"))]
    pub since: Option<String>,
    /// What this client may use; unlimited within the partner's pool when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<ResourceLimits>,
    /// Stop the client's servers (nothing is deleted) and refuse new ones.
    #[serde(default)]
    pub suspended: bool,
    /// Use this existing namespace instead of `<partner>-<client>` (for a
    /// client migrated from elsewhere). Cannot change once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.clients[].namespace cannot change once set"))]
    pub namespace: Option<String>,
}

/// Limits counted from VirtualServer specs (guest cores and memory, disk
/// sizes, number of servers).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceLimits {
    /// Total virtual CPU cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100000))]
    pub cores: Option<u32>,
    /// Total guest memory, e.g. `256Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_quantity")]
    #[x_kube(validation = Rule::new(schema::quantity_rule("0", "1Pi")).message(schema::quantity_message("quota.memory", "0", "1Pi")))]
    pub memory: Option<Quantity>,
    /// Total disk size, e.g. `10Ti`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_quantity")]
    #[x_kube(validation = Rule::new(schema::quantity_rule("0", "16Pi")).message(schema::quantity_message("quota.storage", "0", "16Pi")))]
    pub storage: Option<Quantity>,
    /// Number of servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100000))]
    pub servers: Option<u32>,
}

/// White-label branding.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Branding {
    /// The brand clients see.
    #[schemars(length(min = 1, max = 128))]
    pub brand_name: String,
    /// The control panel's domain, e.g. `cloud.example-partner.ru`.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\\\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$')").message("spec.branding.domain must be a lower-case DNS name such as cloud.example.com"))]
    pub domain: String,
    /// HTTPS URL of the logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() == 'https'").message("spec.branding.logoUrl must be an https:// URL"))]
    pub logo_url: Option<String>,
    /// Brand colours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colors: Option<BrandColors>,
    /// Where the partner's clients get support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support: Option<SupportContact>,
}

/// Brand colours as `#rrggbb`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BrandColors {
    /// Main colour, `#rrggbb`.
    #[schemars(regex(pattern = "^#[0-9a-fA-F]{6}$"))]
    pub primary: String,
    /// Accent colour, `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^#[0-9a-fA-F]{6}$"))]
    pub accent: Option<String>,
}

/// Support contact details.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.email) || has(self.phone) || has(self.url)").message("spec.branding.support needs at least one of email, phone, url"))]
pub struct SupportContact {
    /// Support e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 3, max = 254),
        regex(pattern = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$")
    )]
    pub email: Option<String>,
    /// Support phone number in international form, e.g. `+7 495 123-45-67`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 32), regex(pattern = "^\\+[0-9 ()-]{6,31}$"))]
    pub phone: Option<String>,
    /// Support web page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() in ['http', 'https']").message("spec.branding.support.url must be an http(s) URL"))]
    pub url: Option<String>,
}

/// What happens to client namespaces when the account or client goes.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum PartnerDeletionPolicy {
    #[default]
    Retain,
    Delete,
}

/// Observed state of a PartnerAccount.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerAccountStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Number of clients.
    #[serde(default)]
    pub client_count: i32,
    /// Usage of each client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<ClientStatus>,
    /// Usage of all clients together, against `spec.quota`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<Usage>,
    /// `Ready` and `QuotaPressure` (past 90% of any limit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Usage of one client.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientStatus {
    /// The client's name from `spec.clients`.
    pub name: String,
    /// The client's namespace.
    pub namespace: String,
    /// Whether the client is suspended (by itself or with the partner).
    #[serde(default)]
    pub suspended: bool,
    /// What the client's servers use.
    pub usage: Usage,
}

/// Resources counted from VirtualServer specs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Number of servers.
    pub servers: u32,
    /// Guest cores.
    pub cores: u32,
    /// Guest memory, canonical form.
    pub memory: String,
    /// Disk size, canonical form.
    pub storage: String,
}
