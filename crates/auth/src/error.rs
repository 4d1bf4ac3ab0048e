//! The one error type of the auth crate.
//!
//! Every rejection a caller can trigger carries a stable machine-readable code
//! (`Error::code`), used verbatim in API error bodies, the audit log and the
//! auth-failure metric. Messages describe what was wrong with the token but
//! never echo it, nor any of its attacker-chosen header or claim values: a
//! message ends up in logs, and a token in a log is a credential in a log.

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while authenticating a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token: send `Authorization: Bearer <access token>`")]
    Missing,
    /// The token is not a well-formed JWT, or lacks a claim we need.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The signature does not verify with the key the token names.
    #[error("token signature does not verify")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("token has expired; get a new one")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token is not valid yet (nbf in the future); check the clocks")]
    NotYetValid,
    /// `iss` is not the configured issuer (or an Entra v1 issuer or token version).
    #[error("token issuer is not accepted: {0}")]
    BadIssuer(&'static str),
    /// `aud` names none of the configured audiences.
    #[error("token audience is not this API; request a token for the API's client id")]
    BadAudience,
    /// Entra `tid` missing, not matching the issuer, or not in the allow-list.
    #[error("token tenant is not accepted: {0}")]
    BadTenant(&'static str),
    /// `alg` is not RS256 or ES256, or does not match the type of the key it names.
    #[error("token algorithm is not accepted: {0}")]
    UnsupportedAlg(&'static str),
    /// No key with the token's `kid` in the issuer's JWKS, even after a refetch.
    #[error("token is signed by a key the issuer does not publish")]
    UnknownKey,
    /// The token is valid but maps to no Veritrain role.
    #[error("token carries no role or scope that maps to a Veritrain role")]
    NoRole,
    /// The discovery document or the JWKS could not be fetched or parsed.
    #[error("identity provider unreachable or its metadata is unusable: {0}")]
    IdpUnreachable(String),
    /// The configuration is unusable (checked once, at start).
    #[error("invalid auth configuration: {0}")]
    Config(String),
}

impl Error {
    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Missing => "auth.missing",
            Error::Malformed(_) => "auth.malformed",
            Error::BadSignature => "auth.bad_signature",
            Error::Expired => "auth.expired",
            Error::NotYetValid => "auth.not_yet_valid",
            Error::BadIssuer(_) => "auth.bad_issuer",
            Error::BadAudience => "auth.bad_audience",
            Error::BadTenant(_) => "auth.bad_tenant",
            Error::UnsupportedAlg(_) => "auth.unsupported_alg",
            Error::UnknownKey => "auth.unknown_key",
            Error::NoRole => "auth.no_role",
            Error::IdpUnreachable(_) => "auth.idp_unreachable",
            Error::Config(_) => "auth.config",
        }
    }

    /// Whether the caller's token was at fault (answer 401/403), as opposed
    /// to our identity provider or configuration (answer 503/500).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Error::IdpUnreachable(_) | Error::Config(_))
    }
}

impl From<jsonwebtoken::errors::Error> for Error {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::ExpiredSignature => Error::Expired,
            K::ImmatureSignature => Error::NotYetValid,
            K::InvalidAudience => Error::BadAudience,
            K::InvalidIssuer => Error::BadIssuer("iss does not match"),
            K::InvalidSignature
            | K::InvalidEcdsaKey
            | K::InvalidRsaKey(_)
            | K::InvalidKeyFormat => Error::BadSignature,
            K::InvalidAlgorithm | K::InvalidAlgorithmName | K::MissingAlgorithm => {
                Error::UnsupportedAlg("not RS256 or ES256")
            }
            K::MissingRequiredClaim(_) => {
                Error::Malformed("a required claim (exp, iss or aud) is missing")
            }
            K::Json(_) => Error::Malformed("claims are not JSON of the expected shape"),
            K::Base64(_) | K::Utf8(_) => Error::Malformed("a segment is not base64url JSON"),
            _ => Error::Malformed("token could not be decoded"),
        }
    }
}
