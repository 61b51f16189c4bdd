//! # A replica's clocks: hybrid logical time and message ids that never repeat
//!
//! **The problem.** The leader stamps each command with a server time and proposes an id for
//! the event it creates. Physical clocks drift and jump (backwards too), and a restarted server
//! must never mint an id it minted before its crash.
//!
//! **The guarantee.** [`Clocks::stamp`] returns a hybrid timestamp greater than every earlier
//! one of this replica (Kulkarni et al., "Logical Physical Clocks", 2014) and an id greater
//! than every id this replica minted before, across restarts and backward jumps: the id
//! generator's high-water mark is made durable before an id beyond it is used
//! ([`MessageIdGenerator`]). The replica makes the stamps causal along the log as well: before
//! a leader stamps, it calls [`Clocks::observe`] with the applied state's newest time and, once
//! per term, with the stamp of every entry of its log not applied yet, so each command is
//! stamped later than every command before it in the log, whichever leader's clock stamped
//! those (TESTING.md row 18; the simulator checks it after every apply).
//!
//! **How it works.** The mark lives in the file `id-high-water-mark` of the replica's
//! directory, replaced atomically (write a temporary file, sync, rename, sync the directory)
//! through the [`Disk`] interface, so the simulator can crash it at any point.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dschat_core::clock::hybrid::{HybridClock, HybridTimestamp};
use dschat_core::ids::MessageId;
use dschat_core::message_id::MessageIdGenerator;
use dschat_storage::disk::{Disk, OpenMode};
use dschat_storage::StorageError;

/// Largest distance a remote timestamp may be ahead of the local clock, in ms.
const MAX_CLOCK_OFFSET_MS: u64 = 60_000;
const HIGH_WATER_MARK_FILE: &str = "id-high-water-mark";

/// Server time and id minting for one replica.
#[derive(Debug)]
pub struct Clocks {
    hybrid: HybridClock,
    ids: MessageIdGenerator,
    disk: Arc<dyn Disk>,
    directory: PathBuf,
    /// Test-only bug switch: stamps follow the physical clock backwards.
    #[cfg(feature = "bug-switches")]
    follow_physical_time_backwards: bool,
}

impl Clocks {
    /// Restores the clocks from the durable high-water mark in `directory`.
    pub fn open(disk: Arc<dyn Disk>, directory: &Path, node: u64) -> Result<Clocks, StorageError> {
        let path = directory.join(HIGH_WATER_MARK_FILE);
        let exists = disk
            .exists(&path)
            .map_err(|error| StorageError::io("looking for the id high-water mark", error))?;
        let mark = if exists {
            let file = disk
                .open(&path, OpenMode::Existing)
                .map_err(|error| StorageError::io("opening the id high-water mark", error))?;
            let length = file
                .len()
                .map_err(|error| StorageError::io("reading the id high-water mark", error))?;
            let mut bytes = vec![0; length as usize];
            file.read_exact_at(0, &mut bytes)
                .map_err(|error| StorageError::io("reading the id high-water mark", error))?;
            let array: [u8; 8] = bytes.try_into().map_err(|_| {
                StorageError::io(
                    "reading the id high-water mark",
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "not 8 bytes"),
                )
            })?;
            u64::from_le_bytes(array)
        } else {
            0
        };
        Ok(Clocks {
            hybrid: HybridClock::new(HybridTimestamp::default(), MAX_CLOCK_OFFSET_MS),
            ids: MessageIdGenerator::new(node, mark),
            disk,
            directory: directory.to_path_buf(),
            #[cfg(feature = "bug-switches")]
            follow_physical_time_backwards: false,
        })
    }

    /// Makes every later stamp exceed `last_time` and every later id exceed `last_id` (the
    /// newest ones in the applied state, which may come from other replicas).
    pub fn observe(&mut self, last_time: HybridTimestamp, last_id: MessageId) {
        if last_time > self.hybrid.last() {
            self.hybrid = HybridClock::new(last_time, MAX_CLOCK_OFFSET_MS);
        }
        self.ids.observe(last_id);
    }

    /// A timestamp and a fresh id at physical time `now_unix_ms`; persists a new high-water
    /// mark first when the generator asks for one.
    pub fn stamp(
        &mut self,
        now_unix_ms: u64,
    ) -> Result<(HybridTimestamp, MessageId), StorageError> {
        #[cfg(feature = "bug-switches")]
        if self.follow_physical_time_backwards && now_unix_ms < self.hybrid.last().wall_ms {
            self.hybrid = HybridClock::new(
                HybridTimestamp {
                    wall_ms: now_unix_ms,
                    logical: 0,
                },
                MAX_CLOCK_OFFSET_MS,
            );
        }
        let time = self.hybrid.now(now_unix_ms);
        let next = self.ids.next(now_unix_ms);
        if let Some(mark) = next.persist_high_water_mark_ms {
            if let Err(error) = self.persist_mark(mark) {
                self.ids.retract_reservation();
                return Err(error);
            }
        }
        Ok((time, next.id))
    }

    /// The hybrid-clock bug of TESTING.md row 18 (feature `bug-switches`): with `on`, a stamp
    /// takes the physical time whenever it is behind the last stamp, instead of the maximum
    /// of the two, so a clock stepped back or a new leader with a slower clock stamps commands
    /// earlier than the ones before them in the log.
    #[cfg(feature = "bug-switches")]
    pub fn set_follow_physical_time_backwards(&mut self, on: bool) {
        self.follow_physical_time_backwards = on;
    }

    fn persist_mark(&self, mark: u64) -> Result<(), StorageError> {
        let path = self.directory.join(HIGH_WATER_MARK_FILE);
        let temporary = self.directory.join("id-high-water-mark.tmp");
        let context = "persisting the id high-water mark";
        let io = |error| StorageError::io(context, error);
        if self.disk.exists(&temporary).map_err(io)? {
            self.disk.remove_file(&temporary).map_err(io)?;
        }
        let file = self
            .disk
            .open(&temporary, OpenMode::CreateNew)
            .map_err(io)?;
        file.write_all_at(0, &mark.to_le_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        self.disk.rename(&temporary, &path).map_err(io)?;
        self.disk.sync_dir(&self.directory).map_err(io)?;
        Ok(())
    }
}
