use std::fmt;
use std::str::FromStr;

use super::DomainError;

/// An email address as typed, with a case-folded form used for comparison and uniqueness.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    original: String,
    normalized: String,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(DomainError("an email address is required".into()));
        }
        if trimmed.len() > 320 {
            return Err(DomainError(
                "an email address is at most 320 characters".into(),
            ));
        }
        let parsed = email_address::EmailAddress::from_str(trimmed)
            .map_err(|e| DomainError(format!("not a valid email address: {e}")))?;
        // Display names ("Ann <ann@x>") are for headers, not for an account's address.
        if parsed.as_str() != trimmed || trimmed.contains(['<', '>', ' ']) {
            return Err(DomainError("not a valid email address".into()));
        }
        let domain = parsed.domain();
        if !domain.contains('.') && domain != "localhost" {
            return Err(DomainError(
                "not a valid email address: the domain needs a dot".into(),
            ));
        }
        Ok(Email {
            original: trimmed.to_string(),
            normalized: trimmed.to_lowercase(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The case-folded form that makes `Ann@Example.org` and `ann@example.org` one account.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    pub fn local_part(&self) -> &str {
        self.normalized.split('@').next().unwrap_or("")
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Email").field(&self.original).finish()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_addresses_and_folds_case() {
        let e = Email::parse("  Ann.Lee@Example.ORG ").unwrap();
        assert_eq!(e.as_str(), "Ann.Lee@Example.ORG");
        assert_eq!(e.normalized(), "ann.lee@example.org");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.org",
            "ann@@example.org",
            "Ann <ann@example.org>",
            "ann@example",
            "a b@example.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = Email::parse(&s);
        }

        #[test]
        fn addresses_without_an_at_sign_are_rejected(s in "[a-z0-9.]{1,40}") {
            prop_assert!(Email::parse(&s).is_err());
        }

        #[test]
        fn normalized_form_is_lowercase(local in "[a-zA-Z0-9]{1,20}", domain in "[a-zA-Z]{1,10}\\.[a-z]{2,5}") {
            let e = Email::parse(&format!("{local}@{domain}")).unwrap();
            prop_assert_eq!(e.normalized(), format!("{local}@{domain}").to_lowercase());
        }
    }
}
