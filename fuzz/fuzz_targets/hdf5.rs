//! Fuzzes the bounded HDF5 structure walker of `model.weights.h5`, and the
//! cross-check against an (empty) config, under the small test limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritrain_intake::keras::{ConfigScan, KerasLimits, inspect_weights};

fuzz_target!(|data: &[u8]| {
    let limits = KerasLimits::for_testing();
    let _ = inspect_weights(data, data.len() as u64, &ConfigScan::default(), &limits);
});
