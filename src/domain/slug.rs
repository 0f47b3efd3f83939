use super::DomainError;

/// A short name used in URLs, such as `data-steering-group`: 3–80 lowercase ASCII letters,
/// digits and hyphens, starting and ending with a letter or digit. Input is trimmed and
/// lower-cased first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub const MIN: usize = 3;
    pub const MAX: usize = 80;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim().to_ascii_lowercase();
        if s.len() < Self::MIN || s.len() > Self::MAX {
            return Err(DomainError(format!(
                "a slug has {}–{} characters",
                Self::MIN,
                Self::MAX
            )));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(DomainError(
                "a slug holds only lowercase letters a–z, digits and hyphens".into(),
            ));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(DomainError(
                "a slug starts and ends with a letter or digit".into(),
            ));
        }
        Ok(Slug(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_short_lowercase_ascii_words() {
        assert_eq!(
            Slug::parse(" Data-Steering-Group ").unwrap().as_str(),
            "data-steering-group"
        );
        assert!(Slug::parse("uk-data-2026").is_ok());
        for bad in [
            "ab",
            "data group",
            "données",
            "-data",
            "data-",
            "a_b_c",
            &"a".repeat(81),
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }
}
