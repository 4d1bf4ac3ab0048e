//! Dataset definition parser: any bytes, no panic; whatever parses
//! serializes to JSON that parses back to an equal definition.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritrain_intake::definition::{DefinitionLimits, parse_definition};

fuzz_target!(|data: &[u8]| {
    let limits = DefinitionLimits::for_testing();
    if let Ok(def) = parse_definition(data, &limits) {
        let json = serde_json::to_vec(&def).expect("a definition serializes");
        let again = parse_definition(&json, &DefinitionLimits::default())
            .expect("a serialized definition parses");
        assert_eq!(def, again);
    }
});
