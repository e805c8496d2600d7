//! The manifest reader of `volguard check`: multi-document YAML, JSON streams and `kind: List`, each
//! document decoded, then read again as written.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use volguard::adapters::manifest;
use volguard::domain::workload::{Decoded, Resource};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = manifest::parse(Arc::<str>::from(text), "fuzz.yaml");
    for doc in &parsed.documents {
        let _ = doc.value();
        let _ = doc.origin.to_string();
        if let Ok(Decoded::Resource(resource)) = &doc.decoded {
            let _ = resource.object_ref().to_string();
            if let Resource::Workload(workload) = resource.as_ref() {
                let _ = workload.to_json();
            }
        }
    }
    for unparsed in &parsed.unparsed {
        let _ = unparsed.origin.to_string();
    }
});
