//! Every attack class on the ZIP reader, each built from raw bytes.

use std::io::{Cursor as IoCursor, Read};

use proptest::prelude::*;

use super::testzip::{self, Descriptor, TestZip, crc32, deflate};
use super::*;

type Archive = ZipArchive<IoCursor<Vec<u8>>>;

fn open_with(bytes: Vec<u8>, limits: &ZipLimits) -> Result<Archive> {
    ZipArchive::open(IoCursor::new(bytes), limits)
}

fn open(bytes: Vec<u8>) -> Result<Archive> {
    open_with(bytes, &ZipLimits::for_testing())
}

/// "ok" or the code of the first rejection from opening the archive.
fn open_code(bytes: Vec<u8>) -> &'static str {
    match open(bytes) {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

/// Opens and reads every entry; "ok" or the first rejection's code.
fn read_code_with(bytes: Vec<u8>, limits: &ZipLimits) -> &'static str {
    let mut zip = match open_with(bytes, limits) {
        Ok(z) => z,
        Err(e) => return e.code(),
    };
    for i in 0..zip.len() {
        if let Err(e) = zip.read_entry(i, u64::MAX) {
            return e.code();
        }
    }
    "ok"
}

fn read_code(bytes: Vec<u8>) -> &'static str {
    read_code_with(bytes, &ZipLimits::for_testing())
}

fn png_like(n: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend((0..n).map(|i| (i * 7 + i / 13) as u8));
    v
}

// ---- benign archives -------------------------------------------------------

#[test]
fn ok_stored_deflated_and_directories_read_back() {
    let text = b"hello hello hello hello hello".repeat(10);
    let bytes = TestZip::new()
        .dir("cats/")
        .stored("cats/a.png", &png_like(100))
        .deflated("cats/b.txt", &text)
        .deflated("empty.txt", b"")
        .build();
    let mut zip = open(bytes).unwrap();
    let names: Vec<_> = zip.entries().iter().map(|e| e.name().to_owned()).collect();
    assert_eq!(names, ["cats/", "cats/a.png", "cats/b.txt", "empty.txt"]);
    assert!(zip.entries()[0].is_dir());
    assert_eq!(zip.entries()[2].method(), Method::Deflated);
    assert_eq!(zip.read_entry(1, 1 << 20).unwrap(), png_like(100));
    assert_eq!(
        zip.read_by_name("cats/b.txt", 1 << 20).unwrap().unwrap(),
        text
    );
    assert_eq!(zip.read_by_name("empty.txt", 0).unwrap().unwrap(), b"");
    assert_eq!(zip.read_entry(0, 0).unwrap(), b"");
    assert!(zip.read_by_name("nope", 10).unwrap().is_none());
    assert_eq!(zip.inflated_bytes(), 108 + text.len() as u64);
}

#[test]
fn ok_empty_archive() {
    let zip = open(TestZip::new().build()).unwrap();
    assert!(zip.is_empty());
}

#[test]
fn ok_data_descriptors_signed_and_unsigned() {
    for signed in [true, false] {
        let bytes = TestZip::new()
            .deflated("a.txt", &b"abc".repeat(50))
            .with(|m| {
                m.flags = FLAG_DESCRIPTOR;
                m.descriptor = Some(Descriptor {
                    signed,
                    ..Descriptor::default()
                });
            })
            .stored("b.txt", b"bbb")
            .with(|m| {
                m.flags = FLAG_DESCRIPTOR;
                m.descriptor = Some(Descriptor {
                    signed,
                    ..Descriptor::default()
                });
            })
            .build();
        assert_eq!(read_code(bytes), "ok", "signed={signed}");
    }
}

#[test]
fn ok_zip64_records_and_extra_fields() {
    let bytes = TestZip::new()
        .deflated("a.txt", &b"zip64 ".repeat(40))
        .stored("b/", b"")
        .tweak(|z| z.zip64 = true)
        .build();
    let mut zip = open(bytes).unwrap();
    assert_eq!(zip.len(), 2);
    assert_eq!(zip.read_entry(0, 1000).unwrap(), b"zip64 ".repeat(40));
}

#[test]
fn ok_archive_comment() {
    let bytes = TestZip::new()
        .stored("a.txt", b"a")
        .tweak(|z| z.comment = b"made by a test".to_vec())
        .build();
    assert_eq!(read_code(bytes), "ok");
}

// ---- names -----------------------------------------------------------------

#[test]
fn fail_hostile_names() {
    let cases: &[(&[u8], u16, &str)] = &[
        (b"../x.png", 0, codes::PATH_TRAVERSAL),
        (b"a/../../x.png", 0, codes::PATH_TRAVERSAL),
        (b"/etc/cron.d/x", 0, codes::ABSOLUTE_PATH),
        (b"C:x.png", 0, codes::ABSOLUTE_PATH),
        (b"C:/Windows/x.png", 0, codes::ABSOLUTE_PATH),
        (b"a\\b.png", 0, codes::BAD_NAME),
        (b"..\\..\\x.png", 0, codes::BAD_NAME),
        (b"a.png\0.exe", 0, codes::BAD_NAME),
        (b"a\x07.png", 0, codes::BAD_NAME),
        (b"a//b.png", 0, codes::BAD_NAME),
        (b"./a.png", 0, codes::BAD_NAME),
        (b"a.png:stream", 0, codes::BAD_NAME),
        (b"caf\xe9.png", 0, codes::NON_UTF8_NAME),
        (b"caf\xe9.png", FLAG_UTF8, codes::NON_UTF8_NAME),
    ];
    for (name, flags, code) in cases {
        let bytes = TestZip::new()
            .raw_name(name, b"x")
            .with(|m| m.flags = *flags)
            .build();
        assert_eq!(
            open_code(bytes),
            *code,
            "name {:?}",
            String::from_utf8_lossy(name)
        );
    }
    let ok = TestZip::new()
        .raw_name("caf\u{e9}.png".as_bytes(), b"x")
        .with(|m| m.flags = FLAG_UTF8)
        .build();
    assert_eq!(open_code(ok), "ok");
}

#[test]
fn fail_duplicate_and_colliding_names() {
    let dup = TestZip::new()
        .stored("a.png", b"1")
        .stored("a.png", b"2")
        .build();
    assert_eq!(open_code(dup), codes::DUPLICATE_NAME);
    let case = TestZip::new()
        .stored("A.png", b"1")
        .stored("a.png", b"2")
        .build();
    assert_eq!(open_code(case), codes::CASE_COLLISION);
    let unicode = TestZip::new()
        .stored("STRASSE.png", b"1")
        .raw_name("stra\u{df}e.png".as_bytes(), b"2")
        .with(|m| m.flags = FLAG_UTF8)
        .build();
    assert_eq!(open_code(unicode), codes::CASE_COLLISION);
    let dirs = TestZip::new()
        .stored("Cat/x.png", b"1")
        .stored("cat/y.png", b"2")
        .build();
    assert_eq!(open_code(dirs), codes::CASE_COLLISION);
    let conflict = TestZip::new()
        .stored("a", b"1")
        .stored("a/b.png", b"2")
        .build();
    assert_eq!(open_code(conflict), codes::PATH_CONFLICT);
    let conflict_dir = TestZip::new().dir("a/").stored("A", b"1").build();
    assert_eq!(open_code(conflict_dir), codes::PATH_CONFLICT);
    // An explicit directory entry and the same directory implied by a file
    // are one directory, not a collision.
    let same = TestZip::new().dir("a/").stored("a/b.png", b"1").build();
    assert_eq!(open_code(same), "ok");
}

#[test]
fn fail_second_name_in_unicode_path_extra() {
    let mut extra = vec![0x75, 0x70, 9, 0, 1, 0, 0, 0, 0];
    extra.extend_from_slice(b"x.sh");
    let bytes = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.central_extra = extra)
        .build();
    assert_eq!(open_code(bytes), codes::AMBIGUOUS_NAME);
}

#[test]
fn fail_extra_fields_outside_allow_list_or_malformed() {
    let unknown = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.central_extra = vec![0x99, 0x99, 0, 0])
        .build();
    assert_eq!(open_code(unknown), codes::UNSUPPORTED_EXTRA);
    let twice = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.central_extra = vec![0x55, 0x54, 0, 0, 0x55, 0x54, 0, 0])
        .build();
    assert_eq!(open_code(twice), codes::BAD_HEADER);
    let overrun = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.central_extra = vec![0x55, 0x54, 9, 0, 1])
        .build();
    assert_eq!(open_code(overrun), codes::BAD_HEADER);
    let local_unknown = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.local.extra = vec![0x99, 0x99, 0, 0])
        .build();
    assert_eq!(open_code(local_unknown), codes::UNSUPPORTED_EXTRA);
    // Allowed metadata fields (extended timestamp, Info-ZIP Unix) pass.
    let timestamps = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| {
            m.local.extra = vec![0x55, 0x54, 5, 0, 1, 0, 0, 0, 0, 0x75, 0x78, 3, 0, 1, 0, 0];
            m.central_extra = vec![0x55, 0x54, 5, 0, 1, 0, 0, 0, 0];
        })
        .build();
    assert_eq!(open_code(timestamps), "ok");
}

// ---- entry types -----------------------------------------------------------

#[test]
fn fail_symlinks_devices_fifos_sockets() {
    for mode in [0o120777u32, 0o020644, 0o060644, 0o010644, 0o140644] {
        let bytes = TestZip::new()
            .stored("link.png", b"/etc/passwd")
            .with(|m| m.external_attr = mode << 16)
            .build();
        assert_eq!(open_code(bytes), codes::BAD_ENTRY_TYPE, "mode {mode:o}");
    }
    // OS X host uses the same Unix mode bits.
    let osx = TestZip::new()
        .stored("link.png", b"/etc/passwd")
        .with(|m| {
            m.made_by = (19 << 8) | 20;
            m.external_attr = 0o120755 << 16;
        })
        .build();
    assert_eq!(open_code(osx), codes::BAD_ENTRY_TYPE);
}

#[test]
fn fail_dos_attributes_and_type_disagreements() {
    for attr in [0x08u32, 0x40, 0x400, 0x4000] {
        let bytes = TestZip::new()
            .stored("a.png", b"1")
            .with(|m| {
                m.made_by = 20;
                m.external_attr = attr;
            })
            .build();
        assert_eq!(open_code(bytes), codes::BAD_ENTRY_TYPE, "attr {attr:#x}");
    }
    let dir_bit_on_file = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.external_attr = 0x10)
        .build();
    assert_eq!(open_code(dir_bit_on_file), codes::BAD_ENTRY_TYPE);
    let dir_mode_on_file = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.external_attr = 0o40755 << 16)
        .build();
    assert_eq!(open_code(dir_mode_on_file), codes::BAD_ENTRY_TYPE);
    let file_mode_on_dir = TestZip::new()
        .dir("d/")
        .with(|m| m.external_attr = 0o100644 << 16)
        .build();
    assert_eq!(open_code(file_mode_on_dir), codes::BAD_ENTRY_TYPE);
    let windows = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| {
            m.made_by = (10 << 8) | 63;
            m.external_attr = 0x20;
        })
        .build();
    assert_eq!(open_code(windows), "ok");
    let amiga = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.made_by = (1 << 8) | 20)
        .build();
    assert_eq!(open_code(amiga), codes::UNSUPPORTED_HOST);
}

#[test]
fn fail_directory_with_content() {
    let bytes = TestZip::new().stored("d/", b"secret").build();
    assert_eq!(open_code(bytes), codes::BAD_DIRECTORY);
}

// ---- methods, flags, encryption --------------------------------------------

#[test]
fn fail_encrypted_and_unsupported_methods_and_flags() {
    let encrypted = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.flags = FLAG_ENCRYPTED)
        .build();
    assert_eq!(open_code(encrypted), codes::ENCRYPTED);
    let strong = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.flags = FLAG_STRONG_ENCRYPTION)
        .build();
    assert_eq!(open_code(strong), codes::ENCRYPTED);
    let aes = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.method = 99)
        .build();
    assert_eq!(open_code(aes), codes::ENCRYPTED);
    for method in [1u16, 9, 12, 14, 93, 95] {
        let bytes = TestZip::new()
            .stored("a.png", b"1")
            .with(|m| m.method = method)
            .build();
        assert_eq!(
            open_code(bytes),
            codes::UNSUPPORTED_METHOD,
            "method {method}"
        );
    }
    let patched = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.flags = 1 << 5)
        .build();
    assert_eq!(open_code(patched), codes::UNSUPPORTED_FLAGS);
}

// ---- local vs central ------------------------------------------------------

#[test]
fn fail_local_and_central_headers_disagree() {
    let name = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.local.name = Some(b"b.png".to_vec()))
        .build();
    assert_eq!(open_code(name), codes::HEADER_MISMATCH);
    let crc = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.local.crc = Some(7))
        .build();
    assert_eq!(open_code(crc), codes::HEADER_MISMATCH);
    let size = TestZip::new()
        .deflated("a.txt", &[b'a'; 100])
        .with(|m| m.local.size = Some(1000))
        .build();
    assert_eq!(open_code(size), codes::HEADER_MISMATCH);
    let csize = TestZip::new()
        .stored("a.txt", b"abc")
        .with(|m| m.local.csize = Some(2))
        .build();
    assert_eq!(open_code(csize), codes::HEADER_MISMATCH);
    let method = TestZip::new()
        .stored("a.txt", b"abc")
        .with(|m| m.local.method = Some(8))
        .build();
    assert_eq!(open_code(method), codes::HEADER_MISMATCH);
    let flags = TestZip::new()
        .stored("a.txt", b"abc")
        .with(|m| m.local.flags = Some(FLAG_UTF8))
        .build();
    assert_eq!(open_code(flags), codes::HEADER_MISMATCH);
    let no_local = TestZip::new()
        .stored("a.txt", b"abc")
        .stored("b.txt", b"abc")
        .with(|m| {
            m.local_of = Some(0);
        })
        .build();
    assert_eq!(open_code(no_local), codes::HEADER_MISMATCH);
}

#[test]
fn fail_data_descriptor_disagrees_with_central() {
    let lying = TestZip::new()
        .deflated("a.txt", &b"abc".repeat(50))
        .with(|m| {
            m.flags = FLAG_DESCRIPTOR;
            m.descriptor = Some(Descriptor {
                signed: true,
                size: Some(10),
                ..Descriptor::default()
            });
        })
        .build();
    assert_eq!(open_code(lying), codes::HEADER_MISMATCH);
    // Descriptor flag set but no descriptor written.
    let missing = TestZip::new()
        .stored("a.txt", b"abc")
        .with(|m| m.flags = FLAG_DESCRIPTOR)
        .build();
    assert_eq!(open_code(missing), codes::HEADER_MISMATCH);
}

// ---- lying sizes, CRC, corrupt streams --------------------------------------

#[test]
fn fail_lying_sizes_caught_by_counting_inflated_bytes() {
    // Every header (local, central and data descriptor) agrees on 10
    // bytes; the stream inflates to 1000. Opening succeeds (the headers are
    // consistent); reading stops one byte past the declared size.
    let data = [b'z'; 1000];
    let payload = deflate(&data);
    let bytes = TestZip::new()
        .deflated("a.txt", &data)
        .with(|m| {
            m.size = Some(10);
            m.flags = FLAG_DESCRIPTOR;
            m.descriptor = Some(Descriptor {
                signed: true,
                size: Some(10),
                ..Descriptor::default()
            });
            m.payload = Some(payload);
        })
        .build();
    let mut zip = open(bytes).unwrap();
    assert_eq!(zip.entries()[0].size(), 10);
    let mut reader = zip.entry_reader(0).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    let err = loop {
        match reader.read(&mut buf) {
            Ok(0) => panic!("lying entry read to the end"),
            Ok(n) => got += n,
            Err(e) => break reader.into_error(e),
        }
    };
    assert_eq!(err.code(), codes::SIZE_MISMATCH);
    assert!(got <= 10, "handed out {got} bytes");
    // The error sticks.
    assert!(reader.read(&mut buf).is_err());
}

#[test]
fn fail_short_content_and_crc_mismatch() {
    let short = TestZip::new()
        .deflated("a.txt", &[b'q'; 100])
        .with(|m| {
            m.size = Some(200);
            m.local.size = Some(200);
        })
        .build();
    assert_eq!(read_code(short), codes::SIZE_MISMATCH);
    let crc = TestZip::new()
        .deflated("a.txt", &[b'q'; 100])
        .with(|m| {
            m.crc = Some(0xdead_beef);
            m.local.crc = Some(0xdead_beef);
        })
        .build();
    assert_eq!(read_code(crc), codes::CRC_MISMATCH);
    let stored_crc = TestZip::new()
        .stored("a.txt", b"abc")
        .with(|m| {
            m.crc = Some(1);
            m.local.crc = Some(1);
        })
        .build();
    assert_eq!(read_code(stored_crc), codes::CRC_MISMATCH);
}

#[test]
fn fail_data_after_deflate_end_and_truncated_or_corrupt_streams() {
    let mut padded = deflate(b"hello");
    padded.extend_from_slice(b"HIDDEN");
    let after_end = TestZip::new()
        .deflated("a.txt", b"hello")
        .with(|m| m.payload = Some(padded))
        .build();
    assert_eq!(read_code(after_end), codes::SIZE_MISMATCH);
    let full = deflate(&[b'x'; 300]);
    let cut = TestZip::new()
        .deflated("a.txt", &[b'x'; 300])
        .with(|m| m.payload = Some(full[..full.len() - 2].to_vec()))
        .build();
    assert_eq!(read_code(cut), codes::BAD_DEFLATE);
    // BTYPE 11 is reserved: an invalid block.
    let corrupt = TestZip::new()
        .deflated("a.txt", b"abc")
        .with(|m| m.payload = Some(vec![0x07, 0, 0, 0]))
        .build();
    assert_eq!(read_code(corrupt), codes::BAD_DEFLATE);
}

// ---- nested archives --------------------------------------------------------

#[test]
fn fail_nested_archives_by_extension_and_by_magic() {
    let inner = TestZip::new().stored("x.png", b"1").build();
    let by_name = TestZip::new().stored("inner.zip", &inner).build();
    assert_eq!(open_code(by_name), codes::NESTED_ARCHIVE);
    let by_name_upper = TestZip::new().stored("d/inner.TAR.GZ", b"1").build();
    assert_eq!(open_code(by_name_upper), codes::NESTED_ARCHIVE);
    let by_magic = TestZip::new().deflated("cat.png", &inner).build();
    assert_eq!(read_code(by_magic), codes::NESTED_ARCHIVE);
    let gzip = TestZip::new()
        .stored("a.png", b"\x1f\x8b\x08\x00\x00\x00\x00\x00")
        .build();
    assert_eq!(read_code(gzip), codes::NESTED_ARCHIVE);
    let mut tar = vec![0u8; 1024];
    tar[257..263].copy_from_slice(b"ustar\0");
    let tar = TestZip::new().deflated("a.png", &tar).build();
    assert_eq!(read_code(tar), codes::NESTED_ARCHIVE);
}

#[test]
fn ok_nested_archives_only_when_the_limits_allow_them() {
    let inner = TestZip::new().stored("x.png", b"1").build();
    let allowed = ZipLimits {
        allow_nested_archives: true,
        ..ZipLimits::for_testing()
    };
    let by_name = TestZip::new().stored("model.keras", &inner).build();
    assert_eq!(read_code_with(by_name.clone(), &allowed), "ok");
    assert_eq!(read_code(by_name), codes::NESTED_ARCHIVE);
    let by_magic = TestZip::new().deflated("data.bin", &inner).build();
    assert_eq!(read_code_with(by_magic, &allowed), "ok");
}

// ---- bombs and limits --------------------------------------------------------

#[test]
fn fail_compression_ratio_bomb() {
    let zeros = vec![0u8; 1 << 20];
    let bytes = TestZip::new().deflated("zeros.bin", &zeros).build();
    assert_eq!(open_code(bytes.clone()), codes::RATIO_TOO_HIGH);
    assert_eq!(
        open_with(bytes, &ZipLimits::default()).unwrap_err().code(),
        codes::RATIO_TOO_HIGH
    );
}

#[test]
fn fail_too_many_entries_and_sizes() {
    let mut many = TestZip::new();
    for i in 0..65 {
        many = many.stored(&format!("{i}.png"), b"1");
    }
    assert_eq!(open_code(many.build()), codes::TOO_MANY_ENTRIES);
    let big = TestZip::new()
        .stored("big.bin", &vec![1u8; (1 << 20) + 1])
        .build();
    assert_eq!(open_code(big), codes::ENTRY_TOO_LARGE);
    let mut total = TestZip::new();
    for i in 0..5 {
        total = total.stored(&format!("{i}.bin"), &vec![i as u8; 1 << 20]);
    }
    assert_eq!(open_code(total.build()), codes::TOTAL_TOO_LARGE);
    let archive = vec![0u8; (16 << 20) + 1];
    assert_eq!(open_code(archive), codes::ARCHIVE_TOO_LARGE);
}

#[test]
fn fail_reading_past_total_inflation_limit() {
    let bytes = TestZip::new().stored("a.bin", &vec![7u8; 1 << 20]).build();
    let mut zip = open(bytes).unwrap();
    // Each full read counts; the fifth crosses the 4 MiB limit.
    for _ in 0..4 {
        zip.read_entry(0, u64::MAX).unwrap();
    }
    let err = zip.read_entry(0, u64::MAX).unwrap_err();
    assert_eq!(err.code(), codes::TOTAL_TOO_LARGE);
}

#[test]
fn fail_member_over_callers_cap() {
    let bytes = TestZip::new().stored("config.json", &[b' '; 100]).build();
    let mut zip = open(bytes).unwrap();
    assert_eq!(
        zip.read_entry(0, 99).unwrap_err().code(),
        codes::MEMBER_TOO_LARGE
    );
    assert_eq!(zip.read_entry(0, 100).unwrap().len(), 100);
}

/// The non-recursive "better zip bomb" (Fifield 2019), built for real:
/// every entry has its own matching local header and correct CRC, but the
/// data of each entry quotes the next local header in a stored DEFLATE
/// block and then runs on into one shared kernel.
fn fifield_bomb(entries: usize, kernel_len: usize) -> (Vec<u8>, Vec<(Vec<u8>, u32)>) {
    let names: Vec<Vec<u8>> = (0..entries)
        .map(|i| format!("{i:02}.png").into_bytes())
        .collect();
    let kernel_out = vec![b'a'; kernel_len];
    let mut data = deflate(&kernel_out); // compressed bytes after LH_i
    let mut out = kernel_out; // what entry i inflates to
    let mut locals = vec![Vec::new(); entries];
    let mut expected = vec![(Vec::new(), 0); entries];
    for i in (0..entries).rev() {
        let lh = testzip::local_header(&names[i], crc32(&out), data.len() as u32, out.len() as u32);
        expected[i] = (out.clone(), crc32(&out));
        locals[i] = lh.clone();
        if i > 0 {
            let n = lh.len() as u16;
            let mut quoted = vec![0x00];
            quoted.extend_from_slice(&n.to_le_bytes());
            quoted.extend_from_slice(&(!n).to_le_bytes());
            quoted.extend_from_slice(&lh);
            quoted.extend_from_slice(&data);
            data = quoted;
            let mut o = lh.clone();
            o.extend_from_slice(&out);
            out = o;
        }
    }
    let mut file = locals[0].clone();
    file.extend_from_slice(&data);
    let cd_offset = file.len() as u32;
    let mut offset = 0u32;
    let mut cd = Vec::new();
    for i in 0..entries {
        let (out, crc) = &expected[i];
        let csize = cd_offset - offset - locals[i].len() as u32;
        cd.extend(testzip::central_header(
            &names[i],
            *crc,
            csize,
            out.len() as u32,
            offset,
        ));
        offset += locals[i].len() as u32 + 5;
    }
    let cd_len = cd.len() as u32;
    file.extend(cd);
    file.extend(testzip::end_record(entries as u16, cd_len, cd_offset));
    (file, expected)
}

#[test]
fn fail_overlapping_entries_better_zip_bomb() {
    let (bomb, expected) = fifield_bomb(10, 100_000);
    // The bomb is real: entry 0's bytes inflate to its declared content and
    // CRC, quoting the other local headers and then the shared kernel.
    let data_start = 30 + 6;
    let inflated =
        miniz_oxide::inflate::decompress_to_vec(&bomb[data_start..]).expect("entry 0 inflates");
    assert_eq!(crc32(&inflated), expected[0].1);
    assert!(inflated.len() > 100_000);
    // Ratio and size limits out of the way: the overlap check alone stops it.
    let limits = ZipLimits {
        max_ratio: u64::MAX,
        max_total_bytes: u64::MAX,
        ..ZipLimits::for_testing()
    };
    let err = open_with(bomb.clone(), &limits).unwrap_err();
    assert_eq!(err.code(), codes::OVERLAPPING_ENTRIES);
    assert_eq!(
        open_with(bomb, &ZipLimits::default()).unwrap_err().code(),
        codes::RATIO_TOO_HIGH
    );
}

#[test]
fn fail_entries_sharing_or_overlapping_data() {
    // Entry a is a valid stored entry whose content happens to contain
    // entry b (local header and data); b's central entry points inside a.
    let lh_b = testzip::local_header(b"b.txt", crc32(b"bbb"), 3, 3);
    let mut lh_b_stored = lh_b.clone();
    lh_b_stored[8] = 0; // method stored
    let mut a_content = b"aaa".to_vec();
    a_content.extend_from_slice(&lh_b_stored);
    a_content.extend_from_slice(b"bbb");
    let n = a_content.len() as u32;
    let mut lh_a = testzip::local_header(b"a.txt", crc32(&a_content), n, n);
    lh_a[8] = 0;
    let b_offset = (lh_a.len() + 3) as u32;
    let mut file = lh_a;
    file.extend_from_slice(&a_content);
    let cd_offset = file.len() as u32;
    let mut cd = testzip::central_header(b"a.txt", crc32(&a_content), n, n, 0);
    cd[10] = 0;
    let mut cd_b = testzip::central_header(b"b.txt", crc32(b"bbb"), 3, 3, b_offset);
    cd_b[10] = 0;
    cd.extend(cd_b);
    let cd_len = cd.len() as u32;
    file.extend(cd);
    file.extend(testzip::end_record(2, cd_len, cd_offset));
    assert_eq!(open_code(file), codes::OVERLAPPING_ENTRIES);

    // Two central entries pointing at the same local header.
    let same = TestZip::new()
        .stored("a.txt", b"abc")
        .stored("a.txt", b"abc")
        .with(|m| m.local_of = Some(0))
        .build();
    let code = open_code(same);
    assert_eq!(code, codes::DUPLICATE_NAME);
}

// ---- framing and junk -------------------------------------------------------

#[test]
fn fail_prepended_appended_and_hidden_bytes() {
    let base = TestZip::new().stored("a.png", b"1").stored("b.png", b"2");
    assert_eq!(open_code(base.build()), "ok");
    // Offsets are computed after the prefix, so only the prefix is extra.
    let prepended = base
        .clone()
        .tweak(|z| z.prefix = b"#!/bin/sh\nexit\n".to_vec())
        .build();
    assert_eq!(open_code(prepended), codes::PREPENDED_DATA);
    let appended = base.clone().tweak(|z| z.suffix = b"junk".to_vec()).build();
    assert_eq!(open_code(appended), codes::TRAILING_DATA);
    let between = base
        .clone()
        .with(|m| m.after = b"PK\x03\x04hidden".to_vec())
        .build();
    assert_eq!(open_code(between), codes::HIDDEN_DATA);
    let first_gap = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.after = b"gap".to_vec())
        .stored("b.png", b"2")
        .build();
    assert_eq!(open_code(first_gap), codes::HIDDEN_DATA);
    let before_eocd = base
        .clone()
        .tweak(|z| z.before_eocd = b"xx".to_vec())
        .build();
    assert_eq!(open_code(before_eocd), codes::HIDDEN_DATA);
    let cd_tail = base.clone().tweak(|z| z.cd_tail = b"yy".to_vec()).build();
    assert_eq!(open_code(cd_tail), codes::HIDDEN_DATA);
}

#[test]
fn fail_ambiguous_or_missing_end_record() {
    // A comment holding a second, self-consistent end record.
    let mut fake = testzip::end_record(0, 0, 0);
    fake.truncate(20);
    fake.extend_from_slice(&0u16.to_le_bytes());
    let ambiguous = TestZip::new()
        .stored("a.png", b"1")
        .tweak(|z| z.comment = fake)
        .build();
    assert_eq!(open_code(ambiguous), codes::AMBIGUOUS_EOCD);
    assert_eq!(
        open_code(b"not a zip at all, just some text".to_vec()),
        codes::NOT_A_ZIP
    );
    assert_eq!(open_code(b"PK".to_vec()), codes::NOT_A_ZIP);
    let multi = TestZip::new()
        .stored("a.png", b"1")
        .tweak(|z| z.disk_override = Some(1))
        .build();
    assert_eq!(open_code(multi), codes::MULTI_DISK);
    let wrong_count = TestZip::new()
        .stored("a.png", b"1")
        .stored("b.png", b"1")
        .tweak(|z| z.entries_override = Some(1))
        .build();
    assert_eq!(open_code(wrong_count), codes::HIDDEN_DATA);
    let too_many = TestZip::new()
        .stored("a.png", b"1")
        .tweak(|z| z.entries_override = Some(3))
        .build();
    assert_eq!(open_code(too_many), codes::BAD_HEADER);
}

#[test]
fn fail_truncated_archive() {
    let bytes = TestZip::new().stored("a.png", &png_like(100)).build();
    // Cut out the middle of the payload: the end record still parses but
    // points past the structures that remain.
    let mut cut = bytes[..40].to_vec();
    cut.extend_from_slice(&bytes[60..]);
    assert_eq!(open_code(cut), codes::BAD_HEADER);
    // Cut at the end: the end record is gone.
    assert_eq!(
        open_code(bytes[..bytes.len() - 5].to_vec()),
        codes::NOT_A_ZIP
    );
}

#[test]
fn fail_bad_zip64_records() {
    let good = TestZip::new()
        .stored("a.png", b"1")
        .tweak(|z| z.zip64 = true);
    let mut bytes = good.build();
    // Corrupt the ZIP64 end record's size field.
    let z64 = bytes.len() - 22 - 20 - 56;
    bytes[z64 + 4] = 45;
    assert_eq!(open_code(bytes), codes::BAD_ZIP64);
    // A ZIP64 extra with a value the header does not defer to it.
    let extra = TestZip::new()
        .stored("a.png", b"1")
        .with(|m| m.central_extra = vec![1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        .build();
    assert_eq!(open_code(extra), codes::BAD_ZIP64);
}

// ---- extraction ---------------------------------------------------------------

#[test]
fn ok_extract_into_fresh_directory() {
    let bytes = TestZip::new()
        .dir("cats/")
        .stored("cats/a.png", &png_like(10))
        .deflated("dogs/b.png", &png_like(500))
        .build();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    let mut zip = open(bytes).unwrap();
    let report = extract::extract_all(&mut zip, &dest).unwrap();
    assert_eq!(report.files, 2);
    assert_eq!(report.directories, 2);
    assert_eq!(report.bytes, 18 + 508);
    assert_eq!(
        std::fs::read(dest.join("dogs/b.png")).unwrap(),
        png_like(500)
    );
    // A second extraction into the same place is refused.
    let err = extract::extract_all(&mut zip, &dest).unwrap_err();
    assert_eq!(err.code(), "intake.io");
}

#[test]
fn fail_extract_into_existing_directory_or_symlink() {
    let bytes = TestZip::new().stored("a.png", b"1").build();
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("victim");
    std::fs::create_dir(&target).unwrap();
    let link = tmp.path().join("out");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let mut zip = open(bytes).unwrap();
    assert!(extract::extract_all(&mut zip, &link).is_err());
    assert!(extract::extract_all(&mut zip, &target).is_err());
    assert!(std::fs::read_dir(&target).unwrap().next().is_none());
}

#[test]
fn fail_extract_removes_partial_output_on_bad_entry() {
    let bytes = TestZip::new()
        .stored("a.png", b"good")
        .stored("b.png", b"bad")
        .with(|m| {
            m.crc = Some(5);
            m.local.crc = Some(5);
        })
        .build();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    let mut zip = open(bytes).unwrap();
    let err = extract::extract_all(&mut zip, &dest).unwrap_err();
    assert_eq!(err.code(), codes::CRC_MISMATCH);
    assert!(!dest.exists());
}

// ---- archives written by reference tools -------------------------------------

macro_rules! fixture {
    ($dir:literal, $name:literal) => {
        (
            $name,
            include_bytes!(concat!("../../tests/fixtures/", $dir, "/", $name)).to_vec(),
        )
    };
}

#[test]
fn ok_archives_written_by_python_zipfile_and_info_zip() {
    let a_png = include_bytes!("../../tests/fixtures/images/rgb_13x7.png").to_vec();
    let b_jpg = include_bytes!("../../tests/fixtures/images/baseline_17x9.jpg").to_vec();
    let c_png = include_bytes!("../../tests/fixtures/images/gray16_6x4.png").to_vec();
    for (name, bytes) in [
        fixture!("zip", "ok_python_stored.zip"),
        fixture!("zip", "ok_python_deflated.zip"),
        fixture!("zip", "ok_python_zip64.zip"),
        fixture!("zip", "ok_python_stream.zip"),
        fixture!("zip", "ok_infozip.zip"),
        fixture!("zip", "ok_infozip_zip64.zip"),
        fixture!("zip", "ok_infozip_stream.zip"),
    ] {
        let mut zip = open(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut files: Vec<String> = zip
            .entries()
            .iter()
            .filter(|e| !e.is_dir())
            .map(|e| e.name().to_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["cat/a.png", "cat/b.jpg", "dog/c.png"], "{name}");
        assert_eq!(
            zip.read_by_name("cat/a.png", 1 << 20).unwrap().unwrap(),
            a_png,
            "{name}"
        );
        assert_eq!(
            zip.read_by_name("cat/b.jpg", 1 << 20).unwrap().unwrap(),
            b_jpg,
            "{name}"
        );
        assert_eq!(
            zip.read_by_name("dog/c.png", 1 << 20).unwrap().unwrap(),
            c_png,
            "{name}"
        );
    }
}

#[test]
fn fail_hostile_archives_written_by_reference_tools() {
    let (_, symlink) = fixture!("zip", "fail_infozip_symlink.zip");
    assert_eq!(open_code(symlink), codes::BAD_ENTRY_TYPE);
    let (_, encrypted) = fixture!("zip", "fail_infozip_encrypted.zip");
    assert_eq!(open_code(encrypted), codes::ENCRYPTED);
    let (_, traversal) = fixture!("zip", "fail_python_traversal.zip");
    assert_eq!(open_code(traversal), codes::PATH_TRAVERSAL);
    let (_, nested) = fixture!("zip", "fail_python_nested.zip");
    assert_eq!(read_code(nested), codes::NESTED_ARCHIVE);
}

// ---- no panics ------------------------------------------------------------------

fn exercise(bytes: Vec<u8>) {
    if let Ok(mut zip) = open(bytes) {
        for i in 0..zip.len() {
            let _ = zip.read_entry(i, 1 << 20);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise(bytes);
    }

    #[test]
    fn mutated_archives_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = TestZip::new()
            .dir("d/")
            .stored("d/a.png", &png_like(40))
            .deflated("d/b.txt", &b"some text some text".repeat(5))
            .with(|m| {
                m.flags = FLAG_DESCRIPTOR;
                m.descriptor = Some(Descriptor { signed: true, ..Descriptor::default() });
            })
            .build();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        exercise(bytes);
    }

    #[test]
    fn mutated_zip64_archives_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = TestZip::new()
            .deflated("a.txt", &b"zip64 ".repeat(20))
            .stored("b.png", &png_like(10))
            .tweak(|z| z.zip64 = true)
            .build();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        exercise(bytes);
    }
}
