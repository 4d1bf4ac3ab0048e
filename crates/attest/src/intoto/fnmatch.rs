//! Artifact path patterns with the exact semantics of Python's `fnmatch`
//! (CPython 3.11 on POSIX), which in-toto's rule engine uses.
//!
//! - `*` matches any run of characters, `/` included (unlike a shell glob);
//! - `?` matches one character, `/` and newline included;
//! - `[seq]` / `[!seq]` match one character in / not in the set, with
//!   `a-z` ranges; a `[` without a closing `]` is a literal `[`;
//! - there is no escape character: `\` is literal;
//! - matching is case-sensitive and on Unicode scalar values.
//!
//! CPython compiles a pattern into a regular expression; the corner cases of
//! bracket expressions (ranges whose ends are reversed, `-` at the edges,
//! `!` appearing after a collapsed range) come from that translation, so the
//! bracket parser below follows it step by step rather than a textbook glob.
//! A differential test against Python (`tests/interop_intoto.rs`) checks it.

use crate::error::{Error, Result};

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// `*`: any run of characters (consecutive stars collapse into one).
    Star,
    /// One character that satisfies the matcher.
    One(CharMatcher),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum CharMatcher {
    /// A literal character.
    Literal(char),
    /// Any character (`?`, or the degenerate `[!]` that CPython produces).
    Any,
    /// Nothing at all (an empty set such as `[z-a]`).
    Never,
    /// A bracket set.
    Set {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

impl CharMatcher {
    fn matches(&self, c: char) -> bool {
        match self {
            CharMatcher::Literal(l) => *l == c,
            CharMatcher::Any => true,
            CharMatcher::Never => false,
            CharMatcher::Set { negated, items } => {
                items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

impl Pattern {
    /// Compile `pattern`. Fails only for the bracket expressions that CPython's
    /// translation turns into an invalid regular expression (a reversed range
    /// that survives its clean-up), where Python's `fnmatch` raises too.
    pub fn new(pattern: &str) -> Result<Self> {
        let pat: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while let Some(&c) = pat.get(i) {
            i += 1;
            match c {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::One(CharMatcher::Any)),
                '[' => match bracket_end(&pat, i) {
                    None => tokens.push(Token::One(CharMatcher::Literal('['))),
                    Some(j) => {
                        let body = pat.get(i..j).unwrap_or_default();
                        tokens.push(Token::One(bracket(body, pattern)?));
                        i = j + 1;
                    }
                },
                other => tokens.push(Token::One(CharMatcher::Literal(other))),
            }
        }
        Ok(Pattern { tokens })
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        // Classic wildcard matching: every token but `*` consumes exactly one
        // character, so remembering the last star and retrying one character
        // further is complete (leftmost placement of each fixed piece is
        // optimal), and runs in O(len(name) * len(pattern)).
        let (mut t, mut n) = (0usize, 0usize);
        let mut backtrack: Option<(usize, usize)> = None;
        loop {
            match (self.tokens.get(t), name.get(n)) {
                (Some(Token::Star), _) => {
                    backtrack = Some((t, n));
                    t += 1;
                }
                (Some(Token::One(m)), Some(&c)) if m.matches(c) => {
                    t += 1;
                    n += 1;
                }
                (None, None) => return true,
                _ => match backtrack {
                    Some((star_t, star_n)) if star_n < name.len() => {
                        backtrack = Some((star_t, star_n + 1));
                        t = star_t + 1;
                        n = star_n + 1;
                    }
                    _ => return false,
                },
            }
        }
    }
}

/// `fnmatch.fnmatch(name, pattern)` on POSIX.
pub fn fnmatch(name: &str, pattern: &str) -> Result<bool> {
    Ok(Pattern::new(pattern)?.matches(name))
}

/// Index of the `]` closing a bracket expression whose body starts at `i`
/// (just after `[`), or `None` when there is none and `[` is literal.
/// A leading `!` and then a leading `]` belong to the body.
fn bracket_end(pat: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if pat.get(j) == Some(&'!') {
        j += 1;
    }
    if pat.get(j) == Some(&']') {
        j += 1;
    }
    while pat.get(j).is_some_and(|&c| c != ']') {
        j += 1;
    }
    (j < pat.len()).then_some(j)
}

/// One unit of the regular-expression set CPython builds: a literal
/// character, or an unescaped `-` that separates the ends of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Char(char),
    RangeDash,
}

/// Translate a bracket body (between `[` and `]`) the way CPython's
/// `fnmatch.translate` does, then read the resulting set the way `re` does.
fn bracket(body: &[char], pattern: &str) -> Result<CharMatcher> {
    // Step 1 (translate): split into chunks at range hyphens. Chunks are the
    // literal runs; consecutive chunks are joined by a range hyphen.
    let chunks: Vec<Vec<char>> = if !body.contains(&'-') {
        vec![body.to_vec()]
    } else {
        let mut chunks: Vec<Vec<char>> = Vec::new();
        let mut start = 0usize;
        // A hyphen right after `[` (or `[!`) is literal: the search starts past it.
        let mut k = if body.first() == Some(&'!') { 2 } else { 1 };
        while let Some(pos) = body
            .get(k..)
            .and_then(|rest| rest.iter().position(|&c| c == '-'))
            .map(|p| p + k)
        {
            chunks.push(body.get(start..pos).unwrap_or_default().to_vec());
            start = pos + 1;
            // The character after a range hyphen cannot start another range.
            k = pos + 3;
        }
        let last = body.get(start..).unwrap_or_default();
        if last.is_empty() {
            // A trailing hyphen is literal.
            if let Some(prev) = chunks.last_mut() {
                prev.push('-');
            }
        } else {
            chunks.push(last.to_vec());
        }
        // Remove empty ranges (a > b), right to left, by gluing the chunks
        // around them together without their range ends.
        let mut k = chunks.len().saturating_sub(1);
        while k > 0 {
            let reversed = match (
                chunks.get(k - 1).and_then(|c| c.last()),
                chunks.get(k).and_then(|c| c.first()),
            ) {
                (Some(a), Some(b)) => a > b,
                _ => false,
            };
            if reversed {
                let right: Vec<char> = chunks
                    .get(k)
                    .map(|c| c.iter().skip(1).copied().collect())
                    .unwrap_or_default();
                if let Some(left) = chunks.get_mut(k - 1) {
                    left.pop();
                    left.extend(right);
                }
                chunks.remove(k);
            }
            k -= 1;
        }
        chunks
    };

    // Step 2: the set text is the chunks joined by range hyphens; every
    // character inside a chunk is escaped, so it is a literal.
    let mut units: Vec<Unit> = Vec::new();
    for (n, chunk) in chunks.iter().enumerate() {
        if n > 0 {
            units.push(Unit::RangeDash);
        }
        units.extend(chunk.iter().map(|&c| Unit::Char(c)));
    }
    // The leading character decides negation: CPython tests the first
    // character of the joined text, which for the `!` case is unescaped.
    match units.as_slice() {
        [] => return Ok(CharMatcher::Never),
        [Unit::Char('!')] => return Ok(CharMatcher::Any),
        _ => {}
    }
    let negated = units.first() == Some(&Unit::Char('!'));
    let members = if negated {
        units.get(1..).unwrap_or_default()
    } else {
        &units[..]
    };

    // Step 3 (`re` set parsing): left to right, `x-y` is a range when a
    // range hyphen follows `x` and something follows the hyphen; a hyphen
    // in first position is a plain character.
    let mut items = Vec::new();
    let mut p = 0usize;
    let as_char = |u: Unit| match u {
        Unit::Char(c) => c,
        Unit::RangeDash => '-',
    };
    while let Some(&u) = members.get(p) {
        let lo = as_char(u);
        match (members.get(p + 1), members.get(p + 2)) {
            (Some(Unit::RangeDash), Some(&hi)) => {
                let hi = as_char(hi);
                if hi < lo {
                    return Err(Error::malformed(
                        "artifact rule pattern",
                        format!("bad character range {lo}-{hi} in {pattern:?}"),
                    ));
                }
                items.push((lo, hi));
                p += 3;
            }
            _ => {
                items.push((lo, lo));
                p += 1;
            }
        }
    }
    Ok(CharMatcher::Set { negated, items })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, pat: &str) -> bool {
        fnmatch(name, pat).unwrap()
    }

    #[test]
    fn star_crosses_slashes_and_question_mark_is_one_character() {
        assert!(m("dir/sub/file.txt", "*"));
        assert!(m("dir/sub/file.txt", "dir/*.txt"));
        assert!(m("a/b", "a?b"));
        assert!(!m("ab", "a?b"));
        assert!(m("line\nbreak", "line?break"));
        assert!(m("", "*"));
        assert!(!m("", "?"));
        assert!(m("abcabd", "*ab?"));
        assert!(!m("abcabe", "*abd"));
    }

    #[test]
    fn brackets_sets_ranges_negation_and_literals() {
        assert!(m("a1", "a[0-9]"));
        assert!(!m("ax", "a[0-9]"));
        assert!(m("ax", "a[!0-9]"));
        assert!(m("]", "[]]"));
        assert!(m("-", "[a-]"));
        assert!(m("-", "[-a]"));
        assert!(!m("!", "[!!]"));
        assert!(m("[x", "[x"), "unclosed bracket is literal");
        assert!(m("\\", "[\\]"), "backslash is literal in a set");
        assert!(m("a\\b", "a\\b"), "backslash is literal outside a set");
        assert!(!m("a", "[z-a]"), "reversed range matches nothing");
        assert!(m("q", "[!z-a]"), "negated reversed range matches anything");
        // CPython quirk: collapsing `z-a` exposes `!`, which then negates.
        assert!(!m("b", "[z-a!b]"));
        assert!(m("c", "[z-a!b]"));
        assert!(m("^", "[^]"));
        assert!(m("&", "[&&]"));
    }

    #[test]
    fn case_sensitive() {
        assert!(!m("A.TXT", "*.txt"));
    }
}
