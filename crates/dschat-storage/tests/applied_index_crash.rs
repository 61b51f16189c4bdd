//! Applied-index atomicity under a kill loop, on the simulated disk.
//!
//! A state machine of counters applies non-idempotent commands ("add d to counter k") from a
//! log, in batches, through `StateStore::apply_batch`. Power fails again and again at a random
//! sync (so in the middle of a commit, between the state and anything saved apart from it);
//! after each restart the node resumes from the store's applied index. At the end the counters
//! must equal a reference computed in memory: an entry applied twice or skipped changes them.
//!
//! Power fails only once the store is open: redb 2.6.4 does not survive power loss during its
//! own recovery at open (it panics on reopening; see the crate's known limitations). Set
//! `DSCHAT_STORAGE_CRASH_DURING_OPEN=1` to include those crashes and reproduce it.
//!
//! Replay one seed: `DSCHAT_STORAGE_SEED=<seed> cargo test -p dschat-storage --test
//! applied_index_crash`. More seeds: `DSCHAT_STORAGE_SEEDS=<count>` (default 12).

use dschat_core::ids::{LogIndex, Term};
use dschat_storage::disk::{CrashPlan, Disk, SimulatedDisk};
use dschat_storage::{AppliedPosition, StateStore, StorageError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const DEFAULT_SEED_COUNT: u64 = 12;
const COMMAND_COUNT: u64 = 150;
const COUNTER_COUNT: u64 = 6;
const STORE_PATH: &str = "/node/state.redb";
/// Most syncs that succeed before the next power loss.
const MAX_SYNCS_BETWEEN_CRASHES: u64 = 30;
/// Restarts after which the test gives up (a loop that makes no progress is a failure).
const MAX_RESTARTS: u64 = 2_000;

/// SplitMix64, so each run replays from its seed.
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

/// The committed log: command `i` (index `i + 1`) adds `amount` to `counter`.
#[derive(Clone, Copy, Debug)]
struct Command {
    counter: u64,
    amount: u64,
}

fn counter_key(counter: u64) -> Vec<u8> {
    format!("counter-{counter}").into_bytes()
}

fn reference(commands: &[Command]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut counters = BTreeMap::new();
    for command in commands {
        let value: &mut u64 = counters.entry(command.counter).or_default();
        *value += command.amount;
    }
    counters
        .into_iter()
        .map(|(counter, value)| (counter_key(counter), value.to_le_bytes().to_vec()))
        .collect()
}

fn open(disk: &SimulatedDisk, switches: Switches) -> Result<StateStore, StorageError> {
    let shared: Arc<dyn Disk> = Arc::new(disk.clone());
    let mut store = StateStore::open_on(shared, Path::new(STORE_PATH))?;
    switches.apply(&mut store);
    Ok(store)
}

/// Applies commands from the store's applied index on, in batches, until done or the power
/// fails.
fn apply_from_log(
    store: &mut StateStore,
    commands: &[Command],
    generator: &mut Generator,
) -> Result<(), StorageError> {
    loop {
        let applied = store.applied_index()?.0;
        if applied == commands.len() as u64 {
            return Ok(());
        }
        let batch_end = (applied + 1 + generator.below(4)).min(commands.len() as u64);
        let mut counters: BTreeMap<u64, u64> = BTreeMap::new();
        for command in &commands[applied as usize..batch_end as usize] {
            let current = match counters.get(&command.counter) {
                Some(value) => *value,
                None => read_counter(store, command.counter)?,
            };
            counters.insert(command.counter, current + command.amount);
        }
        let puts: Vec<_> = counters
            .into_iter()
            .map(|(counter, value)| (counter_key(counter), value.to_le_bytes().to_vec()))
            .collect();
        let position = AppliedPosition {
            index: LogIndex(batch_end),
            term: Term(1),
        };
        store.apply_batch(position, &puts, &[])?;
    }
}

fn read_counter(store: &StateStore, counter: u64) -> Result<u64, StorageError> {
    let value = store.get(&counter_key(counter))?;
    Ok(value.map_or(0, |bytes| {
        u64::from_le_bytes(bytes.try_into().expect("counters are 8 bytes"))
    }))
}

/// What a power loss keeps of the unsynced writes: a random prefix of each file's unsynced
/// writes (the last one torn) and of each directory's unsynced name changes.
fn crash_plan(generator: &mut Generator) -> CrashPlan {
    CrashPlan::Random {
        seed: generator.next(),
    }
}

thread_local! {
    /// Set while a run may be cut by power loss, to keep the panics redb raises on the I/O
    /// errors that follow out of the test output.
    static POWER_MAY_FAIL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `work`, catching a panic (the caller decides whether it is the process dying with the
/// power or a real failure).
fn run_until_power_loss<T>(
    work: impl FnOnce() -> Result<T, StorageError>,
) -> std::thread::Result<Result<T, StorageError>> {
    static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
    QUIET_HOOK.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !POWER_MAY_FAIL.with(std::cell::Cell::get) {
                default_hook(info);
            }
        }));
    });
    POWER_MAY_FAIL.with(|flag| flag.set(true));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
    POWER_MAY_FAIL.with(|flag| flag.set(false));
    outcome
}

fn message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// One seeded kill loop; an error describes how the final state differs from the reference.
fn check_seed(seed: u64, switches: Switches) -> Result<(), String> {
    let mut generator = Generator(seed);
    let commands: Vec<Command> = (0..COMMAND_COUNT)
        .map(|_| Command {
            counter: generator.below(COUNTER_COUNT),
            amount: 1 + generator.below(1000),
        })
        .collect();
    let disk = SimulatedDisk::new();
    for restart in 0..MAX_RESTARTS {
        let plan = crash_plan(&mut generator);
        let crash_during_open = std::env::var_os("DSCHAT_STORAGE_CRASH_DURING_OPEN").is_some();
        let mut opened = None;
        if !crash_during_open {
            let store = open(&disk, switches).map_err(|error| format!("reopening: {error}"))?;
            opened = Some(store);
        }
        disk.crash_after_syncs(generator.below(MAX_SYNCS_BETWEEN_CRASHES), plan);
        let outcome = run_until_power_loss(|| {
            let mut store = match opened {
                Some(store) => store,
                None => open(&disk, switches)?,
            };
            apply_from_log(&mut store, &commands, &mut generator)?;
            Ok(store)
        });
        let crash_still_pending = disk.cancel_scheduled_crash();
        let store = match outcome {
            Ok(Ok(store)) => store,
            Ok(Err(error)) if crash_still_pending => {
                return Err(format!(
                    "restart {restart}: an error without a crash: {error}"
                ))
            }
            Err(panic) if crash_still_pending => {
                return Err(format!(
                    "restart {restart}: a panic without a crash: {}",
                    message(&*panic)
                ))
            }
            // Power failed, and the process died with it (an error or a panic after the failed
            // sync is just how it died): restart.
            Ok(Err(_)) | Err(_) => continue,
        };
        let found: BTreeMap<_, _> = store
            .scan(b"", usize::MAX)
            .map_err(|error| error.to_string())?
            .into_iter()
            .collect();
        if found != reference(&commands) {
            return Err(format!(
                "after {restart} restarts the counters differ from the reference"
            ));
        }
        return Ok(());
    }
    Err(format!("no progress after {MAX_RESTARTS} restarts"))
}

/// The bug switches a run uses (none without the `bug-switches` feature).
#[derive(Clone, Copy, Debug, Default)]
struct Switches {
    #[cfg(feature = "bug-switches")]
    store: dschat_storage::state_store::StateStoreBugSwitches,
}

impl Switches {
    fn apply(&self, _store: &mut StateStore) {
        #[cfg(feature = "bug-switches")]
        _store.set_bug_switches(self.store);
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
fn no_entry_is_applied_twice_or_skipped_across_crashes() {
    for seed in seeds() {
        if let Err(failure) = check_seed(seed, Switches::default()) {
            panic!(
                "seed {seed}: {failure}\nreplay: DSCHAT_STORAGE_SEED={seed} cargo test -p \
                 dschat-storage --test applied_index_crash"
            );
        }
    }
}

/// With the applied index saved in a separate transaction, the kill loop must fail.
#[cfg(feature = "bug-switches")]
#[test]
fn the_kill_loop_catches_saving_the_applied_index_apart() {
    let switches = Switches {
        store: dschat_storage::state_store::StateStoreBugSwitches {
            applied_index_in_separate_transaction: true,
        },
    };
    let caught = seeds()
        .into_iter()
        .filter(|&seed| check_seed(seed, switches).is_err())
        .count();
    assert!(
        caught > 0,
        "no seed detected the applied index saved apart from the state"
    );
}
