//! Power loss and damage, on the simulated disk.
//!
//! For a seeded random history of appends, syncs, hard-state changes and truncations, the
//! disk is crashed keeping every possible byte prefix of the unsynced writes (a torn write at
//! every offset), with or without the unsynced directory operations; the history then goes on
//! from one random crash, for a few rounds. The
//! recovered log must hold every record that was synced, in order, and nothing that was never
//! written. Then a bit is flipped in a synced segment: opening must report it, and salvage
//! must keep a prefix of the log.
//!
//! Replay one seed: `DSCHAT_STORAGE_SEED=<seed> cargo test -p dschat-storage --test wal_crash`.
//! More seeds: `DSCHAT_STORAGE_SEEDS=<count>` (default 100).

use dschat_core::ids::{LogIndex, NodeId, Term};
use dschat_storage::disk::{CrashPlan, Disk, SimulatedDisk};
use dschat_storage::{HardState, StorageError, Wal, WalEntry, WalOptions};
use std::path::Path;
use std::sync::Arc;

const DEFAULT_SEED_COUNT: u64 = 100;
/// Crash-and-recover rounds per seed.
const ROUNDS: u64 = 3;
const LOG_DIRECTORY: &str = "/node/wal";

/// SplitMix64, so each history replays from its seed.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut value = self.0;
        value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        value ^ (value >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// What the history did, to judge a recovered log by.
#[derive(Clone, Debug, Default)]
struct Model {
    /// Every entry of the current log, compacted prefix included (`log[i]` has index `i + 1`).
    log: Vec<WalEntry>,
    first_index: u64,
    /// Last index when the last sync (or durable truncation) returned.
    synced_last_index: u64,
    /// Hard state when the last sync returned, and every one set since.
    synced_hard_state: HardState,
    later_hard_states: Vec<HardState>,
}

fn options() -> WalOptions {
    WalOptions {
        segment_max_bytes: 400,
    }
}

fn open(disk: &SimulatedDisk) -> Result<Wal, StorageError> {
    let disk: Arc<dyn Disk> = Arc::new(disk.clone());
    Wal::open_on(disk, Path::new(LOG_DIRECTORY), options())
}

/// Runs `steps` random operations on `wal`, keeping `model` up to date.
fn run_history(wal: &mut Wal, model: &mut Model, generator: &mut Generator, steps: u64) {
    for _ in 0..steps {
        match generator.below(100) {
            0..=54 => append(wal, model, generator),
            55..=74 => {
                wal.sync().unwrap();
                model.synced_last_index = model.log.len() as u64;
                model.synced_hard_state = wal.hard_state();
                model.later_hard_states.clear();
            }
            75..=84 => {
                let current = wal.hard_state();
                let state = HardState {
                    term: Term(current.term.0 + generator.below(2)),
                    voted_for: Some(NodeId(generator.below(5))),
                };
                wal.set_hard_state(state).unwrap();
                model.later_hard_states.push(state);
            }
            85..=92 => truncate_suffix(wal, model, generator),
            _ => truncate_prefix(wal, model, generator),
        }
    }
}

fn append(wal: &mut Wal, model: &mut Model, generator: &mut Generator) {
    let mut term = wal.last_term().0.max(wal.hard_state().term.0);
    let count = 1 + generator.below(4);
    let mut batch = Vec::new();
    for offset in 0..count {
        term += u64::from(generator.below(8) == 0);
        let index = wal.last_index().0 + 1 + offset;
        let length = generator.below(90) as usize;
        let payload = (0..length).map(|_| generator.next() as u8).collect();
        batch.push(WalEntry {
            index: LogIndex(index),
            term: Term(term),
            payload,
        });
    }
    wal.append(&batch).unwrap();
    model.log.extend(batch);
}

fn truncate_suffix(wal: &mut Wal, model: &mut Model, generator: &mut Generator) {
    let last = model.log.len() as u64;
    if last < model.first_index {
        return;
    }
    let from = model.first_index + generator.below(last - model.first_index + 1);
    wal.truncate_suffix(LogIndex(from)).unwrap();
    model.log.truncate(from as usize - 1);
    // Durable on return, hard state included (it syncs).
    model.synced_last_index = model.log.len() as u64;
    model.synced_hard_state = wal.hard_state();
    model.later_hard_states.clear();
}

fn truncate_prefix(wal: &mut Wal, model: &mut Model, generator: &mut Generator) {
    let last = model.log.len() as u64;
    let before = model.first_index + generator.below(last + 2 - model.first_index);
    wal.truncate_prefix(LogIndex(before)).unwrap();
    model.first_index = model.first_index.max(before);
    // Syncs first.
    model.synced_last_index = model.log.len() as u64;
    model.synced_hard_state = wal.hard_state();
    model.later_hard_states.clear();
}

/// Checks a recovered log against the model: every synced record, in order, nothing unwritten.
fn check_recovered(wal: &Wal, model: &Model) -> Result<(), String> {
    let last = wal.last_index().0;
    let first = wal.first_index().0;
    if last < model.synced_last_index || last > model.log.len() as u64 {
        return Err(format!(
            "recovered last index {last}; synced {} and written {}",
            model.synced_last_index,
            model.log.len()
        ));
    }
    if first > model.first_index || first == 0 {
        return Err(format!(
            "recovered first index {first}, but the log was truncated only up to {}",
            model.first_index
        ));
    }
    let recovered = wal
        .entries(LogIndex(first), LogIndex(last))
        .map_err(|error| format!("reading the recovered log: {error}"))?;
    if recovered[..] != model.log[first as usize - 1..last as usize] {
        return Err(format!(
            "recovered entries {first}..={last} differ from those written"
        ));
    }
    let hard_state = wal.hard_state();
    if hard_state != model.synced_hard_state && !model.later_hard_states.contains(&hard_state) {
        return Err(format!(
            "recovered hard state {hard_state:?}; synced {:?}",
            model.synced_hard_state
        ));
    }
    Ok(())
}

/// Every way the crash can cut the unsynced writes of `disk`.
fn crash_plans(disk: &SimulatedDisk) -> Vec<CrashPlan> {
    let unsynced_bytes = disk.max_unsynced_write_bytes();
    let directory_operations = disk.max_unsynced_directory_operations();
    let mut plans = Vec::new();
    for kept_directory_operations in [0, directory_operations] {
        for kept_unsynced_bytes in (0..=unsynced_bytes).chain([u64::MAX]) {
            plans.push(CrashPlan::Exact {
                kept_unsynced_bytes,
                kept_directory_operations,
            });
        }
    }
    plans
}

/// One seeded history in [`ROUNDS`] rounds: run random operations, crash at every cut of the
/// unsynced region and check each recovery, then continue from one random crash. Finally
/// damage the disk.
fn check_seed(seed: u64, switches: Switches) -> Result<(), String> {
    let mut generator = Generator(seed);
    let mut disk = SimulatedDisk::new();
    let mut wal = open(&disk).map_err(|error| error.to_string())?;
    let mut model = Model {
        first_index: 1,
        ..Model::default()
    };
    for round in 0..ROUNDS {
        switches.apply(&mut wal);
        let steps = 5 + generator.below(40);
        run_history(&mut wal, &mut model, &mut generator, steps);
        for plan in crash_plans(&disk) {
            let crashed = disk.fork();
            crashed.crash(plan);
            let recovered = open(&crashed).map_err(|error| format!("{plan:?}: {error}"))?;
            check_recovered(&recovered, &model)
                .map_err(|error| format!("round {round}, {plan:?}: {error}"))?;
        }
        disk = disk.fork();
        disk.crash(CrashPlan::Random {
            seed: generator.next(),
        });
        wal = open(&disk).map_err(|error| format!("round {round}, random crash: {error}"))?;
        check_recovered(&wal, &model).map_err(|error| format!("round {round}: {error}"))?;
        continue_after_recovery(&wal, &mut model);
    }
    drop(wal);
    check_damage(&disk, &model, &mut generator)
}

/// After a recovery, what the log holds is durable and is the model's new truth.
fn continue_after_recovery(wal: &Wal, model: &mut Model) {
    model.log.truncate(wal.last_index().0 as usize);
    model.first_index = wal.first_index().0;
    model.synced_last_index = wal.last_index().0;
    model.synced_hard_state = wal.hard_state();
    model.later_hard_states.clear();
}

/// Flips one bit of a recovered (and so synced) segment: opening must report it, and salvage
/// must leave a log that is a prefix of the one written.
fn check_damage(
    disk: &SimulatedDisk,
    model: &Model,
    generator: &mut Generator,
) -> Result<(), String> {
    drop(open(disk).map_err(|error| error.to_string())?);
    let directory = Path::new(LOG_DIRECTORY);
    let mut names = disk
        .list_dir(directory)
        .map_err(|error| error.to_string())?;
    names.sort();
    let name = &names[generator.below(names.len() as u64) as usize];
    let path = directory.join(name);
    let length = disk
        .read_file(&path)
        .map_err(|error| error.to_string())?
        .len() as u64;
    let offset = generator.below(length);
    let mask = 1u8 << generator.below(8);
    disk.flip_bits(&path, offset, mask)
        .map_err(|error| error.to_string())?;
    match open(disk) {
        Err(StorageError::Corrupt { file, .. }) if file == path => {}
        other => return Err(format!("bit flip at {name}:{offset} gave {other:?}")),
    }
    dschat_storage::wal::salvage_on(disk, directory).map_err(|error| error.to_string())?;
    let salvaged = open(disk).map_err(|error| format!("after salvage: {error}"))?;
    let (first, last) = (salvaged.first_index().0, salvaged.last_index().0);
    let kept = salvaged
        .entries(LogIndex(first), LogIndex(last))
        .map_err(|error| error.to_string())?;
    if last as usize > model.log.len() || kept[..] != model.log[first as usize - 1..last as usize] {
        return Err(format!(
            "salvage kept entries {first}..={last} that were never written"
        ));
    }
    Ok(())
}

/// The bug switches a run uses (none without the `bug-switches` feature).
#[derive(Clone, Copy, Debug, Default)]
struct Switches {
    #[cfg(feature = "bug-switches")]
    wal: dschat_storage::wal::WalBugSwitches,
}

impl Switches {
    fn apply(&self, _wal: &mut Wal) {
        #[cfg(feature = "bug-switches")]
        _wal.set_bug_switches(self.wal);
    }
}

fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("DSCHAT_STORAGE_SEED") {
        return vec![seed
            .parse()
            .expect("DSCHAT_STORAGE_SEED must be an integer")];
    }
    let count = std::env::var("DSCHAT_STORAGE_SEEDS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(DEFAULT_SEED_COUNT);
    (1..=count).collect()
}

#[test]
fn recovery_keeps_exactly_the_synced_records_and_reports_damage() {
    for seed in seeds() {
        if let Err(failure) = check_seed(seed, Switches::default()) {
            panic!(
                "seed {seed}: {failure}\nreplay: DSCHAT_STORAGE_SEED={seed} cargo test -p \
                 dschat-storage --test wal_crash"
            );
        }
    }
}

/// With `sync` acknowledging before fsync, the crash test above must fail.
#[cfg(feature = "bug-switches")]
#[test]
fn the_crash_test_catches_acknowledging_before_fsync() {
    let switches = Switches {
        wal: dschat_storage::wal::WalBugSwitches {
            acknowledge_before_fsync: true,
            ..Default::default()
        },
    };
    let caught = seeds()
        .into_iter()
        .filter(|&seed| check_seed(seed, switches).is_err())
        .count();
    assert!(caught > 0, "no seed detected a sync that does not sync");
}
