//! Real processes under real faults: a `dschat lab` cluster of 3 (and of 5) `dschat serve`
//! processes on loopback, clients posting and reading through every node, while a nemesis
//! kills the leader with `kill -9`, pauses nodes with SIGSTOP and cuts links. The clients'
//! history is recorded in the simulator's format (Jepsen events, one monotonic clock) and
//! judged by the simulator's chat checkers: no acknowledged post lost, none duplicated or
//! invented, one order on every node, linearizable history reads, increasing ids.
//!
//! Why it matters: the simulator runs the real protocol code, but not the real runtime (the
//! driver thread, the TCP transport, request forwarding and retries, fsync on a real disk,
//! process death). This test is where those are judged by the same rules.
//!
//! The run is short by default; `DSCHAT_FAULT_SECONDS=600 scripts/cluster-soak` runs a long
//! one. The history is kept in `test-artifacts/cluster-faults-<nodes>/history.jsonl`.

use dschat_sim::history::{Event, EventKind};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bound: posts per client, so that one history page (500) always holds the whole room.
const POSTS_PER_CLIENT: usize = 90;
const CLIENTS: u64 = 4;
const READERS: u64 = 2;
const ROOM: &str = "r1";

struct Lab {
    child: Child,
    nodes: Vec<String>,
    controls: String,
}

impl Drop for Lab {
    fn drop(&mut self) {
        // SIGINT lets the lab stop its nodes; kill it if it does not go.
        // SAFETY: kill(2) on the lab process this test started.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
    }
}

fn start_lab(nodes: usize, data: &std::path::Path) -> Lab {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dschat"))
        .args([
            "lab",
            "--port",
            "0",
            "--fresh",
            "--nodes",
            &nodes.to_string(),
        ])
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dschat lab starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addresses = Vec::new();
    let mut controls = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        let url = line.split_whitespace().find(|w| w.starts_with("http://"));
        if line.trim_start().starts_with("node ") {
            addresses.push(url.unwrap().to_string());
        } else if line.trim_start().starts_with("controls:") {
            controls = Some(
                url.unwrap()
                    .trim_end_matches("/lab/api/cluster")
                    .to_string(),
            );
        } else if line.starts_with("Stop with") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    assert_eq!(addresses.len(), nodes, "the lab printed every node");
    Lab {
        child,
        nodes: addresses,
        controls: controls.expect("the lab printed its controls"),
    }
}

/// One monotonic clock and the event list every client appends to.
#[derive(Clone)]
struct Recorder {
    start: Instant,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    fn record(&self, process: u64, kind: EventKind, operation: &str, value: Value) {
        let mut events = self.events.lock().unwrap();
        // Taken under the lock, so times never decrease along the list.
        let time_ns = self.start.elapsed().as_nanos() as u64;
        events.push(Event {
            process,
            kind,
            operation: operation.into(),
            value,
            time_ns,
        });
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(6))
        .build()
        .unwrap()
}

/// Registers `nickname` and joins the room; returns the token.
async fn member(node: &str, nickname: &str) -> String {
    let token = register(node, nickname).await;
    let joined = http()
        .put(format!("{node}/api/v1/rooms/{ROOM}/members/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(joined.status().is_success(), "{}", joined.status());
    token
}

async fn register(node: &str, nickname: &str) -> String {
    for _ in 0..50 {
        let answer = http()
            .post(format!("{node}/api/v1/accounts"))
            .json(&json!({"nickname": nickname, "password": "correct horse battery"}))
            .send()
            .await;
        if let Ok(response) = answer {
            if response.status().is_success() {
                let body: Value = response.json().await.unwrap();
                return body["token"].as_str().unwrap().to_string();
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("could not register {nickname}");
}

/// Reads the room's whole history at `node`: `Some(messages)` or `None` if it failed.
async fn read_room(node: &str, token: &str) -> Result<Value, String> {
    let response = http()
        .get(format!("{node}/api/v1/rooms/{ROOM}/messages?limit=500"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(response.status().to_string());
    }
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    let messages: Vec<Value> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| json!([m["id"].as_str().unwrap().parse::<u64>().unwrap(), m["body"]]))
        .collect();
    assert!(messages.len() < 500, "the room outgrew one page");
    Ok(json!({ "messages": messages }))
}

async fn poster(recorder: Recorder, nodes: Vec<String>, token: String, client: u64, stop: Instant) {
    let mut process = client * 1_000;
    // Spread the bounded posts over the whole run, so every fault meets writes in flight.
    let pace = stop.saturating_duration_since(Instant::now()) / POSTS_PER_CLIENT as u32;
    for n in 0..POSTS_PER_CLIENT {
        if Instant::now() > stop {
            break;
        }
        let next = Instant::now() + pace;
        let node = &nodes[(client as usize + n) % nodes.len()];
        let body = format!("c{client}-{n}");
        recorder.record(
            process,
            EventKind::Invoke,
            "post",
            json!({"room": ROOM, "body": body}),
        );
        let answer = http()
            .post(format!("{node}/api/v1/rooms/{ROOM}/messages"))
            .bearer_auth(&token)
            .json(&json!({ "body": body }))
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => {
                let message: Value = response.json().await.unwrap();
                let id: u64 = message["id"].as_str().unwrap().parse().unwrap();
                recorder.record(process, EventKind::Ok, "post", json!({ "id": id }));
            }
            Ok(response) if response.status().is_client_error() => {
                let status = response.status();
                let error = format!("{status}: {}", response.text().await.unwrap_or_default());
                recorder.record(process, EventKind::Fail, "post", json!({ "error": error }));
            }
            // 503 (no quorum), a timeout, a refused connection: it may have happened.
            _ => {
                recorder.record(process, EventKind::Info, "post", Value::Null);
                process += 1;
            }
        }
        tokio::time::sleep_until(next.into()).await;
    }
}

async fn reader(recorder: Recorder, nodes: Vec<String>, token: String, client: u64, stop: Instant) {
    let process = 100_000 + client;
    let mut n = client as usize;
    while Instant::now() < stop {
        n += 1;
        let index = n % nodes.len();
        let node = &nodes[index];
        recorder.record(
            process,
            EventKind::Invoke,
            "history",
            json!({"room": ROOM, "node": index + 1}),
        );
        match read_room(node, &token).await {
            Ok(value) => recorder.record(process, EventKind::Ok, "history", value),
            Err(error) => recorder.record(
                process,
                EventKind::Fail,
                "history",
                json!({ "error": error }),
            ),
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn control(lab: &Lab, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut request = http().request(method, format!("{}{path}", lab.controls));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the lab answers");
    response.json().await.unwrap_or(Value::Null)
}

async fn leader(lab: &Lab) -> Option<u64> {
    let cluster = control(lab, reqwest::Method::GET, "/lab/api/cluster", None).await;
    cluster["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["status"]["role"] == "leader")
        .and_then(|n| n["id"].as_u64())
}

/// The nemesis: kill -9 the leader, pause a node, cut the leader away; heal after each.
async fn nemesis(lab: &Lab, nodes: usize, stop: Instant) -> Vec<String> {
    use reqwest::Method;
    let mut done = Vec::new();
    let mut round = 0u64;
    while Instant::now() + Duration::from_secs(3) < stop {
        round += 1;
        let target = leader(lab).await.unwrap_or(1);
        let other = target % nodes as u64 + 1;
        match round % 3 {
            1 => {
                control(
                    lab,
                    Method::POST,
                    &format!("/lab/api/nodes/{target}/crash"),
                    None,
                )
                .await;
                done.push(format!("kill -9 leader {target}"));
            }
            2 => {
                control(
                    lab,
                    Method::POST,
                    &format!("/lab/api/nodes/{other}/pause"),
                    None,
                )
                .await;
                done.push(format!("SIGSTOP node {other}"));
            }
            _ => {
                let rest: Vec<u64> = (1..=nodes as u64).filter(|&n| n != target).collect();
                let cut = json!({"from": [target], "to": rest, "cut": true});
                control(lab, Method::PUT, "/lab/api/links", Some(cut)).await;
                done.push(format!("cut leader {target} away"));
            }
        }
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        control(lab, Method::POST, "/lab/api/heal", None).await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
    }
    done
}

async fn wait_converged(lab: &Lab, nodes: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let cluster = control(lab, reqwest::Method::GET, "/lab/api/cluster", None).await;
        let applied: Vec<u64> = cluster["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["status"]["applied_index"].as_u64())
            .collect();
        if applied.len() == nodes && applied.iter().all(|a| *a == applied[0]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes did not converge: {cluster}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run(nodes: usize) {
    let seconds: u64 = std::env::var("DSCHAT_FAULT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let data = tempfile::tempdir().unwrap();
    let lab = start_lab(nodes, data.path());
    let recorder = Recorder {
        start: Instant::now(),
        events: Arc::default(),
    };
    let owner = register(&lab.nodes[0], "owner").await;
    let created = http()
        .post(format!("{}/api/v1/rooms", lab.nodes[0]))
        .bearer_auth(&owner)
        .json(&json!({ "name": ROOM }))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    let stop = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let token = member(
            &lab.nodes[client as usize % nodes],
            &format!("poster{client}"),
        )
        .await;
        tasks.push(tokio::spawn(poster(
            recorder.clone(),
            lab.nodes.clone(),
            token,
            client,
            stop,
        )));
    }
    for client in 0..READERS {
        let token = member(&lab.nodes[0], &format!("reader{client}")).await;
        tasks.push(tokio::spawn(reader(
            recorder.clone(),
            lab.nodes.clone(),
            token,
            client,
            stop,
        )));
    }
    let faults = nemesis(&lab, nodes, stop).await;
    for task in tasks {
        task.await.unwrap();
    }
    control(&lab, reqwest::Method::POST, "/lab/api/heal", None).await;
    wait_converged(&lab, nodes).await;
    for (index, node) in lab.nodes.iter().enumerate() {
        let process = 200_000 + index as u64;
        let value = json!({"room": ROOM, "node": index + 1});
        recorder.record(process, EventKind::Invoke, "final-read", value);
        let messages = read_room(node, &owner).await.expect("final reads answer");
        recorder.record(process, EventKind::Ok, "final-read", messages);
    }
    let events = recorder.events.lock().unwrap().clone();
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-artifacts")
        .join(format!("cluster-faults-{nodes}"));
    std::fs::create_dir_all(&artifacts).unwrap();
    let lines: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    std::fs::write(artifacts.join("history.jsonl"), lines).unwrap();

    let acknowledged = events
        .iter()
        .filter(|e| e.operation == "post" && e.kind == EventKind::Ok)
        .count();
    println!("{nodes} nodes, {seconds} s: faults {faults:?}; {acknowledged} posts acknowledged");
    assert!(faults.len() >= 2, "the nemesis struck: {faults:?}");
    assert!(
        acknowledged >= 50,
        "the cluster made progress: {acknowledged} acknowledged posts"
    );
    let reports = dschat_sim::checks::check_chat(&events).expect("a well-formed history");
    let mut failed = false;
    for report in &reports {
        println!("{report}");
        failed |= !report.passed();
    }
    assert!(
        !failed,
        "a checker failed; history in {}",
        artifacts.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_real_nodes_keep_every_acknowledged_post_through_kills_pauses_and_cuts() {
    run(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_real_nodes_keep_every_acknowledged_post_through_kills_pauses_and_cuts() {
    run(5).await;
}
