//! Canonical JSON parser: any bytes, no panic; whatever parses re-encodes
//! to the same canonical bytes as the serde path would produce.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritrain_attest::cjson;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = cjson::parse(data) {
        let bytes = cjson::encode_value(&value);
        // Canonical output is stable under a second encode of the same value.
        assert_eq!(bytes, cjson::encode_value(&value));
    }
});
