//! Kubeconfig files for client-certificate users, and kube clients built from them.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::Error;
use super::certs::CertFiles;

/// Name of the cluster and context in every kubeconfig the harness writes.
const CLUSTER: &str = "partnercloud-test";

/// Renders a kubeconfig for `user` that authenticates with a client certificate.
///
/// Certificates are referenced by absolute path rather than embedded, so the files stay
/// readable and the kubeconfig is only valid while the control plane's directory exists.
pub(crate) fn render(server: &str, ca_cert: &Path, user: &str, client: &CertFiles) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {CLUSTER}
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: {user}
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: {CLUSTER}
  context:
    cluster: {CLUSTER}
    user: {user}
current-context: {CLUSTER}
",
        server = quote(server),
        ca = quote(&ca_cert.display().to_string()),
        user = quote(user),
        cert = quote(&client.cert.display().to_string()),
        key = quote(&client.key.display().to_string()),
    )
}

/// A YAML double-quoted scalar; JSON string syntax is a subset of it, so user names and paths
/// with colons, quotes or spaces stay intact.
fn quote(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

/// Builds a kube client from a kubeconfig file the harness wrote.
pub(crate) async fn client(path: &Path) -> Result<kube::Client, Error> {
    let kubeconfig = Kubeconfig::read_from(path)?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    // kube falls back to HTTPS_PROXY when the kubeconfig names no proxy; the control plane is
    // on loopback, where a proxy can only get in the way.
    config.proxy_url = None;
    Ok(kube::Client::try_from(config)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn files(stem: &str) -> CertFiles {
        CertFiles {
            cert: PathBuf::from(format!("/tmp/cp dir/{stem}.crt")),
            key: PathBuf::from(format!("/tmp/cp dir/{stem}.key")),
        }
    }

    #[test]
    fn kubeconfig_names_server_ca_and_client_certificate() {
        let text = render(
            "https://127.0.0.1:40001",
            Path::new("/tmp/cp dir/ca.crt"),
            "alice",
            &files("alice"),
        );
        let parsed = Kubeconfig::from_yaml(&text).unwrap();

        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:40001"));
        assert_eq!(
            cluster.certificate_authority.as_deref(),
            Some("/tmp/cp dir/ca.crt")
        );

        assert_eq!(parsed.auth_infos[0].name, "alice");
        let user = parsed.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(
            user.client_certificate.as_deref(),
            Some("/tmp/cp dir/alice.crt")
        );
        assert_eq!(user.client_key.as_deref(), Some("/tmp/cp dir/alice.key"));

        let context = parsed.contexts[0].context.as_ref().unwrap();
        assert_eq!(context.user.as_deref(), Some("alice"));
        assert_eq!(parsed.current_context.as_deref(), Some(CLUSTER));
    }

    #[test]
    fn user_names_with_yaml_syntax_survive() {
        let user = "system:serviceaccount:ns:it's \"quoted\"";
        let text = render(
            "https://127.0.0.1:1",
            Path::new("/ca.crt"),
            user,
            &files("x"),
        );
        let parsed = Kubeconfig::from_yaml(&text).unwrap();
        assert_eq!(parsed.auth_infos[0].name, user);
    }
}
