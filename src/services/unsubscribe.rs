//! One-click unsubscribe tokens (RFC 8058): signed, scoped to one person and one group of
//! events (or to the daily digest as a whole), and without expiry. Nothing is stored: the
//! token is `{user id}.{scope}.{HMAC}` under the signing key, so rotating the key is the
//! only way to void every old link.

use uuid::Uuid;

use crate::auth::tokens::TokenKeys;
use crate::entities::notification::EventGroup;

const PURPOSE: &str = "unsubscribe";

/// What one unsubscribe link stops.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Mail about one group of events (set to `OFF`).
    Group(EventGroup),
    /// The daily digest: every group sent by digest is set to `OFF`.
    Digest,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Group(g) => g.as_str(),
            Scope::Digest => "digest",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "digest" => Some(Scope::Digest),
            other => EventGroup::parse(other).map(Scope::Group),
        }
    }

    /// What stops, as the confirmation page says it.
    pub fn label(self) -> &'static str {
        match self {
            Scope::Group(g) => g.label(),
            Scope::Digest => "the daily digest",
        }
    }
}

/// The token of `user`'s link for `scope`.
pub fn token(keys: &TokenKeys, user: Uuid, scope: Scope) -> String {
    let message = format!("{}.{}", user.simple(), scope.as_str());
    let mac = keys.url_mac(PURPOSE, &message);
    format!("{message}.{mac}")
}

/// The person and scope a token names, if its signature holds.
pub fn verify(keys: &TokenKeys, token: &str) -> Option<(Uuid, Scope)> {
    let mut parts = token.splitn(3, '.');
    let (user, scope, mac) = (parts.next()?, parts.next()?, parts.next()?);
    if !keys.verify_url_mac(PURPOSE, &format!("{user}.{scope}"), mac) {
        return None;
    }
    Some((Uuid::parse_str(user).ok()?, Scope::parse(scope)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn keys(k: &str) -> TokenKeys {
        TokenKeys::new(
            &SecretString::from(k),
            "convene",
            "convene-api",
            chrono::Duration::minutes(15),
        )
    }

    #[test]
    fn a_token_names_its_person_and_scope_and_tampering_fails() {
        let k = keys("0123456789abcdef0123456789abcdef");
        let user = Uuid::now_v7();
        for scope in [Scope::Digest, Scope::Group(EventGroup::Meetups)] {
            let t = token(&k, user, scope);
            assert_eq!(verify(&k, &t), Some((user, scope)));
            // Another scope with the same signature is refused.
            let forged = t.replacen(scope.as_str(), "discussions", 1);
            assert_eq!(verify(&k, &forged), None);
        }
        let other = keys("fedcba9876543210fedcba9876543210");
        assert_eq!(verify(&other, &token(&k, user, Scope::Digest)), None);
        assert_eq!(verify(&k, "nonsense"), None);
    }
}
