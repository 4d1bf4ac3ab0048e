//! TFRecord
