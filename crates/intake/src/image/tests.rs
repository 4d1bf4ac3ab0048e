//! Image datasets: benign layouts pass; every attack class is refused.

use std::io::Cursor as IoCursor;

use proptest::prelude::*;

use super::*;
use crate::zip::{ZipLimits, codes as zip_codes};

// ---- image builders ---------------------------------------------------------

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    out.extend_from_slice(&crc32fast::hash(&crc_input).to_be_bytes());
    out
}

/// A complete, valid PNG: IHDR, one IDAT of zero scanlines, IEND.
fn png(width: u32, height: u32, color: u8, depth: u8) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
    let channels = match color {
        0 | 3 => 1,
        2 => 3,
        4 => 2,
        _ => 4,
    };
    let row = 1 + (width as usize * channels * depth as usize).div_ceil(8);
    let raw = vec![0u8; row * height as usize];
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(
        b"IDAT",
        &miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6),
    ));
    out.extend(chunk(b"IEND", b""));
    out
}

/// A PNG whose IHDR declares `width × height` but whose IDAT is tiny: the
/// shape of a decompression bomb.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(
        b"IDAT",
        &miniz_oxide::deflate::compress_to_vec_zlib(&[0; 4096], 9),
    ));
    out.extend(chunk(b"IEND", b""));
    out
}

fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xff, marker];
    out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A JPEG with the usual segment order: APP0, DQT, SOFn, DHT, SOS, EOI.
fn jpeg_with(width: u16, height: u16, components: u8, sof: u8, precision: u8) -> Vec<u8> {
    let mut out = vec![0xff, 0xd8];
    out.extend(segment(0xe0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
    let mut dqt = vec![0u8];
    dqt.extend([1u8; 64]);
    out.extend(segment(0xdb, &dqt));
    let mut sof_body = vec![precision];
    sof_body.extend_from_slice(&height.to_be_bytes());
    sof_body.extend_from_slice(&width.to_be_bytes());
    sof_body.push(components);
    for c in 0..components {
        sof_body.extend_from_slice(&[c + 1, 0x11, 0]);
    }
    out.extend(segment(sof, &sof_body));
    out.extend(segment(0xc4, &[0; 17]));
    out.extend(segment(0xda, &[1, 1, 0, 0, 63, 0]));
    out.extend_from_slice(&[0x12, 0x34, 0xff, 0x00, 0x56]);
    out.extend_from_slice(&[0xff, 0xd9]);
    out
}

fn jpeg(width: u16, height: u16) -> Vec<u8> {
    jpeg_with(width, height, 3, 0xc0, 8)
}

fn header_of(bytes: &[u8]) -> std::result::Result<ImageHeader, HeaderError> {
    read_header(bytes, 1 << 16)
}

fn header_code(bytes: &[u8]) -> &'static str {
    match header_of(bytes) {
        Ok(_) => "ok",
        Err(HeaderError::UnknownFormat) => "unknown",
        Err(HeaderError::Malformed(_)) => "malformed",
        Err(HeaderError::Unsupported(_)) => "unsupported",
        Err(HeaderError::Io(_)) => "io",
    }
}

// ---- header decoding --------------------------------------------------------

#[test]
fn decodes_png_and_jpeg_headers() {
    let h = header_of(&png(7, 5, 2, 8)).unwrap();
    assert_eq!(
        (h.format, h.width, h.height, h.channels, h.bit_depth),
        (ImageFormat::Png, 7, 5, 3, 8)
    );
    let h = header_of(&png(3, 2, 6, 16)).unwrap();
    assert_eq!((h.channels, h.bit_depth), (4, 16));
    let h = header_of(&png(3, 2, 3, 4)).unwrap();
    assert_eq!(h.channels, 3);
    let h = header_of(&jpeg(640, 480)).unwrap();
    assert_eq!(
        (h.format, h.width, h.height, h.channels),
        (ImageFormat::Jpeg, 640, 480, 3)
    );
    let h = header_of(&jpeg_with(16, 9, 1, 0xc2, 8)).unwrap();
    assert_eq!((h.width, h.height, h.channels), (16, 9, 1));
    // Fill bytes before a marker.
    let mut filled = jpeg(4, 4);
    filled.splice(2..2, [0xff, 0xff]);
    assert_eq!(header_of(&filled).unwrap().width, 4);
    // A segment length below 2, and a reserved marker.
    let mut short_len = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01];
    short_len.extend_from_slice(&jpeg(4, 4)[2..]);
    assert_eq!(header_code(&short_len), "malformed");
    let mut reserved = vec![0xff, 0xd8, 0xff, 0x02, 0x00, 0x02];
    reserved.extend_from_slice(&jpeg(4, 4)[2..]);
    assert_eq!(header_code(&reserved), "malformed");
}

#[test]
fn refuses_malformed_and_unsupported_headers() {
    let mut bad_crc = png(4, 4, 2, 8);
    bad_crc[29] ^= 1;
    assert_eq!(header_code(&bad_crc), "malformed");
    assert_eq!(header_code(&png(4, 4, 2, 4)), "malformed"); // RGB at 4 bits
    assert_eq!(header_code(&png(0, 4, 0, 8)), "malformed");
    assert_eq!(header_code(&png_declaring(1 << 31, 1)), "malformed");
    assert_eq!(header_code(&png(4, 4, 2, 8)[..20]), "malformed");
    assert_eq!(header_code(&jpeg_with(8, 8, 3, 0xc3, 8)), "unsupported"); // lossless
    assert_eq!(header_code(&jpeg_with(8, 8, 3, 0xc9, 8)), "unsupported"); // arithmetic
    assert_eq!(header_code(&jpeg_with(8, 8, 3, 0xc0, 12)), "unsupported");
    assert_eq!(header_code(&jpeg_with(8, 0, 3, 0xc0, 8)), "unsupported"); // DNL
    assert_eq!(header_code(&jpeg_with(8, 8, 4, 0xc0, 8)), "unsupported"); // CMYK
    assert_eq!(header_code(&jpeg_with(0, 8, 3, 0xc0, 8)), "malformed");
    // Scan before frame header.
    let mut no_sof = vec![0xff, 0xd8];
    no_sof.extend(segment(0xda, &[0; 6]));
    assert_eq!(header_code(&no_sof), "malformed");
    assert_eq!(header_code(b"GIF89a......"), "unknown");
    assert_eq!(header_code(b"\xff\xd8"), "unknown");
    assert_eq!(header_code(&jpeg(8, 8)[..30]), "malformed");
    // The frame header pushed beyond the byte budget by metadata segments.
    let mut padded = vec![0xff, 0xd8];
    for _ in 0..3 {
        padded.extend(segment(0xe1, &[0u8; 65000]));
    }
    padded.extend_from_slice(&jpeg(8, 8)[2..]);
    assert_eq!(header_code(&padded), "malformed");
    assert!(read_header(padded.as_slice(), 1 << 20).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn header_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_header(bytes.as_slice(), 256);
    }

    #[test]
    fn header_decoder_never_panics_on_mutated_jpeg(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = jpeg(20, 10);
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        let _ = read_header(bytes.as_slice(), 256);
    }
}

// ---- datasets ---------------------------------------------------------------

use crate::zip::testzip::TestZip;

fn classes(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn folders(names: &[&str]) -> ImageDatasetSpec {
    ImageDatasetSpec {
        classes: classes(names),
        layout: ImageLayout::Folders,
        image_size: None,
    }
}

fn flat(names: &[&str]) -> ImageDatasetSpec {
    ImageDatasetSpec {
        classes: classes(names),
        layout: ImageLayout::Flat {
            labels_csv: "labels.csv".to_owned(),
            file_column: "file".to_owned(),
            label_column: "label".to_owned(),
        },
        image_size: None,
    }
}

fn validate(bytes: Vec<u8>, spec: &ImageDatasetSpec) -> Result<ImageDatasetReport> {
    let mut zip = ZipArchive::open(IoCursor::new(bytes), &ZipLimits::for_testing())?;
    validate_image_zip(&mut zip, spec, &ImageLimits::for_testing())
}

fn code(bytes: Vec<u8>, spec: &ImageDatasetSpec) -> &'static str {
    match validate(bytes, spec) {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn ok_folders_layout() {
    let bytes = TestZip::new()
        .dir("cat/")
        .stored("cat/1.png", &png(32, 24, 2, 8))
        .deflated("cat/2.JPG", &jpeg(64, 48))
        .dir("dog/")
        .deflated("dog/3.jpeg", &jpeg(16, 16))
        .stored("dog/4.png", &png(8, 100, 0, 8))
        .build();
    let report = validate(bytes, &folders(&["cat", "dog"])).unwrap();
    assert_eq!(report.layout, "folders");
    assert_eq!(report.images, 4);
    assert_eq!(
        report.class_counts,
        BTreeMap::from([("cat".to_owned(), 2), ("dog".to_owned(), 2)])
    );
    assert_eq!(report.formats, BTreeMap::from([("jpeg", 2), ("png", 2)]));
    assert_eq!(report.channels, BTreeMap::from([(1, 1), (3, 3)]));
    assert_eq!(report.width, MinMax { min: 8, max: 64 });
    assert_eq!(report.height, MinMax { min: 16, max: 100 });
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["class_counts"]["cat"], 2);
}

#[test]
fn ok_flat_layout_with_labels_csv() {
    let bytes = TestZip::new()
        .stored("a.png", &png(4, 4, 2, 8))
        .stored("imgs/b.jpg", &jpeg(4, 4))
        .stored("c.png", &png(4, 4, 2, 8))
        .deflated(
            "labels.csv",
            b"file,label\na.png,cat\nimgs/b.jpg,dog\n\"c.png\",cat\n",
        )
        .build();
    let report = validate(bytes, &flat(&["cat", "dog"])).unwrap();
    assert_eq!(report.layout, "flat");
    assert_eq!(report.images, 3);
    assert_eq!(report.class_counts["cat"], 2);
    assert_eq!(report.class_counts["dog"], 1);
}

#[test]
fn ok_required_image_size_and_fail_otherwise() {
    let bytes = TestZip::new()
        .stored("cat/1.png", &png(28, 28, 0, 8))
        .build();
    let mut spec = folders(&["cat"]);
    spec.image_size = Some((28, 28));
    assert_eq!(code(bytes.clone(), &spec), "ok");
    spec.image_size = Some((32, 32));
    assert_eq!(code(bytes, &spec), codes::WRONG_SIZE);
}

#[test]
fn fail_extensions_outside_allow_list() {
    for name in [
        "cat/x.gif",
        "cat/run.sh",
        "cat/model.pkl",
        "cat/.DS_Store",
        "cat/noext",
        "cat/x.png.exe",
    ] {
        let bytes = TestZip::new()
            .stored("cat/1.png", &png(4, 4, 2, 8))
            .stored(name, b"x")
            .build();
        assert_eq!(
            code(bytes, &folders(&["cat"])),
            codes::BAD_EXTENSION,
            "{name}"
        );
    }
}

#[test]
fn fail_content_not_matching_extension() {
    let jpeg_as_png = TestZip::new().stored("cat/1.png", &jpeg(4, 4)).build();
    assert_eq!(code(jpeg_as_png, &folders(&["cat"])), codes::MAGIC_MISMATCH);
    let png_as_jpeg = TestZip::new().stored("cat/1.jpg", &png(4, 4, 2, 8)).build();
    assert_eq!(code(png_as_jpeg, &folders(&["cat"])), codes::MAGIC_MISMATCH);
    let script = TestZip::new()
        .stored("cat/1.png", b"#!/bin/sh\nrm -rf /\n")
        .build();
    assert_eq!(code(script, &folders(&["cat"])), codes::MAGIC_MISMATCH);
    let tiny = TestZip::new().stored("cat/1.png", b"\x89P").build();
    assert_eq!(code(tiny, &folders(&["cat"])), codes::MAGIC_MISMATCH);
}

#[test]
fn fail_decompression_bombs_by_pixel_count() {
    // 3 KB of PNG declaring 100000 × 100000 pixels.
    let bomb = png_declaring(100_000, 100_000);
    assert!(bomb.len() < 4096);
    let bytes = TestZip::new().stored("cat/bomb.png", &bomb).build();
    assert_eq!(code(bytes, &folders(&["cat"])), codes::TOO_MANY_PIXELS);
    let jpeg_bomb = TestZip::new()
        .stored("cat/bomb.jpg", &jpeg(65_535, 65_535))
        .build();
    assert_eq!(code(jpeg_bomb, &folders(&["cat"])), codes::TOO_MANY_PIXELS);
    // Within the pixel budget but one side too long.
    let long = TestZip::new()
        .stored("cat/long.png", &png_declaring(5000, 1))
        .build();
    assert_eq!(code(long, &folders(&["cat"])), codes::TOO_MANY_PIXELS);
    // With production limits too.
    let mut zip = ZipArchive::open(
        IoCursor::new(
            TestZip::new()
                .stored("cat/bomb.png", &png_declaring(100_000, 100_000))
                .build(),
        ),
        &ZipLimits::default(),
    )
    .unwrap();
    let err =
        validate_image_zip(&mut zip, &folders(&["cat"]), &ImageLimits::default()).unwrap_err();
    assert_eq!(err.code(), codes::TOO_MANY_PIXELS);
}

#[test]
fn fail_bad_and_unsupported_headers_in_dataset() {
    let mut bad_crc = png(4, 4, 2, 8);
    bad_crc[29] ^= 1;
    let bytes = TestZip::new().stored("cat/1.png", &bad_crc).build();
    assert_eq!(code(bytes, &folders(&["cat"])), codes::BAD_HEADER);
    let lossless = TestZip::new()
        .stored("cat/1.jpg", &jpeg_with(8, 8, 3, 0xc3, 8))
        .build();
    assert_eq!(code(lossless, &folders(&["cat"])), codes::UNSUPPORTED);
}

#[test]
fn fail_archive_errors_surface_through_image_reads() {
    let bytes = TestZip::new()
        .stored("cat/1.png", &png(4, 4, 2, 8))
        .with(|m| {
            m.crc = Some(0x1234_5678);
            m.local.crc = Some(0x1234_5678);
        })
        .build();
    assert_eq!(code(bytes, &folders(&["cat"])), zip_codes::CRC_MISMATCH);
}

#[test]
fn fail_folder_layout_violations() {
    let top = TestZip::new()
        .stored("cat/1.png", &png(4, 4, 2, 8))
        .stored("2.png", &png(4, 4, 2, 8))
        .build();
    assert_eq!(code(top, &folders(&["cat"])), codes::BAD_LAYOUT);
    let deep = TestZip::new()
        .stored("cat/sub/1.png", &png(4, 4, 2, 8))
        .build();
    assert_eq!(code(deep, &folders(&["cat"])), codes::BAD_LAYOUT);
    let deep_dir = TestZip::new()
        .dir("cat/sub/")
        .stored("cat/1.png", &png(4, 4, 2, 8))
        .build();
    assert_eq!(code(deep_dir, &folders(&["cat"])), codes::BAD_LAYOUT);
    let csv = TestZip::new()
        .stored("cat/1.png", &png(4, 4, 2, 8))
        .stored("labels.csv", b"x")
        .build();
    assert_eq!(code(csv, &folders(&["cat"])), codes::BAD_EXTENSION);
}

#[test]
fn fail_classes_not_matching_definition() {
    let bytes = TestZip::new()
        .stored("cat/1.png", &png(4, 4, 2, 8))
        .stored("cow/1.png", &png(4, 4, 2, 8))
        .dir("empty/")
        .build();
    let err = validate(bytes, &folders(&["cat", "dog"])).unwrap_err();
    assert_eq!(err.code(), codes::CLASS_MISMATCH);
    let msg = err.to_string();
    assert!(
        msg.contains("\"dog\"") && msg.contains("\"cow\"") && msg.contains("\"empty\""),
        "{msg}"
    );
    // A declared class whose folder is empty is missing.
    let empty = TestZip::new()
        .stored("cat/1.png", &png(4, 4, 2, 8))
        .dir("dog/")
        .build();
    assert_eq!(
        code(empty, &folders(&["cat", "dog"])),
        codes::CLASS_MISMATCH
    );
    // macOS resource forks become an undeclared class.
    let mac = TestZip::new()
        .stored("cat/1.png", &png(4, 4, 2, 8))
        .stored("__MACOSX/._1.png", b"\x00\x05\x16\x07")
        .build();
    assert_eq!(code(mac, &folders(&["cat"])), codes::CLASS_MISMATCH);
}

#[test]
fn fail_flat_layout_label_problems() {
    let img = png(4, 4, 2, 8);
    let missing_csv = TestZip::new().stored("a.png", &img).build();
    assert_eq!(code(missing_csv, &flat(&["cat"])), codes::BAD_LABELS);
    let unknown = TestZip::new()
        .stored("a.png", &img)
        .stored("labels.csv", b"file,label\na.png,cat\nb.png,cat\n")
        .build();
    assert_eq!(code(unknown, &flat(&["cat"])), codes::UNKNOWN_FILE);
    let unlabeled = TestZip::new()
        .stored("a.png", &img)
        .stored("b.png", &img)
        .stored("labels.csv", b"file,label\na.png,cat\n")
        .build();
    assert_eq!(code(unlabeled, &flat(&["cat"])), codes::UNLABELED_IMAGE);
    let duplicate = TestZip::new()
        .stored("a.png", &img)
        .stored("labels.csv", b"file,label\na.png,cat\na.png,cat\n")
        .build();
    assert_eq!(code(duplicate, &flat(&["cat"])), codes::DUPLICATE_LABEL);
    let undeclared = TestZip::new()
        .stored("a.png", &img)
        .stored("b.png", &img)
        .stored("labels.csv", b"file,label\na.png,cat\nb.png,horse\n")
        .build();
    assert_eq!(code(undeclared, &flat(&["cat"])), codes::CLASS_MISMATCH);
    let bad_header = TestZip::new()
        .stored("a.png", &img)
        .stored("labels.csv", b"path,class\na.png,cat\n")
        .build();
    assert_eq!(code(bad_header, &flat(&["cat"])), codes::BAD_LABELS);
    let ragged = TestZip::new()
        .stored("a.png", &img)
        .stored("labels.csv", b"file,label\na.png,cat,extra\n")
        .build();
    assert_eq!(code(ragged, &flat(&["cat"])), codes::BAD_LABELS);
    let other_file = TestZip::new()
        .stored("a.png", &img)
        .stored("notes.txt", b"hi")
        .stored("labels.csv", b"file,label\na.png,cat\n")
        .build();
    assert_eq!(code(other_file, &flat(&["cat"])), codes::BAD_EXTENSION);
    let mut huge = b"file,label\n".to_vec();
    huge.resize(70_000, b'a');
    let too_big = TestZip::new()
        .stored("a.png", &img)
        .stored("labels.csv", &huge)
        .build();
    assert_eq!(code(too_big, &flat(&["cat"])), zip_codes::MEMBER_TOO_LARGE);
}

#[test]
fn fail_bad_specs() {
    let bytes = TestZip::new().stored("cat/1.png", &png(4, 4, 2, 8)).build();
    assert_eq!(code(bytes.clone(), &folders(&[])), codes::BAD_SPEC);
    assert_eq!(
        code(bytes.clone(), &folders(&["cat", "cat"])),
        codes::BAD_SPEC
    );
    assert_eq!(code(bytes.clone(), &folders(&["a/b"])), codes::BAD_SPEC);
    assert_eq!(code(bytes.clone(), &folders(&[".."])), codes::BAD_SPEC);
    let mut same_columns = flat(&["cat"]);
    if let ImageLayout::Flat { label_column, .. } = &mut same_columns.layout {
        *label_column = "file".to_owned();
    }
    assert_eq!(code(bytes, &same_columns), codes::BAD_SPEC);
}

#[test]
fn fail_empty_dataset() {
    let bytes = TestZip::new().stored("labels.csv", b"file,label\n").build();
    // No images: every declared class is missing.
    assert_eq!(code(bytes, &flat(&["cat"])), codes::CLASS_MISMATCH);
}

// ---- files written by reference tools ----------------------------------------

#[test]
#[expect(clippy::type_complexity, reason = "a table of expected header fields")]
fn decodes_headers_of_images_written_by_pillow() {
    let cases: &[(&[u8], ImageFormat, u32, u32, u8, u8)] = &[
        (
            include_bytes!("../../tests/fixtures/images/rgb_13x7.png"),
            ImageFormat::Png,
            13,
            7,
            3,
            8,
        ),
        (
            include_bytes!("../../tests/fixtures/images/rgba_5x9.png"),
            ImageFormat::Png,
            5,
            9,
            4,
            8,
        ),
        (
            include_bytes!("../../tests/fixtures/images/gray16_6x4.png"),
            ImageFormat::Png,
            6,
            4,
            1,
            16,
        ),
        // Pillow writes this palette image with 1-bit indices (IHDR depth 1).
        (
            include_bytes!("../../tests/fixtures/images/palette_8x8.png"),
            ImageFormat::Png,
            8,
            8,
            3,
            1,
        ),
        (
            include_bytes!("../../tests/fixtures/images/gray_9x9.png"),
            ImageFormat::Png,
            9,
            9,
            1,
            8,
        ),
        (
            include_bytes!("../../tests/fixtures/images/baseline_17x9.jpg"),
            ImageFormat::Jpeg,
            17,
            9,
            3,
            8,
        ),
        (
            include_bytes!("../../tests/fixtures/images/progressive_20x10.jpg"),
            ImageFormat::Jpeg,
            20,
            10,
            3,
            8,
        ),
        (
            include_bytes!("../../tests/fixtures/images/gray_12x3.jpg"),
            ImageFormat::Jpeg,
            12,
            3,
            1,
            8,
        ),
        (
            include_bytes!("../../tests/fixtures/images/icc_10x10.jpg"),
            ImageFormat::Jpeg,
            10,
            10,
            3,
            8,
        ),
    ];
    for (i, (bytes, format, w, h, c, d)) in cases.iter().enumerate() {
        let got = read_header(*bytes, 1 << 20).unwrap_or_else(|e| panic!("case {i}: {e:?}"));
        assert_eq!(
            (
                got.format,
                got.width,
                got.height,
                got.channels,
                got.bit_depth
            ),
            (*format, *w, *h, *c, *d),
            "case {i}"
        );
    }
    // Pillow's CMYK JPEG: four components, refused as unsupported.
    let cmyk = include_bytes!("../../tests/fixtures/images/cmyk_4x4.jpg");
    assert!(matches!(
        read_header(cmyk.as_slice(), 1 << 20),
        Err(HeaderError::Unsupported(_))
    ));
    // The ~60 KB ICC profile sits before the frame header: a small budget
    // refuses it.
    let icc = include_bytes!("../../tests/fixtures/images/icc_10x10.jpg");
    assert!(matches!(
        read_header(icc.as_slice(), 4096),
        Err(HeaderError::Malformed(_))
    ));
}

#[test]
fn ok_datasets_zipped_by_python_and_info_zip() {
    for bytes in [
        include_bytes!("../../tests/fixtures/zip/ok_python_deflated.zip").to_vec(),
        include_bytes!("../../tests/fixtures/zip/ok_python_stream.zip").to_vec(),
        include_bytes!("../../tests/fixtures/zip/ok_infozip.zip").to_vec(),
        include_bytes!("../../tests/fixtures/zip/ok_infozip_zip64.zip").to_vec(),
    ] {
        let report = validate(bytes, &folders(&["cat", "dog"])).unwrap();
        assert_eq!(report.images, 3);
        assert_eq!(report.class_counts["cat"], 2);
        assert_eq!(report.width, MinMax { min: 6, max: 17 });
        assert_eq!(report.formats, BTreeMap::from([("jpeg", 1), ("png", 2)]));
    }
}
