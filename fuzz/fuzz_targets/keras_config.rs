//! Fuzzes the `.keras` scanner's JSON readers: `config.json` (the allow-list
//! walk) and `metadata.json`, under the small test limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritrain_intake::keras::{KerasLimits, scan_config, scan_metadata};

fuzz_target!(|data: &[u8]| {
    let limits = KerasLimits::for_testing();
    let _ = scan_config(data, &limits);
    let _ = scan_metadata(data, &limits);
});
