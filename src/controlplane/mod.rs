//! A real, local Kubernetes control plane for integration tests and the `dev` command.
//!
//! [`ControlPlane::start`] runs etcd, kube-apiserver and, optionally, kube-controller-manager
//! (garbage collector, namespace, PVC protection and ClusterRole aggregation controllers only) on loopback ports, the envtest model of
//! controller-runtime. Users authenticate with client certificates signed by a throwaway CA and
//! are authorized by RBAC, so tenant isolation can be tested for real.
//!
//! Everything lives in one temporary directory ([`ControlPlane::dir`]): PKI, kubeconfigs, etcd
//! data and one log per component. Dropping the [`ControlPlane`] stops the components and
//! removes the directory; if it is never dropped (a `static`), the kernel kills the components
//! when the test process exits — see `process.rs`.
//!
//! The binaries come from [`find_assets`].

mod apiserver;
mod assets;
mod certs;
mod controller_manager;
mod crds;
mod error;
mod etcd;
mod kubeconfig;
mod kubevirt_crds;
mod ports;
mod process;
mod readiness;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use tempfile::TempDir;

pub use assets::find_assets;
pub use crds::install_crds;
pub use error::Error;
pub use kubevirt_crds::kubevirt_crds;

use certs::{ADMIN_USER, CONTROLLER_MANAGER_USER, CertFiles, CertificateAuthority, PkiFiles};
use ports::{Ports, loopback_url};
use process::{Processes, Spawner};

/// What to start.
#[derive(Debug, Clone)]
pub struct ControlPlaneOptions {
    /// Directory with `etcd`, `kube-apiserver` and `kube-controller-manager`; see [`find_assets`].
    pub assets_dir: PathBuf,
    /// CRDs to install before the controller manager starts, so its garbage collector knows
    /// their kinds from the start.
    pub crds: Vec<CustomResourceDefinition>,
    /// Whether to run kube-controller-manager (garbage collector, namespace, PVC protection and
    /// ClusterRole aggregation controllers).
    pub controller_manager: bool,
}

/// A running control plane. Dropping it stops every component and removes [`Self::dir`].
pub struct ControlPlane {
    processes: Processes,
    spawner: Spawner,
    ca: CertificateAuthority,
    pki: PkiFiles,
    layout: Layout,
    ports: Ports,
    server_url: String,
    admin_kubeconfig: PathBuf,
    /// Numbers user kubeconfigs so repeated calls for one user never overwrite each other.
    next_user: AtomicUsize,
    /// Declared last: removed only after the processes that write into it are gone.
    dir: TempDir,
}

/// Where things live inside the control plane's directory.
struct Layout {
    pki: PathBuf,
    logs: PathBuf,
    users: PathBuf,
    etcd_data: PathBuf,
}

impl Layout {
    fn create(root: &Path) -> Result<Self, Error> {
        let layout = Self {
            pki: root.join("pki"),
            logs: root.join("logs"),
            users: root.join("users"),
            etcd_data: root.join("etcd"),
        };
        for dir in [&layout.pki, &layout.logs, &layout.users, &layout.etcd_data] {
            std::fs::create_dir(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        }
        Ok(layout)
    }

    fn log(&self, component: &str) -> PathBuf {
        self.logs.join(format!("{component}.log"))
    }
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver, installs `opts.crds`, then starts kube-controller-manager
    /// if asked, waiting for each to be ready.
    ///
    /// On error everything started so far is stopped again; a component that did not become
    /// ready is reported with the end of its log.
    pub async fn start(opts: ControlPlaneOptions) -> Result<ControlPlane, Error> {
        let started = Instant::now();
        let mut plane = Self::prepare()?;
        plane.start_etcd(&opts.assets_dir).await?;
        plane.start_apiserver(&opts.assets_dir).await?;
        install_crds(&plane.admin_client().await?, &opts.crds).await?;
        if opts.controller_manager {
            plane.start_controller_manager(&opts.assets_dir).await?;
        }
        tracing::info!(
            elapsed = ?started.elapsed(),
            server = plane.server_url,
            dir = %plane.dir().display(),
            "control plane ready"
        );
        Ok(plane)
    }

    /// The API server's URL, `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// A kubeconfig for `partnercloud-admin` in `system:masters`, allowed everything.
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// A client with the identity of [`Self::admin_kubeconfig`].
    ///
    /// A client's connections belong to the tokio runtime it was created on; with a control plane
    /// shared between `#[tokio::test]`s, create clients in each test rather than sharing them.
    pub async fn admin_client(&self) -> Result<kube::Client, Error> {
        kubeconfig::client(&self.admin_kubeconfig).await
    }

    /// Issues a client certificate for `user` in `groups` (at most two) and writes a kubeconfig
    /// using it. The user has no permissions beyond what RBAC grants it.
    pub fn user_kubeconfig(&self, user: &str, groups: &[&str]) -> Result<PathBuf, Error> {
        let number = self.next_user.fetch_add(1, Ordering::Relaxed);
        let stem = format!("{number}-{}", file_stem(user));
        let files = self
            .ca
            .issue_client(user, groups)?
            .write(&self.layout.users, &stem)?;
        let path = self.layout.users.join(format!("{stem}.kubeconfig"));
        self.write_kubeconfig(&path, user, &files)?;
        Ok(path)
    }

    /// A client authenticating as `user` in `groups`; see [`Self::user_kubeconfig`].
    pub async fn user_client(&self, user: &str, groups: &[&str]) -> Result<kube::Client, Error> {
        kubeconfig::client(&self.user_kubeconfig(user, groups)?).await
    }

    /// The temporary directory holding PKI, kubeconfigs, etcd data and `logs/<component>.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the control plane; the same as dropping it.
    pub fn shutdown(self) {
        drop(self);
    }

    /// Creates the directory, PKI and kubeconfigs; starts nothing yet.
    fn prepare() -> Result<Self, Error> {
        let dir = tempfile::Builder::new()
            .prefix("partnercloud-controlplane-")
            .tempdir()
            .map_err(Error::io("creating the control-plane directory"))?;
        let layout = Layout::create(dir.path())?;
        let ca = CertificateAuthority::generate()?;
        let pki = PkiFiles::write(&ca, &layout.pki)?;
        let ports = Ports::pick()?;
        let plane = Self {
            processes: Processes::default(),
            spawner: Spawner::start()?,
            server_url: loopback_url("https", ports.apiserver),
            admin_kubeconfig: dir.path().join("admin.kubeconfig"),
            next_user: AtomicUsize::new(0),
            ca,
            pki,
            layout,
            ports,
            dir,
        };
        plane.write_kubeconfig(&plane.admin_kubeconfig, ADMIN_USER, &plane.pki.admin)?;
        Ok(plane)
    }

    fn write_kubeconfig(&self, path: &Path, user: &str, files: &CertFiles) -> Result<(), Error> {
        let text = kubeconfig::render(&self.server_url, &self.pki.ca_cert, user, files);
        certs::write_file(path, &text, 0o600)
    }

    async fn start_etcd(&mut self, assets: &Path) -> Result<(), Error> {
        let launch = etcd::launch(
            assets,
            &self.layout.etcd_data,
            &self.layout.log(etcd::NAME),
            &self.ports,
        );
        let process = self.processes.push(self.spawner.spawn(launch)?);
        let elapsed = etcd::wait(process, &self.ports).await?;
        tracing::info!(?elapsed, "etcd ready");
        Ok(())
    }

    async fn start_apiserver(&mut self, assets: &Path) -> Result<(), Error> {
        let launch = apiserver::launch(
            assets,
            &etcd::client_url(&self.ports),
            &self.pki,
            &self.layout.log(apiserver::NAME),
            &self.ports,
        );
        let admin = self.admin_client().await?;
        let process = self.processes.push(self.spawner.spawn(launch)?);
        let elapsed = apiserver::wait(process, &admin).await?;
        tracing::info!(?elapsed, "kube-apiserver ready");
        Ok(())
    }

    async fn start_controller_manager(&mut self, assets: &Path) -> Result<(), Error> {
        let kubeconfig = self.dir().join("kube-controller-manager.kubeconfig");
        self.write_kubeconfig(
            &kubeconfig,
            CONTROLLER_MANAGER_USER,
            &self.pki.controller_manager,
        )?;
        let launch = controller_manager::launch(
            assets,
            &kubeconfig,
            &self.pki,
            &self.layout.log(controller_manager::NAME),
            &self.ports,
        );
        let process = self.processes.push(self.spawner.spawn(launch)?);
        let elapsed = controller_manager::wait(process, &self.ports, &self.pki.ca_cert).await?;
        tracing::info!(?elapsed, "kube-controller-manager ready");
        Ok(())
    }
}

impl Drop for ControlPlane {
    /// Stops the components (SIGTERM, then SIGKILL after a grace period), ends the spawner
    /// thread, and — when the fields drop afterwards — removes the directory.
    fn drop(&mut self) {
        self.processes.shutdown();
        self.spawner.stop();
    }
}

/// A user name made safe as part of a file name.
fn file_stem(user: &str) -> String {
    user.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_keep_simple_names_and_replace_the_rest() {
        assert_eq!(file_stem("alice"), "alice");
        assert_eq!(
            file_stem("system:serviceaccount:ns/a b"),
            "system_serviceaccount_ns_a_b"
        );
        assert_eq!(file_stem("../etc"), ".._etc");
    }
}
