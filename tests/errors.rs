//! Bad pipeline files: every error names the file, line, column and stage, with a
//! suggestion where one helps. Whole messages are compared, paths made relative.

mod common;

use common::*;

/// `pipe run p.ron` on this text: exit code 1 and stderr.
fn error_for(text: &str) -> String {
    let p = Project::new();
    p.write("p.ron", text);
    let out = p.pipe(&["run", "p.ron"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}",
        common::text(&out.stdout)
    );
    assert!(
        out.stdout.is_empty(),
        "nothing runs: {}",
        common::text(&out.stdout)
    );
    assert!(
        !p.path("cache/records").exists()
            || p.path("cache/records").read_dir().unwrap().next().is_none()
    );
    common::text(&out.stderr)
}

#[test]
fn malformed_ron() {
    let err = error_for("Pipeline(\n    name: \"x\"\n    stages: {},\n)\n");
    assert_eq!(
        err,
        "error: expected `,` or `)`, found `s`\n \
         --> p.ron:3:5\n  \
         |\n\
         3 |     stages: {},\n  \
         |     ^\n"
    );
}

#[test]
fn unknown_field_with_suggestion() {
    let err = error_for(
        "Pipeline(name: \"x\", stages: {\n    \"hello\": Command(argvv: [\"true\"]),\n})\n",
    );
    assert_eq!(
        err,
        "error: unknown field `argvv`, expected one of `argv`, `deps`, `files`, `env`, `gpus`\n \
         --> p.ron:2:22\n  \
         |\n\
         2 |     \"hello\": Command(argvv: [\"true\"]),\n  \
         |                      ^^^^^\n  \
         = in stage `hello`\n  \
         = help: did you mean `argv`?\n"
    );
}

#[test]
fn unknown_kind_with_suggestion() {
    let err =
        error_for("Pipeline(name: \"x\", stages: {\n    \"s\": Comand(argv: [\"true\"]),\n})\n");
    assert!(
        err.starts_with("error: unknown stage kind `Comand`\n --> p.ron:2:10\n"),
        "{err}"
    );
    assert!(err.contains("= in stage `s`"), "{err}");
    assert!(err.contains("= help: did you mean `Command`?"), "{err}");
    assert!(
        err.contains("= note: known kinds: ForEach, Command"),
        "{err}"
    );
}

#[test]
fn wrong_type_points_at_the_value() {
    let err = error_for(
        "Pipeline(name: \"x\", stages: {\n    \"s\": Command(argv: [\"true\"], gpus: \"two\"),\n})\n",
    );
    assert!(
        err.starts_with("error: invalid type: string \"two\", expected u32\n --> p.ron:2:40\n"),
        "{err}"
    );
}

#[test]
fn missing_upstream_suggests_the_closest_stage() {
    let err = error_for(
        "Pipeline(name: \"x\", stages: {\n    \"prepare\": Command(argv: [\"true\"]),\n    \"train\": Command(argv: [\"true\"], deps: {\"d\": \"prepar\"}),\n})\n",
    );
    assert_eq!(
        err,
        "error: no stage named `prepar`\n \
         --> p.ron:3:50\n  \
         |\n\
         3 |     \"train\": Command(argv: [\"true\"], deps: {\"d\": \"prepar\"}),\n  \
         |                                                  ^^^^^^^^\n  \
         = in stage `train`\n  \
         = help: did you mean `prepare`?\n"
    );
}

#[test]
fn cycle_is_reported_as_the_path_that_closes_it() {
    let err = error_for(
        r#"Pipeline(name: "x", stages: {
    "a": Command(argv: ["true"], deps: {"up": "c"}),
    "b": Command(argv: ["true"], deps: {"up": "a"}),
    "c": Command(argv: ["true"], deps: {"up": "b"}),
    "free": Command(argv: ["true"]),
})
"#,
    );
    assert!(
        err.starts_with("error: dependency cycle: a -> c -> b -> a\n --> p.ron:2:47\n"),
        "{err}"
    );
    assert!(err.contains("= in stage `a`"), "{err}");
}

#[test]
fn self_reference_is_a_cycle() {
    let err = error_for(
        "Pipeline(name: \"x\", stages: {\"a\": Command(argv: [\"true\"], deps: {\"me\": \"a\"})})",
    );
    assert!(
        err.starts_with("error: dependency cycle: a -> a\n"),
        "{err}"
    );
}

#[test]
fn duplicate_stage_name() {
    let err = error_for(
        "Pipeline(name: \"x\", stages: {\n  \"a\": Command(argv: [\"true\"]),\n  \"a\": Command(argv: [\"false\"]),\n})",
    );
    assert!(
        err.starts_with("error: duplicate key `a`\n --> p.ron:3:3\n"),
        "{err}"
    );
}

#[test]
fn stage_names_cannot_look_like_expanded_names() {
    let err = error_for(
        "Pipeline(name: \"x\", stages: {\n  \"t\": ForEach(seed: [1], stage: Command(argv: [\"echo\", \"{seed}\"])),\n  \"t[seed=1]\": Command(argv: [\"true\"]),\n})",
    );
    assert!(err.contains("invalid stage name `t[seed=1]`"), "{err}");
}

#[test]
fn unknown_placeholder_names_the_argument() {
    let err =
        error_for("Pipeline(name: \"x\", stages: {\"a\": Command(argv: [\"cp\", \"{outt}/x\"])})");
    assert!(
        err.starts_with("error: unknown placeholder `{outt}`\n --> p.ron:1:56\n"),
        "{err}"
    );
    assert!(err.contains("= help: did you mean `{out}`?"), "{err}");
}

#[test]
fn error_inside_an_included_file_points_into_that_file() {
    let p = Project::new();
    p.write("conf/params.ron", "(\n  argv: [\"true\"],\n  gpu: 1,\n)\n");
    p.write(
        "p.ron",
        "Pipeline(name: \"x\", stages: {\"a\": Command(Include(\"conf/params.ron\"))})",
    );
    let out = p.pipe(&["run", "p.ron"]);
    let err = text(&out.stderr);
    assert!(err.starts_with("error: unknown field `gpu`"), "{err}");
    assert!(err.contains("--> conf/params.ron:3:3"), "{err}");
    assert!(err.contains("= help: did you mean `gpus`?"), "{err}");
}

#[test]
fn missing_include_and_missing_pipeline() {
    let err = error_for("Pipeline(name: \"x\", stages: {\"a\": Command(Include(\"nope.ron\"))})");
    assert!(
        err.starts_with("error: cannot read included file `"),
        "{err}"
    );
    assert!(
        err.contains("nope.ron`: No such file or directory"),
        "{err}"
    );
    assert!(err.contains("p.ron:1:43"), "{err}");
    let p = Project::new();
    let out = p.pipe(&["run", "missing.ron"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: cannot read pipeline `missing.ron`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unknown_stage_on_the_command_line() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    let out = p.pipe(&["why", "p.ron", "bb"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with("error: no stage `bb` in `p.ron`"), "{err}");
    assert!(err.contains("did you mean `b`?"), "{err}");
}
