//! ZIP reader and image-dataset validator: any bytes, no panic; whatever
//! opens reads back exactly its declared sizes or is refused with a code.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use veritrain_intake::image::{ImageDatasetSpec, ImageLayout, ImageLimits, validate_image_zip};
use veritrain_intake::zip::{ZipArchive, ZipLimits};

fuzz_target!(|data: &[u8]| {
    let limits = ZipLimits::for_testing();
    if let Ok(mut zip) = ZipArchive::open(Cursor::new(data), &limits) {
        for i in 0..zip.len() {
            let declared = zip.entries().get(i).map(|e| e.size());
            match zip.read_entry(i, 1 << 20) {
                // A verified read yields exactly the declared size.
                Ok(bytes) => assert_eq!(Some(bytes.len() as u64), declared),
                Err(e) => assert!(e.code().starts_with("zip.") || e.code() == "intake.io"),
            }
        }
        assert!(zip.inflated_bytes() <= limits.max_total_bytes);
    }
    if let Ok(mut zip) = ZipArchive::open(Cursor::new(data), &limits) {
        let spec = ImageDatasetSpec {
            classes: vec!["cat".into(), "dog".into()],
            layout: ImageLayout::Folders,
            image_size: None,
        };
        let _ = validate_image_zip(&mut zip, &spec, &ImageLimits::for_testing());
    }
});
