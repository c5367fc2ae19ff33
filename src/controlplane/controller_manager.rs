//! kube-controller-manager, running only the controllers the operator relies on: the garbage
//! collector (owner references), the namespace controller (namespace deletion), the volume
//! protection controllers (they lift the `kubernetes.io/pvc-protection` finalizer of unused
//! claims, without which a namespace holding disks never finishes deleting) and ClusterRole
//! aggregation (the client-admin role is aggregated).

use std::path::Path;
use std::time::Duration;

use super::Error;
use super::certs::PkiFiles;
use super::ports::{LOOPBACK, Ports, loopback_url};
use super::process::{Launch, Process};
use super::readiness::{get_ok, wait_ready};

pub(crate) const NAME: &str = "kube-controller-manager";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const CONTROLLERS: &str =
    "garbagecollector,namespace,pvc-protection,pv-protection,clusterrole-aggregation";

/// How to start kube-controller-manager with the identity in `kubeconfig`.
pub(crate) fn launch(
    assets: &Path,
    kubeconfig: &Path,
    pki: &PkiFiles,
    log: &Path,
    ports: &Ports,
) -> Launch {
    Launch {
        name: NAME,
        program: assets.join(NAME),
        args: args(kubeconfig, pki, ports),
        log: log.to_owned(),
    }
}

fn args(kubeconfig: &Path, pki: &PkiFiles, ports: &Ports) -> Vec<String> {
    let kubeconfig = kubeconfig.display();
    vec![
        format!("--kubeconfig={kubeconfig}"),
        format!("--controllers={CONTROLLERS}"),
        "--leader-elect=false".to_owned(),
        // Served only so readiness can be probed on /healthz; it reuses the API server's
        // certificate, whose SANs include 127.0.0.1.
        format!("--bind-address={LOOPBACK}"),
        format!("--secure-port={}", ports.controller_manager),
        format!("--tls-cert-file={}", pki.serving.cert.display()),
        format!("--tls-private-key-file={}", pki.serving.key.display()),
    ]
}

/// Waits until `/healthz` answers 200. The path is open to anonymous requests, so the probe
/// needs only the CA to trust the serving certificate.
///
/// No `--authentication-kubeconfig` is passed: with one, the controller manager reads the
/// request-header CA from `kube-system/extension-apiserver-authentication`, which this API server
/// does not publish, and logs an error several times a second.
pub(crate) async fn wait(
    process: &mut Process,
    ports: &Ports,
    ca_cert: &Path,
) -> Result<Duration, Error> {
    let client = health_client(ports, ca_cert)?;
    wait_ready(process, READY_TIMEOUT, || get_ok(&client, "healthz")).await
}

fn health_client(ports: &Ports, ca_cert: &Path) -> Result<kube::Client, Error> {
    let url = loopback_url("https", ports.controller_manager);
    let uri = url.parse().map_err(|err| Error::Io {
        context: format!("parsing {url}"),
        source: std::io::Error::other(err),
    })?;
    let mut config = kube::Config::new(uri);
    config.root_cert_file = Some(ca_cert.to_owned());
    Ok(kube::Client::try_from(config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_only_the_controllers_we_rely_on_without_leader_election() {
        let args = args(
            Path::new("/kcm.kubeconfig"),
            &PkiFiles::fixture(),
            &Ports::fixture(),
        );
        for expected in [
            "--kubeconfig=/kcm.kubeconfig",
            "--controllers=garbagecollector,namespace,pvc-protection,pv-protection,clusterrole-aggregation",
            "--leader-elect=false",
            "--secure-port=4",
            "--bind-address=127.0.0.1",
            "--tls-cert-file=/pki/serving.crt",
        ] {
            assert!(args.iter().any(|arg| arg == expected), "missing {expected}");
        }
    }
}
