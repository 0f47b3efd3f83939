use std::fmt;

use super::DomainError;

fn char_count(s: &str) -> usize {
    s.chars().count()
}

/// A person's public name: 1–80 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(DomainError("a display name is required".into()));
        }
        if char_count(s) > 80 {
            return Err(DomainError(
                "a display name is at most 80 characters".into(),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(DomainError(
                "a display name cannot hold control characters".into(),
            ));
        }
        Ok(DisplayName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An organisation's name, at most 200 characters; empty when a person speaks for themself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation(String);

impl Organisation {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim();
        if char_count(s) > 200 {
            return Err(DomainError(
                "an organisation is at most 200 characters".into(),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(DomainError(
                "an organisation cannot hold control characters".into(),
            ));
        }
        Ok(Organisation(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A short profile text, at most 2,000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bio(String);

impl Bio {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim();
        if char_count(s) > 2000 {
            return Err(DomainError("a bio is at most 2,000 characters".into()));
        }
        Ok(Bio(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password that passed the length and strength rules. Never printed.
#[derive(Clone)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

impl Password {
    pub const MIN_CHARS: usize = 12;
    pub const MAX_CHARS: usize = 256;

    /// Checks a new password: 12–256 characters, not containing the account's email (or its
    /// local part) or display name, and rated at least 3 of 4 by the zxcvbn estimator.
    pub fn parse_new(raw: &str, email: &str, display_name: &str) -> Result<Self, DomainError> {
        let n = char_count(raw);
        if n < Self::MIN_CHARS {
            return Err(DomainError(format!(
                "a password needs at least {} characters",
                Self::MIN_CHARS
            )));
        }
        if n > Self::MAX_CHARS {
            return Err(DomainError(format!(
                "a password is at most {} characters",
                Self::MAX_CHARS
            )));
        }
        let lower = raw.to_lowercase();
        let email = email.trim().to_lowercase();
        let local = email.split('@').next().unwrap_or("");
        if !email.is_empty()
            && (lower.contains(&email) || (local.len() >= 3 && lower.contains(local)))
        {
            return Err(DomainError(
                "a password cannot contain your email address".into(),
            ));
        }
        let name = display_name.trim().to_lowercase();
        if name.chars().count() >= 3 && lower.contains(&name) {
            return Err(DomainError(
                "a password cannot contain your display name".into(),
            ));
        }
        let entropy = zxcvbn::zxcvbn(raw, &[email.as_str(), local, name.as_str()]);
        if (entropy.score() as u8) < 3 {
            let hint = entropy
                .feedback()
                .and_then(|f| f.warning().map(|w| w.to_string()))
                .unwrap_or_else(|| "it would be easy to guess".to_string());
            return Err(DomainError(format!("this password is too weak: {hint}")));
        }
        Ok(Password(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn password_rules() {
        assert!(Password::parse_new("short", "a@b.org", "Ann").is_err());
        assert!(Password::parse_new("passwordpassword", "a@b.org", "Ann").is_err());
        assert!(Password::parse_new("annlee-quiet-harbour-91", "annlee@b.org", "Ann").is_err());
        assert!(
            Password::parse_new("Zebra Harbour Lantern 93", "x@b.org", "Zebra Harbour").is_err()
        );
        assert!(Password::parse_new(&"x".repeat(257), "a@b.org", "Ann").is_err());
        assert!(Password::parse_new("correct horse battery staple 42", "a@b.org", "Ann").is_ok());
    }

    #[test]
    fn display_name_rules() {
        assert!(DisplayName::parse("  ").is_err());
        assert!(DisplayName::parse(&"n".repeat(81)).is_err());
        assert!(DisplayName::parse("Ann\u{0007}").is_err());
        assert_eq!(DisplayName::parse(" Ann Lee ").unwrap().as_str(), "Ann Lee");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = DisplayName::parse(&s);
            let _ = Organisation::parse(&s);
            let _ = Bio::parse(&s);
            let _ = Password::parse_new(&s, "a@b.org", "Ann");
        }
    }
}
