//! YAML text to a spanned tree, under limits.
//!
//! `saphyr-parser` turns the text into events with source markers; this
//! module folds them into a small tree ([`Node`]) in which every node and
//! every mapping key keeps its 1-based line and column. The semantic
//! validator in `validate.rs` walks that tree, so every error it reports
//! names the line, the column and the key path.
//!
//! Only the subset of YAML a dataset definition needs is accepted: one
//! document of mappings, sequences and scalars. Anchors, aliases, tags,
//! complex keys, duplicate keys and further documents are refused here,
//! before any of them could be expanded or interpreted.

use std::collections::HashSet;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle};

use super::{
    ALIAS, ANCHOR, COMPLEX_KEY, CONTROL_CHARACTER, DUPLICATE_KEY, DefinitionLimits, EMPTY,
    INVALID_UTF8, LIMIT_DEPTH, LIMIT_NODES, LIMIT_SCALAR, LIMIT_SIZE, MULTIPLE_DOCUMENTS, SYNTAX,
    TAG,
};
use crate::finding::{Finding, Location};

/// A 1-based source position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_marker(m: &Marker) -> Self {
        Pos {
            line: m.line(),
            column: m.col().saturating_add(1),
        }
    }
}

/// A scalar as written: its decoded text and whether it was quoted (or a
/// block scalar). Only plain scalars resolve to numbers, booleans or null
/// (YAML 1.2 core schema); quoted ones are always strings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar {
    pub text: String,
    pub plain: bool,
}

/// A mapping key and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub name: String,
    pub pos: Pos,
}

/// A node of the spanned tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub pos: Pos,
    pub kind: NodeKind,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A collection under construction.
enum Frame {
    Seq {
        pos: Pos,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        entries: Vec<(Key, Node)>,
        keys: HashSet<String>,
        pending: Option<Key>,
    },
}

/// The key path of the innermost open collection (`columns[2].type`), for
/// errors raised while the tree is still being built.
fn stack_path(stack: &[Frame]) -> String {
    let mut path = String::new();
    for frame in stack {
        match frame {
            Frame::Seq { items, .. } => path.push_str(&format!("[{}]", items.len())),
            Frame::Map {
                pending: Some(k), ..
            } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k.name);
            }
            Frame::Map { pending: None, .. } => {}
        }
    }
    path
}

pub(crate) fn display_path(path: &str) -> String {
    if path.is_empty() {
        "$".to_owned()
    } else {
        path.to_owned()
    }
}

pub(crate) fn finding_at(code: &'static str, message: String, pos: Pos, path: &str) -> Finding {
    Finding::new(
        code,
        message,
        Location::Document {
            line: Some(pos.line),
            column: Some(pos.column),
            path: display_path(path),
        },
    )
}

/// 1-based line and column of byte offset `at` in `bytes` (columns count
/// characters where the prefix is valid UTF-8, bytes otherwise).
fn line_col(bytes: &[u8], at: usize) -> Pos {
    let prefix = bytes.get(..at).unwrap_or(bytes);
    let line_start = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i.saturating_add(1));
    let line = prefix
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        .saturating_add(1);
    let tail = prefix.get(line_start..).unwrap_or_default();
    let column = match std::str::from_utf8(tail) {
        Ok(s) => s.chars().count(),
        Err(_) => tail.len(),
    };
    Pos {
        line,
        column: column.saturating_add(1),
    }
}

/// Characters YAML 1.2 does not allow in a stream (§5.1 "printable"):
/// C0 controls other than tab, LF and CR, DEL, C1 controls other than NEL,
/// and the non-characters U+FFFE and U+FFFF. Refusing them up front keeps
/// terminal escapes and NULs out of every name and message.
pub(crate) fn is_forbidden_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{7F}'
        | '\u{80}'..='\u{84}' | '\u{86}'..='\u{9F}' | '\u{FFFE}' | '\u{FFFF}')
}

/// Check the raw bytes (size, UTF-8, characters) and return the text.
fn check_text<'a>(bytes: &'a [u8], limits: &DefinitionLimits) -> Result<&'a str, Finding> {
    // Stops memory and CPU exhaustion: nothing is parsed past the size limit.
    if bytes.len() > limits.max_bytes {
        return Err(Finding::new(
            LIMIT_SIZE,
            format!(
                "the definition is {} bytes; the limit is {} bytes",
                bytes.len(),
                limits.max_bytes
            ),
            Location::Document {
                line: None,
                column: None,
                path: "$".to_owned(),
            },
        ));
    }
    // The parser reads characters; invalid UTF-8 is refused, not replaced,
    // so what we validate is exactly what was uploaded.
    let text = std::str::from_utf8(bytes).map_err(|e| {
        finding_at(
            INVALID_UTF8,
            "the definition is not valid UTF-8".to_owned(),
            line_col(bytes, e.valid_up_to()),
            "",
        )
    })?;
    if let Some((at, c)) = text.char_indices().find(|&(_, c)| is_forbidden_char(c)) {
        return Err(finding_at(
            CONTROL_CHARACTER,
            format!(
                "control character U+{:04X} is not allowed in a definition",
                u32::from(c)
            ),
            line_col(bytes, at),
            "",
        ));
    }
    Ok(text)
}

/// Parse the bytes into one spanned tree.
pub(crate) fn parse_tree(bytes: &[u8], limits: &DefinitionLimits) -> Result<Node, Finding> {
    let text = check_text(bytes, limits)?;
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    let mut nodes = 0usize;

    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            finding_at(
                SYNTAX,
                format!("YAML syntax error: {}", e.info()),
                Pos::from_marker(e.marker()),
                &stack_path(&stack),
            )
        })?;
        let pos = Pos::from_marker(&span.start);
        let here = |code: &'static str, msg: String, stack: &[Frame]| {
            finding_at(code, msg, pos, &stack_path(stack))
        };
        let (anchor, tag) = match &event {
            Event::Scalar(_, _, anchor, tag)
            | Event::SequenceStart(anchor, tag)
            | Event::MappingStart(anchor, tag) => (*anchor, tag.is_some()),
            _ => (0, false),
        };
        // Anchors and aliases are how "billion laughs" expansion bombs are
        // built; a definition never needs them, so none is accepted.
        if anchor != 0 {
            return Err(here(
                ANCHOR,
                "YAML anchors (&name) are not allowed in a definition".to_owned(),
                &stack,
            ));
        }
        // Tags ask the loader to build application-specific objects (the
        // PyYAML `!!python/object` family); only untagged nodes are accepted.
        if tag {
            return Err(here(
                TAG,
                "YAML tags (!tag) are not allowed in a definition".to_owned(),
                &stack,
            ));
        }
        let node = match event {
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => continue,
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                // A second document could carry a different definition than
                // the one a reviewer reads first.
                if documents > 0 {
                    return Err(here(
                        MULTIPLE_DOCUMENTS,
                        "a definition is one YAML document; found a second one".to_owned(),
                        &stack,
                    ));
                }
                documents = documents.saturating_add(1);
                continue;
            }
            Event::Alias(_) => {
                return Err(here(
                    ALIAS,
                    "YAML aliases (*name) are not allowed in a definition".to_owned(),
                    &stack,
                ));
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                nodes = nodes.saturating_add(1);
                if nodes > limits.max_nodes {
                    return Err(here(
                        LIMIT_NODES,
                        format!("the definition has more than {} nodes", limits.max_nodes),
                        &stack,
                    ));
                }
                // Bounds the parser's and our stack; deep nesting has no use
                // in a definition.
                if stack.len() >= limits.max_depth {
                    return Err(here(
                        LIMIT_DEPTH,
                        format!(
                            "the definition nests deeper than {} levels",
                            limits.max_depth
                        ),
                        &stack,
                    ));
                }
                if let Some(Frame::Map { pending: None, .. }) = stack.last() {
                    return Err(here(
                        COMPLEX_KEY,
                        "mapping keys must be plain strings, not sequences or mappings".to_owned(),
                        &stack,
                    ));
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq {
                        pos,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Map {
                        pos,
                        entries: Vec::new(),
                        keys: HashSet::new(),
                        pending: None,
                    }
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { pos, items }) => Node {
                    pos,
                    kind: NodeKind::Seq(items),
                },
                Some(Frame::Map { pos, entries, .. }) => Node {
                    pos,
                    kind: NodeKind::Map(entries),
                },
                None => {
                    return Err(here(SYNTAX, "unbalanced collection end".to_owned(), &stack));
                }
            },
            Event::Scalar(value, style, _, _) => {
                nodes = nodes.saturating_add(1);
                if nodes > limits.max_nodes {
                    return Err(here(
                        LIMIT_NODES,
                        format!("the definition has more than {} nodes", limits.max_nodes),
                        &stack,
                    ));
                }
                if value.len() > limits.max_scalar_bytes {
                    return Err(here(
                        LIMIT_SCALAR,
                        format!(
                            "a value of {} bytes exceeds the limit of {} bytes",
                            value.len(),
                            limits.max_scalar_bytes
                        ),
                        &stack,
                    ));
                }
                Node {
                    pos,
                    kind: NodeKind::Scalar(Scalar {
                        text: value.into_owned(),
                        plain: matches!(style, ScalarStyle::Plain),
                    }),
                }
            }
        };
        // Attach the finished node to its parent (or make it the root).
        match stack.last_mut() {
            None => {
                if root.is_some() {
                    return Err(finding_at(
                        MULTIPLE_DOCUMENTS,
                        "a definition is one YAML document".to_owned(),
                        node.pos,
                        "",
                    ));
                }
                root = Some(node);
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                keys,
                pending,
                ..
            }) => match pending.take() {
                Some(key) => entries.push((key, node)),
                None => {
                    let NodeKind::Scalar(s) = node.kind else {
                        return Err(finding_at(
                            COMPLEX_KEY,
                            "mapping keys must be plain strings".to_owned(),
                            node.pos,
                            &stack_path(&stack),
                        ));
                    };
                    // YAML requires unique keys but most loaders keep the
                    // last one silently: a reviewer would read the first
                    // value while the trainer used the second.
                    if !keys.insert(s.text.clone()) {
                        let path = stack_path(&stack);
                        let path = if path.is_empty() {
                            s.text.clone()
                        } else {
                            format!("{path}.{}", s.text)
                        };
                        return Err(finding_at(
                            DUPLICATE_KEY,
                            format!(
                                "key {:?} appears twice in the same mapping",
                                s.text.chars().take(64).collect::<String>()
                            ),
                            node.pos,
                            &path,
                        ));
                    }
                    if let Some(Frame::Map { pending, .. }) = stack.last_mut() {
                        *pending = Some(Key {
                            name: s.text,
                            pos: node.pos,
                        });
                    }
                }
            },
        }
    }
    root.ok_or_else(|| {
        Finding::new(
            EMPTY,
            "the definition is empty",
            Location::Document {
                line: None,
                column: None,
                path: "$".to_owned(),
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> DefinitionLimits {
        DefinitionLimits::for_testing()
    }

    fn err(yaml: &str) -> Finding {
        match parse_tree(yaml.as_bytes(), &limits()) {
            Ok(n) => panic!("expected an error, got {n:?}"),
            Err(f) => f,
        }
    }

    #[test]
    fn builds_positions() {
        let n = parse_tree(b"a: 1\nb:\n  - x\n  - 'y'\n", &limits()).unwrap();
        let NodeKind::Map(entries) = n.kind else {
            panic!("map")
        };
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].0.name, "b");
        assert_eq!(entries[1].0.pos, Pos { line: 2, column: 1 });
        let NodeKind::Seq(items) = &entries[1].1.kind else {
            panic!("seq")
        };
        assert_eq!(items[1].pos, Pos { line: 4, column: 5 });
        assert_eq!(
            items[1].kind,
            NodeKind::Scalar(Scalar {
                text: "y".into(),
                plain: false
            })
        );
    }

    #[test]
    fn refuses_alias_bomb() {
        let f = err("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n");
        assert_eq!(f.code, ANCHOR);
        let f = err("a: *x\n");
        // An alias to an unknown anchor is a syntax error in the parser.
        assert!(f.code == ALIAS || f.code == SYNTAX, "{f}");
    }

    #[test]
    fn refuses_tags_documents_and_duplicates() {
        assert_eq!(err("a: !!python/object:os.system x\n").code, TAG);
        assert_eq!(err("!!map {a: 1}\n").code, TAG);
        assert_eq!(err("a: 1\n---\nb: 2\n").code, MULTIPLE_DOCUMENTS);
        let f = err("a: 1\nb: 2\na: 3\n");
        assert_eq!(f.code, DUPLICATE_KEY);
        assert_eq!(
            f.location,
            Location::Document {
                line: Some(3),
                column: Some(1),
                path: "a".into()
            }
        );
        assert_eq!(err("? [a]\n: 1\n").code, COMPLEX_KEY);
        assert_eq!(err("").code, EMPTY);
        assert_eq!(err("# only a comment\n").code, EMPTY);
    }

    #[test]
    fn refuses_bad_bytes() {
        let f = parse_tree(b"a: 1\nb: \xff\n", &limits()).unwrap_err();
        assert_eq!(f.code, INVALID_UTF8);
        assert_eq!(
            f.location,
            Location::Document {
                line: Some(2),
                column: Some(4),
                path: "$".into()
            }
        );
        assert_eq!(
            parse_tree(b"a: \"x\x00\"\n", &limits()).unwrap_err().code,
            CONTROL_CHARACTER
        );
        assert_eq!(
            parse_tree(b"a: \x1b[31m\n", &limits()).unwrap_err().code,
            CONTROL_CHARACTER
        );
    }

    #[test]
    fn enforces_limits() {
        let l = limits();
        let big = vec![b'#'; l.max_bytes + 1];
        assert_eq!(parse_tree(&big, &l).unwrap_err().code, LIMIT_SIZE);
        let deep = format!(
            "{}{}",
            "[".repeat(l.max_depth + 1),
            "]".repeat(l.max_depth + 1)
        );
        assert_eq!(err(&deep).code, LIMIT_DEPTH);
        let many = format!("[{}]", vec!["1"; l.max_nodes + 1].join(","));
        assert_eq!(err(&many).code, LIMIT_NODES);
        let long = format!("a: {}\n", "x".repeat(l.max_scalar_bytes + 1));
        assert_eq!(err(&long).code, LIMIT_SCALAR);
    }

    #[test]
    fn syntax_error_has_position() {
        let f = err("a: [1, 2\nb: 3\n");
        assert_eq!(f.code, SYNTAX);
        assert!(matches!(
            f.location,
            Location::Document { line: Some(_), .. }
        ));
    }
}
