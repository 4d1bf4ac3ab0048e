//! The signed container of in-toto v0.9 metadata:
//! `{"signatures": [{"keyid", "sig"}], "signed": <layout or link>}`.
//!
//! Signing: the signature covers the OLPC canonical JSON of `signed`
//! ([`crate::cjson::encode`]); `sig` is lower-case hex of the
//! securesystemslib signature encoding (DER for ECDSA, raw for Ed25519).
//!
//! Verifying never re-serializes a typed model. [`parse_metablock`] parses the
//! file with the lossless [`cjson::parse`], keeps the `signed` value exactly as
//! it arrived and takes its canonical bytes with [`cjson::encode_value`];
//! signatures are checked over those bytes, and only then is the typed
//! [`Link`] or [`Layout`] read, from that same value. A field we do not know
//! is therefore still covered by the signature, and the typed models refuse
//! unknown fields, so nothing signed is silently dropped.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cjson;
use crate::error::{Error, Result};
use crate::keys::{PublicKey, Signer};
use crate::verified::Verified;

use super::layout::Layout;
use super::link::Link;

/// One signature of a metablock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Signature {
    /// Key ID of the signing key (securesystemslib key ID).
    pub keyid: String,
    /// Lower-case hex of the signature bytes.
    pub sig: String,
}

/// A signed in-toto document, as we produce it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metablock<T> {
    /// Signatures over the canonical JSON of `signed`.
    pub signatures: Vec<Signature>,
    /// The layout or link.
    pub signed: T,
}

impl<T: Serialize> Metablock<T> {
    /// An unsigned metablock around `signed`.
    pub fn new(signed: T) -> Self {
        Metablock {
            signatures: Vec::new(),
            signed,
        }
    }

    /// `signed` wrapped and signed by every signer, in order.
    pub fn signed_by(signed: T, signers: &[&dyn Signer]) -> Result<Self> {
        let mut block = Self::new(signed);
        for signer in signers {
            block.sign(*signer)?;
        }
        Ok(block)
    }

    /// The bytes signatures cover: canonical JSON of `signed`.
    pub fn signed_bytes(&self) -> Result<Vec<u8>> {
        cjson::encode(&self.signed)
    }

    /// Append a signature by `signer` (a metablock may carry several).
    pub fn sign(&mut self, signer: &dyn Signer) -> Result<()> {
        let sig = signer.sign(&self.signed_bytes()?)?;
        self.signatures.push(Signature {
            keyid: signer.keyid().to_owned(),
            sig: hex::encode(sig),
        });
        Ok(())
    }

    /// The file contents: ordinary (indented) JSON. Control characters are
    /// escaped, so Python's `json.load` reads it; the canonical form is
    /// recomputed by every verifier, so the layout of the file does not matter.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut out =
            serde_json::to_vec_pretty(self).map_err(|e| Error::malformed("metablock", e))?;
        out.push(b'\n');
        Ok(out)
    }

    /// Write [`Self::to_json`] to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_json()?).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })
    }
}

impl Metablock<Link> {
    /// `<step>.<keyid[:8]>.link`, named after the first signature.
    pub fn file_name(&self) -> Result<String> {
        let first = self
            .signatures
            .first()
            .ok_or_else(|| Error::Signature("the link is not signed yet".into()))?;
        Ok(super::link_file_name(&self.signed.name, &first.keyid))
    }

    /// Write the link into `dir` under [`Self::file_name`]; returns the path.
    pub fn write_to_dir(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(self.file_name()?);
        self.write(&path)?;
        Ok(path)
    }
}

/// Bounds for parsing untrusted metablocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetablockLimits {
    /// Largest file accepted, in bytes. A link lists one entry per artifact,
    /// so a dataset of a million files makes a link of roughly 150 MB.
    pub max_bytes: usize,
}

impl Default for MetablockLimits {
    fn default() -> Self {
        MetablockLimits {
            max_bytes: 256 << 20,
        }
    }
}

impl MetablockLimits {
    /// Small limits for tests.
    pub fn for_testing() -> Self {
        MetablockLimits { max_bytes: 1 << 20 }
    }
}

/// What a metablock holds, from its `signed._type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// `"_type": "link"`
    Link,
    /// `"_type": "layout"`
    Layout,
}

/// A parsed metablock whose signatures have not been checked. Its payload
/// can only be read through the verify methods.
#[derive(Debug, Clone)]
pub struct UnverifiedMetablock {
    signatures: Vec<Signature>,
    signed: cjson::Value,
    canonical: Vec<u8>,
    kind: PayloadKind,
}

/// Parse a metablock file: strict JSON, `{"signatures": [...], "signed": {...}}`
/// and nothing else at the top level.
pub fn parse_metablock(bytes: &[u8], limits: &MetablockLimits) -> Result<UnverifiedMetablock> {
    const WHAT: &str = "in-toto metablock";
    if bytes.len() > limits.max_bytes {
        return Err(Error::malformed(
            WHAT,
            format!(
                "{} bytes, over the limit of {}",
                bytes.len(),
                limits.max_bytes
            ),
        ));
    }
    let value = cjson::parse(bytes)?;
    let cjson::Value::Object(members) = &value else {
        return Err(Error::malformed(WHAT, "the document is not a JSON object"));
    };
    if value.get("signed").is_none() && value.get("payload").is_some() {
        return Err(Error::Unsupported(
            "DSSE-enveloped in-toto layouts and links (in-toto-run --use-dsse); only metablocks are read".into(),
        ));
    }
    // Unknown top-level members are refused: they are not signed, and a
    // second reader could give them a meaning.
    if let Some((key, _)) = members
        .iter()
        .find(|(k, _)| k != "signatures" && k != "signed")
    {
        return Err(Error::malformed(
            WHAT,
            format!("unknown top-level member {key:?}"),
        ));
    }
    let Some(cjson::Value::Array(raw_sigs)) = value.get("signatures") else {
        return Err(Error::malformed(WHAT, "\"signatures\" must be a list"));
    };
    let mut signatures = Vec::with_capacity(raw_sigs.len());
    for (i, raw) in raw_sigs.iter().enumerate() {
        if raw.get("other_headers").is_some() {
            return Err(Error::Unsupported(
                "GPG signatures on in-toto metadata".into(),
            ));
        }
        match (raw.get("keyid"), raw.get("sig")) {
            (Some(cjson::Value::Str(keyid)), Some(cjson::Value::Str(sig))) => {
                signatures.push(Signature {
                    keyid: keyid.clone(),
                    sig: sig.clone(),
                })
            }
            _ => {
                return Err(Error::malformed(
                    WHAT,
                    format!("signatures[{i}] must be an object with string \"keyid\" and \"sig\""),
                ));
            }
        }
    }
    let signed = match value.get("signed") {
        Some(signed @ cjson::Value::Object(_)) => signed.clone(),
        _ => return Err(Error::malformed(WHAT, "\"signed\" must be an object")),
    };
    let kind = match signed.get("_type") {
        Some(cjson::Value::Str(t)) if t == "link" => PayloadKind::Link,
        Some(cjson::Value::Str(t)) if t == "layout" => PayloadKind::Layout,
        _ => {
            return Err(Error::malformed(
                WHAT,
                "signed._type must be \"link\" or \"layout\"",
            ));
        }
    };
    let canonical = cjson::encode_value(&signed);
    Ok(UnverifiedMetablock {
        signatures,
        signed,
        canonical,
        kind,
    })
}

impl UnverifiedMetablock {
    /// Link or layout.
    pub fn kind(&self) -> PayloadKind {
        self.kind
    }

    /// The signatures as listed in the file.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// The bytes signatures must cover: canonical JSON of `signed` as it
    /// arrived.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.canonical
    }

    /// Check the signature by `key`, as in-toto does: the *first* signature
    /// whose `keyid` is the key's ID must verify; later ones with the same
    /// key ID are not consulted.
    pub fn verify_signature(&self, key: &PublicKey) -> Result<()> {
        let keyid = key.keyid();
        let sig = self
            .signatures
            .iter()
            .find(|s| s.keyid == keyid)
            .ok_or_else(|| Error::Signature(format!("No signature found for key '{keyid}'")))?;
        let invalid = || Error::Signature(format!("Invalid signature for keyid '{keyid}'"));
        // Lower-case hex only: securesystemslib writes lower case, and one
        // accepted spelling per signature keeps a flipped case bit from
        // passing as the same file.
        if sig.sig.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid());
        }
        let raw = hex::decode(&sig.sig).map_err(|_| invalid())?;
        key.verify(&self.canonical, &raw).map_err(|_| invalid())
    }

    /// Verify a root layout: every key in `root_keys` must have a valid
    /// signature (Python in-toto's rule for `--verification-keys`), the
    /// layout must be well formed and must not have expired at `now`.
    pub fn verify_layout(
        &self,
        root_keys: &[PublicKey],
        now: DateTime<Utc>,
    ) -> Result<Verified<Layout>> {
        if self.kind != PayloadKind::Layout {
            return Err(Error::malformed(
                "in-toto layout",
                "the metablock holds a link, not a layout",
            ));
        }
        if root_keys.is_empty() {
            return Err(Error::Signature(
                "Layout signature verification requires at least one key.".into(),
            ));
        }
        for key in root_keys {
            self.verify_signature(key)?;
        }
        let layout: Layout = self.decode("in-toto layout")?;
        layout.validate()?;
        let expires = layout.expires_at()?;
        if expires <= now {
            return Err(Error::LayoutExpired(layout.expires.clone()));
        }
        let signers = root_keys.iter().map(|k| k.keyid().to_owned()).collect();
        Ok(Verified::new(layout, signers))
    }

    /// Verify a link signed by `key`. A metablock holding a layout here is
    /// a sublayout, which is refused as unsupported.
    pub fn verify_link(&self, key: &PublicKey) -> Result<Verified<Link>> {
        let link = self.link()?;
        self.verify_signature(key)?;
        Ok(Verified::new(link, vec![key.keyid().to_owned()]))
    }

    /// The typed link, read (not trusted) to check its shape, as in-toto
    /// does when it loads a link file.
    pub(crate) fn link(&self) -> Result<Link> {
        if self.kind == PayloadKind::Layout {
            return Err(sublayout_unsupported());
        }
        let link: Link = self.decode("in-toto link")?;
        link.validate()?;
        Ok(link)
    }

    fn decode<T: DeserializeOwned>(&self, what: &'static str) -> Result<T> {
        let value = to_serde(&self.signed)?;
        serde_json::from_value(value).map_err(|e| Error::malformed(what, e))
    }
}

pub(crate) fn sublayout_unsupported() -> Error {
    Error::Unsupported("sublayouts are not supported: a step's link file holds a layout".into())
}

/// A lossless value as a `serde_json::Value`, for typed deserialization.
/// Integers beyond 64 bits cannot be a field of ours and are refused.
fn to_serde(value: &cjson::Value) -> Result<serde_json::Value> {
    use serde_json::Value as J;
    Ok(match value {
        cjson::Value::Null => J::Null,
        cjson::Value::Bool(b) => J::Bool(*b),
        cjson::Value::Int(digits) => {
            if let Ok(n) = digits.parse::<i64>() {
                J::from(n)
            } else if let Ok(n) = digits.parse::<u64>() {
                J::from(n)
            } else {
                return Err(Error::malformed(
                    "in-toto metadata",
                    format!("integer {digits} does not fit in 64 bits"),
                ));
            }
        }
        cjson::Value::Str(s) => J::String(s.clone()),
        cjson::Value::Array(items) => J::Array(items.iter().map(to_serde).collect::<Result<_>>()?),
        cjson::Value::Object(members) => J::Object(
            members
                .iter()
                .map(|(k, v)| Ok((k.clone(), to_serde(v)?)))
                .collect::<Result<_>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::OnceLock;

    use chrono::Duration;
    use proptest::prelude::*;

    use super::*;
    use crate::intoto::test_support::*;
    use crate::intoto::{ArtifactMap, Byproducts, Link};
    use crate::keys::{Algorithm, PrivateKey};

    fn keys() -> &'static [PrivateKey; 2] {
        static KEYS: OnceLock<[PrivateKey; 2]> = OnceLock::new();
        KEYS.get_or_init(|| [key(Algorithm::EcdsaP256), key(Algorithm::Ed25519)])
    }

    /// Byte offsets of the hex digits of `\uXXXX` escapes in a JSON text.
    /// Their letters can change case without changing the document: the
    /// only single-bit changes a verifier must (and does) accept, because
    /// they leave the signed value byte-identical.
    fn unicode_escape_digits(json: &[u8]) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        let (mut i, mut in_string) = (0, false);
        while i < json.len() {
            match (in_string, json[i]) {
                (false, b'"') => in_string = true,
                (true, b'"') => in_string = false,
                (true, b'\\') => {
                    if json.get(i + 1) == Some(&b'u') {
                        out.extend(i + 2..i + 6);
                    }
                    i += 1;
                }
                _ => {}
            }
            i += 1;
        }
        out
    }

    /// Flip bit `bit` of byte `at` and check the verdict: verification fails,
    /// or the flip sat in a `\u` escape digit and the signed bytes are unchanged.
    fn assert_flip_detected(
        file: &[u8],
        at: usize,
        bit: u8,
        verify: &dyn Fn(&[u8]) -> Result<Vec<u8>>,
    ) {
        let mut flipped = file.to_vec();
        flipped[at] ^= 1 << bit;
        if let Ok(signed) = verify(&flipped) {
            let original = verify(file).unwrap();
            assert!(
                unicode_escape_digits(file).contains(&at) && signed == original,
                "flip of bit {bit} at byte {at} ({:?}) still verified",
                char::from(file[at])
            );
        }
    }

    fn verify_link_bytes(bytes: &[u8], key: &PublicKey) -> Result<Vec<u8>> {
        let block = parse_metablock(bytes, &MetablockLimits::default())?;
        block.verify_link(key)?;
        Ok(block.signed_bytes().to_vec())
    }

    #[test]
    fn every_single_bit_flip_of_a_link_file_is_detected() {
        // Exhaustive over a whole file (Ed25519 keeps it fast). The stdout
        // holds tabs, backslashes, non-ASCII and an ESC (written `\u001b`).
        let key = &keys()[1];
        let file = signed_file(intake_link(), &[key]);
        assert!(
            !unicode_escape_digits(&file).is_empty(),
            "fixture must exercise escapes"
        );
        let verify = |b: &[u8]| verify_link_bytes(b, key.public_key());
        verify(&file).unwrap();
        let mut benign = 0;
        for at in 0..file.len() {
            for bit in 0..8 {
                assert_flip_detected(&file, at, bit, &verify);
                let mut f = file.clone();
                f[at] ^= 1 << bit;
                benign += usize::from(verify(&f).is_ok());
            }
        }
        // Exactly the case flips of the `b` in `\u001b`.
        assert_eq!(benign, 1);
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), "[a-z\t\\\\é日\u{1}\u{1f}\u{7f}\"/ ]{0,24}",]
    }

    fn artifacts() -> impl Strategy<Value = ArtifactMap> {
        prop::collection::btree_map(
            text(),
            "[0-9a-f]{2,64}"
                .prop_map(|h| std::collections::BTreeMap::from([("sha256".to_string(), h)])),
            0..4,
        )
    }

    fn link() -> impl Strategy<Value = Link> {
        (
            text(),
            prop::collection::vec(text(), 0..3),
            artifacts(),
            artifacts(),
            text(),
            text(),
            any::<i64>(),
        )
            .prop_map(|(name, command, materials, products, stdout, stderr, rv)| {
                Link::new(
                    name,
                    command,
                    materials,
                    products,
                    Byproducts::from_run(stdout, stderr, rv),
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Sign then verify succeeds, and the verified link is the one signed.
        #[test]
        fn sign_then_verify_round_trips(link in link(), which in 0usize..2) {
            let key = &keys()[which];
            let file = signed_file(link.clone(), &[key]);
            let block = parse_metablock(&file, &MetablockLimits::default()).unwrap();
            let verified = block.verify_link(key.public_key()).unwrap();
            prop_assert_eq!(verified.into_inner(), link);
            // Another key does not verify it.
            let other = &keys()[1 - which];
            prop_assert!(block.verify_link(other.public_key()).is_err());
        }

        /// One flipped bit anywhere in a link file fails verification (or
        /// parsing), never passes with a changed document, never panics.
        #[test]
        fn one_flipped_bit_fails(link in link(), which in 0usize..2, at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let key = &keys()[which];
            let file = signed_file(link, &[key]);
            let verify = |b: &[u8]| verify_link_bytes(b, key.public_key());
            assert_flip_detected(&file, at.index(file.len()), bit, &verify);
        }

        /// The same for a layout (signed by the root key, checked with expiry).
        #[test]
        fn one_flipped_bit_in_a_layout_fails(readme in text(), which in 0usize..2, at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let [root, func] = keys();
            let key = if which == 0 { root } else { func };
            let mut layout = two_step_layout(&[func], 1, Duration::days(1));
            layout.readme = readme;
            let file = signed_file(layout, &[key]);
            let verify = |b: &[u8]| -> Result<Vec<u8>> {
                let block = parse_metablock(b, &MetablockLimits::default())?;
                block.verify_layout(std::slice::from_ref(key.public_key()), Utc::now())?;
                Ok(block.signed_bytes().to_vec())
            };
            verify(&file).unwrap();
            assert_flip_detected(&file, at.index(file.len()), bit, &verify);
        }

        /// Arbitrary bytes never panic the parser or the verifier.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(block) = parse_metablock(&bytes, &MetablockLimits::for_testing()) {
                let _ = block.verify_link(keys()[0].public_key());
                let _ = block.verify_layout(&[keys()[1].public_key().clone()], Utc::now());
            }
        }

        /// Mutations of a valid file (not only random bytes) never panic either.
        #[test]
        fn mutated_files_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let mut file = signed_file(train_link(), &[&keys()[0]]);
            for (at, byte) in edits {
                let i = at.index(file.len());
                file[i] = byte;
            }
            if let Ok(block) = parse_metablock(&file, &MetablockLimits::for_testing()) {
                let _ = block.verify_link(keys()[0].public_key());
            }
        }
    }
}
