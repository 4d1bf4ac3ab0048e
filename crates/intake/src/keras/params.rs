//! Weight shapes of allow-listed layers, computed from their config.
//!
//! Each function mirrors the layer's `build()` in Keras 3.15 for the shape
//! recorded in `build_config.input_shape`. The result is what the weights
//! file must hold for that layer, in the order Keras saves the variables
//! (`vars/0`, `vars/1`, ...). `None` means "not computable from the config"
//! (an unknown input dimension, an option this module does not model): the
//! scanner then takes the weights file as the source for that layer and
//! says so in the verdict.

use super::json::Json;

/// One `vars` group a layer owns: the group path relative to the layer's
/// own group (`""` for the layer's `vars`, `"/cell"` for an RNN cell) and
/// the shapes of its datasets in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VarGroup {
    pub suffix: &'static str,
    pub shapes: Vec<Vec<u64>>,
}

/// A shape from `build_config.input_shape`: `None` dims are unknown.
pub(crate) type Shape = Vec<Option<u64>>;

/// Parses a shape: an array of non-negative integers or nulls.
pub(crate) fn parse_shape(v: &Json) -> Option<Shape> {
    let Json::Arr(items) = v else { return None };
    items
        .iter()
        .map(|d| match d {
            Json::Null => Some(None),
            other => other.as_u64().map(Some),
        })
        .collect()
}

fn uint(cfg: &Json, key: &str) -> Option<u64> {
    cfg.get(key).and_then(Json::as_u64)
}

fn flag(cfg: &Json, key: &str, default: bool) -> Option<bool> {
    match cfg.get(key) {
        None => Some(default),
        Some(Json::Bool(b)) => Some(*b),
        Some(_) => None,
    }
}

/// The dimension at a Python-style (possibly negative) axis.
fn dim(shape: &Shape, axis: i64) -> Option<u64> {
    let rank = i64::try_from(shape.len()).ok()?;
    let idx = if axis < 0 { axis + rank } else { axis };
    let idx = usize::try_from(idx).ok()?;
    shape.get(idx).copied().flatten()
}

fn last(shape: &Shape) -> Option<u64> {
    shape.last().copied().flatten()
}

fn own(shapes: Vec<Vec<u64>>) -> Vec<VarGroup> {
    vec![VarGroup { suffix: "", shapes }]
}

/// Expected variables of `class_name` with `cfg` built on `input`.
pub(crate) fn expected_vars(
    class_name: &str,
    cfg: &Json,
    input: Option<&Shape>,
) -> Option<Vec<VarGroup>> {
    if super::allowlist::weightless_layer(class_name) {
        return Some(own(Vec::new()));
    }
    // A quantized or LoRA-adapted layer has other variables.
    if cfg
        .get("quantization_config")
        .is_some_and(|q| *q != Json::Null)
        || cfg.get("lora_rank").is_some_and(|q| *q != Json::Null)
    {
        return None;
    }
    match class_name {
        "Dense" => {
            let units = uint(cfg, "units")?;
            let inp = last(input?)?;
            let mut shapes = vec![vec![inp, units]];
            if flag(cfg, "use_bias", true)? {
                shapes.push(vec![units]);
            }
            Some(own(shapes))
        }
        "Conv1D" | "Conv2D" | "Conv3D" => {
            let rank = match class_name {
                "Conv1D" => 1,
                "Conv2D" => 2,
                _ => 3,
            };
            let filters = uint(cfg, "filters")?;
            let kernel: Vec<u64> = match cfg.get("kernel_size")? {
                Json::Arr(k) => k.iter().map(Json::as_u64).collect::<Option<_>>()?,
                k => vec![k.as_u64()?; rank],
            };
            if kernel.len() != rank {
                return None;
            }
            let groups = match cfg.get("groups") {
                None => 1,
                Some(g) => g.as_u64()?,
            };
            let input = input?;
            let cin = match cfg.get("data_format").and_then(Json::as_str) {
                None | Some("channels_last") => last(input)?,
                Some("channels_first") => dim(input, 1)?,
                Some(_) => return None,
            };
            if groups == 0 || cin % groups != 0 {
                return None;
            }
            let mut kshape = kernel;
            kshape.push(cin / groups);
            kshape.push(filters);
            let mut shapes = vec![kshape];
            if flag(cfg, "use_bias", true)? {
                shapes.push(vec![filters]);
            }
            Some(own(shapes))
        }
        "BatchNormalization" => {
            let axis = match cfg.get("axis") {
                None => -1,
                Some(a) => a.as_i64()?,
            };
            let c = dim(input?, axis)?;
            let mut shapes = Vec::new();
            if flag(cfg, "scale", true)? {
                shapes.push(vec![c]);
            }
            if flag(cfg, "center", true)? {
                shapes.push(vec![c]);
            }
            shapes.push(vec![c]); // moving_mean
            shapes.push(vec![c]); // moving_variance
            Some(own(shapes))
        }
        "LayerNormalization" => {
            let input = input?;
            let shape: Vec<u64> = match cfg.get("axis") {
                None => vec![last(input)?],
                Some(Json::Arr(axes)) => {
                    let mut axes: Vec<i64> =
                        axes.iter().map(Json::as_i64).collect::<Option<_>>()?;
                    axes.sort_unstable();
                    axes.iter().map(|&a| dim(input, a)).collect::<Option<_>>()?
                }
                Some(a) => vec![dim(input, a.as_i64()?)?],
            };
            let rms = flag(cfg, "rms_scaling", false)?;
            let mut shapes = Vec::new();
            if flag(cfg, "scale", true)? || rms {
                shapes.push(shape.clone());
            }
            if flag(cfg, "center", true)? && !rms {
                shapes.push(shape);
            }
            Some(own(shapes))
        }
        "Embedding" => {
            let n = uint(cfg, "input_dim")?;
            let d = uint(cfg, "output_dim")?;
            Some(own(vec![vec![n, d]]))
        }
        "LSTM" | "GRU" | "SimpleRNN" => {
            let units = uint(cfg, "units")?;
            let inp = last(input?)?;
            let use_bias = flag(cfg, "use_bias", true)?;
            let gates = match class_name {
                "LSTM" => 4,
                "GRU" => 3,
                _ => 1,
            };
            let width = units.checked_mul(gates)?;
            let mut shapes = vec![vec![inp, width], vec![units, width]];
            if use_bias {
                if class_name == "GRU" && flag(cfg, "reset_after", true)? {
                    shapes.push(vec![2, width]);
                } else {
                    shapes.push(vec![width]);
                }
            }
            Some(vec![
                VarGroup {
                    suffix: "",
                    shapes: Vec::new(),
                },
                VarGroup {
                    suffix: "/cell",
                    shapes,
                },
            ])
        }
        "Normalization" => {
            // Given mean and variance live in the config; adapted ones are
            // weights (mean, variance, and an int64 sample count).
            if cfg.get("mean").is_some_and(|m| *m != Json::Null) {
                return Some(own(Vec::new()));
            }
            let input = input?;
            let axes: Vec<i64> = match cfg.get("axis") {
                None | Some(Json::Null) => Vec::new(),
                Some(Json::Arr(a)) => a.iter().map(Json::as_i64).collect::<Option<_>>()?,
                Some(a) => vec![a.as_i64()?],
            };
            let rank = i64::try_from(input.len()).ok()?;
            let mut keep: Vec<i64> = axes
                .iter()
                .map(|&a| if a < 0 { a + rank } else { a })
                .collect();
            keep.sort_unstable();
            let shape: Vec<u64> = keep.iter().map(|&a| dim(input, a)).collect::<Option<_>>()?;
            Some(own(vec![shape.clone(), shape, Vec::new()]))
        }
        _ => None,
    }
}

/// Number of scalars in a shape (a scalar has one).
pub(crate) fn elements(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

/// Output width a person recognises a layer by: units, filters or the
/// embedding size.
pub(crate) fn output_units(class_name: &str, cfg: &Json) -> Option<u64> {
    match class_name {
        "Dense" | "LSTM" | "GRU" | "SimpleRNN" => uint(cfg, "units"),
        "Conv1D" | "Conv2D" | "Conv3D" => uint(cfg, "filters"),
        "Embedding" => uint(cfg, "output_dim"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keras::json::parse;

    fn cfg(s: &str) -> Json {
        parse(s.as_bytes(), 16, 1000).unwrap()
    }

    fn total(groups: &[VarGroup]) -> u64 {
        groups
            .iter()
            .flat_map(|g| g.shapes.iter())
            .map(|s| elements(s).unwrap())
            .sum()
    }

    #[test]
    fn textbook_parameter_counts() {
        let s = |v: &[Option<u64>]| v.to_vec();
        // Dense: in*units + units
        let d = expected_vars(
            "Dense",
            &cfg(r#"{"units": 16}"#),
            Some(&s(&[None, Some(8)])),
        )
        .unwrap();
        assert_eq!(total(&d), 8 * 16 + 16);
        // Conv2D: kh*kw*cin*filters + filters
        let c = expected_vars(
            "Conv2D",
            &cfg(r#"{"filters": 6, "kernel_size": [3, 3]}"#),
            Some(&s(&[None, Some(4), Some(4), Some(4)])),
        )
        .unwrap();
        assert_eq!(total(&c), 3 * 3 * 4 * 6 + 6);
        // BatchNormalization: 4*C
        let b =
            expected_vars("BatchNormalization", &cfg("{}"), Some(&s(&[None, Some(5)]))).unwrap();
        assert_eq!(total(&b), 20);
        // Embedding: in_dim*out_dim
        let e = expected_vars(
            "Embedding",
            &cfg(r#"{"input_dim": 50, "output_dim": 8}"#),
            None,
        )
        .unwrap();
        assert_eq!(total(&e), 400);
        // LSTM: 4*(units*(in+units)+units)
        let l = expected_vars(
            "LSTM",
            &cfg(r#"{"units": 6}"#),
            Some(&s(&[None, Some(10), Some(8)])),
        )
        .unwrap();
        assert_eq!(total(&l), 4 * (6 * (8 + 6) + 6));
        // GRU with reset_after: 3*(units*(in+units)) + 2*3*units
        let g = expected_vars(
            "GRU",
            &cfg(r#"{"units": 5}"#),
            Some(&s(&[None, Some(4), Some(3)])),
        )
        .unwrap();
        assert_eq!(total(&g), 3 * 5 * (3 + 5) + 2 * 3 * 5);
        // Unknown input dimension: not computable.
        assert!(expected_vars("Dense", &cfg(r#"{"units": 2}"#), Some(&s(&[None, None]))).is_none());
        assert!(expected_vars("Dense", &cfg(r#"{"units": 2}"#), None).is_none());
    }
}
