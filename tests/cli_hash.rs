//! `veritrain hash` driven like a user would: per-file digests must be what
//! coreutils `sha256sum` prints, the root digest must follow the documented
//! rule (recomputed here independently of the library), and hostile inputs
//! must be refused with their error code and exit status 1.

mod util;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Output;

use sha2::{Digest, Sha256};

fn write(root: &Path, name: &str, bytes: &[u8]) {
    let path = root.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn hash_cmd(dir: &Path, args: &[&str]) -> Output {
    util::run(util::veritrain().current_dir(dir).arg("hash").args(args))
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// `sha256sum` run on the given files, as path -> hex digest.
fn sha256sum(dir: &Path, files: &[&str]) -> BTreeMap<String, String> {
    let out = util::run(
        std::process::Command::new("sha256sum")
            .current_dir(dir)
            .args(files),
    );
    assert!(out.status.success(), "sha256sum failed: {}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|line| {
            let (digest, path) = line.split_once("  ").unwrap();
            (path.to_owned(), digest.to_owned())
        })
        .collect()
}

/// The documented root rule, written from the spec rather than the library:
/// sort by path component by component, then SHA-256 over the raw digests.
fn expected_root(entries: &[(String, String)]) -> String {
    let mut sorted = entries.to_vec();
    sorted.sort_by(|a, b| {
        let ka: Vec<&str> = a.0.split('/').collect();
        let kb: Vec<&str> = b.0.split('/').collect();
        ka.cmp(&kb)
    });
    let mut hasher = Sha256::new();
    for (_, digest) in &sorted {
        hasher.update(hex::decode(digest).unwrap());
    }
    hex::encode(hasher.finalize())
}

/// Parse the text output into (sha256, size, name) lines and the root.
fn parse_text(text: &str) -> (Vec<(String, u64, String)>, String) {
    let mut lines: Vec<&str> = text.lines().collect();
    let root = lines
        .pop()
        .unwrap()
        .strip_prefix("root: sha256:")
        .unwrap()
        .to_owned();
    let entries = lines
        .iter()
        .map(|line| {
            let mut parts = line.splitn(3, "  ");
            let digest = parts.next().unwrap().to_owned();
            let size = parts.next().unwrap().parse().unwrap();
            (digest, size, parts.next().unwrap().to_owned())
        })
        .collect();
    (entries, root)
}

fn dataset(root: &Path) {
    write(root, "data/train.csv", b"x,y\n1,2\n3,4\n");
    write(root, "data/a.txt", b"tab\there");
    write(root, "data/a/b.bin", &[0u8, 255, 10, 13]);
    write(root, "data/a-b/c", b"");
    write(
        root,
        "data/\u{fc}n\u{ef}/\u{65e5}.csv",
        "unicode".as_bytes(),
    );
    write(root, "model.keras", &vec![7u8; 3_000_001]);
}

#[test]
fn per_file_digests_equal_sha256sum_and_root_follows_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path());
    let out = hash_cmd(dir.path(), &["data", "model.keras"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (entries, root) = parse_text(&stdout(&out));

    let names: Vec<&str> = entries.iter().map(|e| e.2.as_str()).collect();
    // Component order: "a/b.bin" before "a-b/c" and "a.txt".
    assert_eq!(
        names,
        [
            "a/b.bin",
            "a-b/c",
            "a.txt",
            "model.keras",
            "train.csv",
            "\u{fc}n\u{ef}/\u{65e5}.csv"
        ]
    );

    let on_disk = |name: &str| {
        if name == "model.keras" {
            name.to_owned()
        } else {
            format!("data/{name}")
        }
    };
    let files: Vec<String> = names.iter().map(|n| on_disk(n)).collect();
    let file_refs: Vec<&str> = files.iter().map(String::as_str).collect();
    let theirs = sha256sum(dir.path(), &file_refs);
    for (digest, size, name) in &entries {
        let path = on_disk(name);
        assert_eq!(Some(digest), theirs.get(&path), "{name}");
        assert_eq!(
            *size,
            std::fs::metadata(dir.path().join(&path)).unwrap().len()
        );
    }

    let pairs: Vec<(String, String)> = entries.iter().map(|e| (e.2.clone(), e.0.clone())).collect();
    assert_eq!(root, expected_root(&pairs));
}

#[test]
fn json_output_holds_entries_mode_and_root() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path());
    let text = hash_cmd(dir.path(), &["data"]);
    let json_out = hash_cmd(dir.path(), &["--json", "data"]);
    assert!(json_out.status.success(), "{}", stderr(&json_out));
    let json: serde_json::Value = serde_json::from_slice(&json_out.stdout).unwrap();

    assert_eq!(json["mode"], serde_json::json!({"method": "files"}));
    let (entries, root) = parse_text(&stdout(&text));
    assert_eq!(json["root_digest"]["sha256"], root.as_str());
    let listed: Vec<(String, u64, String)> = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["sha256"].as_str().unwrap().to_owned(),
                e["size"].as_u64().unwrap(),
                e["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(listed, entries);
}

#[test]
fn sharded_manifest_covers_each_file_in_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..2_500_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    write(dir.path(), "m/weights.bin", &data);
    write(dir.path(), "m/config.json", b"{}");
    write(dir.path(), "m/empty", b"");
    let out = hash_cmd(dir.path(), &["--json", "--shard-size", "1000000", "m"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["mode"],
        serde_json::json!({"method": "shards", "shard_size": 1_000_000})
    );

    let entries = json["entries"].as_array().unwrap();
    let ranges: Vec<(&str, u64, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap(),
                e["start"].as_u64().unwrap(),
                e["end"].as_u64().unwrap(),
            )
        })
        .collect();
    // The empty file has no shard, as in OpenSSF model-signing.
    assert_eq!(
        ranges,
        [
            ("config.json", 0, 2),
            ("weights.bin", 0, 1_000_000),
            ("weights.bin", 1_000_000, 2_000_000),
            ("weights.bin", 2_000_000, 2_500_000),
        ]
    );
    let mut hasher = Sha256::new();
    for (entry, (path, start, end)) in entries.iter().zip(&ranges) {
        let bytes = std::fs::read(dir.path().join("m").join(path)).unwrap();
        let shard = Sha256::digest(&bytes[*start as usize..*end as usize]);
        assert_eq!(entry["sha256"], hex::encode(shard));
        hasher.update(shard);
    }
    assert_eq!(
        json["root_digest"]["sha256"],
        hex::encode(hasher.finalize())
    );
}

#[test]
fn empty_directory_has_the_root_of_no_digests() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let out = hash_cmd(dir.path(), &["empty"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        "root: sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
    );
}

#[test]
fn a_file_name_with_a_newline_cannot_forge_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let forged = format!("x\n{}  1  fake", "0".repeat(64));
    write(dir.path(), &format!("d/{forged}"), b"y");
    let out = hash_cmd(dir.path(), &["d"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 2, "{text}");
    let first = text.lines().next().unwrap();
    assert!(first.starts_with('\\'), "{first}");
    assert!(
        first.ends_with(&format!("x\\n{}  1  fake", "0".repeat(64))),
        "{first}"
    );
}

/// Run `veritrain hash` on a hostile input; it must exit 1 and name the code
/// in both the text and the JSON error.
fn assert_refused(dir: &Path, input: &str, code: &str) {
    let out = hash_cmd(dir, &[input]);
    assert_eq!(out.status.code(), Some(1), "{input}: {}", stderr(&out));
    assert!(
        stderr(&out).starts_with(&format!("error[{code}]: ")),
        "{input}: {}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty(), "{input}: printed a manifest anyway");

    let out = hash_cmd(dir, &["--json", input]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["error"]["code"], code, "{input}");
    assert!(!json["error"]["message"].as_str().unwrap().is_empty());
}

#[test]
fn symlinks_are_refused_inside_a_directory_and_as_input() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "inner/ok", b"ok");
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("inner/passwd")).unwrap();
    assert_refused(dir.path(), "inner", "hash.symlink");

    write(dir.path(), "real/file", b"f");
    std::os::unix::fs::symlink("real", dir.path().join("dirlink")).unwrap();
    std::os::unix::fs::symlink("real/file", dir.path().join("filelink")).unwrap();
    assert_refused(dir.path(), "dirlink", "hash.symlink");
    assert_refused(dir.path(), "dirlink/", "hash.symlink");
    assert_refused(dir.path(), "filelink", "hash.symlink");
}

#[test]
fn fifo_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "d/ok", b"ok");
    let status = std::process::Command::new("mkfifo")
        .arg(dir.path().join("d/pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    assert_refused(dir.path(), "d", "hash.special_file");
    assert_refused(dir.path(), "d/pipe", "hash.special_file");
}

#[test]
fn socket_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(dir.path().join("d/sock")).unwrap();
    assert_refused(dir.path(), "d", "hash.special_file");
}

#[test]
fn device_is_refused() {
    assert_refused(Path::new("/"), "/dev/null", "hash.special_file");
}

#[test]
fn non_utf8_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.csv");
    std::fs::write(dir.path().join("d").join(name), b"latin-1 name").unwrap();
    assert_refused(dir.path(), "d", "hash.path_escape");
}

#[test]
fn duplicate_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a/model.keras", b"1");
    write(dir.path(), "b/model.keras", b"2");
    let out = hash_cmd(dir.path(), &["a", "b"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error[hash.duplicate_path]: "),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("model.keras"));
}

#[test]
fn missing_input_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    assert_refused(dir.path(), "does-not-exist", "hash.io");
}

#[test]
fn zero_shard_size_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "f", b"f");
    let out = hash_cmd(dir.path(), &["--shard-size", "0", "f"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--shard-size"));
}
