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

/// Posts each client makes per second of the run (at least [`MIN_POSTS_PER_CLIENT`]).
const POSTS_PER_SECOND_PER_CLIENT: u64 = 8;
const MIN_POSTS_PER_CLIENT: usize = 90;
/// Bound: posts of one client to one room; a client moves to the next room after these, so
/// one history page (500) always holds a whole room (4 clients × 100).
const POSTS_PER_ROOM_PER_CLIENT: usize = 100;
const CLIENTS: u64 = 4;
const READERS: u64 = 2;
/// The name of the `index`th room.
fn room(index: usize) -> String {
    format!("r{index}")
}

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

/// Registers `nickname` and joins every room; returns the token.
async fn member(node: &str, nickname: &str, rooms: usize) -> String {
    let token = register(node, nickname).await;
    for index in 0..rooms {
        let joined = http()
            .put(format!("{node}/api/v1/rooms/{}/members/me", room(index)))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(joined.status().is_success(), "{}", joined.status());
    }
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
async fn read_room(node: &str, token: &str, room: &str) -> Result<Value, String> {
    let response = http()
        .get(format!("{node}/api/v1/rooms/{room}/messages?limit=500"))
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

/// How much a run writes: posts per client, and the rooms they fill.
#[derive(Clone, Copy)]
struct Plan {
    posts_per_client: usize,
    rooms: usize,
}

impl Plan {
    fn for_seconds(seconds: u64) -> Plan {
        let posts_per_client =
            ((seconds * POSTS_PER_SECOND_PER_CLIENT) as usize).max(MIN_POSTS_PER_CLIENT);
        Plan {
            posts_per_client,
            rooms: posts_per_client.div_ceil(POSTS_PER_ROOM_PER_CLIENT),
        }
    }
}

async fn poster(
    recorder: Recorder,
    nodes: Vec<String>,
    token: String,
    client: u64,
    plan: Plan,
    stop: Instant,
) {
    let mut process = client * 1_000_000;
    // Spread the posts over the whole run, so every fault meets writes in flight.
    let pace = stop.saturating_duration_since(Instant::now()) / plan.posts_per_client as u32;
    for n in 0..plan.posts_per_client {
        if Instant::now() > stop {
            break;
        }
        let next = Instant::now() + pace;
        let node = &nodes[(client as usize + n) % nodes.len()];
        let body = format!("c{client}-{n}");
        let room = room(n / POSTS_PER_ROOM_PER_CLIENT);
        recorder.record(
            process,
            EventKind::Invoke,
            "post",
            json!({"room": room, "body": body}),
        );
        let answer = http()
            .post(format!("{node}/api/v1/rooms/{room}/messages"))
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

async fn reader(
    recorder: Recorder,
    nodes: Vec<String>,
    token: String,
    client: u64,
    plan: Plan,
    stop: Instant,
) {
    let process = 100_000_000 + client;
    let mut n = client as usize;
    while Instant::now() < stop {
        n += 1;
        let index = n % nodes.len();
        let node = &nodes[index];
        let room = room(n % plan.rooms);
        recorder.record(
            process,
            EventKind::Invoke,
            "history",
            json!({"room": room, "node": index + 1}),
        );
        match read_room(node, &token, &room).await {
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

/// How long a feed follows one node before it moves to the next.
const FEED_STINT: Duration = Duration::from_millis(1_500);

/// Follows the first room's live feed over WebSocket, a stint on each node in turn, resuming
/// each time after the last event it got: each stint is one `feed` poll, which must be a
/// gap-free, duplicate-free stretch of the room's order starting right after its `after`.
async fn feeder(recorder: Recorder, nodes: Vec<String>, token: String, stop: Instant) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let process = 300_000_000;
    let room = room(0);
    let (mut cursor, mut after) = (0u64, 0u64);
    let mut stint = 0;
    while Instant::now() < stop {
        stint += 1;
        let index = stint % nodes.len();
        let value = json!({"room": room, "node": index + 1, "after": after});
        recorder.record(process, EventKind::Invoke, "feed", value);
        let url = format!(
            "{}/api/v1/stream?token={token}",
            nodes[index].replacen("http://", "ws://", 1)
        );
        let connected = tokio::time::timeout(
            Duration::from_secs(2),
            tokio_tungstenite::connect_async(url),
        )
        .await;
        let Ok(Ok((mut socket, _))) = connected else {
            let error = json!({"error": "could not connect"});
            recorder.record(process, EventKind::Fail, "feed", error);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let subscribe = json!({"type": "subscribe", "rooms": [room], "after": cursor.to_string()});
        let mut messages = Vec::new();
        if socket
            .send(Message::text(subscribe.to_string()))
            .await
            .is_ok()
        {
            let end = Instant::now() + FEED_STINT;
            // A closed or dead connection ends the stint early; what arrived stands.
            while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(end.into(), socket.next()).await
            {
                let Message::Text(text) = frame else { continue };
                let event: Value = serde_json::from_str(&text).unwrap();
                if event["type"] != "event" {
                    continue;
                }
                cursor = event["id"].as_str().unwrap().parse().unwrap();
                if event["kind"] == "posted" && event["room"] == room.as_str() {
                    let message = &event["message"];
                    let id: u64 = message["id"].as_str().unwrap().parse().unwrap();
                    messages.push(json!([id, message["body"]]));
                    after = id;
                }
            }
        }
        recorder.record(
            process,
            EventKind::Ok,
            "feed",
            json!({ "messages": messages }),
        );
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

/// How long one fault lasts, and how long the cluster then gets, healed, before the next.
const FAULT: Duration = Duration::from_millis(1_200);
const SETTLE: Duration = Duration::from_millis(1_300);

/// The nemesis, round after round: kill -9 the leader, SIGSTOP the leader, cut the leader
/// away from the others, SIGSTOP a follower; heal after each.
async fn nemesis(lab: &Lab, nodes: usize, stop: Instant) -> Vec<String> {
    use reqwest::Method;
    let mut done = Vec::new();
    let mut round = 0u64;
    while Instant::now() + FAULT + SETTLE <= stop {
        round += 1;
        let target = leader(lab).await.unwrap_or(1);
        let follower = target % nodes as u64 + 1;
        match round % 4 {
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
                    &format!("/lab/api/nodes/{target}/pause"),
                    None,
                )
                .await;
                done.push(format!("SIGSTOP leader {target}"));
            }
            3 => {
                let rest: Vec<u64> = (1..=nodes as u64).filter(|&n| n != target).collect();
                let cut = json!({"from": [target], "to": rest, "cut": true});
                control(lab, Method::PUT, "/lab/api/links", Some(cut)).await;
                done.push(format!("cut leader {target} away"));
            }
            _ => {
                control(
                    lab,
                    Method::POST,
                    &format!("/lab/api/nodes/{follower}/pause"),
                    None,
                )
                .await;
                done.push(format!("SIGSTOP follower {follower}"));
            }
        }
        tokio::time::sleep(FAULT).await;
        control(lab, Method::POST, "/lab/api/heal", None).await;
        tokio::time::sleep(SETTLE).await;
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
        .unwrap_or(11);
    let data = tempfile::tempdir().unwrap();
    let lab = start_lab(nodes, data.path());
    let recorder = Recorder {
        start: Instant::now(),
        events: Arc::default(),
    };
    let plan = Plan::for_seconds(seconds);
    let owner = register(&lab.nodes[0], "owner").await;
    for index in 0..plan.rooms {
        let created = http()
            .post(format!("{}/api/v1/rooms", lab.nodes[0]))
            .bearer_auth(&owner)
            .json(&json!({ "name": room(index) }))
            .send()
            .await
            .unwrap();
        assert!(created.status().is_success(), "{}", created.status());
    }
    let mut tokens = Vec::new();
    for client in 0..CLIENTS {
        let node = &lab.nodes[client as usize % nodes];
        tokens.push(member(node, &format!("poster{client}"), plan.rooms).await);
    }
    for client in 0..READERS {
        tokens.push(member(&lab.nodes[0], &format!("reader{client}"), plan.rooms).await);
    }
    // The run's clock starts once the clients are set up, so every fault round fits in it.
    let stop = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    let mut tokens = tokens.into_iter();
    for client in 0..CLIENTS {
        let token = tokens.next().unwrap();
        tasks.push(tokio::spawn(poster(
            recorder.clone(),
            lab.nodes.clone(),
            token,
            client,
            plan,
            stop,
        )));
    }
    for client in 0..READERS {
        let token = tokens.next().unwrap();
        tasks.push(tokio::spawn(reader(
            recorder.clone(),
            lab.nodes.clone(),
            token,
            client,
            plan,
            stop,
        )));
    }
    tasks.push(tokio::spawn(feeder(
        recorder.clone(),
        lab.nodes.clone(),
        owner.clone(),
        stop,
    )));
    let faults = nemesis(&lab, nodes, stop).await;
    for task in tasks {
        task.await.unwrap();
    }
    control(&lab, reqwest::Method::POST, "/lab/api/heal", None).await;
    wait_converged(&lab, nodes).await;
    for (index, node) in lab.nodes.iter().enumerate() {
        let process = 200_000_000 + index as u64;
        for room_index in 0..plan.rooms {
            let room = room(room_index);
            let value = json!({"room": room, "node": index + 1});
            recorder.record(process, EventKind::Invoke, "final-read", value);
            let messages = read_room(node, &owner, &room)
                .await
                .expect("final reads answer");
            recorder.record(process, EventKind::Ok, "final-read", messages);
        }
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
    assert!(faults.len() >= 4, "every kind of fault struck: {faults:?}");
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
