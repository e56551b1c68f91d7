//! `Command`: runs a program, so that any tool can be a stage.
//!
//! ```ron
//! "count": Command(
//!     argv: ["sh", "-c", "wc -l < {in.text} > {out}/lines.txt"],
//!     files: {"text": "data/corpus.txt"},
//!     deps: {"prev": "prepare"},
//! ),
//! ```
//!
//! Placeholders in `argv` and `env` values: `{out}` (the output folder), `{work}` (the
//! resumable work folder), `{in.NAME}` (an input's path: an upstream stage's output
//! folder or an external file), `{gpus}` (the given GPU ids, comma-separated); `{{` and
//! `}}` stand for braces. A role that resolves to several stages (a `ForEach` group)
//! gives one argument per stage where `{in.NAME}` is a whole argument, and the paths
//! separated by spaces inside a longer one; `{in.NAME.list}` is a file listing them, one
//! per line, for a group too large for a command line (the system limits its arguments
//! to a few MiB, and each to 128 KiB). The program runs in the pipeline file's folder, with
//! `CUDA_VISIBLE_DEVICES` set to its GPU ids when it asks for GPUs; only declared files
//! are hashed. If it writes `metrics.json` (an object of numbers) at the top of `{out}`,
//! those numbers become the stage's metrics; `protocol.json` (an object of strings),
//! how they were measured (reports compare it between the cells of a table).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use explain::Explain;
use serde::{Deserialize, Serialize};

use contract::{
    Context, FileInput, GpuNeed, Invalid, Needs, Outcome, Reference, StageError, TypedKind,
};

pub struct Command;

/// Runs a program: the engine's own kind, for any step a program does.
///
/// Its arguments may hold placeholders: `{out}` (the output folder),
/// `{work}` (a work folder kept across interruptions), `{in.ROLE}` (an upstream's output
/// folder or an external file; a group's, one argument each), `{in.ROLE.list}` (a file
/// of those paths, one per line: for groups too large for a command line), `{gpus}`
/// (the GPU ids it got); `{{` and `}}` for braces.
/// A `metrics.json` object of numbers written at the top of `{out}` becomes the stage's
/// metrics, a `protocol.json` object of strings the conditions they were measured under.
/// It runs in the pipeline file's folder.
#[derive(Debug, Clone, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Program and arguments; no shell unless the program is one.
    pub argv: Vec<String>,
    /// Upstream stages by role name.
    #[serde(default)]
    pub deps: BTreeMap<String, String>,
    /// External files or folders by role name, hashed into the key.
    #[serde(default)]
    pub files: BTreeMap<String, PathBuf>,
    /// Environment variables set for the program, beside the inherited ones.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// GPUs the program needs: it waits for that many free GPUs of the run and finds
    /// their ids in `{gpus}` and `CUDA_VISIBLE_DEVICES`.
    #[serde(default)]
    pub gpus: u32,
}

impl TypedKind for Command {
    const NAME: &'static str = "Command";
    const VERSION: u32 = 1;
    type Params = Params;
    type Error = StageError;

    fn declare(params: &Params) -> Result<Needs, Invalid> {
        if params.argv.is_empty() {
            return Err(Invalid::new("`argv` is empty", &["argv"])
                .with_help("give the program and its arguments, e.g. [\"sh\", \"-c\", \"...\"]"));
        }
        if let Some(role) = params.deps.keys().find(|r| params.files.contains_key(*r)) {
            return Err(Invalid::new(
                format!("`{role}` is both a dep and a file"),
                &["files", role],
            ));
        }
        let roles: Vec<&str> = params
            .deps
            .keys()
            .chain(params.files.keys())
            .map(String::as_str)
            .collect();
        // Where a template is written is spelled out only for an error: a sweep declares
        // its argv 100,000 times.
        for (i, template) in params.argv.iter().enumerate() {
            check_template(template, &roles, || ["argv".to_string(), i.to_string()])?;
        }
        for (name, template) in &params.env {
            check_template(template, &roles, || ["env".to_string(), name.clone()])?;
        }
        Ok(Needs {
            stages: params
                .deps
                .iter()
                .map(|(role, target)| Reference {
                    role: role.clone(),
                    target: target.clone(),
                    at: vec!["deps".into(), role.clone()],
                })
                .collect(),
            files: params
                .files
                .iter()
                .map(|(role, path)| FileInput {
                    role: role.clone(),
                    path: path.clone(),
                    at: vec!["files".into(), role.clone()],
                })
                .collect(),
            gpus: match params.gpus {
                0 => GpuNeed::None,
                n => GpuNeed::Exactly(n),
            },
        })
    }

    fn run(params: Params, ctx: &Context) -> Result<Outcome, StageError> {
        let fill = |template: &str| expand(template, ctx);
        let mut argv = Vec::new();
        for arg in &params.argv {
            match whole_input(arg) {
                // `"{in.models}"` alone: one argument per input of the role.
                Some(role) => {
                    argv.extend(inputs(ctx, role)?.iter().map(|p| p.display().to_string()))
                }
                None => argv.push(fill(arg)?),
            }
        }
        let mut process = crate::launch::isolated(&argv);
        process
            .current_dir(ctx.base_dir)
            .stdin(Stdio::null())
            .stdout(
                ctx.log
                    .try_clone()
                    .map_err(StageError::io("cannot share the log"))?,
            )
            .stderr(
                ctx.log
                    .try_clone()
                    .map_err(StageError::io("cannot share the log"))?,
            )
            .env("PIPE_STAGE", ctx.stage)
            .env("PIPE_OUT", ctx.out)
            .env("PIPE_WORK", ctx.work);
        if params.gpus > 0 {
            let inherited = std::env::var("CUDA_VISIBLE_DEVICES").ok();
            process.env(
                "CUDA_VISIBLE_DEVICES",
                visible_devices(ctx.gpus, inherited.as_deref()),
            );
        }
        for (key, value) in &params.env {
            process.env(key, fill(value)?);
        }
        let child = process.spawn().map_err(|e| {
            let mut message = format!("cannot run `{}`: {e}", argv[0]);
            if e.raw_os_error() == Some(libc::E2BIG) {
                let bytes: usize = argv.iter().map(|a| a.len() + 1).sum();
                message.push_str(&format!(
                    " ({} arguments, {bytes} bytes)\n  = help: pass a large group as a file of \
                     its paths, one per line: `{{in.ROLE.list}}` in place of `{{in.ROLE}}`",
                    argv.len()
                ));
            }
            StageError::failed(message)
        })?;
        let status = wait(child, ctx)?;
        if !status.success() {
            let mut message = format!("`{}` exited with {status}", argv[0]);
            if status.code() == Some(crate::launch::CANNOT_EXEC) {
                message.push_str(" (the program was not found or could not be started)");
            }
            return Err(StageError::failed(message));
        }
        Ok(Outcome {
            metrics: read_object(ctx, "metrics.json", "numbers")?,
            summary: None,
            protocol: read_object(ctx, "protocol.json", "strings")?,
        })
    }
}

/// A brace of a template that opens or closes nothing.
#[derive(Debug, PartialEq, thiserror::Error)]
enum Unbalanced {
    #[error("unmatched `}}` in `{0}`; write `}}}}` for a brace")]
    Close(String),
    #[error("unclosed `{{` in `{0}`; write `{{{{` for a brace")]
    Open(String),
}

/// Checks that every placeholder of `template` names something the stage has; `at`
/// says where the template is written.
fn check_template(
    template: &str,
    roles: &[&str],
    at: impl Fn() -> [String; 2],
) -> Result<(), Invalid> {
    let invalid = |message: String| {
        let at = at();
        Invalid::new(message, &[at[0].as_str(), at[1].as_str()])
    };
    for name in placeholders(template).map_err(|e| invalid(e.to_string()))? {
        let known = match name.strip_prefix("in.") {
            Some(role) => {
                roles.contains(&role)
                    || role
                        .strip_suffix(".list")
                        .is_some_and(|r| roles.contains(&r))
            }
            None => matches!(name, "out" | "work" | "gpus"),
        };
        if !known {
            let mut valid: Vec<String> = ["out", "work", "gpus"].map(String::from).to_vec();
            valid.extend(roles.iter().map(|r| format!("in.{r}")));
            let invalid = invalid(format!("unknown placeholder `{{{name}}}`"));
            return Err(
                match ronspan::closest(name, valid.iter().map(String::as_str)) {
                    Some(close) => invalid.with_help(format!("did you mean `{{{close}}}`?")),
                    None => invalid.with_help(format!(
                        "known placeholders: {}",
                        valid
                            .iter()
                            .map(|v| format!("{{{v}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                },
            );
        }
    }
    Ok(())
}

/// The names inside `{...}` of a template, or the brace that does not balance.
fn placeholders(template: &str) -> Result<Vec<&str>, Unbalanced> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        let (brace, after) = (rest.as_bytes()[i], &rest[i + 1..]);
        if after.as_bytes().first() == Some(&brace) {
            rest = &after[1..];
            continue;
        }
        if brace == b'}' {
            return Err(Unbalanced::Close(template.to_string()));
        }
        let end = after
            .find('}')
            .ok_or_else(|| Unbalanced::Open(template.to_string()))?;
        names.push(&after[..end]);
        rest = &after[end + 1..];
    }
    Ok(names)
}

fn expand(template: &str, ctx: &Context) -> Result<String, StageError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if after.as_bytes().first() == Some(&rest.as_bytes()[i]) {
            out.push(rest.as_bytes()[i] as char);
            rest = &after[1..];
            continue;
        }
        let end = after.find('}').unwrap_or(after.len());
        let name = &after[..end];
        let value = match name {
            "out" => ctx.out.display().to_string(),
            "work" => ctx.work.display().to_string(),
            "gpus" => join_gpus(ctx.gpus),
            _ => match list_role(ctx, name) {
                Some(role) => input_list(ctx, role)?,
                None => {
                    let role = name.strip_prefix("in.").unwrap_or(name);
                    let paths: Vec<String> = inputs(ctx, role)?
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect();
                    paths.join(" ")
                }
            },
        };
        out.push_str(&value);
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    Ok(out)
}

/// The role of an argument that is exactly `{in.NAME}`.
fn whole_input(arg: &str) -> Option<&str> {
    arg.strip_prefix("{in.")?
        .strip_suffix('}')
        .filter(|role| !role.ends_with(".list"))
}

/// The role of `in.ROLE.list` (unless `ROLE.list` is itself a role).
fn list_role<'a>(ctx: &Context, name: &'a str) -> Option<&'a str> {
    let role = name.strip_prefix("in.")?;
    if ctx.inputs.contains_key(role) {
        return None;
    }
    role.strip_suffix(".list")
}

/// Writes the paths of a role's inputs, one per line, to a file of the work folder's,
/// and gives its path.
fn input_list(ctx: &Context, role: &str) -> Result<String, StageError> {
    let dir = ctx.work.join(".pipe-inputs");
    std::fs::create_dir_all(&dir).map_err(StageError::io("cannot make the input lists' folder"))?;
    let path = dir.join(format!("{role}.list"));
    let mut text = String::new();
    for input in inputs(ctx, role)? {
        text.push_str(&input.display().to_string());
        text.push('\n');
    }
    std::fs::write(&path, text).map_err(StageError::io("cannot write an input list"))?;
    Ok(path.display().to_string())
}

fn inputs<'a>(ctx: &'a Context, role: &str) -> Result<Vec<&'a std::path::Path>, StageError> {
    let list = ctx
        .inputs
        .get(role)
        .ok_or_else(|| StageError::failed(format!("no input named `{role}`")))?;
    Ok(list.iter().map(|i| i.path.as_path()).collect())
}

/// The program's `CUDA_VISIBLE_DEVICES`: its GPU ids, which number the devices this
/// process sees. Where a list is inherited (a Slurm job's, `2,3`), id 0 is its first
/// entry, so a job's program keeps to the GPUs the cluster gave it.
fn visible_devices(gpus: &[u32], inherited: Option<&str>) -> String {
    let Some(list) = inherited.filter(|l| !l.trim().is_empty()) else {
        return join_gpus(gpus);
    };
    let entries: Vec<&str> = list.split(',').map(str::trim).collect();
    gpus.iter()
        .map(|&g| {
            entries
                .get(g as usize)
                .map_or_else(|| g.to_string(), |e| e.to_string())
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn join_gpus(gpus: &[u32]) -> String {
    gpus.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Waits for the child, stopping its whole process group (TERM, then KILL after a grace
/// period) on cancel, so that what a shell started stops too.
fn wait(mut child: Child, ctx: &Context) -> Result<ExitStatus, StageError> {
    let mut asked_to_stop: Option<Instant> = None;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(StageError::io("cannot wait for the command"))?
        {
            if asked_to_stop.is_some() || stopped_with_us(&status, ctx) {
                signal_group(&child, libc::SIGKILL);
                return Err(StageError::Cancelled);
            }
            return Ok(status);
        }
        if ctx.cancelled() {
            match asked_to_stop {
                None => {
                    signal_group(&child, libc::SIGTERM);
                    asked_to_stop = Some(Instant::now());
                }
                Some(at) if at.elapsed() > Duration::from_secs(5) => {
                    signal_group(&child, libc::SIGKILL)
                }
                Some(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the child died of the signal that is stopping this process too: a cluster
/// stopping a job (scancel, a time limit) signals every process of it at once, and the
/// child may die before this process has seen its own signal. That is an interruption,
/// not a failure of the command.
fn stopped_with_us(status: &ExitStatus, ctx: &Context) -> bool {
    use std::os::unix::process::ExitStatusExt;
    if !matches!(
        status.signal(),
        Some(libc::SIGTERM | libc::SIGINT | libc::SIGHUP)
    ) {
        return false;
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        if ctx.cancelled() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn signal_group(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) on the process group our child leads (see `launch`).
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), signal);
    }
}

/// A JSON object of `what` the program wrote as `name` at the top of `{out}`; empty if
/// it wrote none.
fn read_object<T: serde::de::DeserializeOwned>(
    ctx: &Context,
    name: &str,
    what: &str,
) -> Result<BTreeMap<String, T>, StageError> {
    let path = ctx.out.join(name);
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let text =
        std::fs::read_to_string(&path).map_err(StageError::io(format!("cannot read {name}")))?;
    serde_json::from_str(&text)
        .map_err(|e| StageError::failed(format!("{name} is not an object of {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::visible_devices;

    #[test]
    fn gpu_ids_number_the_devices_this_process_sees() {
        assert_eq!(visible_devices(&[0, 2], None), "0,2");
        assert_eq!(visible_devices(&[0, 1], Some("2,3")), "2,3");
        assert_eq!(visible_devices(&[1], Some("GPU-aa, GPU-bb")), "GPU-bb");
        assert_eq!(visible_devices(&[0], Some("")), "0");
    }

    use super::*;

    #[test]
    fn placeholders_are_found_and_escaped() {
        assert_eq!(
            placeholders("a {out}/x {in.data} {{literal}}").unwrap(),
            ["out", "in.data"]
        );
        let error = |t: &str| placeholders(t).unwrap_err().to_string();
        assert!(error("a {out").contains("unclosed"));
        assert!(error("a }").contains("unmatched"));
    }

    fn declare(text: &str) -> Result<contract::Declaration, (String, Option<String>)> {
        let value = ronspan::parse(ronspan::FileId(0), text).unwrap();
        contract::Kind::declare(&contract::Typed::<Command>::default(), &value)
            .map_err(|e| (e.message().to_string(), e.help().map(String::from)))
    }

    #[test]
    fn declare_checks_placeholders_and_lists_inputs() {
        let d = declare(
            r#"Command(argv: ["cp", "{in.a}", "{out}"], deps: {"a": "up"}, files: {"f": "x.txt"})"#,
        )
        .unwrap();
        assert_eq!(d.stages[0].target, "up");
        assert_eq!(d.files[0].path, PathBuf::from("x.txt"));
        let (msg, help) =
            declare(r#"Command(argv: ["cp", "{in.b}"], deps: {"a": "up"})"#).unwrap_err();
        assert_eq!(msg, "unknown placeholder `{in.b}`");
        assert_eq!(help.as_deref(), Some("did you mean `{in.a}`?"));
        assert_eq!(
            declare("Command(argv: [])").unwrap_err().0,
            "`argv` is empty"
        );
    }
}
