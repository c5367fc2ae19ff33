//! The one error type of the control-plane harness.

use std::io;
use std::time::Duration;

/// Why the test control plane could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No directory with etcd, kube-apiserver and kube-controller-manager was found.
    #[error("control-plane binaries not found: {details}")]
    MissingAssets {
        /// What was looked at and what is missing there.
        details: String,
    },

    /// A control-plane binary could not be started at all.
    #[error("could not start {binary}")]
    Spawn {
        /// Path of the binary.
        binary: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// A component was started but did not answer its readiness probe in time, or exited.
    #[error(
        "{component} did not become ready: {reason}\n--- last lines of its log ---\n{log_tail}"
    )]
    NotReady {
        /// `etcd`, `kube-apiserver` or `kube-controller-manager`.
        component: String,
        /// Timeout or exit status, with the last probe error.
        reason: String,
        /// The end of the component's combined stdout/stderr.
        log_tail: String,
    },

    /// A certificate or key could not be generated.
    #[error("could not issue certificate for {subject}")]
    Certificate {
        /// Common name of the certificate being issued.
        subject: String,
        /// What rcgen said.
        #[source]
        source: rcgen::Error,
    },

    /// A client certificate was requested with more groups than the harness can encode.
    #[error("user {user}: at most {max} groups can be put into a client certificate, got {count}")]
    TooManyGroups {
        /// The requested user name.
        user: String,
        /// How many groups were requested.
        count: usize,
        /// How many are supported.
        max: usize,
    },

    /// A kubeconfig written by the harness could not be loaded.
    #[error("could not load kubeconfig")]
    Kubeconfig(#[from] kube::config::KubeconfigError),

    /// A request to the API server failed.
    #[error("Kubernetes API request failed")]
    Kube(#[from] kube::Error),

    /// Watching a CustomResourceDefinition for its Established condition failed.
    #[error("watching CustomResourceDefinition failed")]
    Wait(#[from] kube::runtime::wait::Error),

    /// A CustomResourceDefinition to install has no `metadata.name`.
    #[error("a CustomResourceDefinition to install has no metadata.name")]
    UnnamedCrd,

    /// A CustomResourceDefinition was applied but not Established in time.
    #[error("CustomResourceDefinition {name} not Established within {timeout:?}")]
    CrdNotEstablished {
        /// `metadata.name` of the CRD.
        name: String,
        /// How long the harness waited.
        timeout: Duration,
    },

    /// A file or directory operation of the harness failed.
    #[error("{context}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with what the harness was doing when it happened.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}
