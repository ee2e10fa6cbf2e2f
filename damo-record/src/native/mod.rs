//! damo-trace's own record format: an append-only stream of checksummed chunks.
//!
//! Layout (all integers little endian; docs/record-format.md has the full table):
//!
//! ```text
//! header:  magic "\x89DTR\r\n\x1a\n" (8 bytes) | version u32 | flags u32 (0)
//! chunk:   kind u16 | flags u16 | payload length u32 | crc32 u32 (of kind, flags, payload) | payload
//! ```
//!
//! A reader stops at the first chunk that is cut short or fails its checksum and returns
//! everything before it, saying where the damage is: a recording killed at any byte loses at
//! most the chunk being written. Snapshots go in frames of an open-ended chunk, one frame per
//! snapshot coded against the target's previous one (0.3 bytes a region), each flushed as it
//! is written, so a kill loses at most the snapshot being written. Every few hundred snapshots
//! a Snapshot chunk flagged [`FLAG_KEY`] starts a key group: each target's first snapshot in
//! it is coded against nothing, so groups decode independently, on every core
//! ([`stream`]). Unknown chunk kinds are skipped, so newer writers can add kinds without
//! breaking older readers; a new version number means an incompatible change.
//! [`read`] builds the whole record; [`stream`] hands out its snapshots one at a time from a
//! file, for reports on records too long to hold.

mod codec;
mod reader;
mod snapshot;
pub mod stream;
mod summaries;
mod writer;

pub use reader::{read, read_with, NativeRead};
pub use stream::{stream, stream_file, Rest, StreamEnd, Targets};
pub use summaries::{summaries, summaries_of, Summaries};
pub use writer::NativeWriter;

pub const MAGIC: [u8; 8] = *b"\x89DTR\r\n\x1a\n";
/// 3: key groups ([`FLAG_KEY`]). 2: snapshots in frames coded against their predecessors
/// across the whole record (still read). 1 had a chunk per snapshot.
pub const VERSION: u32 = 3;
/// The oldest version read: a version-2 record has no key groups.
pub const MIN_VERSION: u32 = 2;
pub const HEADER_LEN: usize = 16;
pub const CHUNK_HEADER_LEN: usize = 12;

/// Declares [`ChunkKind`] and its decoding from one table, so an id is written once.
macro_rules! chunk_kinds {
    ($($(#[$doc:meta])* $kind:ident = $id:literal,)*) => {
        /// Chunk kinds. Ids are fixed and never reused.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u16)]
        pub enum ChunkKind {
            $($(#[$doc])* $kind = $id,)*
        }

        impl ChunkKind {
            fn from_u16(v: u16) -> Option<Self> {
                match v {
                    $($id => Some(Self::$kind),)*
                    _ => None,
                }
            }
        }
    };
}

chunk_kinds! {
    /// A target's identity and intervals; later chunks refer to it by its index.
    Target = 1,
    /// Snapshots, one frame each (an open-ended, [`FLAG_FRAMED`] chunk), each coded against
    /// the previous one of its target in the same key group ([`FLAG_KEY`]).
    Snapshot = 2,
    /// Modules appended to the table that stack frames index.
    Modules = 3,
    /// A batch of stack samples.
    Stacks = 4,
    /// Names of kernel addresses.
    KernelSymbols = 5,
    /// Loss counters (the last one wins).
    Losses = 6,
    /// The writer finished cleanly. A summarizing writer's holds the Summary chunk's offset.
    End = 7,
    /// Memory footprint snapshots (`Record::footprints`).
    Footprints = 8,
    /// Processes' mappings (`Record::vmas`).
    Vmas = 9,
    /// Processes' CPU times (`Record::proc_stats`).
    ProcStats = 10,
    // 11 is reserved.
    /// How the record was made (`Record::metadata`), as JSON; the last one wins.
    Metadata = 12,
    /// Names of the sampled file offsets (`Record::code_symbols`), written at the end.
    CodeSymbols = 13,
    /// The perf map entries samples fell in (`Record::jit_symbols`), written at the end.
    JitSymbols = 14,
    /// Every target and what its snapshots add up to ([`crate::summary`]), last before the
    /// End chunk, which then holds its offset (u64): [`NativeWriter::summarizing`],
    /// [`summaries`].
    Summary = 15,
}

/// Chunk flag: the payload is zlib-compressed.
pub const FLAG_ZLIB: u16 = 1;
/// Chunk flag: the chunk is open-ended. Its length field is [`OPEN_LEN`], its CRC covers the
/// header only, and frames follow it: v length (0 ends the chunk), u16 check (the low half
/// of the frame's CRC-32), the frame. A cut loses only the frame it falls in.
pub const FLAG_FRAMED: u16 = 2;
pub const OPEN_LEN: u32 = u32::MAX;
/// Snapshot chunk flag (version 3): the chunk starts a key group. Every target's previous
/// snapshot is forgotten before its frames (an empty snapshot, recent durations 0), so the
/// group (this chunk and the Snapshot chunks up to the next key one) decodes on its own.
/// Other chunks (stacks, /proc samples) end a Snapshot chunk every second or so without
/// ending its group: a key frame costs what 14 coded against their predecessor do.
pub const FLAG_KEY: u16 = 4;

#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    #[error("not a damo-trace record (bad magic)")]
    BadMagic,
    #[error("damo-trace record version {0} is not supported (this damo-trace reads versions {MIN_VERSION} to {VERSION})")]
    UnknownVersion(u32),
    #[error("the file is too short for a damo-trace record header")]
    Short,
    #[error("failed to write the record: {0}")]
    Io(#[from] std::io::Error),
    #[error("failed to read the record: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    OverBudget(#[from] crate::budget::OverBudget),
}

#[cfg(test)]
mod tests;
