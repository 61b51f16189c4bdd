//! The `dschat` command line as a user runs it: help texts, the chat client against a real
//! server process, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn dschat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dschat"))
}

fn run_ok(command: &mut Command) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8(stdout).unwrap(),
        String::from_utf8_lossy(&stderr).to_string(),
    );
    assert!(status.success(), "{command:?} failed: {stdout}\n{stderr}");
    stdout
}

/// A child process that is killed when the test ends, even by a panic.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(data_dir: &std::path::Path) -> (Killed, String) {
    let mut child = dschat()
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--irc",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("server printed its address").unwrap();
        if let Some(rest) = line.trim().strip_prefix("HTTP API:") {
            break rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches("/api/v1")
                .to_string();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (Killed(child), url)
}

#[test]
fn every_command_explains_itself() {
    let top = run_ok(dschat().arg("--help"));
    let commands = [
        "serve",
        "register",
        "login",
        "logout",
        "rooms",
        "create-room",
        "join",
        "send",
        "history",
        "search",
        "tail",
        "sim",
        "bench",
    ];
    for command in commands {
        assert!(top.contains(command), "--help lists {command}");
        let help = run_ok(dschat().args([command, "--help"]));
        assert!(
            help.lines().count() >= 3,
            "{command} --help explains: {help}"
        );
    }
    let serve = run_ok(dschat().args(["serve", "--help"]));
    assert!(
        serve.contains("./dschat-data") && serve.contains("127.0.0.1:7070"),
        "defaults are shown: {serve}"
    );
    let sim = run_ok(dschat().args(["sim", "--help"]));
    assert!(
        sim.contains("--seeds") && sim.contains("replays it"),
        "sim --help explains seeds and replay: {sim}"
    );
    for mutant in dschat_sim::sim::Mutant::ALL {
        assert!(
            sim.contains(&format!("{} (", mutant.name())),
            "sim --help lists mutant {} with its TESTING.md row: {sim}",
            mutant.name()
        );
    }
    let bench = run_ok(dschat().args(["bench", "posts", "--help"]));
    assert!(bench.contains("--clients"));
}

#[test]
fn the_command_line_client_registers_posts_and_reads() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (_server, url) = start_server(data.path());
    let client = |args: &[&str]| {
        let mut command = dschat();
        command
            .args(args)
            .env("XDG_CONFIG_HOME", home.path())
            .env("DSCHAT_SERVER", &url)
            .env("DSCHAT_PASSWORD", "correct horse battery")
            .env("RUST_LOG", "warn");
        command
    };
    assert!(run_ok(&mut client(&["register", "alice"])).contains("alice"));
    let saved = std::fs::read_to_string(home.path().join("dschat/credentials.json")).unwrap();
    assert!(
        saved.contains("dst_"),
        "the token is kept in the config directory"
    );
    run_ok(&mut client(&[
        "create-room",
        "general",
        "--topic",
        "hello room",
    ]));
    let id = run_ok(&mut client(&[
        "send", "general", "hello", "from", "the", "shell",
    ]));
    assert!(
        id.trim().parse::<u64>().is_ok(),
        "send prints the message id: {id}"
    );
    let history = run_ok(&mut client(&["history", "general"]));
    assert!(
        history.contains("<alice> hello from the shell"),
        "{history}"
    );
    let rooms = run_ok(&mut client(&["rooms"]));
    assert!(
        rooms.contains("general") && rooms.contains("hello room"),
        "{rooms}"
    );
    let mut tail = Killed(
        client(&["tail", "general", "--after", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (lines, replayed) = std::sync::mpsc::channel();
    let output = tail.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        BufReader::new(output)
            .lines()
            .map_while(Result::ok)
            .try_for_each(|line| lines.send(line))
    });
    let next = || {
        replayed
            .recv_timeout(Duration::from_secs(10))
            .expect("tail printed a line within 10 s")
    };
    assert!(
        next().contains("joined alice"),
        "tail replays from the given id"
    );
    let posted = next();
    assert!(posted.contains("<alice> hello from the shell"), "{posted}");
    drop(tail);
    let wrong = client(&["login", "alice"])
        .env("DSCHAT_PASSWORD", "wrong password")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong nickname or password"));
    run_ok(&mut client(&["logout"]));
    let after_logout = client(&["rooms"]).output().unwrap();
    assert!(
        !after_logout.status.success(),
        "no credentials after logout"
    );
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Killed(
        dschat()
            .args([
                "serve",
                "--http",
                "127.0.0.1:0",
                "--irc",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    assert!(lines
        .by_ref()
        .map(Result::unwrap)
        .any(|line| line.contains("Stop with Ctrl-C")));
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = server.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    assert!(lines
        .map(Result::unwrap)
        .any(|line| line.contains("stopped cleanly")));
}
