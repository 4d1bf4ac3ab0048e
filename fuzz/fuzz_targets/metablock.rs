//! in-toto metablock parser and verifier: any bytes, no panic.
//!
//! Each input is read as a layout or link file and put through every check
//! that runs before (and including) the signature check: strict JSON, the
//! metablock shape, the typed link or layout, the signature against a fixed
//! key (which fails for anything the fuzzer writes). The same bytes also feed
//! the artifact-rule parser and the `fnmatch` matcher, whose bracket parsing
//! is index arithmetic worth shaking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritrain_attest::intoto::{self, ArtifactRule, MetablockLimits};
use veritrain_attest::keys::{KeyDict, KeyVal, PublicKey};

fn fixed_key() -> Option<PublicKey> {
    PublicKey::from_key_dict(&KeyDict {
        keytype: "ed25519".into(),
        scheme: "ed25519".into(),
        keyval: KeyVal {
            public: "d54bd6778007fc857867e16e307cd2f4fe040e2ac502f1fb5eb2b9e5d3807e3b".into(),
        },
    })
    .ok()
}

fuzz_target!(|data: &[u8]| {
    let limits = MetablockLimits::for_testing();
    if let (Ok(block), Some(key)) = (intoto::parse_metablock(data, &limits), fixed_key()) {
        let _ = block.verify_signature(&key);
        let _ = block.verify_link(&key);
        let now = intoto::VerifyOptions::default().now;
        let _ = block.verify_layout(std::slice::from_ref(&key), now);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        let _ = ArtifactRule::parse(&words);
        let (pattern, name) = text.split_once('\n').unwrap_or((text, ""));
        let _ = intoto::fnmatch::fnmatch(name, pattern);
    }
});
