//! The trainer's progress stream: one JSON object per stdout line.
//!
//! The stream comes from the process that runs the user's model, so it is
//! untrusted: lines are read with a length cap, unknown events are kept as
//! [`TrainerEvent::Other`] rather than trusted, codes are checked against a
//! pattern and messages are bounded. [`judge`] turns the stream plus the exit
//! status into success or a typed error; a sandboxed runner uses it the same
//! way as the direct one.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, ExitInfo, Result};

/// Longest event line kept (longer lines are cut and marked malformed).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Longest message kept from an error event.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// One progress event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TrainerEvent {
    /// The interpreter started and imported TensorFlow.
    Start {
        /// Python version.
        python: String,
        /// TensorFlow version.
        tensorflow: String,
        /// Keras version.
        keras: String,
    },
    /// The model was loaded, checked and compiled.
    ModelLoaded {
        /// Parameter count.
        parameters: u64,
        /// `compile_config` (the model's own) or `job`.
        compile_source: String,
    },
    /// The data was read and split.
    Data {
        /// `csv`, `image` or `tfrecord`.
        kind: String,
        /// All examples.
        examples: u64,
        /// Training split size.
        train: u64,
        /// Validation split size.
        validation: u64,
    },
    /// An epoch starts (1-based).
    EpochBegin {
        /// Epoch number.
        epoch: u64,
    },
    /// Progress within an epoch (throttled).
    Step {
        /// Epoch number.
        epoch: u64,
        /// Step within the epoch (1-based).
        step: u64,
        /// Running loss (`None` if not finite).
        loss: Option<f64>,
        /// Running metrics.
        metrics: BTreeMap<String, Option<f64>>,
    },
    /// An epoch ended.
    Epoch {
        /// Epoch number.
        epoch: u64,
        /// Loss, metrics, and `val_*` on validation epochs.
        metrics: BTreeMap<String, Option<f64>>,
    },
    /// The final evaluation on the validation split.
    Evaluation {
        /// Validation examples.
        examples: u64,
        /// Loss and metrics.
        metrics: BTreeMap<String, Option<f64>>,
    },
    /// All outputs written.
    Done {
        /// Epochs run.
        epochs: u64,
    },
    /// The job failed.
    Error {
        /// `trainer.*` code.
        code: String,
        /// The reason.
        message: String,
    },
    /// A well-formed line with an event this version does not know.
    Other {
        /// Its `event` value.
        name: String,
    },
    /// A line that is not an event object.
    Malformed {
        /// The start of the line.
        line: String,
    },
}

/// Parse one stdout line.
pub fn parse_line(line: &str) -> TrainerEvent {
    let malformed = || TrainerEvent::Malformed {
        line: line.chars().take(200).collect(),
    };
    let Ok(Value::Object(o)) = serde_json::from_str::<Value>(line) else {
        return malformed();
    };
    let s = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
    let n = |k: &str| o.get(k).and_then(Value::as_u64);
    let metrics = |k: &str| -> Option<BTreeMap<String, Option<f64>>> {
        let m = o.get(k)?.as_object()?;
        m.iter()
            .map(|(k, v)| match v {
                Value::Null => Some((k.clone(), None)),
                Value::Number(x) => Some((k.clone(), x.as_f64())),
                _ => None,
            })
            .collect()
    };
    let Some(name) = s("event") else {
        return malformed();
    };
    let event = match name.as_str() {
        "start" => (|| {
            Some(TrainerEvent::Start {
                python: s("python")?,
                tensorflow: s("tensorflow")?,
                keras: s("keras")?,
            })
        })(),
        "model_loaded" => (|| {
            Some(TrainerEvent::ModelLoaded {
                parameters: n("parameters")?,
                compile_source: s("compile_source")?,
            })
        })(),
        "data" => (|| {
            Some(TrainerEvent::Data {
                kind: s("kind")?,
                examples: n("examples")?,
                train: n("train")?,
                validation: n("validation")?,
            })
        })(),
        "epoch_begin" => n("epoch").map(|epoch| TrainerEvent::EpochBegin { epoch }),
        "step" => (|| {
            Some(TrainerEvent::Step {
                epoch: n("epoch")?,
                step: n("step")?,
                loss: o.get("loss").and_then(Value::as_f64),
                metrics: metrics("metrics")?,
            })
        })(),
        "epoch" => (|| {
            Some(TrainerEvent::Epoch {
                epoch: n("epoch")?,
                metrics: metrics("metrics")?,
            })
        })(),
        "evaluation" => (|| {
            Some(TrainerEvent::Evaluation {
                examples: n("examples")?,
                metrics: metrics("metrics")?,
            })
        })(),
        "done" => n("epochs").map(|epochs| TrainerEvent::Done { epochs }),
        "error" => Some(TrainerEvent::Error {
            code: sanitize_code(s("code").as_deref()),
            message: sanitize_message(s("message").as_deref().unwrap_or("")),
        }),
        _ => Some(TrainerEvent::Other {
            name: name.chars().take(64).collect(),
        }),
    };
    event.unwrap_or_else(malformed)
}

/// A `trainer.<word>` code, or `trainer.unknown` for anything else.
fn sanitize_code(code: Option<&str>) -> String {
    match code {
        Some(c)
            if c.len() <= 64
                && c.strip_prefix("trainer.").is_some_and(|w| {
                    !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                }) =>
        {
            c.to_owned()
        }
        _ => "trainer.unknown".to_owned(),
    }
}

/// Bounded, without control characters (the message reaches terminals and
/// logs).
fn sanitize_message(m: &str) -> String {
    m.chars()
        .take(MAX_MESSAGE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Read events from a stream until it ends, calling `on_event` for each.
/// Lines longer than [`MAX_LINE_BYTES`] are cut and reported as malformed.
///
/// # Errors
/// Only I/O errors of the stream itself.
pub fn read_events(
    mut input: impl BufRead,
    mut on_event: impl FnMut(TrainerEvent),
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let mut limited = std::io::Read::take(&mut input, MAX_LINE_BYTES as u64 + 1);
        let n = limited.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            // Skip the rest of the over-long line.
            let mut sink = Vec::new();
            loop {
                sink.clear();
                let m = std::io::Read::take(&mut input, 1 << 16).read_until(b'\n', &mut sink)?;
                if m == 0 || sink.last() == Some(&b'\n') {
                    break;
                }
            }
            on_event(TrainerEvent::Malformed {
                line: format!("(line longer than {MAX_LINE_BYTES} bytes)"),
            });
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            continue;
        }
        on_event(parse_line(text));
    }
}

/// The outputs of a successful job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrainerOutputs {
    /// The trained model.
    pub model: PathBuf,
    /// Per-epoch history, final evaluation, parameters as used.
    pub metrics: PathBuf,
    /// The split's indices.
    pub split: PathBuf,
    /// The training log.
    pub log: PathBuf,
}

/// Decide a job's result from how the process ended, the events it sent
/// and the output directory (as the worker sees it). Success needs all of:
/// exit status 0, no error event, a `done` event, and every output file
/// present and non-empty. Anything less is an error, never a success.
///
/// # Errors
/// [`Error::TrainerFailed`] (with the trainer's own code when it sent one),
/// [`Error::TrainerKilled`], [`Error::TrainerProtocol`].
pub fn judge(
    exit: ExitInfo,
    events: &[TrainerEvent],
    output_dir: &Path,
    stderr_tail: &str,
) -> Result<TrainerOutputs> {
    let last_error = events.iter().rev().find_map(|e| match e {
        TrainerEvent::Error { code, message } => Some((code.clone(), message.clone())),
        _ => None,
    });
    if let (None, Some(signal)) = (exit.code, exit.signal) {
        return Err(match last_error {
            Some((trainer_code, message)) => Error::TrainerFailed {
                trainer_code,
                message,
                exit,
                stderr_tail: stderr_tail.to_owned(),
            },
            None => Error::TrainerKilled {
                signal,
                stderr_tail: stderr_tail.to_owned(),
            },
        });
    }
    if let Some((trainer_code, message)) = last_error {
        return Err(Error::TrainerFailed {
            trainer_code,
            message,
            exit,
            stderr_tail: stderr_tail.to_owned(),
        });
    }
    if exit.code != Some(0) {
        return Err(Error::TrainerFailed {
            trainer_code: "trainer.unknown".into(),
            message: "the trainer exited without reporting a reason".into(),
            exit,
            stderr_tail: stderr_tail.to_owned(),
        });
    }
    if !events
        .iter()
        .any(|e| matches!(e, TrainerEvent::Done { .. }))
    {
        return Err(Error::TrainerProtocol {
            reason: "exit status 0 without a done event".into(),
        });
    }
    let outputs = TrainerOutputs {
        model: output_dir.join("model.keras"),
        metrics: output_dir.join("metrics.json"),
        split: output_dir.join("split.json"),
        log: output_dir.join("training.log"),
    };
    for p in [
        &outputs.model,
        &outputs.metrics,
        &outputs.split,
        &outputs.log,
    ] {
        // symlink_metadata: an output that is a link is not an output.
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_file() && m.len() > 0 => {}
            _ => {
                return Err(Error::TrainerProtocol {
                    reason: format!("done, but {} is missing or empty", p.display()),
                });
            }
        }
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_event_kind() {
        assert_eq!(
            parse_line(
                r#"{"event":"start","python":"3.11.2","tensorflow":"2.21.0","keras":"3.15.1","numpy":"2.4.6"}"#
            ),
            TrainerEvent::Start {
                python: "3.11.2".into(),
                tensorflow: "2.21.0".into(),
                keras: "3.15.1".into()
            }
        );
        let step = parse_line(
            r#"{"event":"step","epoch":2,"step":5,"loss":null,"metrics":{"accuracy":0.5,"auc":null}}"#,
        );
        let TrainerEvent::Step {
            epoch,
            step,
            loss,
            metrics,
        } = step
        else {
            panic!("{step:?}")
        };
        assert_eq!((epoch, step, loss), (2, 5, None));
        assert_eq!(metrics["accuracy"], Some(0.5));
        assert_eq!(metrics["auc"], None);
        assert!(matches!(
            parse_line(r#"{"event":"epoch","epoch":1,"metrics":{"loss":0.3,"val_loss":0.4}}"#),
            TrainerEvent::Epoch { epoch: 1, .. }
        ));
        assert!(matches!(
            parse_line(r#"{"event":"data","kind":"csv","examples":10,"train":8,"validation":2}"#),
            TrainerEvent::Data {
                train: 8,
                validation: 2,
                ..
            }
        ));
        assert_eq!(
            parse_line(r#"{"event":"done","epochs":3,"outputs":[]}"#),
            TrainerEvent::Done { epochs: 3 }
        );
        assert_eq!(
            parse_line(
                r#"{"event":"error","code":"trainer.nan_loss","message":"loss became nan"}"#
            ),
            TrainerEvent::Error {
                code: "trainer.nan_loss".into(),
                message: "loss became nan".into()
            }
        );
        assert_eq!(
            parse_line(r#"{"event":"future","x":1}"#),
            TrainerEvent::Other {
                name: "future".into()
            }
        );
    }

    #[test]
    fn hostile_or_broken_lines_are_contained() {
        for line in [
            "not json",
            "[1,2]",
            r#"{"no_event":1}"#,
            r#"{"event":"epoch","epoch":"one"}"#,
            "{\"event\":\"step\",\"epoch\":1}",
        ] {
            assert!(
                matches!(parse_line(line), TrainerEvent::Malformed { .. }),
                "{line}"
            );
        }
        let TrainerEvent::Error { code, message } = parse_line(
            r#"{"event":"error","code":"runtime.ok; rm -rf /","message":"a\u001b[2Jb"}"#,
        ) else {
            panic!()
        };
        assert_eq!(code, "trainer.unknown");
        assert_eq!(message, "a [2Jb");
        let long = format!(
            r#"{{"event":"error","code":"trainer.x","message":"{}"}}"#,
            "m".repeat(10_000)
        );
        let TrainerEvent::Error { message, .. } = parse_line(&long) else {
            panic!()
        };
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS);
    }

    #[test]
    fn reader_caps_line_length_and_keeps_going() {
        let mut input = Vec::new();
        input.extend_from_slice(br#"{"event":"epoch_begin","epoch":1}"#);
        input.push(b'\n');
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES * 3));
        input.push(b'\n');
        input.extend_from_slice(b"\n");
        input.extend_from_slice(br#"{"event":"done","epochs":1}"#);
        let mut got = Vec::new();
        read_events(&input[..], |e| got.push(e)).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], TrainerEvent::EpochBegin { epoch: 1 });
        assert!(matches!(got[1], TrainerEvent::Malformed { .. }));
        assert_eq!(got[2], TrainerEvent::Done { epochs: 1 });
    }

    fn outputs(dir: &Path) {
        for f in ["model.keras", "metrics.json", "split.json", "training.log"] {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
    }

    const OK: ExitInfo = ExitInfo {
        code: Some(0),
        signal: None,
    };

    #[test]
    fn success_needs_exit_zero_done_and_every_output() {
        let d = tempfile::tempdir().unwrap();
        let done = [TrainerEvent::Done { epochs: 1 }];
        // Nothing written yet: not a success.
        assert_eq!(
            judge(OK, &done, d.path(), "").unwrap_err().code(),
            "runtime.trainer_protocol"
        );
        outputs(d.path());
        let out = judge(OK, &done, d.path(), "").unwrap();
        assert!(out.model.ends_with("model.keras"));
        assert_eq!(
            judge(OK, &[], d.path(), "").unwrap_err().code(),
            "runtime.trainer_protocol"
        );
        std::fs::write(d.path().join("metrics.json"), b"").unwrap();
        assert_eq!(
            judge(OK, &done, d.path(), "").unwrap_err().code(),
            "runtime.trainer_protocol"
        );
    }

    #[test]
    fn failures_map_to_typed_errors() {
        let d = tempfile::tempdir().unwrap();
        outputs(d.path());
        let err_event = TrainerEvent::Error {
            code: "trainer.nan_loss".into(),
            message: "loss became nan at epoch 1".into(),
        };
        let failed = ExitInfo {
            code: Some(1),
            signal: None,
        };
        let e = judge(failed, std::slice::from_ref(&err_event), d.path(), "").unwrap_err();
        assert_eq!(
            (e.code(), e.trainer_code()),
            ("runtime.trainer_failed", Some("trainer.nan_loss"))
        );
        // An error event wins even over exit 0 and a done event.
        let e = judge(
            OK,
            &[TrainerEvent::Done { epochs: 1 }, err_event],
            d.path(),
            "",
        )
        .unwrap_err();
        assert_eq!(e.trainer_code(), Some("trainer.nan_loss"));
        // Non-zero exit, no event.
        let e = judge(failed, &[], d.path(), "Traceback").unwrap_err();
        assert_eq!(e.trainer_code(), Some("trainer.unknown"));
        // Killed (OOM killer) without a word.
        let killed = ExitInfo {
            code: None,
            signal: Some(9),
        };
        let e = judge(killed, &[TrainerEvent::Done { epochs: 1 }], d.path(), "").unwrap_err();
        assert_eq!(e.code(), "runtime.trainer_killed");
        assert!(e.to_string().contains("out of memory"), "{e}");
    }
}
