//! `dschat sim`: the deterministic simulator on the command line.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use dschat_sim::diagram::{render_svg, DiagramOptions};
use dschat_sim::sim::{
    self, FaultKind, Micros, Mutant, SimConfig, SimOutcome, Status, Workload, SECOND,
};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `dschat sim`.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  dschat sim                                  one run, seed 1, 5 nodes, 30 s, every fault
  dschat sim --seeds 1..200 --duration 30s    200 runs with a progress bar
  dschat sim --seed 7 --out sim-7             keep the history, trace, log and diagram
  dschat sim --seed 7 --out sim-7 --window 12s..15s   draw only that stretch

Faults (comma-separated, or a group): loss, duplicate, reorder, latency, partition,
one-way, moving-partition, crash, pause, clock-offset, clock-drift, clock-jump,
torn-write, bit-flip, and the targeted schedules crash-voters, deposed-leader,
leader-churn, damaged-entry, disruptive-node, membership; groups: all, none,
network, process, clock, disk, targeted.

Mutants (--mutant, in a build with the bug-switches feature; TESTING.md row):
vote-without-persist (1), acknowledge-before-fsync (2), read-without-confirmation (3),
commit-earlier-term-by-counting (5), truncate-on-stale-append (6),
acknowledge-before-commit (7), allow-overlapping-membership-changes (8),
no-pre-vote-or-check-quorum (9), snapshot-rename-before-sync (10),
skip-body-checksums (12), keep-torn-tail (13), forget-client-sessions (14),
ignore-stalled-replication (16), feed-resume-skips-first-event (17),
hybrid-clock-follows-physical-time-backwards (18).

A run that fails prints the one command that replays it, exactly.")]
pub struct SimArgs {
    /// The seed of a single run.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// A range of seeds, `A..B` (B excluded) or `A..=B`: one run per seed.
    #[arg(long)]
    seeds: Option<String>,
    /// Cluster size.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Length of the fault phase in simulated time (`30s`, `500ms`, `2m`).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Micros,
    /// Concurrent clients.
    #[arg(long, default_value_t = 10)]
    clients: usize,
    /// `chat` (nicknames, posts, history reads, feeds) or `register` (a linearizable
    /// key-value register over room topics).
    #[arg(long, default_value = "chat")]
    workload: Workload,
    /// Which faults to inject (see below).
    #[arg(long, default_value = "all")]
    faults: String,
    /// After healing, the cluster must acknowledge a write within this time.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    liveness_bound: Micros,
    /// Write history.jsonl, trace.jsonl, run.log and diagram.svg here (single run), or the
    /// files of each failing seed under DIR/seed-N (many runs).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The stretch of simulated time the diagram shows, `A..B` (default: the 400 ms before
    /// the first violation, or the first 400 ms of the clients' work).
    #[arg(long, value_parser = parse_window)]
    window: Option<(Micros, Micros)>,
    /// Run a deliberately broken build (needs a build with the `bug-switches` feature).
    #[arg(long)]
    mutant: Option<Mutant>,
    /// The Raft bound on entries per log request (small batches let the leader-churn
    /// schedule reach the Raft paper's figure 8).
    #[arg(long, default_value_t = sim::DEFAULT_MAX_BATCH_ENTRIES, value_parser = clap::value_parser!(usize))]
    batch_entries: usize,
    /// Runs in parallel when many seeds are given (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
}

/// How much simulated time the diagram shows by default: about as much as stays readable.
const DEFAULT_WINDOW: Micros = 400_000;

fn parse_duration(text: &str) -> Result<Micros, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 500ms or 2m"))?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        other => return Err(format!("unknown unit {other:?} (us, ms, s, m)")),
    };
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!("{text:?} is not a positive duration"));
    }
    Ok((value * scale) as Micros)
}

fn parse_window(text: &str) -> Result<(Micros, Micros), String> {
    let (from, to) = text
        .split_once("..")
        .ok_or_else(|| format!("{text:?} is not a window like 12s..15s"))?;
    let (from, to) = (parse_duration(from)?, parse_duration(to)?);
    if to <= from {
        return Err(format!("the window {text:?} ends before it starts"));
    }
    Ok((from, to))
}

fn parse_seeds(text: &str) -> anyhow::Result<Vec<u64>> {
    let (from, to, inclusive) = if let Some((a, b)) = text.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = text.split_once("..") {
        (a, b, false)
    } else {
        bail!("--seeds {text:?} is not a range like 1..200");
    };
    let from: u64 = from.trim().parse().context("the first seed")?;
    let to: u64 = to.trim().parse().context("the last seed")?;
    let seeds: Vec<u64> = if inclusive {
        (from..=to).collect()
    } else {
        (from..to).collect()
    };
    if seeds.is_empty() {
        bail!("--seeds {text:?} is empty");
    }
    Ok(seeds)
}

/// Runs `dschat sim`.
pub fn run(args: SimArgs) -> anyhow::Result<()> {
    let faults = FaultKind::parse_list(&args.faults).map_err(|error| anyhow!(error))?;
    let base = SimConfig {
        seed: args.seed.unwrap_or(1),
        nodes: args.nodes,
        duration: args.duration,
        clients: args.clients,
        workload: args.workload,
        faults,
        liveness_bound: args.liveness_bound,
        record_messages: false,
        mutant: args.mutant,
        max_batch_entries: args.batch_entries,
    };
    match &args.seeds {
        None => run_one(base, &args),
        Some(range) => run_many(base, parse_seeds(range)?, &args),
    }
}

fn run_one(mut config: SimConfig, args: &SimArgs) -> anyhow::Result<()> {
    config.record_messages = args.out.is_some();
    println!("{}", config.replay_command());
    let outcome = sim::run(config).map_err(|error| anyhow!(error))?;
    print_verdicts(&outcome);
    print_summary(&outcome);
    if let Some(directory) = &args.out {
        write_outputs(&outcome, directory, args.window)?;
        println!("wrote {}", directory.display());
    }
    if outcome.passed() {
        println!("PASSED");
        Ok(())
    } else {
        println!(
            "FAILED; replay with:\n  {}",
            outcome.config.replay_command()
        );
        if args.out.is_none() {
            println!(
                "add --out DIR to keep the history, the trace and a diagram of the failing stretch"
            );
        }
        std::process::exit(1);
    }
}

fn print_verdicts(outcome: &SimOutcome) {
    let width = outcome
        .verdicts
        .iter()
        .map(|verdict| verdict.name.len())
        .max()
        .unwrap_or(0);
    println!();
    for verdict in &outcome.verdicts {
        let status = match verdict.status {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Unknown => "UNKNOWN",
        };
        println!(
            "  {status:<7}  {:<width$}  {}",
            verdict.name, verdict.detail
        );
    }
    println!();
}

fn print_summary(outcome: &SimOutcome) {
    let simulated = outcome.simulated as f64 / SECOND as f64;
    let wall = outcome.wall.as_secs_f64();
    let counters = &outcome.counters;
    let mut latencies = counters.write_latencies.clone();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |us| *us as f64 / 1000.0)
    };
    let cpu = outcome.cpu.map_or(String::new(), |cpu| {
        let cpu = cpu.as_secs_f64();
        format!(
            "; {cpu:.3} s of CPU time ({:.0}x real time per CPU second)",
            simulated / cpu.max(1e-9)
        )
    });
    println!(
        "simulated {simulated:.1} s in {:.3} s of wall time ({:.0}x real time){cpu}, {} events; checkers {:.3} s",
        wall,
        simulated / wall.max(1e-9),
        outcome.steps,
        outcome.checking_wall.as_secs_f64()
    );
    println!(
        "operations: {} ok, {} fail, {} indefinite; acknowledged write latency p50 {:.1} ms, p99 {:.1} ms",
        counters.ok,
        counters.fail,
        counters.info,
        percentile(0.5),
        percentile(0.99)
    );
    println!(
        "messages: {} sent, {} lost, {} duplicated; {} crashes",
        counters.messages_sent,
        counters.messages_lost,
        counters.messages_duplicated,
        counters.crashes
    );
}

fn write_outputs(
    outcome: &SimOutcome,
    directory: &Path,
    window: Option<(Micros, Micros)>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(directory)
        .with_context(|| format!("creating {}", directory.display()))?;
    let mut history =
        std::io::BufWriter::new(std::fs::File::create(directory.join("history.jsonl"))?);
    for event in &outcome.history {
        serde_json::to_writer(&mut history, event)?;
        history.write_all(b"\n")?;
    }
    history.flush()?;
    let trace_file = std::io::BufWriter::new(std::fs::File::create(directory.join("trace.jsonl"))?);
    outcome.trace.write_jsonl(trace_file)?;
    let mut log = std::io::BufWriter::new(std::fs::File::create(directory.join("run.log"))?);
    writeln!(log, "{}", outcome.config.replay_command())?;
    for (at, node, text) in &outcome.notes {
        let who = node.map_or("cluster".to_string(), |node| format!("n{}", node + 1));
        writeln!(log, "{:>10.3} s  {who:<7}  {text}", *at as f64 / 1e6)?;
    }
    for verdict in &outcome.verdicts {
        writeln!(
            log,
            "{:?}  {}  {}",
            verdict.status, verdict.name, verdict.detail
        )?;
    }
    log.flush()?;
    let window = window
        .or_else(|| outcome.trace.failing_window(DEFAULT_WINDOW))
        .or_else(|| {
            let start = outcome
                .history
                .first()
                .map_or(0, |event| event.time_ns / 1000);
            Some((start, start + DEFAULT_WINDOW))
        });
    let title = format!(
        "{} — {}",
        outcome.config.replay_command(),
        if outcome.passed() { "passed" } else { "FAILED" }
    );
    let svg = render_svg(
        &outcome.trace,
        &DiagramOptions {
            window_us: window,
            title,
            ..DiagramOptions::default()
        },
    );
    std::fs::write(directory.join("diagram.svg"), svg)?;
    Ok(())
}

fn run_many(base: SimConfig, seeds: Vec<u64>, args: &SimArgs) -> anyhow::Result<()> {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 64);
    println!(
        "{} seeds ({}..={}), {} at a time: {}",
        seeds.len(),
        seeds[0],
        seeds[seeds.len() - 1],
        jobs,
        SimConfig {
            seed: seeds[0],
            ..base.clone()
        }
        .replay_command()
    );
    let bar = ProgressBar::new(seeds.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds  {elapsed_precise} (eta {eta})  {msg}",
        )
        .expect("a valid template"),
    );
    let next = AtomicU64::new(0);
    let failures: Mutex<Vec<(u64, Vec<String>)>> = Mutex::new(Vec::new());
    // Simulated µs, wall time, runs, and CPU time (None once a run could not measure it).
    let totals = Mutex::new((0u64, Duration::ZERO, 0u64, Some(Duration::ZERO)));
    let started = Instant::now();
    let seeds = Arc::new(seeds);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let position = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(&seed) = seeds.get(position) else {
                    break;
                };
                let config = SimConfig {
                    seed,
                    ..base.clone()
                };
                let (failed, simulated, wall, cpu) = match sim::run(config.clone()) {
                    Ok(outcome) => {
                        let failed: Vec<String> = outcome
                            .failures()
                            .iter()
                            .map(|verdict| {
                                format!("{:?} {}: {}", verdict.status, verdict.name, verdict.detail)
                            })
                            .collect();
                        if !failed.is_empty() {
                            if let Some(directory) = &args.out {
                                let mut recorded = config.clone();
                                recorded.record_messages = true;
                                if let Ok(again) = sim::run(recorded) {
                                    let _ = write_outputs(
                                        &again,
                                        &directory.join(format!("seed-{seed}")),
                                        None,
                                    );
                                }
                            }
                        }
                        (failed, outcome.simulated, outcome.wall, outcome.cpu)
                    }
                    Err(error) => (
                        vec![format!("could not run: {error}")],
                        0,
                        Duration::ZERO,
                        None,
                    ),
                };
                {
                    let mut totals = totals.lock().expect("not poisoned");
                    totals.0 += simulated;
                    totals.1 += wall;
                    totals.2 += 1;
                    totals.3 = totals.3.zip(cpu).map(|(sum, cpu)| sum + cpu);
                }
                if !failed.is_empty() {
                    let mut failures = failures.lock().expect("not poisoned");
                    failures.push((seed, failed));
                    bar.set_message(format!("{} failed", failures.len()));
                }
                bar.inc(1);
            });
        }
    });
    bar.finish();
    let (simulated, wall, runs, cpu) = *totals.lock().expect("not poisoned");
    let mut failures = failures.into_inner().expect("not poisoned");
    failures.sort();
    let simulated_seconds = simulated as f64 / SECOND as f64;
    let cpu = cpu.map_or(String::new(), |cpu| {
        let cpu = cpu.as_secs_f64();
        format!(
            "; {cpu:.1} s of CPU time ({:.0}x real time per CPU second)",
            simulated_seconds / cpu.max(1e-9)
        )
    });
    println!(
        "{runs} runs, {} failed; {simulated_seconds:.0} simulated seconds in {:.1} s of wall time ({:.0}x real time per core{cpu}, {:.1} s elapsed; checkers not counted)",
        failures.len(),
        wall.as_secs_f64(),
        simulated_seconds / wall.as_secs_f64().max(1e-9),
        started.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        println!("PASSED");
        return Ok(());
    }
    let mut seen = BTreeSet::new();
    for (seed, problems) in &failures {
        println!("seed {seed}:");
        for problem in problems {
            println!("    {problem}");
        }
        println!(
            "  replay: {}",
            SimConfig {
                seed: *seed,
                ..base.clone()
            }
            .replay_command()
        );
        seen.insert(*seed);
    }
    println!("FAILED ({} of {runs} seeds)", seen.len());
    std::process::exit(1);
}
