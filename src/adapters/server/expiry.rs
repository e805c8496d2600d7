//! `volguard_certificate_expiry_seconds{certificate="ca"|"serving"}`, seconds until each expires, and
//! `volguard_leader` (self-managed TLS: whether this replica holds the Lease), computed at scrape time so
//! the countdown is current however long ago a certificate was loaded.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// Nothing recorded.
const UNKNOWN: i64 = i64::MIN;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateLabels {
    certificate: &'static str,
}

/// The expiries (Unix seconds) and leadership, exported at scrape time.
#[derive(Clone, Debug)]
pub(crate) struct ExpiryCollector {
    serving: Arc<AtomicI64>,
    ca: Arc<AtomicI64>,
    leader: Arc<AtomicI64>,
}

impl Default for ExpiryCollector {
    fn default() -> Self {
        Self {
            serving: Arc::new(AtomicI64::new(UNKNOWN)),
            ca: Arc::new(AtomicI64::new(UNKNOWN)),
            leader: Arc::new(AtomicI64::new(UNKNOWN)),
        }
    }
}

impl ExpiryCollector {
    pub(crate) fn serving_expires(&self, unix_seconds: i64) {
        self.serving.store(unix_seconds, Ordering::Relaxed);
    }

    pub(crate) fn ca_expires(&self, unix_seconds: i64) {
        self.ca.store(unix_seconds, Ordering::Relaxed);
    }

    pub(crate) fn set_leader(&self, leading: Option<bool>) {
        let v = leading.map_or(UNKNOWN, i64::from);
        self.leader.store(v, Ordering::Relaxed);
    }
}

impl Collector for ExpiryCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let now = jiff::Timestamp::now().as_second();
        let left = Family::<CertificateLabels, Gauge>::default();
        for (certificate, at) in [("serving", &self.serving), ("ca", &self.ca)] {
            let at = at.load(Ordering::Relaxed);
            if at != UNKNOWN {
                left.get_or_create(&CertificateLabels { certificate })
                    .set(at - now);
            }
        }
        left.encode(encoder.encode_descriptor(
            "certificate_expiry_seconds",
            "Seconds until the serving certificate and (self-managed TLS) its CA expire; negative once expired",
            None,
            left.metric_type(),
        )?)?;
        let leader = self.leader.load(Ordering::Relaxed);
        if leader != UNKNOWN {
            let g = Gauge::<i64>::default();
            g.set(leader);
            g.encode(encoder.encode_descriptor(
                "leader",
                "Self-managed TLS: 1 while this replica holds the Lease and manages the certificate",
                None,
                g.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
