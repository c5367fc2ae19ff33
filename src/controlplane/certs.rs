//! The cluster's PKI: a CA, the API server's serving certificate, client certificates, and the
//! service-account signing key. All keys are ECDSA P-256.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

use super::Error;

/// Subject alternative names of the API server's serving certificate: loopback for us, the
/// first service IP and the in-cluster names for anything that talks to the `kubernetes` Service.
pub(crate) const SERVING_SANS: [&str; 6] = [
    "127.0.0.1",
    "10.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
];

/// The user of the admin kubeconfig.
pub(crate) const ADMIN_USER: &str = "partnercloud-admin";
/// The user kube-controller-manager authenticates as.
pub(crate) const CONTROLLER_MANAGER_USER: &str = "system:kube-controller-manager";
/// The group RBAC lets do anything.
pub(crate) const MASTERS_GROUP: &str = "system:masters";

/// The X.509 OID of an organization (O) attribute, which Kubernetes reads as a group.
const ORGANIZATION_OID: [u64; 4] = [2, 5, 4, 10];

/// rcgen keeps one value per attribute type in a subject, so a second O attribute is written
/// under a custom type with the same OID. More than two cannot be expressed.
pub(crate) const MAX_GROUPS: usize = 2;

/// A certificate and its private key (PKCS#8), PEM-encoded.
pub(crate) struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Where an [`IssuedCert`] was written.
#[derive(Debug, Clone)]
pub(crate) struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The cluster CA; it signs every serving and client certificate.
pub(crate) struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl CertificateAuthority {
    /// Generates a fresh self-signed CA.
    pub fn generate() -> Result<Self, Error> {
        let subject = "partnercloud-test-ca";
        let key = new_key(subject)?;
        let params = ca_params(subject);
        let cert = params
            .self_signed(&key)
            .map_err(certificate_error(subject))?;
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
        })
    }

    /// The CA certificate, PEM-encoded.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues the API server's serving certificate (also used by kube-controller-manager).
    pub fn issue_serving(&self) -> Result<IssuedCert, Error> {
        self.issue("kube-apiserver", &serving_params()?)
    }

    /// Issues a client certificate for `user` in `groups`.
    pub fn issue_client(&self, user: &str, groups: &[&str]) -> Result<IssuedCert, Error> {
        self.issue(user, &client_params(user, groups)?)
    }

    fn issue(&self, subject: &str, params: &CertificateParams) -> Result<IssuedCert, Error> {
        let key = new_key(subject)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(certificate_error(subject))?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl IssuedCert {
    /// Writes `<stem>.crt` and `<stem>.key` (mode 0600) into `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<CertFiles, Error> {
        let files = CertFiles {
            cert: dir.join(format!("{stem}.crt")),
            key: dir.join(format!("{stem}.key")),
        };
        write_file(&files.cert, &self.cert_pem, 0o644)?;
        write_file(&files.key, &self.key_pem, 0o600)?;
        Ok(files)
    }
}

/// The key pair the API server signs service-account tokens with.
pub(crate) struct ServiceAccountKeys {
    /// PKCS#8 PEM, for `--service-account-signing-key-file`.
    pub private_pem: String,
    /// SubjectPublicKeyInfo PEM, for `--service-account-key-file`.
    pub public_pem: String,
}

impl ServiceAccountKeys {
    pub fn generate() -> Result<Self, Error> {
        let key = new_key("service-account-signer")?;
        Ok(Self {
            private_pem: key.serialize_pem(),
            public_pem: key.public_key_pem(),
        })
    }
}

/// Every file of the cluster PKI the components are started with.
#[derive(Debug, Clone)]
pub(crate) struct PkiFiles {
    pub ca_cert: PathBuf,
    /// Serving certificate of kube-apiserver and kube-controller-manager.
    pub serving: CertFiles,
    pub service_account_private: PathBuf,
    pub service_account_public: PathBuf,
    /// Client certificate of the admin kubeconfig.
    pub admin: CertFiles,
    /// Client certificate of kube-controller-manager.
    pub controller_manager: CertFiles,
}

impl PkiFiles {
    /// Issues the cluster's certificates and keys with `ca` and writes them into `dir`.
    pub fn write(ca: &CertificateAuthority, dir: &Path) -> Result<Self, Error> {
        let ca_cert = dir.join("ca.crt");
        write_file(&ca_cert, ca.cert_pem(), 0o644)?;
        let service_account = ServiceAccountKeys::generate()?;
        let service_account_private = dir.join("service-account.key");
        let service_account_public = dir.join("service-account.pub");
        write_file(
            &service_account_private,
            &service_account.private_pem,
            0o600,
        )?;
        write_file(&service_account_public, &service_account.public_pem, 0o644)?;
        Ok(Self {
            ca_cert,
            serving: ca.issue_serving()?.write(dir, "serving")?,
            service_account_private,
            service_account_public,
            admin: ca
                .issue_client(ADMIN_USER, &[MASTERS_GROUP])?
                .write(dir, "admin")?,
            controller_manager: ca
                .issue_client(CONTROLLER_MANAGER_USER, &[MASTERS_GROUP])?
                .write(dir, "kube-controller-manager")?,
        })
    }
}

#[cfg(test)]
impl PkiFiles {
    /// Paths under `/pki`, for tests of command lines.
    pub fn fixture() -> Self {
        let files = |stem: &str| CertFiles {
            cert: PathBuf::from(format!("/pki/{stem}.crt")),
            key: PathBuf::from(format!("/pki/{stem}.key")),
        };
        Self {
            ca_cert: "/pki/ca.crt".into(),
            serving: files("serving"),
            service_account_private: "/pki/sa.key".into(),
            service_account_public: "/pki/sa.pub".into(),
            admin: files("admin"),
            controller_manager: files("kcm"),
        }
    }
}

/// Writes `contents` to a new file at `path` with the given mode.
pub(crate) fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), Error> {
    let context = || format!("writing {}", path.display());
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(Error::io(context()))?;
    file.write_all(contents.as_bytes())
        .map_err(Error::io(context()))
}

fn new_key(subject: &str) -> Result<KeyPair, Error> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(certificate_error(subject))
}

fn certificate_error(subject: &str) -> impl FnOnce(rcgen::Error) -> Error {
    let subject = subject.to_owned();
    move |source| Error::Certificate { subject, source }
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn serving_params() -> Result<CertificateParams, Error> {
    let sans: Vec<String> = SERVING_SANS.map(String::from).to_vec();
    let mut params = CertificateParams::new(sans).map_err(certificate_error("kube-apiserver"))?;
    params.distinguished_name = subject("kube-apiserver");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

/// A client certificate Kubernetes reads as user CN in groups O.
fn client_params(user: &str, groups: &[&str]) -> Result<CertificateParams, Error> {
    if groups.len() > MAX_GROUPS {
        return Err(Error::TooManyGroups {
            user: user.to_owned(),
            count: groups.len(),
            max: MAX_GROUPS,
        });
    }
    let mut name = subject(user);
    let group_types = [
        DnType::OrganizationName,
        DnType::CustomDnType(ORGANIZATION_OID.to_vec()),
    ];
    for (group, ty) in groups.iter().zip(group_types) {
        name.push(ty, *group);
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = name;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(params)
}

fn subject(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controlplane::ports::LOOPBACK;
    use rcgen::{DnValue, SanType};

    fn subject_values(params: &CertificateParams) -> Vec<(DnType, String)> {
        params
            .distinguished_name
            .iter()
            .map(|(ty, value)| match value {
                DnValue::Utf8String(s) => (ty.clone(), s.clone()),
                other => panic!("unexpected value {other:?}"),
            })
            .collect()
    }

    #[test]
    fn serving_cert_covers_loopback_service_ip_and_in_cluster_names() {
        let sans = serving_params().unwrap().subject_alt_names;
        assert!(sans.contains(&SanType::IpAddress(LOOPBACK)));
        assert!(sans.contains(&SanType::IpAddress("10.0.0.1".parse().unwrap())));
        for dns in [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
        ] {
            assert!(
                sans.contains(&SanType::DnsName(dns.try_into().unwrap())),
                "missing {dns}"
            );
        }
        assert_eq!(sans.len(), SERVING_SANS.len());
    }

    #[test]
    fn client_cert_carries_user_and_groups() {
        let params = client_params("alice", &["tenant-a", "auditors"]).unwrap();
        assert_eq!(
            subject_values(&params),
            [
                (DnType::CommonName, "alice".to_owned()),
                (DnType::OrganizationName, "tenant-a".to_owned()),
                (
                    DnType::CustomDnType(ORGANIZATION_OID.to_vec()),
                    "auditors".to_owned()
                ),
            ]
        );
        assert_eq!(
            params.extended_key_usages,
            [ExtendedKeyUsagePurpose::ClientAuth]
        );
    }

    #[test]
    fn client_cert_without_groups_has_only_a_common_name() {
        let params = client_params("bob", &[]).unwrap();
        assert_eq!(
            subject_values(&params),
            [(DnType::CommonName, "bob".to_owned())]
        );
    }

    #[test]
    fn three_groups_are_refused() {
        let err = client_params("carol", &["a", "b", "c"]).unwrap_err();
        assert!(
            matches!(err, Error::TooManyGroups { count: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn ca_issues_pem_certificates_and_pkcs8_keys() {
        let ca = CertificateAuthority::generate().unwrap();
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let admin = ca.issue_client(ADMIN_USER, &[MASTERS_GROUP]).unwrap();
        assert!(admin.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(admin.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        ca.issue_serving().unwrap();
    }

    #[test]
    fn service_account_keys_are_pkcs8_and_spki() {
        let keys = ServiceAccountKeys::generate().unwrap();
        assert!(keys.private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(keys.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    }

    #[test]
    fn private_keys_are_written_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::generate().unwrap();
        let files = ca
            .issue_client("alice", &[])
            .unwrap()
            .write(dir.path(), "alice")
            .unwrap();
        let mode = files.key.metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
