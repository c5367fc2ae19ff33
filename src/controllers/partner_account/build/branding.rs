//! White label: the partner's own namespace and the branding ConfigMap a
//! control panel reads from it.
//!
//! The ConfigMap is flat `data` — one key per setting, absent settings
//! absent — so a panel can mount it as files or read it as environment
//! variables without parsing anything. Values are published exactly as the
//! spec states them (admission already checked the domain, URLs and
//! `#rrggbb` colours).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Owner;
use crate::api::partner_account::Branding;
use crate::controllers::partner_account::naming;

/// Name of the branding ConfigMap in the partner namespace.
pub const CONFIG_MAP_NAME: &str = "partnercloud-branding";

/// ConfigMap keys.
pub const BRAND_NAME: &str = "brandName";
pub const DOMAIN: &str = "domain";
pub const LOGO_URL: &str = "logoUrl";
pub const PRIMARY_COLOR: &str = "primaryColor";
pub const ACCENT_COLOR: &str = "accentColor";
pub const SUPPORT_EMAIL: &str = "supportEmail";
pub const SUPPORT_PHONE: &str = "supportPhone";
pub const SUPPORT_URL: &str = "supportUrl";

/// The partner namespace `partner-<partner>`, labelled with the partner (and
/// no client label — so clients' egress may reach it, see the network
/// policy).
///
/// It follows `spec.deletionPolicy` like client namespaces: a partner may
/// keep things of its own there (shared templates, say), and by default
/// deleting the account deletes none of it. The ConfigMap inside is always
/// owned.
pub fn partner_namespace(owner: &Owner, namespace: &str) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.to_string()),
            labels: Some(naming::labels(&owner.partner, None)),
            owner_references: owner.owned_if_delete_policy(),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// The branding ConfigMap in the partner namespace.
pub fn config_map(owner: &Owner, namespace: &str, branding: &Branding) -> ConfigMap {
    let mut data = BTreeMap::from([
        (BRAND_NAME.to_string(), branding.brand_name.clone()),
        (DOMAIN.to_string(), branding.domain.clone()),
    ]);
    let mut put = |key: &str, value: Option<&String>| {
        if let Some(v) = value {
            data.insert(key.to_string(), v.clone());
        }
    };
    put(LOGO_URL, branding.logo_url.as_ref());
    if let Some(colors) = &branding.colors {
        put(PRIMARY_COLOR, Some(&colors.primary));
        put(ACCENT_COLOR, colors.accent.as_ref());
    }
    if let Some(support) = &branding.support {
        put(SUPPORT_EMAIL, support.email.as_ref());
        put(SUPPORT_PHONE, support.phone.as_ref());
        put(SUPPORT_URL, support.url.as_ref());
    }
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(CONFIG_MAP_NAME.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(naming::labels(&owner.partner, None)),
            owner_references: owner.owned(),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::partner_account::build::{BrandingChildren, ClusterNetwork, build};
    use crate::controllers::partner_account::fixtures::{WHITE_LABEL, partner};

    const EXPECTED_CONFIG_MAP: &str = r##"
apiVersion: v1
kind: ConfigMap
metadata:
  name: partnercloud-branding
  namespace: partner-alfa-soft
  labels:
    app.kubernetes.io/managed-by: partnercloud
    partnercloud.io/partner: alfa-soft
  ownerReferences:
    - apiVersion: partnercloud.io/v1alpha1
      kind: PartnerAccount
      name: alfa-soft
      uid: 6f1c2a9e-3b1d-4c55-9a77-0d2f5e8b4a10
      controller: true
      blockOwnerDeletion: true
data:
  brandName: AlfaCloud
  domain: cloud.alfa-soft.example
  logoUrl: https://cdn.alfa-soft.example/logo.svg
  primaryColor: "#0A4DA2"
  accentColor: "#F5A623"
  supportEmail: support@alfa-soft.example
  supportPhone: "+7 495 123-45-67"
"##;

    fn branding_of(p: &crate::api::PartnerAccount) -> BrandingChildren {
        build(p, &ClusterNetwork::default())
            .unwrap()
            .branding
            .expect("white label has branding")
    }

    #[test]
    fn every_branding_setting_is_published_as_its_own_key() {
        let expected: ConfigMap = serde_saphyr::from_str(EXPECTED_CONFIG_MAP).unwrap();
        assert_eq!(branding_of(&partner(WHITE_LABEL)).config_map, expected);
    }

    #[test]
    fn absent_settings_are_absent_keys() {
        let mut p = partner(WHITE_LABEL);
        let b = p.spec.branding.as_mut().unwrap();
        b.logo_url = None;
        b.colors = None;
        b.support = None;
        let data = branding_of(&p).config_map.data.unwrap();
        assert_eq!(
            data.keys().map(String::as_str).collect::<Vec<_>>(),
            [BRAND_NAME, DOMAIN]
        );
    }

    #[test]
    fn partner_namespace_has_no_client_label_so_clients_may_reach_it() {
        let ns = branding_of(&partner(WHITE_LABEL)).namespace;
        assert_eq!(ns.metadata.name.as_deref(), Some("partner-alfa-soft"));
        let labels = ns.metadata.labels.unwrap();
        assert_eq!(labels[naming::PARTNER_LABEL], "alfa-soft");
        assert!(!labels.contains_key(naming::CLIENT_LABEL));
    }

    #[test]
    fn partner_namespace_follows_the_deletion_policy_config_map_is_owned() {
        let mut p = partner(WHITE_LABEL);
        let retained = branding_of(&p);
        assert_eq!(retained.namespace.metadata.owner_references, None);
        assert!(retained.config_map.metadata.owner_references.is_some());
        p.spec.deletion_policy = crate::api::partner_account::PartnerDeletionPolicy::Delete;
        let deleted = branding_of(&p);
        assert!(deleted.namespace.metadata.owner_references.is_some());
    }
}
