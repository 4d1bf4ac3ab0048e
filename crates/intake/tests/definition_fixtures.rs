//! Every fixture under `tests/fixtures/definition/`: `ok_*.yaml` must parse,
//! `fail_*.yaml` must be rejected with the code, key path and position its
//! first line names (`# expect: <code> <path> <line>:<column>`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use veritrain_intake::Location;
use veritrain_intake::definition::{DefinitionLimits, parse_definition};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/definition");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "fixtures missing in {}", dir.display());
    files
}

#[test]
fn ok_fixtures_parse() {
    let mut n = 0;
    for path in fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("ok_") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        // Production limits and the small testing limits both accept them.
        for limits in [DefinitionLimits::default(), DefinitionLimits::for_testing()] {
            if let Err(e) = parse_definition(&bytes, &limits) {
                panic!("{name}: {e}");
            }
        }
        n += 1;
    }
    assert!(n >= 8);
}

#[test]
fn fail_fixtures_fail_where_they_say() {
    let mut n = 0;
    for path in fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("fail_") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let header = text.lines().next().unwrap();
        let mut words = header
            .strip_prefix("# expect: ")
            .unwrap_or_else(|| panic!("{name}: first line must be '# expect: ...'"))
            .split_whitespace();
        let (code, want_path, at) = (
            words.next().unwrap(),
            words.next().unwrap(),
            words
                .next()
                .unwrap_or_else(|| panic!("{name}: no line:column")),
        );
        let err = match parse_definition(text.as_bytes(), &DefinitionLimits::default()) {
            Ok(d) => panic!("{name}: accepted: {d:?}"),
            Err(e) => e,
        };
        let finding = err.finding().unwrap();
        assert_eq!(finding.code, code, "{name}: {finding}");
        let Location::Document { line, column, path } = &finding.location else {
            panic!("{name}: not a document location: {finding}")
        };
        assert_eq!(path, want_path, "{name}: {finding}");
        let got = format!(
            "{}:{}",
            line.map_or("-".into(), |l| l.to_string()),
            column.map_or("-".into(), |c| c.to_string())
        );
        assert_eq!(got, at, "{name}: {finding}");
        n += 1;
    }
    assert!(n >= 30);
}
