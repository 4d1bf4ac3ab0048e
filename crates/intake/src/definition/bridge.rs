//! From a [`Definition`] to the specs the image-ZIP and TFRecord validators
//! take, so callers never copy fields by hand (and never swap height and
//! width).

use super::{DataSpec, Definition, ImageLayout, Resize, TfDtype};
use crate::{image, tfrecord};

impl Definition {
    /// What the image-ZIP validator checks, for an `image` definition:
    /// the classes, the layout, and with `resize: none` the exact image
    /// size (as `(width, height)`).
    pub fn image_dataset_spec(&self) -> Option<image::ImageDatasetSpec> {
        let DataSpec::Image(spec) = &self.data else {
            return None;
        };
        let [height, width] = spec.image_size;
        Some(image::ImageDatasetSpec {
            classes: spec.label.classes.clone(),
            layout: match &spec.layout {
                ImageLayout::Folders => image::ImageLayout::Folders,
                ImageLayout::Flat {
                    labels_csv,
                    file_column,
                    label_column,
                } => image::ImageLayout::Flat {
                    labels_csv: labels_csv.clone(),
                    file_column: file_column.clone(),
                    label_column: label_column.clone(),
                },
            },
            image_size: (self.preprocessing.resize == Some(Resize::None))
                .then_some((width, height)),
        })
    }

    /// What the TFRecord validator checks, for a `tfrecord` definition:
    /// every feature with its dtype and shape, and the label with its
    /// classes. `string` features become `bytes` (the validator checks the
    /// UTF-8 of label values against the classes).
    pub fn tfrecord_spec(&self) -> Option<tfrecord::TfrecordSpec> {
        let DataSpec::Tfrecord(spec) = &self.data else {
            return None;
        };
        Some(tfrecord::TfrecordSpec {
            features: spec
                .features
                .iter()
                .map(|f| tfrecord::FeatureSpec {
                    name: f.name.clone(),
                    dtype: match f.dtype {
                        TfDtype::Int64 => tfrecord::Dtype::Int64,
                        TfDtype::Float32 => tfrecord::Dtype::Float32,
                        TfDtype::Bytes | TfDtype::String => tfrecord::Dtype::Bytes,
                    },
                    // Dimensions were bounded by DefinitionLimits, so they
                    // fit; saturating keeps a 32-bit build from wrapping.
                    shape: f
                        .shape
                        .iter()
                        .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
                        .collect(),
                })
                .collect(),
            label: Some(tfrecord::LabelSpec {
                feature: spec.label.feature.clone(),
                classes: spec.label.classes.clone(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{DefinitionLimits, parse_definition};

    fn def(yaml: &str) -> Definition {
        parse_definition(yaml.as_bytes(), &DefinitionLimits::default()).unwrap()
    }

    #[test]
    fn image_spec_keeps_width_and_height_apart() {
        let d = def(
            "version: 1\ntype: image\nimage_size: [28, 32]\ncolor_mode: grayscale\n\
                     layout: {kind: flat, labels_csv: l.csv, file_column: f, label_column: c}\n\
                     label: {classes: [a, b]}\ninput_shape: [28, 32, 1]\noutput_shape: [2]\n\
                     preprocessing: {resize: none}\n",
        );
        let s = d.image_dataset_spec().unwrap();
        assert_eq!(s.image_size, Some((32, 28)));
        assert_eq!(s.classes, ["a", "b"]);
        assert!(
            matches!(s.layout, image::ImageLayout::Flat { ref labels_csv, .. } if labels_csv == "l.csv")
        );
        assert!(d.tfrecord_spec().is_none());
        // With resizing, any size is accepted.
        let d = def(
            "version: 1\ntype: image\nimage_size: [28, 32]\nlabel: {classes: [a, b]}\n\
                     input_shape: [28, 32, 3]\noutput_shape: [2]\n",
        );
        assert_eq!(d.image_dataset_spec().unwrap().image_size, None);
        assert_eq!(
            d.image_dataset_spec().unwrap().layout,
            image::ImageLayout::Folders
        );
    }

    #[test]
    fn tfrecord_spec_carries_features_and_label() {
        let d = def(
            "version: 1\ntype: tfrecord\nfeatures:\n  - {name: x, dtype: float32, shape: [2, 3]}\n\
                     \x20 - {name: y, dtype: string, shape: []}\n\
                     label: {feature: y, dtype: string, classes: [cat, dog]}\n\
                     input_shape: [6]\noutput_shape: [2]\n",
        );
        let s = d.tfrecord_spec().unwrap();
        assert_eq!(s.features.len(), 2);
        assert_eq!(s.features[0].shape, [2, 3]);
        assert_eq!(s.features[0].dtype, tfrecord::Dtype::Float32);
        assert_eq!(s.features[1].dtype, tfrecord::Dtype::Bytes);
        assert!(s.features[1].shape.is_empty());
        let label = s.label.unwrap();
        assert_eq!(label.feature, "y");
        assert_eq!(label.classes.unwrap(), ["cat", "dog"]);
        assert!(d.image_dataset_spec().is_none());
    }
}
