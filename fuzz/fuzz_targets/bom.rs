//! `veritrain_bom::read_bom` (JSON, then the CycloneDX 1.6 schema, then the
//! typed BOM) and both renderers on whatever it accepts: `veritrain bom show`
//! runs exactly this on a file a user hands it. Arbitrary bytes must give a
//! BOM or an error with a code, never a panic. Seeds: the two snapshot BOMs
//! and a minimal one.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match veritrain_bom::read_bom(data) {
        Ok(bom) => {
            let _ = veritrain_bom::render_text(&bom);
            let _ = veritrain_bom::render_html(&bom);
        }
        Err(e) => {
            assert!(e.code().starts_with("bom."), "{}", e.code());
            assert!(!e.to_string().is_empty());
        }
    }
});
