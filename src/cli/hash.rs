//! `veritrain hash PATH...`: print the manifest and root digest of files and
//! directories, so a user can compare the data they hold against a BOM.
//!
//! The manifest rules are in `docs/hashing.md`; this module only wires the
//! arguments to [`veritrain_attest::hash`] and formats the result.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use veritrain_attest::hash::{self, HashOptions, Manifest};

/// Arguments of `veritrain hash`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories to hash. A directory's files are named relative
    /// to it, a file by its file name.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print the manifest as JSON (entries, mode, root digest).
    #[arg(long)]
    json: bool,
    /// Hash in shards of this many bytes (OpenSSF "shards" serialization)
    /// instead of whole files, so one large file is hashed on every core.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    shard_size: Option<u64>,
}

/// Hash the inputs and print the manifest. A rejected input (link, special
/// file, bad name, unreadable file) prints its error code and exits 1.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = match args.shard_size {
        Some(size) => HashOptions::shards(size),
        None => HashOptions::files(),
    };
    let mut out = std::io::stdout().lock();
    match hash::hash_inputs(&args.paths, &options) {
        Ok(manifest) => {
            if args.json {
                serde_json::to_writer_pretty(&mut out, &manifest)?;
                writeln!(out)?;
            } else {
                write_text(&mut out, &manifest)?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("error[{}]: {err}", err.code());
            if args.json {
                let body =
                    serde_json::json!({"error": {"code": err.code(), "message": err.to_string()}});
                writeln!(out, "{body}")?;
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// `<sha256>  <size>  <name>` per entry, then `root: sha256:<hex>`. A shard
/// is named `path:start:end`.
fn write_text(out: &mut impl Write, manifest: &Manifest) -> std::io::Result<()> {
    for entry in manifest.entries() {
        let (escaped, name) = escape_name(&entry.identifier());
        // Like sha256sum: a line whose name needed escaping starts with `\`,
        // so a file name holding a newline cannot forge a second line.
        let marker = if escaped { "\\" } else { "" };
        writeln!(
            out,
            "{marker}{}  {}  {name}",
            entry.sha256_hex(),
            entry.size()
        )?;
    }
    writeln!(out, "root: sha256:{}", manifest.root_digest_hex())
}

/// Escape backslashes and control characters; report whether any were.
fn escape_name(name: &str) -> (bool, String) {
    if !name.chars().any(|c| c == '\\' || c.is_control()) {
        return (false, name.to_owned());
    }
    let mut escaped = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if c.is_control() => escaped.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => escaped.push(c),
        }
    }
    (true, escaped)
}

#[cfg(test)]
mod tests {
    use super::escape_name;

    #[test]
    fn names_with_newlines_and_backslashes_are_escaped() {
        assert_eq!(
            escape_name("plain/ünï.csv"),
            (false, "plain/ünï.csv".to_owned())
        );
        assert_eq!(escape_name("a\nb"), (true, "a\\nb".to_owned()));
        assert_eq!(
            escape_name("c:\\x\t\u{1}"),
            (true, "c:\\\\x\\t\\u{1}".to_owned())
        );
    }
}
