//! Finding the etcd, kube-apiserver and kube-controller-manager binaries.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::Error;

/// The binaries a directory must hold to run the control plane.
pub(crate) const BINARIES: [&str; 3] = ["etcd", "kube-apiserver", "kube-controller-manager"];

/// Finds the directory holding the control-plane binaries.
///
/// `KUBEBUILDER_ASSETS` wins when it names a directory with all three binaries (binaries a user
/// already has, e.g. from `setup-envtest`); otherwise `PARTNERCLOUD_CONTROLPLANE`, the directory
/// printed by `hack/controlplane.sh`.
pub fn find_assets() -> Result<PathBuf, Error> {
    resolve(
        env_dir("KUBEBUILDER_ASSETS"),
        env_dir("PARTNERCLOUD_CONTROLPLANE"),
    )
}

/// The decision behind [`find_assets`], apart from the environment.
fn resolve(kubebuilder: Option<PathBuf>, partnercloud: Option<PathBuf>) -> Result<PathBuf, Error> {
    let mut notes = Vec::new();
    for (var, dir) in [
        ("KUBEBUILDER_ASSETS", kubebuilder),
        ("PARTNERCLOUD_CONTROLPLANE", partnercloud),
    ] {
        let Some(dir) = dir else { continue };
        let missing = missing_binaries(&dir);
        if missing.is_empty() {
            return Ok(dir);
        }
        notes.push(format!(
            "{var}={} lacks {}",
            dir.display(),
            missing.join(", ")
        ));
    }
    notes.push(
        "run `make controlplane` (which runs hack/controlplane.sh) and set \
         PARTNERCLOUD_CONTROLPLANE to the directory it prints, or set KUBEBUILDER_ASSETS to a \
         directory with etcd, kube-apiserver, kube-controller-manager"
            .to_owned(),
    );
    Err(Error::MissingAssets {
        details: notes.join("; "),
    })
}

/// The value of an environment variable as a path, if set and not empty.
fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// Which of [`BINARIES`] are not executable files in `dir`.
fn missing_binaries(dir: &Path) -> Vec<&'static str> {
    BINARIES
        .into_iter()
        .filter(|binary| !is_executable(&dir.join(binary)))
        .collect()
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(binaries: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for binary in binaries {
            let path = dir.path().join(binary);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    #[test]
    fn kubebuilder_assets_win_when_complete() {
        let kb = dir_with(&BINARIES);
        let pc = dir_with(&BINARIES);
        let found = resolve(Some(kb.path().into()), Some(pc.path().into())).unwrap();
        assert_eq!(found, kb.path());
    }

    #[test]
    fn incomplete_kubebuilder_assets_fall_back() {
        let kb = dir_with(&["etcd"]);
        let pc = dir_with(&BINARIES);
        let found = resolve(Some(kb.path().into()), Some(pc.path().into())).unwrap();
        assert_eq!(found, pc.path());
    }

    #[test]
    fn error_names_missing_binaries_and_the_fix() {
        let pc = dir_with(&["etcd", "kube-apiserver"]);
        let message = resolve(None, Some(pc.path().into()))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("lacks kube-controller-manager"),
            "{message}"
        );
        assert!(message.contains("make controlplane"), "{message}");
        assert!(message.contains("KUBEBUILDER_ASSETS"), "{message}");
    }

    #[test]
    fn non_executable_files_do_not_count() {
        let dir = dir_with(&BINARIES);
        let etcd = dir.path().join("etcd");
        std::fs::set_permissions(&etcd, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(missing_binaries(dir.path()), ["etcd"]);
    }
}
