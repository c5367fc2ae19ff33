//! kube-apiserver: serves the Kubernetes API on a loopback port, stores in etcd, authenticates
//! client certificates signed by the cluster CA and authorizes with RBAC.

use std::path::Path;
use std::time::Duration;

use super::Error;
use super::certs::PkiFiles;
use super::ports::{LOOPBACK, Ports};
use super::process::{Launch, Process};
use super::readiness::{get_ok, wait_ready};

pub(crate) const NAME: &str = "kube-apiserver";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The first address of this range is the `kubernetes` Service IP; the serving certificate
/// carries it as a SAN.
const SERVICE_CLUSTER_IP_RANGE: &str = "10.0.0.0/24";
const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// How to start kube-apiserver against the etcd at `etcd_url`.
pub(crate) fn launch(
    assets: &Path,
    etcd_url: &str,
    pki: &PkiFiles,
    log: &Path,
    ports: &Ports,
) -> Launch {
    Launch {
        name: NAME,
        program: assets.join(NAME),
        args: args(etcd_url, pki, ports),
        log: log.to_owned(),
    }
}

fn args(etcd_url: &str, pki: &PkiFiles, ports: &Ports) -> Vec<String> {
    let path = |path: &Path| path.display().to_string();
    vec![
        format!("--etcd-servers={etcd_url}"),
        format!("--secure-port={}", ports.apiserver),
        format!("--bind-address={LOOPBACK}"),
        format!("--advertise-address={LOOPBACK}"),
        format!("--tls-cert-file={}", path(&pki.serving.cert)),
        format!("--tls-private-key-file={}", path(&pki.serving.key)),
        format!("--client-ca-file={}", path(&pki.ca_cert)),
        "--authorization-mode=RBAC".to_owned(),
        format!("--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}"),
        format!("--service-account-issuer={SERVICE_ACCOUNT_ISSUER}"),
        format!(
            "--service-account-key-file={}",
            path(&pki.service_account_public)
        ),
        format!(
            "--service-account-signing-key-file={}",
            path(&pki.service_account_private)
        ),
        // The default reconciler publishes the advertise address in the `kubernetes` Endpoints,
        // which rejects loopback addresses and would log an error every few seconds.
        "--endpoint-reconciler-type=none".to_owned(),
        // No service-account controller runs, so no `default` ServiceAccount ever appears; this
        // plugin would then reject every Pod (the same choice as controller-runtime's envtest).
        "--disable-admission-plugins=ServiceAccount".to_owned(),
    ]
}

/// Waits until `/readyz` answers 200 to the admin identity.
pub(crate) async fn wait(process: &mut Process, admin: &kube::Client) -> Result<Duration, Error> {
    wait_ready(process, READY_TIMEOUT, || get_ok(admin, "readyz")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_on_loopback_with_rbac_and_client_certificates() {
        let args = args(
            "http://127.0.0.1:1",
            &PkiFiles::fixture(),
            &Ports::fixture(),
        );
        for expected in [
            "--etcd-servers=http://127.0.0.1:1",
            "--secure-port=3",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--tls-cert-file=/pki/serving.crt",
            "--tls-private-key-file=/pki/serving.key",
            "--client-ca-file=/pki/ca.crt",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--service-account-key-file=/pki/sa.pub",
            "--service-account-signing-key-file=/pki/sa.key",
        ] {
            assert!(args.iter().any(|arg| arg == expected), "missing {expected}");
        }
    }
}
