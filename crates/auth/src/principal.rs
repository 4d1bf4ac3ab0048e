//! Who is calling: the authenticated [`Principal`] and its Veritrain [`Role`]s.
//!
//! A `Principal` is only ever built by [`crate::Authenticator`] after the token's
//! signature and claims were checked, so handlers can authorise on it directly.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A Veritrain role. Roles are independent: grant several where a person needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Submits jobs and sees only their own.
    Developer,
    /// Reads and verifies all jobs.
    Auditor,
    /// Manages keys and sees operations (audit log, metrics).
    Admin,
}

impl Role {
    /// All roles, in order.
    pub const ALL: [Role; 3] = [Role::Developer, Role::Auditor, Role::Admin];

    /// The lowercase name used in config files and API bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Developer => "developer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
///
/// The stable identity is `(tenant, object_id)`: for Entra ID the token's
/// `(tid, oid)` (`sub` is pairwise per application, so it is not used); for
/// any other issuer `(iss, sub)`. Store and compare job ownership by this pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Entra tenant id (`tid`), or the issuer URL for a generic issuer.
    pub tenant: String,
    /// Entra object id (`oid`), or `sub` for a generic issuer.
    pub object_id: String,
    /// A name to show (`name`, `preferred_username`, or the client id for app
    /// tokens). Mutable and informational: never authorise on it.
    pub display_name: Option<String>,
    /// The Veritrain roles the token's roles and scopes map to; never empty.
    pub roles: BTreeSet<Role>,
}

impl Principal {
    /// Whether the principal has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// May submit jobs (developer).
    pub fn can_submit(&self) -> bool {
        self.has(Role::Developer)
    }

    /// May read and verify every user's jobs (auditor).
    pub fn can_read_all(&self) -> bool {
        self.has(Role::Auditor)
    }

    /// May manage keys and read operations data (admin).
    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(roles: &[Role]) -> Principal {
        Principal {
            tenant: "t".into(),
            object_id: "o".into(),
            display_name: None,
            roles: roles.iter().copied().collect(),
        }
    }

    #[test]
    fn helpers_follow_roles() {
        let dev = with(&[Role::Developer]);
        assert!(dev.can_submit() && !dev.can_read_all() && !dev.is_admin());
        let aud = with(&[Role::Auditor]);
        assert!(!aud.can_submit() && aud.can_read_all() && !aud.is_admin());
        let adm = with(&[Role::Admin]);
        assert!(!adm.can_submit() && !adm.can_read_all() && adm.is_admin());
    }

    #[test]
    fn role_names_round_trip() {
        for r in Role::ALL {
            let j = serde_json::to_string(&r).unwrap();
            assert_eq!(j, format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&j).unwrap(), r);
        }
    }
}
