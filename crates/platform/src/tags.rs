//! Free-form tags: slugs, stored space-separated with a space on each side
//! (` a b `) so that `LIKE '% a %'` finds one without a join.

use crate::validate::{self, Violations};

/// Most tags on one resource.
pub const MAX_TAGS: usize = 20;

/// Tags as stored.
pub fn store(tags: &[String]) -> String {
    if tags.is_empty() {
        String::new()
    } else {
        format!(" {} ", tags.join(" "))
    }
}

/// Tags as listed.
pub fn parse(stored: &str) -> Vec<String> {
    stored.split_whitespace().map(str::to_owned).collect()
}

/// The stored pattern matching resources tagged `tag`.
pub fn pattern(tag: &str) -> String {
    format!(" {tag} ")
}

/// Adds violations of `field` for too many tags or tags that are not slugs.
pub fn check(v: &mut Violations, field: &str, tags: &[String]) {
    if tags.len() > MAX_TAGS {
        v.add(field, format!("at most {MAX_TAGS} tags"));
    }
    for tag in tags {
        v.check(field, validate::slug(tag));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_are_checked() {
        let tags = vec!["vision".to_owned(), "prod-ready".to_owned()];
        assert_eq!(parse(&store(&tags)), tags);
        assert_eq!(store(&[]), "");
        assert!(store(&tags).contains(&pattern("vision")));
        let mut v = Violations::new();
        check(&mut v, "tags", &["Not A Slug".to_owned()]);
        assert!(v.finish().is_err());
    }
}
