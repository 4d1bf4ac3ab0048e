//! Differential test: our canonical JSON against securesystemslib's
//! `encode_canonical`, on a corpus of awkward documents plus generated ones.
//! Interop tier (needs the Python venv); run with `--ignored`.

mod util;

use veritrain_attest::cjson;

/// Hand-picked documents that broke other encoders (see
/// shared/notes/attestation-formats.md §4).
fn awkward_corpus() -> Vec<String> {
    [
        r#"{"b":1,"a":2}"#,
        r#""tab\there""#,
        r#""nl\nline""#,
        r#""cr\rnul\u0000us\u001f del\u007f""#,
        r#""C:\\new""#,
        r#""quote\"inside""#,
        r#""e\u0301 NFD, é NFC, \ud83d\ude00 emoji, \u2028 line sep""#,
        r#"{"a\"b":1,"a#":2,"a":3,"":4,"é":5,"z":6,"Z":7}"#,
        r#"[18446744073709551615, -9223372036854775808, 0, -0]"#,
        r#"123456789012345678901234567890123"#,
        r#"{"deep":[[[[{"x":[null,true,false]}]]]]}"#,
        r#"1.5"#,
        r#"1e3"#,
        r#"[]"#,
        r#"{}"#,
        r#""""#,
        r#""/ slash \/ escaped""#,
        r#"{"keyval":{"public":"-----BEGIN PUBLIC KEY-----\nMFk=\n-----END PUBLIC KEY-----\n"}}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A small deterministic generator (xorshift) of nested documents full of
/// characters that need care: controls, quotes, backslashes, non-ASCII.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn string(&mut self) -> String {
        const POOL: &[char] = &[
            'a',
            'Z',
            '0',
            ' ',
            '"',
            '\\',
            '/',
            '\n',
            '\t',
            '\r',
            '\u{0}',
            '\u{1f}',
            '\u{7f}',
            'é',
            '\u{301}',
            'ß',
            '日',
            '\u{1F600}',
            '\u{2028}',
            '\u{FEFF}',
            '{',
            '}',
            ',',
            ':',
        ];
        let len = self.next() % 8;
        (0..len)
            .map(|_| POOL[(self.next() % POOL.len() as u64) as usize])
            .collect()
    }

    fn value(&mut self, depth: u32) -> serde_json::Value {
        use serde_json::Value as J;
        let pick = if depth > 3 {
            self.next() % 4
        } else {
            self.next() % 7
        };
        match pick {
            0 => J::Null,
            1 => J::Bool(self.next().is_multiple_of(2)),
            2 => J::from(self.next() as i64),
            3 => J::String(self.string()),
            4 | 5 => {
                let n = self.next() % 5;
                J::Object(
                    (0..n)
                        .map(|_| (self.string(), self.value(depth + 1)))
                        .collect(),
                )
            }
            _ => {
                let n = self.next() % 5;
                J::Array((0..n).map(|_| self.value(depth + 1)).collect())
            }
        }
    }
}

#[test]
#[ignore = "interop tier: run with --ignored"]
fn canonical_json_matches_securesystemslib_byte_for_byte() {
    let Some(python) = util::interop_python() else {
        return;
    };
    let mut docs = awkward_corpus();
    let awkward = docs.len();
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    for _ in 0..2000 {
        docs.push(serde_json::to_string(&g.value(0)).unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.json");
    let output = dir.path().join("out.json");
    std::fs::write(&input, serde_json::to_vec(&docs).unwrap()).unwrap();
    let out = util::run(
        util::python_script(&python, "cjson_encode.py")
            .arg(&input)
            .arg(&output),
    );
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    assert_eq!(verdicts.len(), docs.len());

    let mut compared = 0;
    for (i, (doc, verdict)) in docs.iter().zip(&verdicts).enumerate() {
        let ours = cjson::canonicalize(doc.as_bytes());
        match (verdict.get("ok").and_then(|v| v.as_str()), ours) {
            (Some(hex), Ok(bytes)) => {
                assert_eq!(hex::encode(&bytes), hex, "document {doc:?}");
                // The serde path (used when we sign our own documents) agrees too.
                // The serde path may refuse what serde_json reads as a float
                // (`-0`, integers past 64 bits) but must never differ, and
                // must accept every generated (64-bit) document.
                match cjson::encode_json(&serde_json::from_str(doc).unwrap()) {
                    Ok(via_serde) => assert_eq!(via_serde, bytes, "serde path, document {doc:?}"),
                    Err(e) => assert!(i < awkward, "serde path refused {doc:?}: {e}"),
                }
                compared += 1;
            }
            (None, Err(_)) => {}
            (theirs, ours) => {
                panic!("disagreement on {doc:?}: securesystemslib {theirs:?}, ours {ours:?}")
            }
        }
    }
    // Most of the corpus must have been compared byte for byte, not refused.
    assert!(compared > 1500, "only {compared} documents compared");
}
