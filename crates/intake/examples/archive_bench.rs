//! Throughput of the ZIP reader, image-dataset validator and TFRecord
//! validator on files made by `archive_bench.py` (release build):
//!
//! ```text
//! python3 crates/intake/examples/archive_bench.py /tmp/bench
//! cargo run --release -p veritrain-intake --example archive_bench -- /tmp/bench
//! ```

use std::path::Path;
use std::time::Instant;

use veritrain_intake::image::{ImageDatasetSpec, ImageLayout, ImageLimits, validate_image_zip};
use veritrain_intake::tfrecord::{
    Dtype, FeatureSpec, LabelSpec, TfrecordLimits, TfrecordSpec, validate_tfrecord,
};
use veritrain_intake::zip::{ZipArchive, ZipLimits};

fn mb(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: archive_bench DIR")?;
    let dir = Path::new(&dir);

    // Image dataset: open + validate every image (header + full CRC read).
    let images = dir.join("images.zip");
    let t = Instant::now();
    let mut zip = ZipArchive::open_path(&images, &ZipLimits::default())?;
    let opened = t.elapsed().as_secs_f64();
    let spec = ImageDatasetSpec {
        classes: (0..10).map(|i| format!("class{i}")).collect(),
        layout: ImageLayout::Folders,
        image_size: None,
    };
    let report = validate_image_zip(&mut zip, &spec, &ImageLimits::default())?;
    let total = t.elapsed().as_secs_f64();
    let file_len = std::fs::metadata(&images)?.len();
    println!(
        "images.zip: {} images, {} MB uncompressed, {} MB on disk: open {:.3} s, open+validate {:.3} s = {:.0} images/s, {:.0} MB/s uncompressed",
        report.images,
        report.bytes / 1_000_000,
        file_len / 1_000_000,
        opened,
        total,
        report.images as f64 / total,
        mb(report.bytes, total)
    );

    // One large deflated member: inflate + count + CRC.
    let big = dir.join("big.zip");
    let t = Instant::now();
    let mut zip = ZipArchive::open_path(
        &big,
        &ZipLimits {
            max_ratio: 1000,
            ..ZipLimits::default()
        },
    )?;
    let mut reader = zip.entry_reader(0)?;
    let n = reader.drain()?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "big.zip: inflated {} MB in {:.3} s = {:.0} MB/s",
        n / 1_000_000,
        secs,
        mb(n, secs)
    );

    // TFRecord: framing + CRC-32C + Example parsing + spec checks.
    let tfr = dir.join("data.tfrecord");
    let spec = TfrecordSpec {
        features: vec![
            FeatureSpec {
                name: "image".into(),
                dtype: Dtype::Bytes,
                shape: vec![],
            },
            FeatureSpec {
                name: "x".into(),
                dtype: Dtype::Float32,
                shape: vec![32],
            },
            FeatureSpec {
                name: "label".into(),
                dtype: Dtype::Int64,
                shape: vec![],
            },
        ],
        label: Some(LabelSpec {
            feature: "label".into(),
            classes: Some((0..10).map(|i| format!("c{i}")).collect()),
        }),
    };
    let t = Instant::now();
    let report = validate_tfrecord(
        std::fs::File::open(&tfr)?,
        &spec,
        &TfrecordLimits::default(),
    )?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "data.tfrecord: {} records, {} MB in {:.3} s = {:.0} MB/s, {:.0} records/s",
        report.records,
        report.bytes / 1_000_000,
        secs,
        mb(report.bytes, secs),
        report.records as f64 / secs
    );
    Ok(())
}
