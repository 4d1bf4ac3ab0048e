//! What happened to a job: how it ended, why it failed, what it used and
//! printed, what it left in `/out`, and the facts of the policy it ran
//! under.

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::cgroup::CgroupStats;
use crate::facts::PolicyFacts;
use crate::output::OutputReport;

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum JobStatus {
    /// Exit code 0, within every limit.
    Succeeded,
    /// Anything else.
    Failed {
        /// Why.
        failure: JobFailure,
    },
}

/// Why a job failed. The most specific reason wins: a job killed at the
/// timeout is `Timeout`, and one killed on request is `Cancelled`, not
/// `Signal(9)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
#[non_exhaustive]
pub enum JobFailure {
    /// Still running at the wall-clock limit; the whole tree was killed.
    Timeout {
        /// The limit, seconds.
        limit_secs: u64,
    },
    /// Its [`CancelToken`](crate::CancelToken) was cancelled while it ran;
    /// the whole tree was killed.
    Cancelled,
    /// The kernel's OOM killer killed a process of the job (memory cgroup).
    OutOfMemory {
        /// The memory limit, bytes.
        limit_bytes: Option<u64>,
    },
    /// Killed by SIGXCPU/SIGKILL at the CPU time limit (`RLIMIT_CPU`).
    CpuTime,
    /// Killed by SIGXFSZ writing past the file size limit.
    FileSize,
    /// Failed and the output directory was full.
    OutputFull {
        /// The output cap, bytes.
        limit_bytes: u64,
    },
    /// Failed after a fork was refused at the pids limit.
    PidsLimit {
        /// The limit.
        limit: Option<u64>,
    },
    /// Killed by a signal (reported by the backend as exit code 128+n).
    Signal {
        /// The signal number.
        signal: i32,
    },
    /// Exited with a non-zero code.
    ExitCode {
        /// The code.
        code: i32,
    },
    /// The backend itself was killed by a signal the supervisor did not send.
    BackendKilled {
        /// The signal number.
        signal: i32,
    },
}

impl JobFailure {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            JobFailure::Timeout { .. } => "job.timeout",
            JobFailure::Cancelled => "sandbox.cancelled",
            JobFailure::OutOfMemory { .. } => "job.out_of_memory",
            JobFailure::CpuTime => "job.cpu_time",
            JobFailure::FileSize => "job.file_size",
            JobFailure::OutputFull { .. } => "job.output_full",
            JobFailure::PidsLimit { .. } => "job.pids_limit",
            JobFailure::Signal { .. } => "job.signal",
            JobFailure::ExitCode { .. } => "job.exit_code",
            JobFailure::BackendKilled { .. } => "job.backend_killed",
        }
    }
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobFailure::Timeout { limit_secs } => {
                write!(
                    f,
                    "the job ran past its {limit_secs} s wall-clock limit and was killed"
                )
            }
            JobFailure::Cancelled => write!(f, "the job was cancelled on request and killed"),
            JobFailure::OutOfMemory { limit_bytes } => match limit_bytes {
                Some(b) => write!(f, "the job ran out of memory (limit {} MiB)", b >> 20),
                None => write!(f, "the job ran out of memory"),
            },
            JobFailure::CpuTime => write!(f, "the job used up its CPU time limit"),
            JobFailure::FileSize => {
                write!(f, "the job wrote a file larger than its file size limit")
            }
            JobFailure::OutputFull { limit_bytes } => write!(
                f,
                "the job failed with its output directory full (limit {} MiB)",
                limit_bytes >> 20
            ),
            JobFailure::PidsLimit { limit } => match limit {
                Some(l) => write!(
                    f,
                    "the job failed after reaching its limit of {l} processes"
                ),
                None => write!(f, "the job failed after reaching its process limit"),
            },
            JobFailure::Signal { signal } => write!(f, "the job was killed by signal {signal}"),
            JobFailure::ExitCode { code } => write!(f, "the job exited with code {code}"),
            JobFailure::BackendKilled { signal } => {
                write!(f, "the sandbox backend was killed by signal {signal}")
            }
        }
    }
}

/// A bounded capture of one output stream: the last bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Captured {
    /// The kept bytes (the tail of the stream).
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// Bytes the stream carried in total.
    pub total_bytes: u64,
    /// Earlier bytes were dropped.
    pub truncated: bool,
}

impl Captured {
    /// The kept bytes as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The result of a job that ran.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The job's id on the host: the name of its cgroups and of its output
    /// mount (for logs).
    pub job_id: String,
    /// Success or the failure reason.
    pub status: JobStatus,
    /// The job's exit code as the backend reported it (128+n for signal n);
    /// `None` if the backend itself was killed.
    pub exit_code: Option<i32>,
    /// The wall clock hit the limit.
    pub timed_out: bool,
    /// The OOM killer struck in the job's cgroup.
    pub oom_killed: bool,
    /// From start of the backend to its exit.
    #[serde(serialize_with = "secs", rename = "wall_time_secs")]
    pub wall_time: Duration,
    /// Resource use from the job's cgroups.
    pub usage: CgroupStats,
    /// Processes still in the job's cgroup after the backend exited (killed
    /// by the supervisor). 0 when the pid namespace took everything down.
    pub leftover_processes: usize,
    /// Standard output (tail).
    pub stdout: Captured,
    /// Standard error (tail).
    pub stderr: Captured,
    /// What was copied out of `/out`.
    pub output: Option<OutputReport>,
    /// The applied policy.
    pub facts: PolicyFacts,
}

impl Outcome {
    /// The job succeeded.
    pub fn success(&self) -> bool {
        self.status == JobStatus::Succeeded
    }

    /// The failure, if any.
    pub fn failure(&self) -> Option<&JobFailure> {
        match &self.status {
            JobStatus::Succeeded => None,
            JobStatus::Failed { failure } => Some(failure),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_codes_are_stable_and_messages_readable() {
        let f = JobFailure::Timeout { limit_secs: 5 };
        assert_eq!(f.code(), "job.timeout");
        assert!(f.to_string().contains("5 s"));
        let f = JobFailure::OutOfMemory {
            limit_bytes: Some(256 << 20),
        };
        assert_eq!(f.code(), "job.out_of_memory");
        assert!(f.to_string().contains("256 MiB"));
        let j = serde_json::to_value(JobStatus::Failed {
            failure: JobFailure::ExitCode { code: 3 },
        })
        .unwrap();
        assert_eq!(j["state"], "failed");
        assert_eq!(j["failure"]["reason"], "exit_code");
        assert_eq!(j["failure"]["code"], 3);
        let f = JobFailure::Cancelled;
        assert_eq!(f.code(), "sandbox.cancelled");
        assert!(f.to_string().contains("cancelled on request"));
        let j = serde_json::to_value(JobStatus::Failed { failure: f }).unwrap();
        assert_eq!(j["failure"]["reason"], "cancelled");
    }
}
