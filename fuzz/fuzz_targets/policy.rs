//! The policy loader: `VolumePolicy` YAML documents as `serve --policy` and `check --policy` read them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use volguard::domain::policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match policy::load_str(text, "fuzz.yaml") {
        Ok(policies) => drop(policies),
        Err(e) => drop(e.to_string()),
    }
});
