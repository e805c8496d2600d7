//! The attacker's and the honest caller's HTTP clients: HTTPS trusting only the server's dev CA.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// How long one request may take before the caller gives up on it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP/1.1 client over TLS whose only root is `ca_pem`. Concurrent requests each get a connection of
/// their own.
pub fn https(ca_pem: &str) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()).flatten() {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .http1_only()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("a reqwest client")
}

/// A plain-HTTP client for the metrics listener.
pub fn plain() -> reqwest::Client {
    plain_within(REQUEST_TIMEOUT)
}

/// A plain-HTTP client giving up after `timeout`.
pub fn plain_within(timeout: Duration) -> reqwest::Client {
    // reqwest (built without a default TLS provider) wants one even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .http1_only()
        .timeout(timeout)
        .build()
        .expect("a reqwest client")
}

/// What a caller got back: an HTTP status and body, or why there was none.
#[derive(Clone, Debug)]
pub enum Answer {
    /// A response.
    Http {
        /// Its status.
        status: u16,
        /// Its body.
        body: String,
    },
    /// No response: the connection was refused, reset or timed out.
    Failed(String),
}

impl Answer {
    /// The status, 0 when there was no response.
    pub fn status(&self) -> u16 {
        match self {
            Answer::Http { status, .. } => *status,
            Answer::Failed(_) => 0,
        }
    }

    /// The review's `response.status.message`, if the body is an answered review.
    pub fn message(&self) -> Option<String> {
        self.review()?
            .pointer("/response/status/message")?
            .as_str()
            .map(str::to_owned)
    }

    /// The review's `response.allowed`.
    pub fn allowed(&self) -> Option<bool> {
        self.review()?.pointer("/response/allowed")?.as_bool()
    }

    /// The body parsed as JSON.
    pub fn review(&self) -> Option<serde_json::Value> {
        match self {
            Answer::Http { body, .. } => serde_json::from_str(body).ok(),
            Answer::Failed(_) => None,
        }
    }

    /// The body's length in bytes (0 without a response).
    pub fn len(&self) -> usize {
        match self {
            Answer::Http { body, .. } => body.len(),
            Answer::Failed(_) => 0,
        }
    }

    /// One line for a report: the status and the start of the body or error.
    pub fn summary(&self) -> String {
        let text = match self {
            Answer::Http { status, body } => {
                let said = self.message().unwrap_or_else(|| body.clone());
                format!("{status} {said}")
            }
            Answer::Failed(e) => format!("no response: {e}"),
        };
        let mut short: String = text.chars().take(160).collect();
        if short.len() < text.len() {
            short.push('…');
        }
        short.replace('\n', " ")
    }
}

/// POSTs `body` and reads the answer.
pub async fn post(client: &reqwest::Client, url: &str, body: impl Into<reqwest::Body>) -> Answer {
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.text().await {
                Ok(body) => Answer::Http { status, body },
                Err(e) => Answer::Failed(format!("{status}, then the body broke: {e}")),
            }
        }
        Err(e) => Answer::Failed(error_chain(&e)),
    }
}

/// GETs `url`.
pub async fn get(client: &reqwest::Client, url: &str) -> Answer {
    match client.get(url).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.text().await {
                Ok(body) => Answer::Http { status, body },
                Err(e) => Answer::Failed(format!("{status}, then the body broke: {e}")),
            }
        }
        Err(e) => Answer::Failed(error_chain(&e)),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
