//! Image datasets: a ZIP of PNG/JPEG files, checked against the dataset
//! definition before the trainer sees it.
//!
//! Where it sits: the upload is opened with [`crate::zip::ZipArchive`]
//! (archive-level checks), then [`validate_image_zip`] checks the dataset
//! layer: only allow-listed image files, each image's magic matching its
//! extension, its header decoded with a pixel-count limit (decompression
//! bombs), the layout (`<class>/<file>` folders, or flat images plus a
//! labels CSV member) and the class names against the definition. It
//! returns the statistics for the dataset card. Policy and codes:
//! `docs/intake-archives.md`.

mod header;
mod labels;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Seek};

use serde::Serialize;

pub use header::{HeaderError, ImageFormat, ImageHeader, read_header};

use crate::error::{Error, Result};
use crate::finding::{Finding, Location};
use crate::zip::{ZipArchive, error_from_io};

/// Stable codes of every rejection this module makes.
pub mod codes {
    /// The dataset specification itself is unusable (no classes, duplicate
    /// or malformed class names).
    pub const BAD_SPEC: &str = "image.bad_spec";
    /// A file whose extension is not on the allow-list.
    pub const BAD_EXTENSION: &str = "image.bad_extension";
    /// Content that is not an image of the format its extension names.
    pub const MAGIC_MISMATCH: &str = "image.magic_mismatch";
    /// A malformed or truncated image header.
    pub const BAD_HEADER: &str = "image.bad_header";
    /// A valid but unsupported image variant.
    pub const UNSUPPORTED: &str = "image.unsupported";
    /// More pixels (or a longer side) than the limit.
    pub const TOO_MANY_PIXELS: &str = "image.too_many_pixels";
    /// Dimensions other than the required image size.
    pub const WRONG_SIZE: &str = "image.wrong_size";
    /// An entry outside the declared layout.
    pub const BAD_LAYOUT: &str = "image.bad_layout";
    /// The classes found differ from the declared ones.
    pub const CLASS_MISMATCH: &str = "image.class_mismatch";
    /// The labels CSV is missing or malformed.
    pub const BAD_LABELS: &str = "image.bad_labels";
    /// An image with no row in the labels CSV.
    pub const UNLABELED_IMAGE: &str = "image.unlabeled_image";
    /// A labels CSV row naming a file that is not an image in the archive.
    pub const UNKNOWN_FILE: &str = "image.unknown_file";
    /// Two labels CSV rows for one file.
    pub const DUPLICATE_LABEL: &str = "image.duplicate_label";
    /// No images at all.
    pub const EMPTY: &str = "image.empty";
}

/// How images are arranged in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLayout {
    /// `<class>/<file>`: one top-level folder per class, images directly in
    /// them, nothing else.
    Folders,
    /// Images anywhere, plus one CSV member mapping each image's archive
    /// path to its class.
    Flat {
        /// Archive member path of the labels CSV.
        labels_csv: String,
        /// Header of the column holding the image's archive path.
        file_column: String,
        /// Header of the column holding the class name.
        label_column: String,
    },
}

/// What the dataset definition declares about an image dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDatasetSpec {
    /// The class names; the dataset must use exactly these.
    pub classes: Vec<String>,
    /// Folder or flat layout.
    pub layout: ImageLayout,
    /// If set, every image must be exactly `(width, height)` (the
    /// definition's `image_size` when it does not ask for a resize).
    pub image_size: Option<(u32, u32)>,
}

/// Limits for image datasets (on top of the archive's [`crate::zip::ZipLimits`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLimits {
    /// Most pixels (width × height) one image may declare. Stops image
    /// decompression bombs: a few kilobytes of PNG can declare a canvas
    /// that takes gigabytes to decode.
    pub max_pixels: u64,
    /// Longest side in pixels.
    pub max_side: u32,
    /// How far into a file the header must be found (JPEG metadata
    /// segments come before the frame header).
    pub max_header_bytes: u64,
    /// Largest labels CSV.
    pub max_labels_bytes: u64,
}

impl Default for ImageLimits {
    /// Production limits.
    fn default() -> Self {
        ImageLimits {
            // 8192 × 8192; Pillow warns at 89 Mpx and refuses at twice that.
            max_pixels: 1 << 26,
            max_side: 65_535,
            max_header_bytes: 1 << 20,
            max_labels_bytes: 64 << 20,
        }
    }
}

impl ImageLimits {
    /// Small limits for tests and fuzzing.
    pub fn for_testing() -> Self {
        ImageLimits {
            max_pixels: 1 << 20,
            max_side: 4096,
            max_header_bytes: 64 << 10,
            max_labels_bytes: 64 << 10,
        }
    }
}

/// Smallest and largest value seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MinMax {
    /// Smallest.
    pub min: u32,
    /// Largest.
    pub max: u32,
}

impl MinMax {
    fn add(slot: &mut Option<MinMax>, v: u32) {
        *slot = Some(match *slot {
            None => MinMax { min: v, max: v },
            Some(m) => MinMax {
                min: m.min.min(v),
                max: m.max.max(v),
            },
        });
    }
}

/// Statistics of an accepted image dataset, for the dataset card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageDatasetReport {
    /// `folders` or `flat`.
    pub layout: &'static str,
    /// Number of images.
    pub images: u64,
    /// Images per class (every declared class, each at least 1).
    pub class_counts: BTreeMap<String, u64>,
    /// Images per format (`png`, `jpeg`).
    pub formats: BTreeMap<&'static str, u64>,
    /// Images per channel count.
    pub channels: BTreeMap<u8, u64>,
    /// Width range.
    pub width: MinMax,
    /// Height range.
    pub height: MinMax,
    /// Uncompressed bytes of all images.
    pub bytes: u64,
}

/// Allow-listed extensions and the format each must contain.
fn format_for(name: &str) -> Option<ImageFormat> {
    let file = name.rsplit('/').next().unwrap_or(name);
    let (_, ext) = file.rsplit_once('.')?;
    match ext.to_ascii_lowercase().as_str() {
        "png" => Some(ImageFormat::Png),
        "jpg" | "jpeg" => Some(ImageFormat::Jpeg),
        _ => None,
    }
}

fn entry_at(name: &str) -> Location {
    Location::Entry {
        name: name.chars().take(200).collect(),
    }
}

fn reject<T>(code: &'static str, message: impl Into<String>, location: Location) -> Result<T> {
    Err(Finding::new(code, message, location).into())
}

fn check_spec(spec: &ImageDatasetSpec) -> Result<()> {
    if spec.classes.is_empty() {
        return reject(
            codes::BAD_SPEC,
            "the definition declares no classes",
            Location::Input,
        );
    }
    let mut seen = BTreeSet::new();
    for class in &spec.classes {
        if !seen.insert(class.as_str()) {
            return reject(
                codes::BAD_SPEC,
                format!("class {class:?} is declared twice"),
                Location::Input,
            );
        }
        // A class must be usable as one folder name.
        if class.is_empty()
            || class == "."
            || class == ".."
            || class.contains(['/', '\\', ':'])
            || class.chars().any(char::is_control)
        {
            return reject(
                codes::BAD_SPEC,
                format!("class name {class:?} cannot be a folder name"),
                Location::Input,
            );
        }
    }
    if let ImageLayout::Flat {
        file_column,
        label_column,
        ..
    } = &spec.layout
        && file_column == label_column
    {
        return reject(
            codes::BAD_SPEC,
            "the labels CSV's file and label columns must differ",
            Location::Input,
        );
    }
    Ok(())
}

/// Compares the classes found with the declared ones; both differences are
/// reported in one finding. A declared class needs at least one image; an
/// undeclared one is refused even if its folder is empty.
fn compare_classes(
    declared: &[String],
    with_images: &BTreeSet<String>,
    seen: &BTreeSet<String>,
) -> Result<()> {
    let declared_set: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
    let missing: Vec<&str> = declared_set
        .iter()
        .copied()
        .filter(|c| !with_images.contains(*c))
        .collect();
    let unexpected: Vec<&str> = seen
        .iter()
        .chain(with_images)
        .map(String::as_str)
        .filter(|c| !declared_set.contains(c))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .take(20)
        .collect();
    if missing.is_empty() && unexpected.is_empty() {
        return Ok(());
    }
    let mut msg = "the dataset's classes do not match the definition:".to_owned();
    if !missing.is_empty() {
        msg.push_str(&format!(" declared but without images {missing:?};"));
    }
    if !unexpected.is_empty() {
        msg.push_str(&format!(" found but not declared {unexpected:?};"));
    }
    msg.pop();
    reject(codes::CLASS_MISMATCH, msg, Location::Input)
}

/// Checks an opened image-dataset archive against `spec` and returns its
/// statistics. Every image member is read in full (size and CRC verified).
pub fn validate_image_zip<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    spec: &ImageDatasetSpec,
    limits: &ImageLimits,
) -> Result<ImageDatasetReport> {
    check_spec(spec)?;
    // (entry index, class, expected format) of every image.
    let mut images: Vec<(usize, String, ImageFormat)> = Vec::new();
    // Classes with at least one image, and class folders seen at all.
    let mut found = BTreeSet::new();
    let mut folders = BTreeSet::new();
    let labels_member = match &spec.layout {
        ImageLayout::Flat { labels_csv, .. } => Some(labels_csv.as_str()),
        ImageLayout::Folders => None,
    };
    let mut labels_index = None;
    let mut flat_images: HashMap<String, (usize, ImageFormat)> = HashMap::new();
    for (index, entry) in zip.entries().iter().enumerate() {
        let name = entry.name();
        if Some(name) == labels_member && !entry.is_dir() {
            labels_index = Some(index);
            continue;
        }
        let parts: Vec<&str> = name.trim_end_matches('/').split('/').collect();
        if entry.is_dir() {
            // Folders layout: only the class folders themselves.
            if labels_member.is_none() && parts.len() != 1 {
                return reject(
                    codes::BAD_LAYOUT,
                    "folders layout allows only one level of class folders",
                    entry_at(name),
                );
            }
            if labels_member.is_none() {
                folders.insert(parts.concat());
            }
            continue;
        }
        // Allow-list: PNG and JPEG only; everything else (scripts, pickles,
        // archives, `.DS_Store`, `__MACOSX/._x.png` resource forks) is out.
        let Some(format) = format_for(name) else {
            return reject(
                codes::BAD_EXTENSION,
                "only .png, .jpg and .jpeg files are allowed in an image dataset",
                entry_at(name),
            );
        };
        match (labels_member, parts.as_slice()) {
            (None, [class, _file]) => {
                found.insert((*class).to_owned());
                images.push((index, (*class).to_owned(), format));
            }
            (None, _) => {
                return reject(
                    codes::BAD_LAYOUT,
                    "folders layout requires every image at <class>/<file>",
                    entry_at(name),
                );
            }
            (Some(_), _) => {
                flat_images.insert(name.to_owned(), (index, format));
            }
        }
    }

    if let ImageLayout::Flat {
        labels_csv,
        file_column,
        label_column,
    } = &spec.layout
    {
        let Some(labels_index) = labels_index else {
            return reject(
                codes::BAD_LABELS,
                format!(
                    "the labels file {labels_csv:?} named in the definition is not in the archive"
                ),
                Location::Input,
            );
        };
        let bytes = zip.read_entry(labels_index, limits.max_labels_bytes)?;
        let rows = labels::parse_labels(
            &bytes,
            labels_csv,
            file_column,
            label_column,
            zip.limits().max_entries,
        )?;
        let mut labelled: HashMap<String, u64> = HashMap::new();
        for row in rows {
            let Some((index, format)) = flat_images.get(&row.file) else {
                return Err(Finding::new(
                    codes::UNKNOWN_FILE,
                    format!(
                        "labels file names {:?}, which is not an image in the archive",
                        row.file
                    ),
                    Location::Csv {
                        row: row.row,
                        column: None,
                        name: Some(file_column.clone()),
                    },
                )
                .into());
            };
            if let Some(first) = labelled.insert(row.file.clone(), row.row) {
                return Err(Finding::new(
                    codes::DUPLICATE_LABEL,
                    format!("{:?} is labelled again (first on row {first})", row.file),
                    Location::Csv {
                        row: row.row,
                        column: None,
                        name: Some(file_column.clone()),
                    },
                )
                .into());
            }
            found.insert(row.label.clone());
            images.push((*index, row.label, *format));
        }
        if let Some(name) = flat_images
            .keys()
            .filter(|n| !labelled.contains_key(*n))
            .min()
        {
            return reject(
                codes::UNLABELED_IMAGE,
                format!("image has no row in {labels_csv:?}"),
                entry_at(name),
            );
        }
    }

    compare_classes(&spec.classes, &found, &folders)?;
    if images.is_empty() {
        return reject(codes::EMPTY, "the archive holds no images", Location::Input);
    }
    images.sort_unstable_by_key(|(index, _, _)| *index);

    let mut class_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut formats: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut channels: BTreeMap<u8, u64> = BTreeMap::new();
    let (mut width, mut height) = (None, None);
    let mut bytes = 0u64;
    for (index, class, expected) in &images {
        let name = zip
            .entries()
            .get(*index)
            .map(|e| e.name().to_owned())
            .unwrap_or_default();
        let header = check_image(zip, *index, &name, *expected, spec, limits)?;
        bytes += zip.entries().get(*index).map_or(0, |e| e.size());
        *class_counts.entry(class.clone()).or_default() += 1;
        *formats.entry(header.format.as_str()).or_default() += 1;
        *channels.entry(header.channels).or_default() += 1;
        MinMax::add(&mut width, header.width);
        MinMax::add(&mut height, header.height);
    }
    let (Some(width), Some(height)) = (width, height) else {
        return reject(codes::EMPTY, "the archive holds no images", Location::Input);
    };
    Ok(ImageDatasetReport {
        layout: match spec.layout {
            ImageLayout::Folders => "folders",
            ImageLayout::Flat { .. } => "flat",
        },
        images: images.len() as u64,
        class_counts,
        formats,
        channels,
        width,
        height,
        bytes,
    })
}

/// Decodes one image's header, checks it, and reads the rest of the member
/// so that its size and CRC are verified.
fn check_image<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    index: usize,
    name: &str,
    expected: ImageFormat,
    spec: &ImageDatasetSpec,
    limits: &ImageLimits,
) -> Result<ImageHeader> {
    let source = zip.source().to_owned();
    let mut reader = zip.entry_reader(index)?;
    let header = match read_header(&mut reader, limits.max_header_bytes) {
        Ok(h) => h,
        Err(HeaderError::Io(e)) => return Err(error_from_io(e, &source)),
        // Stops files whose content is not what their name says (a script
        // or archive renamed `.png`): decoders sniff content, not names.
        Err(HeaderError::UnknownFormat) => {
            return reject(
                codes::MAGIC_MISMATCH,
                format!(
                    "content is not a {} image",
                    expected.as_str().to_uppercase()
                ),
                entry_at(name),
            );
        }
        Err(HeaderError::Malformed(m)) => return reject(codes::BAD_HEADER, m, entry_at(name)),
        Err(HeaderError::Unsupported(m)) => return reject(codes::UNSUPPORTED, m, entry_at(name)),
    };
    if header.format != expected {
        return reject(
            codes::MAGIC_MISMATCH,
            format!(
                "file is named as {} but holds {}",
                expected.as_str().to_uppercase(),
                header.format.as_str().to_uppercase()
            ),
            entry_at(name),
        );
    }
    let pixels = u64::from(header.width) * u64::from(header.height);
    if pixels > limits.max_pixels
        || header.width > limits.max_side
        || header.height > limits.max_side
    {
        return reject(
            codes::TOO_MANY_PIXELS,
            format!(
                "image declares {}×{} pixels; the limits are {} pixels and {} per side",
                header.width, header.height, limits.max_pixels, limits.max_side
            ),
            entry_at(name),
        );
    }
    if let Some((w, h)) = spec.image_size
        && (header.width, header.height) != (w, h)
    {
        return reject(
            codes::WRONG_SIZE,
            format!(
                "image is {}×{}; the definition requires {w}×{h}",
                header.width, header.height
            ),
            entry_at(name),
        );
    }
    reader.drain()?;
    Ok(header)
}

impl From<HeaderError> for Error {
    fn from(e: HeaderError) -> Self {
        match e {
            HeaderError::Io(e) => error_from_io(e, std::path::Path::new("<image>")),
            HeaderError::UnknownFormat => Finding::new(
                codes::MAGIC_MISMATCH,
                "not a PNG or JPEG image",
                Location::Input,
            )
            .into(),
            HeaderError::Malformed(m) => Finding::new(codes::BAD_HEADER, m, Location::Input).into(),
            HeaderError::Unsupported(m) => {
                Finding::new(codes::UNSUPPORTED, m, Location::Input).into()
            }
        }
    }
}
