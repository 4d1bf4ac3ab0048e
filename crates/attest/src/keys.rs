//! Signing keys, public keys and key IDs, in the exact shapes securesystemslib
//! (and therefore Python in-toto) uses.
//!
//! A public key is described by a *key dictionary*
//! `{"keytype", "scheme", "keyval": {"public"}}`, and its key ID is
//! `sha256(canonical_json(key dictionary))` in lower-case hex:
//! - ECDSA P-256: keytype `ecdsa`, scheme `ecdsa-sha2-nistp256`, `public` is
//!   the SPKI PEM text (64-column base64, trailing newline), signatures are
//!   ASN.1 DER over SHA-256 of the message;
//! - Ed25519: keytype and scheme `ed25519`, `public` is the 32-byte key in
//!   hex, signatures are the raw 64 bytes.
//!
//! Private keys are [`PrivateKey`] values: wiped on drop, `Debug` redacted.
//! Everything that signs goes through the [`Signer`] trait so an HSM-backed
//! signer can replace the file key without touching the formats.

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use pkcs8::LineEnding;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cjson;
use crate::error::{Error, Result};

/// The signature algorithms Veritrain signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// ECDSA over NIST P-256 with SHA-256 (the default: the OpenSSF
    /// model-signing format allows only ECDSA, and every HSM has it).
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// Ed25519 (pure).
    Ed25519,
}

impl Algorithm {
    /// securesystemslib `keytype`.
    pub fn keytype(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256 => "ecdsa",
            Algorithm::Ed25519 => "ed25519",
        }
    }

    /// securesystemslib `scheme`.
    pub fn scheme(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256 => "ecdsa-sha2-nistp256",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ecdsa-p256" | "ecdsa" | "p256" | "ecdsa-sha2-nistp256" => Ok(Algorithm::EcdsaP256),
            "ed25519" => Ok(Algorithm::Ed25519),
            other => Err(Error::KeyUnsupported(format!(
                "{other:?}; expected ecdsa-p256 or ed25519"
            ))),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::Ed25519 => "ed25519",
        })
    }
}

/// The `keyval` member of a key dictionary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyVal {
    /// PEM (ECDSA) or hex (Ed25519) public key.
    pub public: String,
}

/// A securesystemslib key dictionary: what layouts list under `keys` and
/// key sets list per signing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDict {
    /// `ecdsa` or `ed25519`.
    pub keytype: String,
    /// `ecdsa-sha2-nistp256` or `ed25519`.
    pub scheme: String,
    /// The public part.
    pub keyval: KeyVal,
}

/// A public key we can verify with.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    inner: PublicInner,
    keyid: String,
}

#[derive(Clone, PartialEq, Eq)]
enum PublicInner {
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm())
            .field("keyid", &self.keyid)
            .finish()
    }
}

impl PublicKey {
    fn new(inner: PublicInner) -> Result<Self> {
        let mut key = PublicKey {
            inner,
            keyid: String::new(),
        };
        key.keyid = hex::encode(Sha256::digest(cjson::encode(&key.key_dict()?)?));
        Ok(key)
    }

    /// The algorithm of this key.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            PublicInner::P256(_) => Algorithm::EcdsaP256,
            PublicInner::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// securesystemslib key ID: sha256 of the canonical key dictionary.
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// The SPKI PEM encoding (what `openssl pkey -pubout` writes).
    pub fn to_spki_pem(&self) -> Result<String> {
        let pem = match &self.inner {
            PublicInner::P256(k) => k.to_public_key_pem(LineEnding::LF),
            PublicInner::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
        };
        pem.map_err(|e| Error::KeyInvalid(e.to_string()))
    }

    /// Parse an SPKI PEM public key (ECDSA P-256 or Ed25519).
    pub fn from_spki_pem(pem: &str) -> Result<Self> {
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Self::new(PublicInner::P256(k));
        }
        match ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            Ok(k) => Self::new(PublicInner::Ed25519(k)),
            Err(e) => Err(Error::KeyInvalid(format!(
                "not an SPKI PEM public key for ECDSA P-256 or Ed25519 ({e})"
            ))),
        }
    }

    /// The securesystemslib key dictionary.
    pub fn key_dict(&self) -> Result<KeyDict> {
        let alg = self.algorithm();
        let public = match &self.inner {
            PublicInner::P256(_) => self.to_spki_pem()?,
            PublicInner::Ed25519(k) => hex::encode(k.as_bytes()),
        };
        Ok(KeyDict {
            keytype: alg.keytype().to_owned(),
            scheme: alg.scheme().to_owned(),
            keyval: KeyVal { public },
        })
    }

    /// Build a key from a securesystemslib key dictionary.
    pub fn from_key_dict(dict: &KeyDict) -> Result<Self> {
        let key = match (dict.keytype.as_str(), dict.scheme.as_str()) {
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => {
                let k = p256::ecdsa::VerifyingKey::from_public_key_pem(&dict.keyval.public)
                    .map_err(|e| Error::KeyInvalid(format!("ECDSA keyval.public: {e}")))?;
                Self::new(PublicInner::P256(k))?
            }
            ("ed25519", "ed25519") => {
                let raw = hex::decode(&dict.keyval.public)
                    .map_err(|e| Error::KeyInvalid(format!("Ed25519 keyval.public: {e}")))?;
                let raw: [u8; 32] = raw.try_into().map_err(|_| {
                    Error::KeyInvalid("Ed25519 keyval.public must be 32 bytes".into())
                })?;
                let k = ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .map_err(|e| Error::KeyInvalid(format!("Ed25519 keyval.public: {e}")))?;
                Self::new(PublicInner::Ed25519(k))?
            }
            (kt, sc) => {
                return Err(Error::KeyUnsupported(format!(
                    "keytype {kt:?} scheme {sc:?}"
                )));
            }
        };
        // The dictionary as given must be the one whose hash is the key ID;
        // a PEM with different line breaks would hash differently.
        if &key.key_dict()? != dict {
            return Err(Error::KeyInvalid(
                "key dictionary is not in canonical securesystemslib form".into(),
            ));
        }
        Ok(key)
    }

    /// Verify `sig` (securesystemslib encoding: DER for ECDSA, raw for
    /// Ed25519) over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<()> {
        let ok = match &self.inner {
            PublicInner::P256(k) => p256::ecdsa::Signature::from_der(sig)
                .ok()
                .is_some_and(|s| k.verify(msg, &s).is_ok()),
            PublicInner::Ed25519(k) => ed25519_dalek::Signature::from_slice(sig)
                .ok()
                .is_some_and(|s| k.verify_strict(msg, &s).is_ok()),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Signature(format!(
                "signature by key {} does not verify",
                self.keyid
            )))
        }
    }
}

/// A private key held in process memory. Wiped on drop; `Debug` prints no
/// secret material.
pub struct PrivateKey {
    inner: PrivateInner,
    public: PublicKey,
}

enum PrivateInner {
    // Both types zeroize their secret scalar on drop.
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.public.algorithm())
            .field("keyid", &self.public.keyid())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl PrivateKey {
    /// Generate a fresh key from the operating system's RNG.
    pub fn generate(alg: Algorithm) -> Result<Self> {
        let mut rng = rand_core::OsRng;
        let inner = match alg {
            Algorithm::EcdsaP256 => PrivateInner::P256(p256::ecdsa::SigningKey::random(&mut rng)),
            Algorithm::Ed25519 => {
                PrivateInner::Ed25519(ed25519_dalek::SigningKey::generate(&mut rng))
            }
        };
        Self::from_inner(inner)
    }

    fn from_inner(inner: PrivateInner) -> Result<Self> {
        let public = match &inner {
            PrivateInner::P256(k) => PublicKey::new(PublicInner::P256(*k.verifying_key()))?,
            PrivateInner::Ed25519(k) => PublicKey::new(PublicInner::Ed25519(k.verifying_key()))?,
        };
        Ok(PrivateKey { inner, public })
    }

    /// Parse a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`), as
    /// written by OpenSSL's `genpkey` or Python `cryptography`; SEC1
    /// `EC PRIVATE KEY` PEM (OpenSSL `ecparam -genkey`) is accepted too.
    /// Encrypted keys are refused.
    pub fn from_pem(pem: &str) -> Result<Self> {
        if pem.contains("ENCRYPTED PRIVATE KEY") {
            return Err(Error::KeyUnsupported(
                "encrypted PKCS#8 keys; decrypt with `openssl pkcs8` or use an HSM signer".into(),
            ));
        }
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Self::from_inner(PrivateInner::P256(k));
        }
        if pem.contains("BEGIN EC PRIVATE KEY") {
            use p256::elliptic_curve::SecretKey;
            let sk: SecretKey<p256::NistP256> = SecretKey::from_sec1_pem(pem)
                .map_err(|e| Error::KeyInvalid(format!("SEC1 EC private key: {e}")))?;
            return Self::from_inner(PrivateInner::P256(sk.into()));
        }
        match ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            Ok(k) => Self::from_inner(PrivateInner::Ed25519(k)),
            Err(e) => Err(Error::KeyInvalid(format!(
                "not a PKCS#8 PEM private key for ECDSA P-256 or Ed25519 ({e})"
            ))),
        }
    }

    /// PKCS#8 PEM encoding. The returned string is wiped on drop.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>> {
        let pem = match &self.inner {
            PrivateInner::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
            PrivateInner::Ed25519(k) => k.to_pkcs8_pem(LineEnding::LF),
        };
        pem.map_err(|e| Error::KeyInvalid(e.to_string()))
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }
}

/// Anything that can produce signatures for one key: a key file in memory
/// now, a PKCS#11 token later.
pub trait Signer: Send + Sync {
    /// The public key signatures verify under.
    fn public_key(&self) -> &PublicKey;

    /// Sign `msg`, returning the securesystemslib encoding (DER for ECDSA,
    /// raw 64 bytes for Ed25519).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>>;

    /// The key ID signatures are labelled with.
    fn keyid(&self) -> &str {
        self.public_key().keyid()
    }
}

impl Signer for PrivateKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        Ok(match &self.inner {
            PrivateInner::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                sig.to_der().as_bytes().to_vec()
            }
            PrivateInner::Ed25519(k) => k.sign(msg).to_bytes().to_vec(),
        })
    }
}

/// A [`Signer`] backed by a PEM key file on disk.
#[derive(Debug)]
pub struct FileSigner {
    key: PrivateKey,
}

impl FileSigner {
    /// Load the PEM private key at `path`.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let pem = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?);
        Ok(FileSigner {
            key: PrivateKey::from_pem(&pem)?,
        })
    }

    /// Wrap an in-memory key.
    pub fn from_key(key: PrivateKey) -> Self {
        FileSigner { key }
    }
}

impl Signer for FileSigner {
    fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        self.key.sign(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_keyid_matches_securesystemslib_fixture() {
        // From securesystemslib 1.6.0 `SSlibKey.from_crypto` on this machine.
        let pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEbAUl/QZBODBlFwr43d0KYnpmswpn\nXxRGmbGuno9fdXVG2NICX04xlel8lfm3D+NYuzrJeYuTpQkgLvpvzbB9bw==\n-----END PUBLIC KEY-----\n";
        let key = PublicKey::from_spki_pem(pem).unwrap();
        assert_eq!(
            key.keyid(),
            "73c022b3909b99cd898a48c0b6b270d6e5aab458afd6333cbd683d3e858a9bd0"
        );
        assert_eq!(key.key_dict().unwrap().keyval.public, pem);
    }

    #[test]
    fn ed25519_keyid_matches_securesystemslib_fixture() {
        let dict = KeyDict {
            keytype: "ed25519".into(),
            scheme: "ed25519".into(),
            keyval: KeyVal {
                public: "d54bd6778007fc857867e16e307cd2f4fe040e2ac502f1fb5eb2b9e5d3807e3b".into(),
            },
        };
        let key = PublicKey::from_key_dict(&dict).unwrap();
        assert_eq!(
            key.keyid(),
            "7c17db1587312feb97e1400bef2cdacb7f786575c813203d8de5267fd9a81e13"
        );
    }

    #[test]
    fn pem_round_trip_and_sign_verify_both_algorithms() {
        for alg in [Algorithm::EcdsaP256, Algorithm::Ed25519] {
            let key = PrivateKey::generate(alg).unwrap();
            let again = PrivateKey::from_pem(&key.to_pkcs8_pem().unwrap()).unwrap();
            assert_eq!(again.public_key(), key.public_key());
            let public =
                PublicKey::from_spki_pem(&key.public_key().to_spki_pem().unwrap()).unwrap();
            let sig = key.sign(b"msg").unwrap();
            public.verify(b"msg", &sig).unwrap();
            assert!(public.verify(b"msh", &sig).is_err());
        }
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        let body: String = pem.lines().nth(1).unwrap().chars().take(20).collect();
        let dbg = format!("{key:?}");
        let dbg = format!("{dbg} {:?}", FileSigner::from_key(key));
        assert!(dbg.contains("redacted"));
        assert!(!dbg.contains(&body));
    }

    #[test]
    fn garbage_keys_are_errors_not_panics() {
        assert!(
            PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .is_err()
        );
        assert!(PublicKey::from_spki_pem("hello").is_err());
        let bad = KeyDict {
            keytype: "rsa".into(),
            scheme: "rsassa-pss-sha256".into(),
            keyval: KeyVal { public: "x".into() },
        };
        assert_eq!(
            PublicKey::from_key_dict(&bad).unwrap_err().code(),
            "key.unsupported"
        );
    }
}
