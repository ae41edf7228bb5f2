//! Request validation shared by every service: collect one violation per bad
//! field, then fail once with all of them.

use crate::error::{Error, FieldViolation};

/// Longest slug (1–63 characters, a DNS label's length).
pub const MAX_SLUG_LEN: usize = 63;
/// Longest email address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Collects field violations of one request.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation.
    pub fn add(&mut self, field: &str, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.to_owned(),
            description: description.into(),
        });
    }

    /// Records the violation `check` returns for `field`, if any.
    pub fn check(&mut self, field: &str, check: Result<(), String>) {
        if let Err(description) = check {
            self.add(field, description);
        }
    }

    /// Checks a list field: at most `max` items (else one violation, and the
    /// items are not looked at: a list of a million bad items is one
    /// answer, not a million), each passing `check`.
    pub fn list<T>(
        &mut self,
        field: &str,
        items: &[T],
        max: usize,
        check: impl Fn(&T) -> Result<(), String>,
    ) {
        if items.len() > max {
            self.add(field, format!("at most {max} items"));
            return;
        }
        for item in items {
            self.check(field, check(item));
        }
    }

    /// `Ok` when no field was bad, else `INVALID_ARGUMENT` with every violation.
    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(self.0))
        }
    }
}

/// A slug: lowercase letters, digits and `-`, 1–63 characters, starting with
/// a letter. Also refuses a trailing `-` and `--`, which read as typos.
pub fn slug(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > MAX_SLUG_LEN {
        return Err(format!("must be at most {MAX_SLUG_LEN} characters"));
    }
    if !value.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lowercase letter".into());
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err("may contain only lowercase letters, digits and '-'".into());
    }
    if value.ends_with('-') || value.contains("--") {
        return Err("must not end with '-' or contain '--'".into());
    }
    Ok(())
}

/// A plausible email address: one `@`, a non-empty local part, a domain with
/// a dot, no spaces or control characters. Deliverability is proven by
/// delivery, not by a regex.
pub fn email(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > MAX_EMAIL_LEN {
        return Err(format!("must be at most {MAX_EMAIL_LEN} characters"));
    }
    let Some((local, domain)) = value.split_once('@') else {
        return Err("is not an email address".into());
    };
    let valid_domain = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@');
    if local.is_empty()
        || !valid_domain
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("is not an email address".into());
    }
    Ok(())
}

/// Free text of at most `max` characters, without control characters other
/// than newlines and tabs.
pub fn text(value: &str, max: usize) -> Result<(), String> {
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// Non-empty text of at most `max` characters.
pub fn required(value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    text(value, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for good in ["a", "acme", "acme-corp", "a1", &"a".repeat(63)] {
            assert_eq!(slug(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "-abc",
            "Acme",
            "ac_me",
            "acme-",
            "ac--me",
            &"a".repeat(64),
            "é",
        ] {
            assert!(slug(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(email("ada@example.com"), Ok(()));
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "a@.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn violations_collect_every_field() {
        let mut v = Violations::new();
        v.check("username", slug(""));
        v.check("email", email("nope"));
        v.check("display_name", text("fine", 10));
        match v.finish() {
            Err(Error::InvalidArgument(fields)) => {
                let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
                assert_eq!(names, ["username", "email"]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
