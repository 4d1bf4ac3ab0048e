//! "Verified" as a type.
//!
//! Only the verify functions of this crate construct a [`Verified`]; its
//! constructor is private to the crate. Code that makes a decision from a
//! signed document takes a `Verified<T>`, so it cannot act on bytes whose
//! signatures were never checked.

use std::ops::Deref;

/// A value whose signatures (and, where applicable, validity period and
/// key status) have been checked.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    value: T,
    signers: Vec<String>,
}

impl<T> Verified<T> {
    pub(crate) fn new(value: T, signers: Vec<String>) -> Self {
        Verified { value, signers }
    }

    /// Key IDs whose signatures verified, in the order they were found.
    pub fn signers(&self) -> &[String] {
        &self.signers
    }

    /// The checked value.
    pub fn into_inner(self) -> T {
        self.value
    }

    /// Derive a checked value from this one, keeping the signers: for a
    /// crate that parses a verified payload into its own format (the BOM
    /// crate reads the CycloneDX predicate of a verified statement).
    ///
    /// `f` must build its result from the value it is given and nothing
    /// else; whatever it returns is vouched for by these signatures.
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Verified<U>, E> {
        let Verified { value, signers } = self;
        Ok(Verified {
            value: f(value)?,
            signers,
        })
    }
}

impl<T> Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_map_keeps_the_signers_and_passes_errors_on() {
        let v = Verified::new(b"42".to_vec(), vec!["k1".into(), "k2".into()]);
        let parsed = v
            .clone()
            .try_map(|bytes| String::from_utf8(bytes).map(|s| s.len()))
            .unwrap();
        assert_eq!(*parsed, 2);
        assert_eq!(parsed.signers(), ["k1", "k2"]);
        let err = v.try_map(|_| Err::<(), _>("bad")).unwrap_err();
        assert_eq!(err, "bad");
    }
}
