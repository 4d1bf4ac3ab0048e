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
}

impl<T> Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}
