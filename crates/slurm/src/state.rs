//! Slurm's job states, as `squeue -o %T` and `scontrol show job` name them.

use std::fmt;

/// A job's state. States that end a job ([`JobState::is_final`]) say how it ended;
/// the others are stages of a job that is still alive, requeued ones included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Configuring,
    Running,
    Completing,
    Suspended,
    /// Being put back in the queue (preempted or `scontrol requeue`): it runs again.
    Requeued,
    /// Requeued and held until released (`scontrol release`).
    RequeueHold,
    Resizing,
    Signaling,
    StageOut,
    Stopped,
    Completed,
    Cancelled,
    Failed,
    Timeout,
    NodeFail,
    Preempted,
    BootFail,
    Deadline,
    OutOfMemory,
    /// Held after ending with the exit code the cluster marks for requeue.
    SpecialExit,
    /// A name this crate does not know; treated as alive.
    Other(String),
}

impl JobState {
    /// Parses a state name; `CANCELLED by 0` (scontrol) and `CANCELLED+` (sacct)
    /// read as `CANCELLED`.
    pub fn parse(text: &str) -> JobState {
        let name = text
            .split([' ', '+'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match name.as_str() {
            "PENDING" | "PD" => JobState::Pending,
            "CONFIGURING" | "CF" => JobState::Configuring,
            "RUNNING" | "R" => JobState::Running,
            "COMPLETING" | "CG" => JobState::Completing,
            "SUSPENDED" | "S" => JobState::Suspended,
            "REQUEUED" | "RQ" | "REQUEUE_FED" | "RF" => JobState::Requeued,
            "REQUEUE_HOLD" | "RH" => JobState::RequeueHold,
            "RESIZING" | "RS" => JobState::Resizing,
            "SIGNALING" | "SI" => JobState::Signaling,
            "STAGE_OUT" | "SO" => JobState::StageOut,
            "STOPPED" | "ST" => JobState::Stopped,
            "COMPLETED" | "CD" => JobState::Completed,
            "CANCELLED" | "CA" => JobState::Cancelled,
            "FAILED" | "F" => JobState::Failed,
            "TIMEOUT" | "TO" => JobState::Timeout,
            "NODE_FAIL" | "NF" => JobState::NodeFail,
            "PREEMPTED" | "PR" => JobState::Preempted,
            "BOOT_FAIL" | "BF" => JobState::BootFail,
            "DEADLINE" | "DL" => JobState::Deadline,
            "OUT_OF_MEMORY" | "OOM" => JobState::OutOfMemory,
            "SPECIAL_EXIT" | "SE" => JobState::SpecialExit,
            _ => JobState::Other(name),
        }
    }

    /// Whether the job has ended: it will not run again unless resubmitted.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            JobState::Completed
                | JobState::Cancelled
                | JobState::Failed
                | JobState::Timeout
                | JobState::NodeFail
                | JobState::Preempted
                | JobState::BootFail
                | JobState::Deadline
                | JobState::OutOfMemory
        )
    }

    /// Whether the job waits for something before it can run again.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            JobState::Pending
                | JobState::Configuring
                | JobState::Requeued
                | JobState::RequeueHold
                | JobState::SpecialExit
                | JobState::Suspended
                | JobState::Stopped
        )
    }

    /// A final state that the cluster may still turn into a requeue (a failed node, a
    /// preemption under `PreemptMode=REQUEUE`): believed once seen twice.
    pub fn may_requeue(&self) -> bool {
        matches!(self, JobState::NodeFail | JobState::Preempted)
    }

    /// The name Slurm prints.
    pub fn name(&self) -> &str {
        match self {
            JobState::Pending => "PENDING",
            JobState::Configuring => "CONFIGURING",
            JobState::Running => "RUNNING",
            JobState::Completing => "COMPLETING",
            JobState::Suspended => "SUSPENDED",
            JobState::Requeued => "REQUEUED",
            JobState::RequeueHold => "REQUEUE_HOLD",
            JobState::Resizing => "RESIZING",
            JobState::Signaling => "SIGNALING",
            JobState::StageOut => "STAGE_OUT",
            JobState::Stopped => "STOPPED",
            JobState::Completed => "COMPLETED",
            JobState::Cancelled => "CANCELLED",
            JobState::Failed => "FAILED",
            JobState::Timeout => "TIMEOUT",
            JobState::NodeFail => "NODE_FAIL",
            JobState::Preempted => "PREEMPTED",
            JobState::BootFail => "BOOT_FAIL",
            JobState::Deadline => "DEADLINE",
            JobState::OutOfMemory => "OUT_OF_MEMORY",
            JobState::SpecialExit => "SPECIAL_EXIT",
            JobState::Other(name) => name,
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_decorations_are_dropped() {
        for name in [
            "PENDING",
            "RUNNING",
            "COMPLETED",
            "CANCELLED",
            "FAILED",
            "TIMEOUT",
            "NODE_FAIL",
            "PREEMPTED",
            "OUT_OF_MEMORY",
            "REQUEUE_HOLD",
            "BOOT_FAIL",
            "DEADLINE",
        ] {
            assert_eq!(JobState::parse(name).name(), name);
        }
        assert_eq!(JobState::parse("CANCELLED by 0"), JobState::Cancelled);
        assert_eq!(JobState::parse("CANCELLED+"), JobState::Cancelled);
        assert_eq!(JobState::parse("OOM"), JobState::OutOfMemory);
        assert_eq!(
            JobState::parse("LAUNCH_FAILED"),
            JobState::Other("LAUNCH_FAILED".into())
        );
    }

    #[test]
    fn only_ends_are_final() {
        assert!(JobState::Timeout.is_final());
        assert!(JobState::OutOfMemory.is_final());
        assert!(!JobState::Requeued.is_final());
        assert!(!JobState::Completing.is_final());
        assert!(!JobState::Other("NEW_STATE".into()).is_final());
        assert!(JobState::Preempted.may_requeue() && !JobState::Failed.may_requeue());
        assert!(JobState::Pending.is_waiting() && !JobState::Running.is_waiting());
    }
}
