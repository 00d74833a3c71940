//! A checked view of the parsed TOML document.
//!
//! The loader never deserializes the model into structs with serde: it walks
//! the spanned document (`toml::de::DeTable`, in file order) so that every
//! problem (an unknown key, a wrong type, a bad name) is reported with the
//! line it is on, and so that one problem never stops the others from being
//! found. This module owns that walk's vocabulary: [`Problems`] collects
//! what is wrong, [`Node`] is a table with the words that name it in
//! messages, and its getters turn a wrong type into a problem and `None`.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A byte range in the model text.
pub(super) type Span = Range<usize>;

/// A value and where it is in the file.
#[derive(Debug, Clone)]
pub(super) struct Located<T> {
    pub value: T,
    pub span: Span,
}

/// Every problem found so far, with the line it is on.
pub(super) struct Problems {
    /// Byte offset of every `\n` in the text, to turn offsets into lines.
    newlines: Vec<usize>,
    found: Vec<(usize, String)>,
}

impl Problems {
    pub fn new(text: &str) -> Problems {
        let newlines = text
            .bytes()
            .enumerate()
            .filter(|(_, b)| *b == b'\n')
            .map(|(i, _)| i)
            .collect();
        Problems {
            newlines,
            found: Vec::new(),
        }
    }

    /// The 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&nl| nl < offset) + 1
    }

    /// The 1-based line a span starts on.
    pub fn line(&self, span: &Span) -> usize {
        self.line_of(span.start)
    }

    pub fn report(&mut self, span: &Span, message: impl Into<String>) {
        let line = self.line(span);
        self.report_line(line, message);
    }

    pub fn report_line(&mut self, line: usize, message: impl Into<String>) {
        self.found.push((line, message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The problems sorted by line (stable: one line keeps discovery order).
    pub fn into_sorted(mut self) -> Vec<(usize, String)> {
        self.found.sort_by_key(|(line, _)| *line);
        self.found.dedup();
        self.found
    }
}

/// What a TOML value is, for "must be X, not Y" messages.
pub(super) fn kind_of(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// A table of the model file: its entries, where it starts, and how
/// messages name it (`state "paid" in region "lifecycle"`).
#[derive(Clone)]
pub(super) struct Node<'a, 'i> {
    pub table: &'a DeTable<'i>,
    pub span: Span,
    pub what: String,
}

impl<'a, 'i> Node<'a, 'i> {
    pub fn new(table: &'a DeTable<'i>, span: Span, what: impl Into<String>) -> Node<'a, 'i> {
        Node {
            table,
            span,
            what: what.into(),
        }
    }

    /// The table a value holds, or a problem saying it must be one.
    pub fn of_value(
        p: &mut Problems,
        value: &'a Spanned<DeValue<'i>>,
        what: impl Into<String>,
    ) -> Option<Node<'a, 'i>> {
        let what = what.into();
        match value.get_ref() {
            DeValue::Table(table) => Some(Node::new(table, value.span(), what)),
            other => {
                p.report(
                    &value.span(),
                    format!("{what} must be a table, not {}", kind_of(other)),
                );
                None
            }
        }
    }

    /// Reports every key not in `allowed`: a typo must not pass silently.
    pub fn check_keys(&self, p: &mut Problems, allowed: &[&str]) {
        for (key, _) in self.table.iter() {
            let name: &str = key.get_ref();
            if allowed.contains(&name) {
                continue;
            }
            let hint = match closest(name, allowed.iter().copied()) {
                Some(near) => format!(" (did you mean `{near}`?)"),
                None => String::new(),
            };
            p.report(
                &key.span(),
                format!(
                    "unknown key `{name}` in {}{hint}; the keys allowed there are: {}",
                    self.what,
                    allowed.join(", ")
                ),
            );
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    pub fn get(&self, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.table.get(key)
    }

    /// Every entry in file order: its key (with span) and value.
    pub fn entries(&self) -> impl Iterator<Item = (Located<&'a str>, &'a Spanned<DeValue<'i>>)> {
        self.table.iter().map(|(k, v)| {
            (
                Located {
                    value: k.get_ref().as_ref(),
                    span: k.span(),
                },
                v,
            )
        })
    }

    /// Reports that a required key is absent; `example` shows how to write it.
    pub fn missing(&self, p: &mut Problems, key: &str, example: &str) {
        p.report(
            &self.span,
            format!(
                "{} has no `{key}`, which is required: add {example}",
                self.what
            ),
        );
    }

    fn wrong_type(
        &self,
        p: &mut Problems,
        key: &str,
        value: &Spanned<DeValue<'_>>,
        expected: &str,
    ) {
        p.report(
            &value.span(),
            format!(
                "`{key}` of {} must be {expected}, not {}",
                self.what,
                kind_of(value.get_ref())
            ),
        );
    }

    /// An optional string.
    pub fn string(&self, p: &mut Problems, key: &str) -> Option<Located<&'a str>> {
        let value = self.get(key)?;
        match value.get_ref() {
            DeValue::String(s) => Some(Located {
                value: s.as_ref(),
                span: value.span(),
            }),
            _ => {
                self.wrong_type(p, key, value, "a string");
                None
            }
        }
    }

    /// A required string; `example` shows how to write it when absent.
    pub fn required_string(
        &self,
        p: &mut Problems,
        key: &str,
        example: &str,
    ) -> Option<Located<&'a str>> {
        if !self.has(key) {
            self.missing(p, key, example);
        }
        self.string(p, key)
    }

    /// An optional list of strings (every element checked).
    pub fn strings(&self, p: &mut Problems, key: &str) -> Option<Vec<Located<&'a str>>> {
        let value = self.get(key)?;
        match value.get_ref() {
            DeValue::Array(items) => {
                Some(string_items(p, items, &format!("`{key}` of {}", self.what)))
            }
            _ => {
                self.wrong_type(p, key, value, "a list of strings");
                None
            }
        }
    }

    /// An optional integer.
    pub fn integer(&self, p: &mut Problems, key: &str) -> Option<Located<i64>> {
        let value = self.get(key)?;
        match value.get_ref() {
            DeValue::Integer(int) => match i64::from_str_radix(int.as_str(), int.radix()) {
                Ok(n) => Some(Located {
                    value: n,
                    span: value.span(),
                }),
                Err(_) => {
                    p.report(
                        &value.span(),
                        format!("`{key}` of {} is too large a number", self.what),
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(p, key, value, "an integer");
                None
            }
        }
    }

    /// An optional sub-table, named `what` in messages.
    pub fn child(
        &self,
        p: &mut Problems,
        key: &str,
        what: impl Into<String>,
    ) -> Option<Node<'a, 'i>> {
        let value = self.get(key)?;
        match value.get_ref() {
            DeValue::Table(table) => Some(Node::new(table, value.span(), what)),
            _ => {
                self.wrong_type(p, key, value, "a table");
                None
            }
        }
    }

    /// An optional list of tables (`[[a.b]]` or `[ {..}, {..} ]`); `what`
    /// names the n-th (from 1) in messages.
    pub fn tables(
        &self,
        p: &mut Problems,
        key: &str,
        what: impl Fn(usize) -> String,
    ) -> Vec<Node<'a, 'i>> {
        let Some(value) = self.get(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(p, key, value, "a list of tables");
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| Node::of_value(p, item, what(i + 1)))
            .collect()
    }
}

/// The string elements of an array; other elements are reported.
pub(super) fn string_items<'a>(
    p: &mut Problems,
    items: &'a [Spanned<DeValue<'_>>],
    what: &str,
) -> Vec<Located<&'a str>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item.get_ref() {
            DeValue::String(s) => out.push(Located {
                value: s.as_ref(),
                span: item.span(),
            }),
            other => p.report(
                &item.span(),
                format!("{what} must list strings, not {}", kind_of(other)),
            ),
        }
    }
    out
}

/// Whether `name` may name something in a model: `[A-Za-z0-9_-]+`. Dots and
/// colons are taken: `source.type` and `region.state` split on the dot, and
/// escalation ids join names with `:`.
pub(super) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Reports a name that is not `[A-Za-z0-9_-]+`; `kind` is what it names.
/// Returns whether the name is valid.
pub(super) fn check_name(p: &mut Problems, name: &Located<&str>, kind: &str) -> bool {
    if is_valid_name(name.value) {
        return true;
    }
    p.report(
        &name.span,
        format!(
            "{kind} name \"{}\" is not allowed: names use only letters, digits, `_` and `-` \
             (dots and colons separate names elsewhere in the model)",
            name.value.escape_debug()
        ),
    );
    false
}

/// The candidate nearest to `name` by edit distance, when it is near
/// enough to be a likely typo.
pub(super) fn closest<'c>(
    name: &str,
    candidates: impl Iterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = name.chars().count().div_ceil(3).clamp(1, 3);
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based_and_count_newlines() {
        let p = Problems::new("a\nbb\n\nc");
        assert_eq!(p.line_of(0), 1);
        assert_eq!(p.line_of(1), 1);
        assert_eq!(p.line_of(2), 2);
        assert_eq!(p.line_of(5), 3);
        assert_eq!(p.line_of(6), 4);
    }

    #[test]
    fn names_are_letters_digits_underscore_and_dash() {
        for ok in ["paid", "at_risk", "BR", "x-1"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "a.b", "a:b", "a b", "é"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn typos_find_their_nearest_name() {
        let names = ["paid", "onboarding", "active"];
        assert_eq!(closest("payed", names.iter().copied()), Some("paid"));
        assert_eq!(
            closest("onbording", names.iter().copied()),
            Some("onboarding")
        );
        assert_eq!(closest("zzz", names.iter().copied()), None);
    }
}
