//! Certificates: a CA and a serving certificate signed by it (rcgen), for development and tests, and
//! for `volguard serve` when no certificate is given.
//!
//! Production clusters use cert-manager or their own PKI; these are dev-only and say so in their subject.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// Why certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused the parameters.
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A CA and a serving certificate, PEM-encoded.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The CA certificate: what clients (the API server's caBundle) trust.
    pub ca_pem: String,
    /// The serving certificate.
    pub cert_pem: String,
    /// The serving certificate's private key (PKCS#8).
    pub key_pem: String,
}

/// A certificate authority that can sign serving certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    /// A new CA named `common_name`, valid for `days`.
    pub fn generate(common_name: &str, days: u32) -> Result<Self, CertError> {
        // Valid from a minute ago (a day's tenth is more than that) for `days`, less that minute.
        Self::generate_for(common_name, days_of(days) - std::time::Duration::from_secs(60))
    }

    /// A serving certificate for `sans` (DNS names or IP addresses), valid for `days`, signed by this CA.
    pub fn issue(&self, common_name: &str, sans: &[String], days: u32) -> Result<Issued, CertError> {
        self.issue_for(
            common_name,
            sans,
            days_of(days) - std::time::Duration::from_secs(60),
        )
    }
}

impl Ca {
    /// A new CA named `common_name`, valid for `life` from a minute ago. Blocking (key generation).
    pub(crate) fn generate_for(common_name: &str, life: std::time::Duration) -> Result<Self, CertError> {
        let (not_before, not_after) = validity_for(life);
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        })
    }

    /// The CA `cert_pem`, signing with `key_pem` (read back from where it was stored).
    pub(crate) fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(Self {
            issuer: Issuer::from_ca_cert_pem(cert_pem, key)?,
            pem: cert_pem.to_owned(),
        })
    }

    /// The CA's private key, PEM (PKCS#8).
    pub(crate) fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A serving certificate for `sans`, valid for `life` from a minute ago, signed by this CA. Blocking.
    pub(crate) fn issue_for(
        &self,
        common_name: &str,
        sans: &[String],
        life: std::time::Duration,
    ) -> Result<Issued, CertError> {
        let (not_before, not_after) = validity_for(life);
        let mut params = CertificateParams::new(sans.to_vec())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            ca_pem: self.pem.clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client certificate named `common_name` (`clientAuth` only), valid for `days`, signed by this CA:
    /// what the API server presents to a `serve --client-ca` trusting this CA.
    pub fn issue_client(&self, common_name: &str, days: u32) -> Result<Issued, CertError> {
        let now = time_now();
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = now.into();
        params.not_after = (now + days_of(days)).into();
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            ca_pem: self.pem.clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Writes a client pair as `apiserver-client.crt` and `apiserver-client.key` (0600) into `dir`, returning
/// their paths.
pub fn write_client(dir: &Path, issued: &Issued) -> Result<(PathBuf, PathBuf), CertError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let (cert, key) = (dir.join("apiserver-client.crt"), dir.join("apiserver-client.key"));
    std::fs::write(&cert, &issued.cert_pem).map_err(err(&cert))?;
    write_private(&key, issued.key_pem.as_bytes()).map_err(err(&key))?;
    Ok((cert, key))
}

/// Makes a CA and a serving certificate for `sans` (DNS names or IP addresses), valid for `days`.
pub fn issue(common_name: &str, sans: &[String], days: u32) -> Result<Issued, CertError> {
    Ca::generate(&format!("{common_name} CA"), days)?.issue(common_name, sans, days)
}

fn days_of(days: u32) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(days) * 86_400)
}

fn time_now() -> std::time::SystemTime {
    // A minute of slack for clocks that disagree between this host and the API server.
    std::time::SystemTime::now() - std::time::Duration::from_secs(60)
}

/// `notBefore` and `notAfter` for a certificate that must live `life` from now: valid from a little
/// before now (a minute, or a tenth of a short life, so a 30 s test certificate is not due at once).
fn validity_for(life: std::time::Duration) -> (std::time::SystemTime, std::time::SystemTime) {
    let now = std::time::SystemTime::now();
    let slack = (life / 10).min(std::time::Duration::from_secs(60));
    (now - slack, now + life)
}

/// Where [`write`] put the files.
#[derive(Clone, Debug)]
pub struct Written {
    /// `ca.crt`.
    pub ca: PathBuf,
    /// `tls.crt`.
    pub cert: PathBuf,
    /// `tls.key` (mode 0600).
    pub key: PathBuf,
}

impl Written {
    /// Where [`write`] puts the files in `dir`.
    pub(crate) fn in_dir(dir: &Path) -> Self {
        Self {
            ca: dir.join("ca.crt"),
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        }
    }
}

/// Writes `ca.crt`, `tls.crt` and `tls.key` (0600) into `dir`, creating it.
pub fn write(dir: &Path, issued: &Issued) -> Result<Written, CertError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let written = Written::in_dir(dir);
    std::fs::write(&written.ca, &issued.ca_pem).map_err(err(&written.ca))?;
    std::fs::write(&written.cert, &issued.cert_pem).map_err(err(&written.cert))?;
    write_private(&written.key, issued.key_pem.as_bytes()).map_err(err(&written.key))?;
    Ok(written)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        // `mode` applies only when the file is created: an older, wider-open key file is narrowed too.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)
    }
    #[cfg(not(unix))]
    {
        std::fs::File::create(path)?.write_all(bytes)
    }
}
