//! The batch script of a stage's job: `pipe exec KEY` on the shared store, its exit
//! code left in the store for the run that waits for it.

use std::path::Path;

use crate::schedule::{Job, exec_args};

/// Seconds between two progress lines in a job's log: often enough for a display,
/// rare enough that a two-day training writes a few MB.
const PROGRESS_EVERY: f64 = 5.0;

/// The script for `job` with `gpus` GPUs, run by `exe`; `exit` is where it writes
/// `pipe exec`'s exit code, with `%j` standing for the job id.
pub fn script(exe: &Path, root: &Path, job: &Job, gpus: usize, exit_dir: &Path) -> String {
    let ids: Vec<u32> = (0..gpus as u32).collect();
    let mut command: Vec<String> = vec![quote(&exe.display().to_string())];
    command.extend(
        exec_args(root, &job.key, &ids, PROGRESS_EVERY)
            .iter()
            .map(|a| quote(a)),
    );
    let exit = format!(
        "{}/\"$SLURM_JOB_ID\"",
        quote(&exit_dir.display().to_string())
    );
    format!(
        "#!/bin/sh\n\
         # Stage `{stage}` of pipeline `{pipeline}` (key {key}), submitted by\n\
         # `pipe run --executor slurm`. It runs the stage from the shared store and leaves\n\
         # pipe exec's exit code in {exit_dir}/<job id>. A TERM (scancel, the time limit,\n\
         # preemption) stops the stage: it records nothing and keeps its work folder, so\n\
         # the next attempt resumes.\n\
         trap 'true' TERM\n\
         rm -f {exit}\n\
         {command} --threads \"${{SLURM_CPUS_PER_TASK:-1}}\"\n\
         code=$?\n\
         printf '%s\\n' \"$code\" > {exit}.tmp && mv -f {exit}.tmp {exit}\n\
         exit \"$code\"\n",
        stage = job.stage.replace('\n', " "),
        pipeline = job.pipeline.replace('\n', " "),
        key = job.key,
        exit_dir = exit_dir.display(),
        command = command.join(" "),
    )
}

/// A word for `sh`: as it is when it is plainly safe, else in single quotes.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=,:@%+".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_with_spaces_and_quotes_stay_one_word() {
        assert_eq!(quote("/opt/pipe"), "/opt/pipe");
        assert_eq!(quote("/my cache/it's"), r"'/my cache/it'\''s'");
        assert_eq!(quote(""), "''");
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf '%s|' {}", quote("a b'c$d"))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b'c$d|");
    }
}
