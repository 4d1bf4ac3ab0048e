//! TFRecord framing and tf.train.Example parser: any bytes, no panic; an
//! accepted file has at least one record and a class count per record.
//! The input is tried both as a file and as one correctly framed payload,
//! so that mutations reach the protobuf parser past the checksums.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritrain_intake::tfrecord::{
    Dtype, FeatureSpec, LabelSpec, TfrecordLimits, TfrecordSpec, masked_crc32c, validate_tfrecord,
};

fuzz_target!(|data: &[u8]| {
    // Matches the seed corpus (tests/fixtures/generate.py), so mutations
    // reach the feature checks.
    let spec = TfrecordSpec {
        features: vec![
            FeatureSpec { name: "image".into(), dtype: Dtype::Bytes, shape: vec![] },
            FeatureSpec { name: "coords".into(), dtype: Dtype::Float32, shape: vec![4] },
            FeatureSpec { name: "label".into(), dtype: Dtype::Int64, shape: vec![] },
        ],
        label: Some(LabelSpec {
            feature: "label".into(),
            classes: Some(vec!["a".into(), "b".into(), "c".into()]),
        }),
    };
    let len = (data.len() as u64).to_le_bytes();
    let mut framed = len.to_vec();
    framed.extend(masked_crc32c(&len).to_le_bytes());
    framed.extend_from_slice(data);
    framed.extend(masked_crc32c(data).to_le_bytes());
    for file in [data, framed.as_slice()] {
        if let Ok(report) = validate_tfrecord(file, &spec, &TfrecordLimits::for_testing()) {
            assert!(report.records > 0);
            let counted: u64 = report.class_balance.iter().flat_map(|b| b.values()).sum();
            assert_eq!(counted, report.records);
        }
    }
});
