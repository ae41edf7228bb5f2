//! Component specifications: what a component version's `content` must be.
//!
//! YAML or JSON (JSON is read as JSON, for its error positions), at most
//! [`MAX_CONTENT`] bytes, a mapping with:
//!
//! | key | | rule |
//! |---|---|---|
//! | `kind` | required | the string `component` |
//! | `run` | required | a mapping with a string `kind` (`job`, `service`, `dag`, ...) |
//! | `version` | optional | a number |
//! | `name` | optional | a slug |
//! | `description` | optional | a string |
//! | `tags` | optional | a list of strings |
//! | `inputs`, `outputs` | optional | lists of mappings with a string `name` (unique) and a string `type` |
//!
//! Other keys (Polyaxon's `presets`, `queue`, `cache`, `termination`, ...)
//! are kept as written. A problem is reported with its line and field, e.g.
//! ``line 4: `run.kind` must be a string``.
//!
//! The YAML parser (serde-saphyr) works within a budget: a document of a few
//! hundred KiB can stand for billions of nodes through aliases (one anchor
//! of 40,000 items, 20,000 aliases to it), so parser events written and
//! events replayed through aliases are each capped at [`MAX_NODES`], and a
//! document past either is refused at once.

use serde_json::Value;

/// Largest specification accepted.
pub const MAX_CONTENT: usize = 256 * 1024;
/// Most YAML nodes (parser events) a specification may hold as written,
/// and most more that its aliases may expand to.
pub const MAX_NODES: usize = 100_000;

/// `Ok` for a valid specification, else what is wrong, where.
pub fn validate(content: &str) -> Result<(), String> {
    if content.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if content.len() > MAX_CONTENT {
        return Err(format!("must be at most {} KiB", MAX_CONTENT / 1024));
    }
    let spec = parse(content)?;
    let at = |path: &str| {
        let line = line_of(content, path);
        match line {
            Some(n) => format!("line {n}: `{path}`"),
            None => format!("`{path}`"),
        }
    };
    let Value::Object(top) = &spec else {
        return Err("line 1: the specification must be a mapping of keys".into());
    };
    match top.get("kind") {
        None => return Err("`kind` is required (kind: component)".into()),
        Some(Value::String(k)) if k == "component" => {}
        Some(_) => return Err(format!("{} must be `component`", at("kind"))),
    }
    match top.get("run") {
        None => return Err("`run` is required (what the component runs)".into()),
        Some(Value::Object(run)) => match run.get("kind") {
            Some(Value::String(k)) if !k.is_empty() => {}
            Some(_) => return Err(format!("{} must be a string", at("run.kind"))),
            None => return Err(format!("{} needs a `kind`", at("run"))),
        },
        Some(_) => return Err(format!("{} must be a mapping", at("run"))),
    }
    if let Some(version) = top.get("version")
        && !version.is_number()
    {
        return Err(format!("{} must be a number", at("version")));
    }
    if let Some(name) = top.get("name") {
        match name.as_str() {
            Some(n) if orgplane_platform::validate::slug(n).is_ok() => {}
            _ => return Err(format!("{} must be a slug", at("name"))),
        }
    }
    if let Some(description) = top.get("description")
        && !description.is_string()
    {
        return Err(format!("{} must be a string", at("description")));
    }
    if let Some(tags) = top.get("tags")
        && !tags
            .as_array()
            .is_some_and(|t| t.iter().all(Value::is_string))
    {
        return Err(format!("{} must be a list of strings", at("tags")));
    }
    for io in ["inputs", "outputs"] {
        let Some(list) = top.get(io) else { continue };
        let Some(items) = list.as_array() else {
            return Err(format!("{} must be a list", at(io)));
        };
        let mut seen = std::collections::HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let name = item.get("name").and_then(Value::as_str);
            let Some(name) = name.filter(|n| !n.is_empty()) else {
                return Err(format!("{} item {} needs a string `name`", at(io), i + 1));
            };
            if !item.get("type").is_some_and(Value::is_string) {
                return Err(format!("{} `{name}` needs a string `type`", at(io)));
            }
            if !seen.insert(name.to_owned()) {
                return Err(format!("{} names `{name}` twice", at(io)));
            }
        }
    }
    Ok(())
}

/// The specification as a JSON value; a syntax error names its line.
fn parse(content: &str) -> Result<Value, String> {
    if content.trim_start().starts_with('{') {
        return serde_json::from_str(content).map_err(|e| {
            format!(
                "line {}, column {}: invalid JSON: {}",
                e.line(),
                e.column(),
                strip_position(&e.to_string())
            )
        });
    }
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = MAX_NODES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = MAX_NODES;
    serde_saphyr::from_str_with_options::<Value>(content, options).map_err(|e| {
        let message = first_line(&e.to_string());
        match e.location() {
            Some(at) => format!(
                "line {}, column {}: invalid YAML: {}",
                at.line(),
                at.column(),
                strip_position(&message)
            ),
            None => format!("invalid YAML: {message}"),
        }
    })
}

/// A parser message's first line (serde-saphyr may add a snippet), without
/// the position it repeats; a breached budget said plainly.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    if line.contains("budget breached") || line.contains("alias replay") {
        return format!(
            "the document holds or expands to more than {MAX_NODES} nodes (aliases included)"
        );
    }
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((_, text)) => text.to_owned(),
        None => line.to_owned(),
    }
}

/// A parser message without its trailing "at line L column C".
fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The line (1-based) where the key path `a.b` is written: `a` at the top
/// level, then `b` on a later line nested deeper. Works for block YAML and
/// for JSON with one key per line; `None` when not found.
fn line_of(content: &str, path: &str) -> Option<usize> {
    let mut keys = path.split('.');
    let first = keys.next()?;
    let is_key = |line: &str, key: &str| {
        let t = line.trim_start().trim_start_matches("- ");
        let t = t.strip_prefix('"').unwrap_or(t);
        t.strip_prefix(key)
            .map(|rest| rest.trim_start_matches('"').trim_start().starts_with(':'))
            .unwrap_or(false)
    };
    let indent = |line: &str| line.len() - line.trim_start().len();
    let lines: Vec<&str> = content.lines().collect();
    if content.trim_start().starts_with('{') {
        // JSON: the first line naming the key, then the nested ones after it.
        let quoted = |key: &str| format!("\"{key}\"");
        let mut at = lines.iter().position(|l| l.contains(&quoted(first)))?;
        for key in keys {
            at = lines
                .iter()
                .enumerate()
                .skip(at)
                .find(|(_, l)| l.contains(&quoted(key)))
                .map(|(i, _)| i)?;
        }
        return Some(at + 1);
    }
    let top_indent = lines
        .iter()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "{")
        .map(|l| indent(l))?;
    let mut at = lines
        .iter()
        .position(|l| indent(l) == top_indent && is_key(l, first))?;
    for key in keys {
        let parent_indent = indent(lines[at]);
        at = lines
            .iter()
            .enumerate()
            .skip(at + 1)
            .take_while(|(_, l)| l.trim().is_empty() || indent(l) > parent_indent)
            .find(|(_, l)| is_key(l, key))
            .map(|(i, _)| i)?;
    }
    Some(at + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
version: 1.1
kind: component
name: train
description: trains a model
tags: [vision]
inputs:
  - name: epochs
    type: int
run:
  kind: job
  container:
    image: python:3.12
";

    #[test]
    fn a_good_specification_passes_in_yaml_and_json() {
        validate(GOOD).unwrap();
        validate(r#"{"kind": "component", "run": {"kind": "job"}}"#).unwrap();
    }

    #[test]
    fn problems_name_their_line_and_field() {
        for (content, expected) in [
            (
                "kind: component\nrun: [1]\n",
                "line 2: `run` must be a mapping",
            ),
            (
                "kind: component\nrun:\n  kind: 3\n",
                "line 3: `run.kind` must be a string",
            ),
            (
                "kind: operation\nrun:\n  kind: job\n",
                "line 1: `kind` must be `component`",
            ),
            ("run:\n  kind: job\n", "`kind` is required"),
            ("kind: component\n", "`run` is required"),
            (
                "kind: component\nname: Not A Slug\nrun: {kind: job}\n",
                "line 2: `name` must be a slug",
            ),
            (
                "kind: component\ninputs:\n  - name: a\n    type: int\n  - name: a\n    type: str\nrun: {kind: job}\n",
                "line 2: `inputs` names `a` twice",
            ),
            (
                "kind: component\nrun:\n  kind: job\n bad: [\n",
                "line 4, column",
            ),
            (
                "{\n  \"kind\": \"component\",\n  \"run\": 5\n}",
                "line 3: `run` must be a mapping",
            ),
            ("{\"kind\": ", "line 1, column"),
            ("- a\n- b\n", "must be a mapping of keys"),
            ("", "must not be empty"),
        ] {
            let problem = validate(content).unwrap_err();
            assert!(
                problem.contains(expected),
                "{content:?}: {problem:?} lacks {expected:?}"
            );
        }
        let deep = format!(
            "kind: component\nrun: {{kind: job}}\nx: {}1{}\n",
            "[".repeat(300),
            "]".repeat(300)
        );
        assert!(validate(&deep).is_err(), "nesting is bounded");
        let huge = format!(
            "kind: component\nrun: {{kind: job}}\nx: \"{}\"\n",
            "a".repeat(MAX_CONTENT)
        );
        assert!(validate(&huge).unwrap_err().contains("at most 256 KiB"));
    }

    /// Issue 15, item 4: one anchor of 40,000 items and 20,000 aliases to it
    /// (about 180 KiB) stand for 800 million nodes; serde_yaml expanded them
    /// for more than 15 s. Now the budget refuses the document at once.
    #[test]
    fn an_alias_bomb_is_refused_at_once() {
        let mut bomb = String::from("kind: component\nrun: {kind: job}\nbase: &a [");
        bomb.push_str(&"1,".repeat(40_000));
        bomb.push_str("1]\nbombs:\n");
        bomb.push_str(&"- *a\n".repeat(20_000));
        assert!(bomb.len() < MAX_CONTENT);
        let started = std::time::Instant::now();
        let problem = validate(&bomb).unwrap_err();
        let took = started.elapsed();
        assert!(problem.contains("more than 100000 nodes"), "{problem}");
        eprintln!("alias bomb refused in {took:?}: {problem}");
        // A few aliases of a small anchor are fine.
        validate("kind: component\nrun: &r {kind: job}\nagain: *r\nthird: *r\n").unwrap();
    }
}
