//! Deterministic names of a template's children.
//!
//! The golden image is named per *version* of the source: a short hash of
//! what `spec.source` says (URL and digest, or the server captured). A
//! changed source therefore gets a new golden DataVolume next to the old
//! one, and the old one is removed only once the new one is published.
//! Reverting the source to an earlier value finds that version's name again.

use sha2::{Digest, Sha256};

use crate::api::server_template::TemplateSource;

/// Eight hex digits identifying a version of the template's source.
pub fn version(source: &TemplateSource, template_namespace: &str) -> String {
    let identity = match (&source.image, &source.server) {
        (Some(image), _) => format!(
            "image\n{}\n{}",
            image.url,
            image.sha256.as_deref().unwrap_or("")
        ),
        (None, Some(server)) => format!(
            "server\n{}\n{}",
            server.namespace.as_deref().unwrap_or(template_namespace),
            server.name
        ),
        (None, None) => "none".to_string(),
    };
    Sha256::digest(identity.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The golden DataVolume (and its claim) of one version.
pub fn golden(template: &str, version: &str) -> String {
    format!("{template}-golden-{version}")
}

/// The VM snapshot a captured version is restored from.
pub fn capture(template: &str, version: &str) -> String {
    format!("{template}-capture-{version}")
}

/// The Role and RoleBinding that let other namespaces clone the golden image.
pub fn clone_grant(template: &str) -> String {
    format!("partnercloud-template-{template}-clone")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::server_template::ServerCapture;
    use crate::api::virtual_server::ImageSource;

    fn image(url: &str, sha256: Option<&str>) -> TemplateSource {
        TemplateSource {
            image: Some(ImageSource {
                url: url.into(),
                sha256: sha256.map(str::to_string),
            }),
            server: None,
        }
    }

    #[test]
    fn a_changed_source_is_a_new_version_and_the_same_source_the_same() {
        let a = version(&image("https://x/a.qcow2", None), "ns");
        assert_eq!(a.len(), 8);
        assert_eq!(a, version(&image("https://x/a.qcow2", None), "other-ns"));
        assert_ne!(a, version(&image("https://x/b.qcow2", None), "ns"));
        assert_ne!(
            a,
            version(&image("https://x/a.qcow2", Some(&"0".repeat(64))), "ns")
        );
        let captured = |ns: Option<&str>, generalize| TemplateSource {
            image: None,
            server: Some(ServerCapture {
                name: "golden".into(),
                namespace: ns.map(str::to_string),
                generalize,
            }),
        };
        assert_eq!(
            version(&captured(None, true), "ns"),
            version(&captured(Some("ns"), false), "ns"),
            "generalize changes deployments, not the captured disk"
        );
        assert_ne!(
            version(&captured(None, true), "ns"),
            version(&captured(None, true), "other")
        );
        assert_eq!(golden("win", &a), format!("win-golden-{a}"));
    }
}
