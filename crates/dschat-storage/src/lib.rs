//! # dschat-storage: durable storage
//!
//! The write-ahead log (Raft entries and hard state), the state store on redb, and snapshots.
