//! Membership of a real cluster, changed with the `dschat cluster` command: a fourth process
//! started with `--join` is added (as a learner that catches up on what was written before,
//! then a voter), leadership is handed to it, and the old leader is removed, while writes go
//! on. A node of another cluster is refused at the handshake.
//!
//! Why it matters: the operators grow and shrink clusters while the service stays up;
//! a node that joins must end with exactly the state the others hold, and a misconfigured node
//! must never mix into a cluster it does not belong to.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a process this test started.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGINT) };
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
    }
}

fn dschat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dschat"))
}

fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Starts a 3-node lab; returns it and its controls' base URL.
fn start_lab(data: &std::path::Path) -> (Process, String) {
    let mut child = dschat()
        .args(["lab", "--port", "0", "--fresh", "--nodes", "3"])
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut controls = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.trim_start().starts_with("controls:") {
            let url = line.split_whitespace().nth(1).unwrap();
            controls = Some(url.trim_end_matches("/lab/api/cluster").to_string());
        }
        if line.starts_with("Stop with") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (
        Process(child),
        controls.expect("the lab printed its controls"),
    )
}

mod blocking {
    //! A tiny blocking HTTP helper over the async client, so the test reads top to bottom.
    use reqwest::{RequestBuilder, StatusCode};

    /// GET `url` as JSON; `None` if it does not answer.
    pub fn get(url: &str) -> Option<serde_json::Value> {
        runtime().block_on(async {
            let response = reqwest::Client::new()
                .get(url)
                .timeout(std::time::Duration::from_secs(3))
                .send()
                .await
                .ok()?;
            response.json().await.ok()
        })
    }
    /// Sends a request; its status and JSON body.
    pub fn send(request: RequestBuilder) -> (StatusCode, serde_json::Value) {
        runtime().block_on(async {
            let response = request.send().await.expect("the node answers");
            let status = response.status();
            (
                status,
                response.json().await.unwrap_or(serde_json::Value::Null),
            )
        })
    }
    fn runtime() -> &'static tokio::runtime::Runtime {
        static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
        RUNTIME.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        })
    }
}

fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status(http: &str) -> Option<Value> {
    blocking::get(&format!("{http}/api/v1/cluster"))
}

fn run_cli(args: &[&str]) -> String {
    let output = dschat().arg("cluster").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "dschat cluster {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The voters `dschat cluster` printed ("voters [1, 2, 4], learners []").
fn voters(printed: &str) -> Vec<u64> {
    let line = printed
        .lines()
        .find(|line| line.starts_with("voters ["))
        .unwrap_or_else(|| panic!("no voters line in {printed}"));
    let list = &line["voters [".len()..line.find(']').unwrap()];
    list.split(", ")
        .filter(|n| !n.is_empty())
        .map(|n| n.parse().unwrap())
        .collect()
}

fn post(http: &str, token: &str, body: &str) -> u64 {
    let client = reqwest::Client::new();
    let (status, message) = blocking::send(
        client
            .post(format!("{http}/api/v1/rooms/r1/messages"))
            .bearer_auth(token)
            .json(&json!({ "body": body })),
    );
    assert!(
        status.is_success(),
        "post {body} at {http}: {status} {message}"
    );
    message["id"].as_str().unwrap().parse().unwrap()
}

fn bodies(http: &str, token: &str) -> Vec<String> {
    let client = reqwest::Client::new();
    let (status, page) = blocking::send(
        client
            .get(format!("{http}/api/v1/rooms/r1/messages?limit=500"))
            .bearer_auth(token),
    );
    assert!(status.is_success(), "history at {http}: {status}");
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_joining_node_catches_up_becomes_leader_and_the_old_leader_is_removed() {
    let data = tempfile::tempdir().unwrap();
    let (_lab, controls) = start_lab(&data.path().join("lab"));
    let cluster = blocking::get(&format!("{controls}/lab/api/cluster")).unwrap();
    let nodes = cluster["nodes"].as_array().unwrap().clone();
    let http = |id: u64| nodes[id as usize - 1]["http"].as_str().unwrap().to_string();
    let peers: Vec<String> = nodes
        .iter()
        .map(|n| format!("{}={}", n["id"], n["peer_addr"].as_str().unwrap()))
        .collect();

    let client = reqwest::Client::new();
    let (_, account) = blocking::send(
        client
            .post(format!("{}/api/v1/accounts", http(1)))
            .json(&json!({"nickname": "alice", "password": "correct horse battery"})),
    );
    let token = account["token"].as_str().unwrap().to_string();
    blocking::send(
        client
            .post(format!("{}/api/v1/rooms", http(1)))
            .bearer_auth(&token)
            .json(&json!({"name": "r1"})),
    );
    let mut expected = Vec::new();
    for n in 0..30 {
        let body = format!("before-{n}");
        post(&http(1 + n % 3), &token, &body);
        expected.push(body);
    }

    // A fourth node, started empty, waiting to be added.
    let (http4, peer4) = (format!("http://{}", free_address()), free_address());
    let _node4 = Process(
        dschat()
            .args([
                "serve",
                "--node-id",
                "4",
                "--join",
                "--cluster-id",
                "lab",
                "--no-irc",
            ])
            .args(["--peers", &peers.join(",")])
            .args([
                "--peer-listen",
                &peer4,
                "--http",
                http4.trim_start_matches("http://"),
            ])
            .arg("--data-dir")
            .arg(data.path().join("node-4"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("node 4 answers", || status(&http4));
    let leader = wait_until("a leader is known", || {
        status(&http(1)).and_then(|s| s["leader"].as_u64())
    });
    let added = run_cli(&["--server", &http(leader), "add", "4", &peer4]);
    assert_eq!(voters(&added), vec![1, 2, 3, 4], "{added}");
    wait_until("node 4 has caught up", || {
        let applied = status(&http4)?["applied_index"].as_u64()?;
        let leader_applied = status(&http(leader))?["applied_index"].as_u64()?;
        (applied == leader_applied).then_some(())
    });
    assert_eq!(
        bodies(&http4, &token),
        expected,
        "the new node holds the room"
    );

    // Leadership moves to the new node; then the old leader leaves.
    run_cli(&["--server", &http(leader), "transfer-leader", "4"]);
    wait_until("node 4 leads", || {
        (status(&http4)?["role"] == "leader").then_some(())
    });
    let removed = run_cli(&["--server", &http4, "remove", &leader.to_string()]);
    let remaining: Vec<u64> = (1..=4).filter(|&n| n != leader).collect();
    assert_eq!(voters(&removed), remaining, "{removed}");
    for n in 0..10 {
        let body = format!("after-{n}");
        post(&http4, &token, &body);
        expected.push(body);
    }
    for n in (1..=3).filter(|&n| n != leader) {
        assert_eq!(
            bodies(&http(n), &token),
            expected,
            "node {n} after the changes"
        );
    }
    let printed = run_cli(&["--server", &http4, "status"]);
    assert!(printed.contains("leader in term"), "{printed}");
}

#[test]
fn a_node_of_another_cluster_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let (_lab, controls) = start_lab(&data.path().join("lab"));
    let cluster = blocking::get(&format!("{controls}/lab/api/cluster")).unwrap();
    let node1 = &cluster["nodes"][0];
    let (http, peer) = (free_address(), free_address());
    let peers = format!("1={},9={peer}", node1["peer_addr"].as_str().unwrap());
    let _stranger = Process(
        dschat()
            .args([
                "serve",
                "--node-id",
                "9",
                "--cluster-id",
                "another",
                "--no-irc",
            ])
            .args(["--peers", &peers, "--peer-listen", &peer, "--http", &http])
            .arg("--data-dir")
            .arg(data.path().join("stranger"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stranger = format!("http://{http}");
    wait_until("the stranger answers", || status(&stranger));
    std::thread::sleep(Duration::from_secs(2));
    let seen = status(&stranger).unwrap();
    let link = &seen["peers"][0];
    assert_eq!(link["node"], 1);
    assert_eq!(link["connected"], false, "{seen}");
    assert!(seen["leader"].is_null(), "{seen}");
    let lab_node = status(node1["http"].as_str().unwrap()).unwrap();
    let knows_stranger = lab_node["peers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["node"] == 9 && p["connected"] == true);
    assert!(!knows_stranger, "{lab_node}");
}

#[test]
fn a_node_cut_off_from_the_majority_answers_no_quorum_in_bounded_time() {
    let data = tempfile::tempdir().unwrap();
    let (_lab, controls) = start_lab(&data.path().join("lab"));
    let cluster = blocking::get(&format!("{controls}/lab/api/cluster")).unwrap();
    let http1 = cluster["nodes"][0]["http"].as_str().unwrap().to_string();
    let client = reqwest::Client::new();
    let (_, account) = blocking::send(
        client
            .post(format!("{http1}/api/v1/accounts"))
            .json(&json!({"nickname": "alice", "password": "correct horse battery"})),
    );
    let token = account["token"].as_str().unwrap().to_string();
    blocking::send(
        client
            .post(format!("{http1}/api/v1/rooms"))
            .bearer_auth(&token)
            .json(&json!({"name": "r1"})),
    );
    post(&http1, &token, "before the cut");
    let (status, _) = blocking::send(
        client
            .put(format!("{controls}/lab/api/links"))
            .json(&json!({"from": [1], "to": [2, 3], "cut": true})),
    );
    assert!(status.is_success());
    let started = Instant::now();
    let (status, problem) = blocking::send(
        client
            .post(format!("{http1}/api/v1/rooms/r1/messages"))
            .bearer_auth(&token)
            .json(&json!({"body": "during the cut"})),
    );
    let waited = started.elapsed();
    assert_eq!(status.as_u16(), 503, "{problem}");
    assert_eq!(problem["type"], "urn:dschat:problem:no-quorum", "{problem}");
    // The bound is the node's request timeout (4 s by default), plus slack for a slow machine.
    assert!(waited < Duration::from_secs(8), "answered after {waited:?}");
    let (status, problem) = blocking::send(
        client
            .get(format!("{http1}/api/v1/rooms/r1/messages"))
            .bearer_auth(&token),
    );
    assert_eq!(
        status.as_u16(),
        503,
        "a read cannot be confirmed either: {problem}"
    );
    // The majority side goes on.
    let http2 = cluster["nodes"][1]["http"].as_str().unwrap().to_string();
    post(&http2, &token, "on the majority side");
}
