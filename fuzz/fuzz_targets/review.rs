//! The AdmissionReview decoder as the server runs it (`src/server/routes.rs`): the streaming limit scan,
//! the full decode, then both the validating and the mutating answer, against an empty lookup, under the
//! built-in policy and under policies/repairs.yaml (whose `spec.mutate` makes the mutating path compute
//! and apply its patches).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use volguard::adapters::admission;
use volguard::domain::lookup::Bundle;
use volguard::domain::policy::PolicySet;
use volguard::domain::workload::ObjectLimits;

struct Fixed {
    lookup: Bundle,
    policies: PolicySet,
    repairs: PolicySet,
    limits: ObjectLimits,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| Fixed {
        lookup: Bundle::default(),
        policies: PolicySet::builtin().expect("the built-in policy loads"),
        repairs: volguard::domain::policy::load_path(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/repairs.yaml"),
        )
        .expect("policies/repairs.yaml loads"),
        limits: ObjectLimits::default(),
    })
}

fuzz_target!(|data: &[u8]| {
    let Fixed {
        lookup,
        policies,
        repairs,
        limits,
    } = fixed();
    let _ = admission::scan(data, limits);
    if let Ok(review) = admission::parse(data) {
        let _ = admission::validate_within(&review, lookup, policies, limits);
        let _ = admission::mutate_within(&review, lookup, policies, limits);
        let _ = admission::validate_within(&review, lookup, repairs, limits);
        let _ = admission::mutate_within(&review, lookup, repairs, limits);
    }
});
