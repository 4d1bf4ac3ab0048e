//! Artifact rules and the rule engine (in-toto spec v0.9 §4.3.3, as
//! Python in-toto 3.1.0 `rulelib` and `verifylib` implement it).
//!
//! For each step, its material rules run against a *queue* holding the
//! paths of the step link's materials, and its product rules against a queue
//! of its products. Rules run in order; each consumes (removes) the queued
//! paths it matches and accepts:
//! - `MATCH pattern [IN src] WITH MATERIALS|PRODUCTS [IN dst] FROM step`:
//!   queued paths under `src/` whose rest matches `pattern` and whose hashes
//!   equal those of `dst/<rest>` in the named step's materials or products;
//! - `CREATE p`: paths in products but not materials;
//! - `DELETE p`: paths in materials but not products;
//! - `MODIFY p`: paths in both, with different hashes;
//! - `ALLOW p`: any matching path.
//!
//! Two rules consume nothing and can fail: `DISALLOW p` fails if any queued
//! path still matches, and `REQUIRE path` fails if that literal path is not
//! queued. A rule list should end in `DISALLOW *`, so that anything no rule
//! accounted for fails verification. Patterns use Python `fnmatch`
//! ([`super::fnmatch`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::error::{Error, Result};

use super::fnmatch::Pattern;
use super::link::{ArtifactMap, Link};

/// Materials or products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArtifactKind {
    /// A link's materials.
    Materials,
    /// A link's products.
    Products,
}

impl ArtifactKind {
    /// `"materials"` or `"products"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Materials => "materials",
            ArtifactKind::Products => "products",
        }
    }

    fn of(self, link: &Link) -> &ArtifactMap {
        match self {
            ArtifactKind::Materials => &link.materials,
            ArtifactKind::Products => &link.products,
        }
    }
}

/// A parsed artifact rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactRule {
    /// `MATCH pattern [IN source_prefix] WITH <dest_kind> [IN dest_prefix] FROM dest_step`
    Match {
        /// Pattern, applied to the path with the source prefix removed.
        pattern: String,
        /// Source prefix (empty when absent).
        source_prefix: String,
        /// Materials or products of the destination step.
        dest_kind: ArtifactKind,
        /// Destination prefix (empty when absent).
        dest_prefix: String,
        /// The step whose link is compared against.
        dest_step: String,
    },
    /// `CREATE pattern`
    Create(String),
    /// `DELETE pattern`
    Delete(String),
    /// `MODIFY pattern`
    Modify(String),
    /// `ALLOW pattern`
    Allow(String),
    /// `DISALLOW pattern`
    Disallow(String),
    /// `REQUIRE path` (a literal path, not a pattern)
    Require(String),
}

const GENERIC_FORMATS: &str = "CREATE <pattern>\n\tMODIFY <pattern>\n\tDELETE <pattern>\n\tALLOW <pattern>\n\tDISALLOW <pattern>\nREQUIRE <file>";

impl ArtifactRule {
    /// Parse a rule as a layout stores it (a list of words). Keywords are
    /// case-insensitive; patterns, prefixes and step names keep their case.
    /// Error messages are Python in-toto's.
    pub fn parse(rule: &[String]) -> Result<Self> {
        let lower: Vec<String> = rule.iter().map(|w| w.to_lowercase()).collect();
        let word = |i: usize| lower.get(i).map(String::as_str).unwrap_or_default();
        let orig = |i: usize| rule.get(i).cloned().unwrap_or_default();
        let err = |detail: String| Error::RuleFormat {
            rule: rule.join(" "),
            detail,
        };
        const ALL: [&str; 7] = [
            "create", "modify", "delete", "allow", "disallow", "require", "match",
        ];
        if rule.len() < 2 || !ALL.contains(&word(0)) {
            return Err(err(format!(
                "Wrong rule format, rules must start with one of '{}' and specify a 'pattern' as second element.\nGot: \n\t'{}'",
                ALL.join(", "),
                py_list_repr(rule)
            )));
        }
        let pattern = orig(1);
        if word(0) != "match" {
            if rule.len() != 2 {
                return Err(err(format!(
                    "Wrong rule format, generic rules must have one of the formats:\n\t{GENERIC_FORMATS}\nGot:\n\t{}",
                    py_list_repr(rule)
                )));
            }
            return Ok(match word(0) {
                "create" => ArtifactRule::Create(pattern),
                "delete" => ArtifactRule::Delete(pattern),
                "modify" => ArtifactRule::Modify(pattern),
                "allow" => ArtifactRule::Allow(pattern),
                "disallow" => ArtifactRule::Disallow(pattern),
                _ => ArtifactRule::Require(pattern),
            });
        }
        let (source_prefix, dest_word, dest_prefix, dest_step) = match rule.len() {
            10 if word(2) == "in" && word(4) == "with" && word(6) == "in" && word(8) == "from" => {
                (orig(3), word(5), orig(7), orig(9))
            }
            8 if word(2) == "in" && word(4) == "with" && word(6) == "from" => {
                (orig(3), word(5), String::new(), orig(7))
            }
            8 if word(2) == "with" && word(4) == "in" && word(6) == "from" => {
                (String::new(), word(3), orig(5), orig(7))
            }
            6 if word(2) == "with" && word(4) == "from" => {
                (String::new(), word(3), String::new(), orig(5))
            }
            _ => {
                return Err(err(format!(
                    "Wrong rule format, match rules must have the format:\n\t MATCH <pattern> [IN <source-path-prefix>] WITH (MATERIALS|PRODUCTS) [IN <destination-path-prefix>] FROM <step>.\nGot: \n\t{}",
                    py_list_repr(rule)
                )));
            }
        };
        let dest_kind = match dest_word {
            "materials" => ArtifactKind::Materials,
            "products" => ArtifactKind::Products,
            _ => {
                return Err(err(format!(
                    "Wrong rule format, match rules must have either MATERIALS or PRODUCTS (case insensitive) as destination.\nGot: \n\t{}",
                    py_list_repr(rule)
                )));
            }
        };
        Ok(ArtifactRule::Match {
            pattern,
            source_prefix,
            dest_kind,
            dest_prefix,
            dest_step,
        })
    }

    /// The rule as a layout stores it (Python's `pack_rule`).
    pub fn to_words(&self) -> Vec<String> {
        let generic = |kw: &str, p: &String| vec![kw.to_owned(), p.clone()];
        match self {
            ArtifactRule::Match {
                pattern,
                source_prefix,
                dest_kind,
                dest_prefix,
                dest_step,
            } => {
                let mut w = vec!["MATCH".to_owned(), pattern.clone()];
                if !source_prefix.is_empty() {
                    w.extend(["IN".to_owned(), source_prefix.clone()]);
                }
                w.extend(["WITH".to_owned(), dest_kind.as_str().to_uppercase()]);
                if !dest_prefix.is_empty() {
                    w.extend(["IN".to_owned(), dest_prefix.clone()]);
                }
                w.extend(["FROM".to_owned(), dest_step.clone()]);
                w
            }
            ArtifactRule::Create(p) => generic("CREATE", p),
            ArtifactRule::Delete(p) => generic("DELETE", p),
            ArtifactRule::Modify(p) => generic("MODIFY", p),
            ArtifactRule::Allow(p) => generic("ALLOW", p),
            ArtifactRule::Disallow(p) => generic("DISALLOW", p),
            ArtifactRule::Require(p) => generic("REQUIRE", p),
        }
    }
}

/// Python's `repr()` of a list of strings, for messages that quote a rule
/// the way Python in-toto does.
fn py_list_repr(words: &[String]) -> String {
    let mut out = String::from("[");
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let quote = if w.contains('\'') && !w.contains('"') {
            '"'
        } else {
            '\''
        };
        out.push(quote);
        for c in w.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c == quote => {
                    out.push('\\');
                    out.push(c);
                }
                c if (c as u32) < 0x20 || (0x7f..=0xa0).contains(&(c as u32)) => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push(quote);
    }
    out.push(']');
    out
}

/// Python's `os.path.join(a, b)` on POSIX, then `\` replaced by `/`, as in
/// `verifylib.verify_match_rule`.
fn join_prefix(prefix: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else if prefix.is_empty() || prefix.ends_with('/') {
        format!("{prefix}{path}")
    } else {
        format!("{prefix}/{path}")
    };
    joined.replace('\\', "/")
}

/// Run one item's material or product rules (`kind`) against the links of
/// the chain (`links`: one link per step name, `item` among them).
pub fn verify_item_rules(
    item: &str,
    kind: ArtifactKind,
    rules: &[Vec<String>],
    links: &BTreeMap<String, Link>,
) -> Result<()> {
    let source = links.get(item).ok_or_else(|| Error::StepThreshold {
        step: item.to_owned(),
        detail: "no link to check the artifact rules against".into(),
    })?;
    let artifacts = kind.of(source);
    let material_paths: BTreeSet<&String> = source.materials.keys().collect();
    let product_paths: BTreeSet<&String> = source.products.keys().collect();
    let mut queue: BTreeSet<String> = artifacts.keys().cloned().collect();

    for words in rules {
        let rule = ArtifactRule::parse(words)?;
        let fail = |detail: String| Error::ArtifactRule {
            step: item.to_owned(),
            kind: kind.as_str(),
            rule: words.join(" "),
            detail,
        };
        let compile = |p: &str| Pattern::new(p).map_err(|e| fail(e.to_string()));
        let consumed: BTreeSet<String> = match &rule {
            ArtifactRule::Match {
                pattern,
                source_prefix,
                dest_kind,
                dest_prefix,
                dest_step,
            } => {
                let pat = compile(pattern)?;
                // The rule consumes nothing if the destination step has no link.
                let Some(dest_link) = links.get(dest_step) else {
                    continue;
                };
                let dest = dest_kind.of(dest_link);
                let normalized_prefix = if source_prefix.is_empty() {
                    String::new()
                } else {
                    join_prefix(source_prefix, "")
                };
                let mut consumed = BTreeSet::new();
                for queued in &queue {
                    // The prefix is stripped before globbing so that it is
                    // never itself treated as a pattern.
                    let Some(rest) = queued.strip_prefix(normalized_prefix.as_str()) else {
                        continue;
                    };
                    if !pat.matches(rest) {
                        continue;
                    }
                    let full_source = if source_prefix.is_empty() {
                        rest.to_owned()
                    } else {
                        join_prefix(source_prefix, rest)
                    };
                    let full_dest = if dest_prefix.is_empty() {
                        rest.to_owned()
                    } else {
                        join_prefix(dest_prefix, rest)
                    };
                    // Python raises (and verification fails) when the
                    // re-joined source path does not name an artifact.
                    let Some(source_hashes) = artifacts.get(&full_source) else {
                        return Err(fail(format!(
                            "cannot resolve source artifact {full_source:?}"
                        )));
                    };
                    if dest.get(&full_dest) == Some(source_hashes) {
                        consumed.insert(full_source);
                    }
                }
                consumed
            }
            ArtifactRule::Create(p) => {
                let pat = compile(p)?;
                queue
                    .iter()
                    .filter(|a| {
                        pat.matches(a) && product_paths.contains(a) && !material_paths.contains(a)
                    })
                    .cloned()
                    .collect()
            }
            ArtifactRule::Delete(p) => {
                let pat = compile(p)?;
                queue
                    .iter()
                    .filter(|a| {
                        pat.matches(a) && material_paths.contains(a) && !product_paths.contains(a)
                    })
                    .cloned()
                    .collect()
            }
            ArtifactRule::Modify(p) => {
                let pat = compile(p)?;
                queue
                    .iter()
                    .filter(|a| {
                        pat.matches(a)
                            && matches!(
                                (source.materials.get(*a), source.products.get(*a)),
                                (Some(m), Some(p)) if m != p
                            )
                    })
                    .cloned()
                    .collect()
            }
            ArtifactRule::Allow(p) => {
                let pat = compile(p)?;
                queue.iter().filter(|a| pat.matches(a)).cloned().collect()
            }
            ArtifactRule::Disallow(p) => {
                let pat = compile(p)?;
                let hits: Vec<&String> = queue.iter().filter(|a| pat.matches(a)).collect();
                if !hits.is_empty() {
                    return Err(fail(format!("matched the following artifacts: {hits:?}")));
                }
                BTreeSet::new()
            }
            ArtifactRule::Require(path) => {
                if !queue.contains(path) {
                    let queued: Vec<&String> = queue.iter().collect();
                    return Err(fail(format!("did not find {path} in: {queued:?}")));
                }
                BTreeSet::new()
            }
        };
        queue.retain(|a| !consumed.contains(a));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intoto::link::Byproducts;

    fn words(rule: &str) -> Vec<String> {
        rule.split_whitespace().map(str::to_owned).collect()
    }

    fn art(pairs: &[(&str, &str)]) -> ArtifactMap {
        pairs
            .iter()
            .map(|(p, h)| {
                (
                    p.to_string(),
                    BTreeMap::from([("sha256".to_string(), h.to_string())]),
                )
            })
            .collect()
    }

    fn link(name: &str, materials: &[(&str, &str)], products: &[(&str, &str)]) -> Link {
        Link::new(
            name,
            vec![],
            art(materials),
            art(products),
            Byproducts::default(),
        )
    }

    fn check(item: &str, kind: ArtifactKind, rules: &[&str], links: &[Link]) -> Result<()> {
        let links: BTreeMap<String, Link> =
            links.iter().map(|l| (l.name.clone(), l.clone())).collect();
        let rules: Vec<Vec<String>> = rules.iter().map(|r| words(r)).collect();
        verify_item_rules(item, kind, &rules, &links)
    }

    #[test]
    fn parse_accepts_all_forms_case_insensitively() {
        assert_eq!(
            ArtifactRule::parse(&words("match foo/* in src with Products in dst from Build"))
                .unwrap(),
            ArtifactRule::Match {
                pattern: "foo/*".into(),
                source_prefix: "src".into(),
                dest_kind: ArtifactKind::Products,
                dest_prefix: "dst".into(),
                dest_step: "Build".into(),
            }
        );
        for r in [
            "MATCH * WITH MATERIALS FROM a",
            "MATCH * IN x WITH PRODUCTS FROM a",
            "MATCH * WITH PRODUCTS IN y FROM a",
            "CREATE *",
            "DELETE *",
            "MODIFY *",
            "ALLOW *",
            "DISALLOW *",
            "REQUIRE f",
        ] {
            let rule = ArtifactRule::parse(&words(r)).unwrap();
            assert_eq!(rule.to_words(), words(r));
        }
    }

    #[test]
    fn malformed_rules_get_python_messages() {
        let e = ArtifactRule::parse(&words("FOO *")).unwrap_err();
        assert_eq!(e.code(), "intoto.rule_format");
        assert!(
            e.to_string().contains("rules must start with one of"),
            "{e}"
        );
        assert!(e.to_string().contains("'['FOO', '*']'"), "{e}");
        let e = ArtifactRule::parse(&words("CREATE a b")).unwrap_err();
        assert!(
            e.to_string()
                .contains("generic rules must have one of the formats"),
            "{e}"
        );
        let e = ArtifactRule::parse(&words("MATCH * WITH PRODUCTS intake")).unwrap_err();
        assert!(
            e.to_string().contains("match rules must have the format"),
            "{e}"
        );
        let e = ArtifactRule::parse(&words("MATCH * WITH BOTH FROM intake")).unwrap_err();
        assert!(
            e.to_string().contains("either MATERIALS or PRODUCTS"),
            "{e}"
        );
        assert!(ArtifactRule::parse(&words("ALLOW")).is_err());
        assert!(ArtifactRule::parse(&[]).is_err());
    }

    #[test]
    fn match_consumes_only_equal_hashes_and_disallow_catches_the_rest() {
        let a = link("a", &[], &[("x", "11"), ("y", "22")]);
        let b = link("b", &[("x", "11"), ("y", "99")], &[]);
        let rules = ["MATCH * WITH PRODUCTS FROM a", "DISALLOW *"];
        let e = check("b", ArtifactKind::Materials, &rules, &[a.clone(), b]).unwrap_err();
        assert_eq!(e.code(), "intoto.artifact_rule");
        assert!(e.to_string().contains("[\"y\"]"), "{e}");
        let ok = link("b", &[("x", "11"), ("y", "22")], &[]);
        check("b", ArtifactKind::Materials, &rules, &[a, ok]).unwrap();
    }

    #[test]
    fn match_with_prefixes() {
        let a = link("a", &[], &[("out/model.bin", "11")]);
        let b = link("b", &[("in/model.bin", "11"), ("in/other", "22")], &[]);
        let rules = [
            "MATCH *.bin IN in WITH PRODUCTS IN out/ FROM a",
            "DISALLOW in/*.bin",
        ];
        check(
            "b",
            ArtifactKind::Materials,
            &rules,
            &[a.clone(), b.clone()],
        )
        .unwrap();
        // The prefix is not a pattern: "i?" does not match "in".
        let rules = [
            "MATCH *.bin IN i? WITH PRODUCTS IN out FROM a",
            "DISALLOW in/*.bin",
        ];
        assert!(
            check(
                "b",
                ArtifactKind::Materials,
                &rules,
                &[a.clone(), b.clone()]
            )
            .is_err()
        );
        // Missing destination step: consumes nothing.
        let rules = ["MATCH * WITH PRODUCTS FROM nowhere", "DISALLOW *"];
        assert!(check("b", ArtifactKind::Materials, &rules, &[a, b]).is_err());
    }

    #[test]
    fn create_delete_modify_follow_materials_and_products_of_the_same_step() {
        let s = link(
            "s",
            &[("kept", "1"), ("changed", "1"), ("gone", "1")],
            &[("kept", "1"), ("changed", "2"), ("new", "3")],
        );
        let links = [s];
        check(
            "s",
            ArtifactKind::Products,
            &["CREATE new", "MODIFY changed", "ALLOW kept", "DISALLOW *"],
            &links,
        )
        .unwrap();
        check(
            "s",
            ArtifactKind::Materials,
            &["DELETE gone", "MODIFY changed", "ALLOW kept", "DISALLOW *"],
            &links,
        )
        .unwrap();
        // CREATE does not consume a path that was already a material.
        assert!(
            check(
                "s",
                ArtifactKind::Products,
                &["CREATE *", "DISALLOW new"],
                &links
            )
            .is_ok()
        );
        assert!(
            check(
                "s",
                ArtifactKind::Products,
                &["CREATE *", "DISALLOW kept"],
                &links
            )
            .is_err()
        );
        // MODIFY does not consume an unchanged path.
        assert!(
            check(
                "s",
                ArtifactKind::Products,
                &["MODIFY *", "DISALLOW kept"],
                &links
            )
            .is_err()
        );
        // DELETE consumes only what disappeared.
        assert!(
            check(
                "s",
                ArtifactKind::Materials,
                &["DELETE *", "DISALLOW gone"],
                &links
            )
            .is_ok()
        );
        assert!(
            check(
                "s",
                ArtifactKind::Materials,
                &["DELETE *", "DISALLOW kept"],
                &links
            )
            .is_err()
        );
    }

    #[test]
    fn require_checks_the_queue_not_the_link() {
        let s = link("s", &[], &[("model.bin", "1")]);
        let links = [s];
        check(
            "s",
            ArtifactKind::Products,
            &["REQUIRE model.bin", "ALLOW *"],
            &links,
        )
        .unwrap();
        let e = check("s", ArtifactKind::Products, &["REQUIRE other.bin"], &links).unwrap_err();
        assert!(e.to_string().contains("did not find other.bin"), "{e}");
        // Consumed by an earlier rule: no longer in the queue.
        assert!(
            check(
                "s",
                ArtifactKind::Products,
                &["ALLOW *", "REQUIRE model.bin"],
                &links
            )
            .is_err()
        );
    }

    #[test]
    fn disallow_after_allow_sees_only_what_is_left() {
        let s = link("s", &[], &[("a.txt", "1"), ("b.exe", "2")]);
        let links = [s];
        check(
            "s",
            ArtifactKind::Products,
            &["ALLOW *.txt", "ALLOW *.exe", "DISALLOW *"],
            &links,
        )
        .unwrap();
        let e = check(
            "s",
            ArtifactKind::Products,
            &["ALLOW *.txt", "DISALLOW *"],
            &links,
        )
        .unwrap_err();
        assert!(e.to_string().contains("b.exe"), "{e}");
    }
}
