//! The gate as a whole: one call per upload that turns a model file, or a
//! dataset with its definition, into a verdict.
//!
//! This is what `veritrain inspect` and (later) the worker call. It picks
//! the validator for the definition's `type`, runs it under the production
//! limits, and cross-checks the model's declared input against the
//! definition, so a model that cannot consume the data is refused before
//! any Python process starts.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use serde::Serialize;

use crate::csv::{CsvLimits, CsvReport, validate_csv};
use crate::definition::{DataSpec, Definition, DefinitionLimits, parse_definition};
use crate::error::{Error, Result};
use crate::finding::{Finding, Location};
use crate::image::{ImageDatasetReport, ImageLimits, validate_image_zip};
use crate::keras::{KerasLimits, KerasVerdict, scan_keras_file};
use crate::tfrecord::{TfrecordLimits, TfrecordReport, validate_tfrecord};
use crate::zip::{ZipArchive, ZipLimits};

/// The model's input does not fit the definition's `input_shape`.
pub const MODEL_SHAPE_MISMATCH: &str = "gate.model_shape_mismatch";
/// The definition's type needs a different kind of data file.
pub const WRONG_DATA_KIND: &str = "gate.wrong_data_kind";

/// Every limit the gate applies, one field per parser.
#[derive(Debug, Clone, Default)]
pub struct GateLimits {
    /// Dataset definition YAML.
    pub definition: DefinitionLimits,
    /// CSV datasets.
    pub csv: CsvLimits,
    /// Image-dataset ZIP archives.
    pub zip: ZipLimits,
    /// Image headers and the labels CSV.
    pub image: ImageLimits,
    /// TFRecord files.
    pub tfrecord: TfrecordLimits,
    /// The `.keras` scanner.
    pub keras: KerasLimits,
}

/// What the gate observed about a dataset.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DataReport {
    /// A CSV dataset: rows, per-column statistics, class balance, duplicates.
    Csv(CsvReport),
    /// An image ZIP: image count, per-class counts, dimensions.
    Image(ImageDatasetReport),
    /// A TFRecord file: record count, class balance.
    Tfrecord(TfrecordReport),
}

/// The verdict on a dataset and its definition.
#[derive(Debug, Serialize)]
pub struct DataVerdict {
    /// True only when the definition and the data passed every check.
    pub accepted: bool,
    /// The parsed definition, when it parsed.
    pub definition: Option<Definition>,
    /// Statistics, when the data passed.
    pub report: Option<DataReport>,
    /// What stopped it (the gate stops at the first problem in the data).
    pub findings: Vec<Finding>,
}

/// Read and parse a dataset definition file.
pub fn read_definition(path: &Path, limits: &DefinitionLimits) -> Result<Definition> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > limits.max_bytes as u64 {
        // parse_definition enforces the limit too; checking here avoids
        // reading a huge file into memory first.
        return Err(Finding::new(
            "definition.limit_size",
            format!(
                "the definition is {} bytes; the limit is {}",
                meta.len(),
                limits.max_bytes
            ),
            Location::Input,
        )
        .into());
    }
    let bytes = std::fs::read(path).map_err(io)?;
    parse_definition(&bytes, limits)
}

/// Validate `data` against the definition at `definition`.
pub fn inspect_dataset(data: &Path, definition: &Path, limits: &GateLimits) -> DataVerdict {
    let def = match read_definition(definition, &limits.definition) {
        Ok(def) => def,
        Err(e) => return rejected(None, e, definition),
    };
    match validate_data(data, &def, limits) {
        Ok(report) => DataVerdict {
            accepted: true,
            definition: Some(def),
            report: Some(report),
            findings: Vec::new(),
        },
        Err(e) => rejected(Some(def), e, data),
    }
}

/// Validate the data file `data` against an already parsed definition.
pub fn validate_data(data: &Path, def: &Definition, limits: &GateLimits) -> Result<DataReport> {
    let open = || {
        File::open(data).map_err(|source| Error::Io {
            path: data.to_owned(),
            source,
        })
    };
    match &def.data {
        DataSpec::Csv(_) => Ok(DataReport::Csv(validate_csv(
            BufReader::new(open()?),
            def,
            &limits.csv,
        )?)),
        DataSpec::Image(_) => {
            let spec = def.image_dataset_spec().ok_or_else(|| wrong_kind(def))?;
            let mut archive = ZipArchive::open_path(data, &limits.zip)?;
            Ok(DataReport::Image(validate_image_zip(
                &mut archive,
                &spec,
                &limits.image,
            )?))
        }
        DataSpec::Tfrecord(_) => {
            let spec = def.tfrecord_spec().ok_or_else(|| wrong_kind(def))?;
            Ok(DataReport::Tfrecord(validate_tfrecord(
                BufReader::new(open()?),
                &spec,
                &limits.tfrecord,
            )?))
        }
    }
}

fn wrong_kind(def: &Definition) -> Error {
    Finding::new(
        WRONG_DATA_KIND,
        format!(
            "the definition's type {:?} does not describe this data",
            def.data.type_name()
        ),
        Location::Input,
    )
    .into()
}

fn rejected(definition: Option<Definition>, error: Error, path: &Path) -> DataVerdict {
    let finding = match error {
        Error::Rejected(f) => *f,
        other => Finding::new(
            other.code(),
            other.to_string(),
            Location::Entry {
                name: path.display().to_string(),
            },
        ),
    };
    DataVerdict {
        accepted: false,
        definition,
        report: None,
        findings: vec![finding],
    }
}

/// Scan a `.keras` model file (see [`scan_keras_file`]).
pub fn inspect_model(model: &Path, limits: &GateLimits) -> KerasVerdict {
    scan_keras_file(model, &limits.keras)
}

/// Does the model's input fit the definition? A single-input model whose
/// declared input (without the batch dimension) differs from the
/// definition's `input_shape` in any known dimension is refused: training
/// would fail inside the sandbox, or worse, silently broadcast.
pub fn check_model_fits(model: &KerasVerdict, def: &Definition) -> Vec<Finding> {
    let Some(summary) = &model.model else {
        return Vec::new();
    };
    let [input] = summary.input_shapes.as_slice() else {
        return Vec::new();
    };
    let model_dims = input.get(1..).unwrap_or_default();
    let fits = model_dims.len() == def.input_shape.len()
        && model_dims
            .iter()
            .zip(&def.input_shape)
            .all(|(m, d)| m.is_none_or(|m| m == *d));
    if fits {
        return Vec::new();
    }
    let shown: Vec<String> = model_dims
        .iter()
        .map(|d| d.map_or("None".to_owned(), |d| d.to_string()))
        .collect();
    vec![Finding::new(
        MODEL_SHAPE_MISMATCH,
        format!(
            "the model expects input shape [{}] but the definition declares input_shape {:?}",
            shown.join(", "),
            def.input_shape
        ),
        Location::Pointer {
            member: "config.json".to_owned(),
            pointer: "/config".to_owned(),
        },
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const CSV_DEF: &str = "version: 1\ntype: csv\ncolumns:\n  - {name: a, type: float}\n  - {name: b, type: float}\n  - {name: y, type: category, values: [no, yes]}\nlabel: {column: y}\ninput_shape: [2]\noutput_shape: [2]\n";

    #[test]
    fn csv_dataset_passes_with_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let def = write(dir.path(), "def.yaml", CSV_DEF);
        let data = write(dir.path(), "d.csv", "a,b,y\n1,2,no\n3,4,yes\n");
        let v = inspect_dataset(&data, &def, &GateLimits::default());
        assert!(v.accepted, "{:?}", v.findings);
        let Some(DataReport::Csv(report)) = v.report else {
            panic!("not a CSV report")
        };
        assert_eq!(report.rows, 2);
    }

    #[test]
    fn bad_cell_is_refused_with_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let def = write(dir.path(), "def.yaml", CSV_DEF);
        let data = write(dir.path(), "d.csv", "a,b,y\n1,2,no\n3,x,yes\n");
        let v = inspect_dataset(&data, &def, &GateLimits::default());
        assert!(!v.accepted);
        assert_eq!(v.findings[0].code, "csv.type_mismatch");
        assert!(matches!(
            v.findings[0].location,
            Location::Csv {
                row: 3,
                column: Some(2),
                ..
            }
        ));
    }

    #[test]
    fn bad_definition_is_refused_before_the_data_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let def = write(dir.path(), "def.yaml", &CSV_DEF.replace("label:", "lable:"));
        let v = inspect_dataset(Path::new("/nonexistent"), &def, &GateLimits::default());
        assert!(!v.accepted);
        assert!(v.definition.is_none());
        assert!(
            v.findings[0].code.starts_with("definition."),
            "{:?}",
            v.findings
        );
    }

    #[test]
    fn model_input_must_fit_the_definition() {
        let model = inspect_model(
            &fixtures().join("keras/ok_mlp_sequential.keras"),
            &GateLimits::default(),
        );
        assert!(model.accepted, "{:?}", model.findings);
        let dims: Vec<u64> = model.model.as_ref().unwrap().input_shapes[0][1..]
            .iter()
            .map(|d| d.unwrap())
            .collect();
        let mut def = parse_definition(CSV_DEF.as_bytes(), &DefinitionLimits::default()).unwrap();
        def.input_shape = dims;
        assert!(check_model_fits(&model, &def).is_empty());
        def.input_shape = vec![999];
        let findings = check_model_fits(&model, &def);
        assert_eq!(findings[0].code, MODEL_SHAPE_MISMATCH);
        assert!(findings[0].message.contains("999"));
    }
}
