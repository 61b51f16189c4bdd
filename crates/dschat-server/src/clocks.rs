//! The node's clocks: a hybrid logical clock for server time, and the message-id generator
//! whose high-water mark is kept in a small file in the data directory.

use dschat_core::clock::hybrid::{HybridClock, HybridTimestamp};
use dschat_core::ids::MessageId;
use dschat_core::message_id::MessageIdGenerator;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest offset of another node's clock we accept, in ms.
const MAX_CLOCK_OFFSET_MS: u64 = 60_000;
const HIGH_WATER_MARK_FILE: &str = "id-high-water-mark";

/// Wall-clock time now, Unix ms (the one place the node reads the time of day).
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Server time and id minting for one node.
pub struct Clocks {
    hybrid: HybridClock,
    ids: MessageIdGenerator,
    high_water_mark_path: PathBuf,
}

impl Clocks {
    /// Restores the clocks: never below the durable high-water mark, the last id and the last
    /// time found in the state.
    pub fn open(
        data_dir: &Path,
        node: u64,
        last_id: MessageId,
        last_time: HybridTimestamp,
    ) -> std::io::Result<Clocks> {
        let high_water_mark_path = data_dir.join(HIGH_WATER_MARK_FILE);
        let mark = match std::fs::read_to_string(&high_water_mark_path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|error| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {error}", high_water_mark_path.display()),
                )
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(error) => return Err(error),
        };
        let mut ids = MessageIdGenerator::new(node, mark);
        ids.observe(last_id);
        Ok(Clocks {
            hybrid: HybridClock::new(last_time, MAX_CLOCK_OFFSET_MS),
            ids,
            high_water_mark_path,
        })
    }

    /// A server timestamp and a fresh id for an event at wall time `now_unix_ms`. Persists a
    /// new high-water mark first when the generator asks for one.
    pub fn stamp(&mut self, now_unix_ms: u64) -> std::io::Result<(HybridTimestamp, MessageId)> {
        let time = self.hybrid.now(now_unix_ms);
        let next = self.ids.next(now_unix_ms);
        if let Some(mark) = next.persist_high_water_mark_ms {
            if let Err(error) =
                write_durably(&self.high_water_mark_path, mark.to_string().as_bytes())
            {
                self.ids.retract_reservation();
                return Err(error);
            }
        }
        Ok((time, next.id))
    }
}

/// Replaces `path` with `contents` so that after a crash it holds either the old or the new
/// contents, both complete: write a temporary file, fsync it, rename, fsync the directory.
pub fn write_durably(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(directory)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_after_restart_exceed_ids_before_even_with_the_clock_set_back() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_800_000_000_000;
        let mut clocks =
            Clocks::open(dir.path(), 1, MessageId(0), HybridTimestamp::default()).unwrap();
        let (_, before) = clocks.stamp(now).unwrap();
        let mut restarted =
            Clocks::open(dir.path(), 1, MessageId(0), HybridTimestamp::default()).unwrap();
        let (_, after) = restarted.stamp(now - 3_600_000).unwrap();
        assert!(after > before);
    }
}
