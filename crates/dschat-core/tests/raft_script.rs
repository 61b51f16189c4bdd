//! Script tests of the Raft core: every `tests/raft_scripts/*.txt` is run and its trace
//! compared with the `.out` file beside it. Regenerate with `UPDATE_EXPECT=1` and review the
//! diff. Run one script with `RAFT_SCRIPT=name`.

#[path = "raft_scripts/harness/cluster.rs"]
mod cluster;
#[path = "raft_scripts/harness/describe.rs"]
mod describe;
#[path = "raft_scripts/harness/script.rs"]
mod script;

use std::path::PathBuf;

fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/raft_scripts")
}

#[test]
fn scripts() {
    let update = std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1");
    let only = std::env::var("RAFT_SCRIPT").ok();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(scripts_dir())
        .expect("scripts directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert!(
        only.is_some() || paths.len() >= 40,
        "expected at least 40 scripts, found {}",
        paths.len()
    );
    let mut failures = Vec::new();
    for path in paths {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        if only.as_ref().is_some_and(|o| *o != stem) {
            continue;
        }
        let script = std::fs::read_to_string(&path).expect("readable script");
        let actual = script::Runner::new(Vec::new()).run(&script);
        if actual.contains("VIOLATION") {
            failures.push(format!("{stem}: a safety check failed:\n{actual}"));
        }
        let expected_path = path.with_extension("out");
        if update {
            std::fs::write(&expected_path, &actual).expect("writable");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{stem}: trace differs from {}\n{}",
                expected_path.display(),
                diff(&expected, &actual)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} script(s) failed (UPDATE_EXPECT=1 regenerates):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn diff(expected: &str, actual: &str) -> String {
    let expected: Vec<&str> = expected.lines().collect();
    let actual: Vec<&str> = actual.lines().collect();
    let first = expected
        .iter()
        .zip(&actual)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(actual.len()));
    let show = |lines: &[&str]| {
        lines
            .iter()
            .skip(first)
            .take(8)
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "  first difference at line {}\n  expected:\n{}\n  actual:\n{}",
        first + 1,
        show(&expected),
        show(&actual)
    )
}
