//! The self-managed Secret's contents: `tls.crt` and `tls.key` (the serving pair, as for any
//! `kubernetes.io/tls` Secret), `ca.crt` (every CA the API server must trust, newest first: the caBundle)
//! and `ca.key` (the newest CA's key, so the leader can sign the next serving certificate).
//!
//! The CA key sits beside the serving key on purpose: the CA is trusted only by volguard's own webhook
//! configurations, so whoever can read the Secret could already impersonate volguard with `tls.key`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine as _;
use k8s_openapi::ByteString;
use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use x509_parser::extensions::GeneralName;

use super::schedule::{Leaf, Observed, Validity};
use crate::adapters::server::tls::{PairPaths, TlsError, pair_from_pem, validity};

/// The serving certificate chain.
pub(crate) const TLS_CRT: &str = "tls.crt";
/// The serving key.
pub(crate) const TLS_KEY: &str = "tls.key";
/// The CAs to trust, newest first.
pub(crate) const CA_CRT: &str = "ca.crt";
/// The newest CA's key.
pub(crate) const CA_KEY: &str = "ca.key";

/// One CA of `ca.crt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeldCa {
    /// PEM.
    pub pem: String,
    /// DER.
    pub der: Vec<u8>,
    /// Its validity.
    pub validity: Validity,
}

/// What the Secret holds, read leniently: a missing or broken part is absent, and the schedule replaces it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Material {
    /// `ca.crt`, newest first.
    pub cas: Vec<HeldCa>,
    /// `ca.key`.
    pub ca_key: Option<String>,
    /// `tls.crt`.
    pub cert_pem: Option<String>,
    /// `tls.key`.
    pub key_pem: Option<String>,
}

fn text(data: &BTreeMap<String, ByteString>, key: &str) -> Option<String> {
    data.get(key).and_then(|b| String::from_utf8(b.0.clone()).ok())
}

/// A DER certificate as PEM.
pub(crate) fn pem_of(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Every certificate of a PEM bundle that parses, with its validity.
pub(crate) fn cas_of(pem: &str) -> Vec<HeldCa> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .filter_map(|der| {
            let validity = validity(&der).map(|(not_before, not_after)| Validity {
                not_before,
                not_after,
            })?;
            Some(HeldCa {
                pem: pem_of(der.as_ref()),
                der: der.as_ref().to_vec(),
                validity,
            })
        })
        .collect()
}

impl Material {
    /// Reads a Secret's data.
    pub(crate) fn from_data(data: &BTreeMap<String, ByteString>) -> Self {
        Self {
            cas: text(data, CA_CRT).map(|p| cas_of(&p)).unwrap_or_default(),
            ca_key: text(data, CA_KEY),
            cert_pem: text(data, TLS_CRT),
            key_pem: text(data, TLS_KEY),
        }
    }

    /// The Secret's data.
    pub(crate) fn to_data(&self) -> BTreeMap<String, ByteString> {
        let mut data = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            data.insert(k.to_owned(), ByteString(v.as_bytes().to_vec()));
        };
        put(CA_CRT, &self.bundle());
        put(CA_KEY, self.ca_key.as_deref().unwrap_or_default());
        put(TLS_CRT, self.cert_pem.as_deref().unwrap_or_default());
        put(TLS_KEY, self.key_pem.as_deref().unwrap_or_default());
        data
    }

    /// The caBundle: every CA, newest first, as PEM.
    pub(crate) fn bundle(&self) -> String {
        self.cas.iter().map(|c| c.pem.as_str()).collect()
    }

    /// The serving pair, checked (certificate and key parse and match).
    pub(crate) fn pair(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let names = PairPaths {
            cert: TLS_CRT.into(),
            key: TLS_KEY.into(),
        };
        let cert = self.cert_pem.as_deref().unwrap_or_default();
        let key = self.key_pem.as_deref().unwrap_or_default();
        pair_from_pem(cert.as_bytes(), key.as_bytes(), &names)
    }

    /// What the schedule needs to know. `sans`: the names the serving certificate must carry.
    pub(crate) fn observe(&self, sans: &[String], bundle_published: bool) -> Observed {
        Observed {
            cas: self.cas.iter().map(|c| c.validity).collect(),
            signing_key_ok: self.signing_key_ok(),
            leaf: self.leaf(sans),
            bundle_published,
        }
    }

    fn signing_key_ok(&self) -> bool {
        let (Some(ca), Some(key)) = (self.cas.first(), &self.ca_key) else {
            return false;
        };
        let Ok(key) = rcgen::KeyPair::from_pem(key) else {
            return false;
        };
        x509_parser::parse_x509_certificate(&ca.der)
            .is_ok_and(|(_, cert)| cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw())
    }

    fn leaf(&self, sans: &[String]) -> Option<Leaf> {
        let pair = self.pair().ok()?;
        let der = pair.cert.first()?;
        let (not_before, not_after) = validity(der)?;
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
        if names_of(&cert) != sans.iter().cloned().collect::<BTreeSet<_>>() {
            return None;
        }
        let issuer = self.cas.iter().position(|ca| {
            x509_parser::parse_x509_certificate(&ca.der)
                .is_ok_and(|(_, ca)| cert.verify_signature(Some(ca.public_key())).is_ok())
        });
        Some(Leaf {
            validity: Validity {
                not_before,
                not_after,
            },
            issuer,
        })
    }
}

/// The DNS names and IP addresses a certificate is for.
fn names_of(cert: &x509_parser::certificate::X509Certificate<'_>) -> BTreeSet<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return BTreeSet::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some((*d).to_owned()),
            GeneralName::IPAddress(b) => match b.len() {
                4 => <[u8; 4]>::try_from(*b)
                    .ok()
                    .map(|a| std::net::IpAddr::from(a).to_string()),
                16 => <[u8; 16]>::try_from(*b)
                    .ok()
                    .map(|a| std::net::IpAddr::from(a).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::certs::Ca;
    use std::time::Duration;

    fn sans() -> Vec<String> {
        vec!["volguard.volguard.svc".to_owned(), "127.0.0.1".to_owned()]
    }

    #[test]
    fn a_secret_written_is_read_back_healthy_and_a_foreign_leaf_is_seen() {
        let ca = Ca::generate_for("test CA", Duration::from_secs(3600)).unwrap();
        let leaf = ca
            .issue_for("volguard", &sans(), Duration::from_secs(600))
            .unwrap();
        let m = Material {
            cas: cas_of(&ca.pem),
            ca_key: Some(ca.key_pem()),
            cert_pem: Some(leaf.cert_pem.clone()),
            key_pem: Some(leaf.key_pem.clone()),
        };
        let back = Material::from_data(&m.to_data());
        let o = back.observe(&sans(), true);
        assert!(o.signing_key_ok);
        assert_eq!(o.leaf.map(|l| l.issuer), Some(Some(0)));
        assert!(back.pair().is_ok());
        assert_eq!(back.bundle(), ca.pem.replace("\r\n", "\n"));

        // Re-signing with the CA read back gives a leaf that CA verifies.
        let again = Ca::from_pem(&back.cas[0].pem, back.ca_key.as_deref().unwrap()).unwrap();
        let leaf2 = again
            .issue_for("volguard", &sans(), Duration::from_secs(600))
            .unwrap();
        let m2 = Material {
            cert_pem: Some(leaf2.cert_pem),
            key_pem: Some(leaf2.key_pem),
            ..back.clone()
        };
        assert_eq!(m2.observe(&sans(), true).leaf.map(|l| l.issuer), Some(Some(0)));

        // Other names, or another CA: no usable leaf.
        assert_eq!(back.observe(&["other.svc".to_owned()], true).leaf, None);
        let other = Ca::generate_for("other", Duration::from_secs(3600)).unwrap();
        let foreign = Material {
            cas: cas_of(&other.pem),
            ..back
        };
        let o = foreign.observe(&sans(), true);
        assert_eq!(o.leaf.map(|l| l.issuer), Some(None));
        assert!(!o.signing_key_ok, "ca.key is not the new first CA's");
    }
}
