//! A real database engine nobody here wrote: SQLite (the C amalgamation, through rusqlite's
//! `bundled` build) driven through three phases, each from its own caller function. SQLite's
//! own functions (`sqlite3VdbeExec`, `memcpy`...) run in every phase; only the callers
//! (`engine_bulk_insert`, `engine_build_index`, `engine_point_queries`) tell the phases apart.

use std::hint::black_box;

use anyhow::Result;
use rusqlite::{params, Connection};

use crate::run_phase;

/// Bytes of the payload of each row: rows big enough that the table spans tens of MiB.
const PAYLOAD: usize = 200;

pub fn run(per_phase: std::time::Duration) -> Result<()> {
    // In memory: SQLite's pages live in this process's heap, where DAMON's vaddr monitoring
    // sees them (a file's pages would be the kernel's page cache).
    let db = Connection::open_in_memory()?;
    db.execute_batch("PRAGMA cache_size = -262144; CREATE TABLE items (id INTEGER PRIMARY KEY, key INTEGER NOT NULL, payload BLOB NOT NULL);")?;
    let mut rows = 0u64;
    let mut failed = None;
    run_phase("insert", per_phase, || {
        if failed.is_none() {
            failed = engine_bulk_insert(&db, &mut rows).err();
        }
    });
    run_phase("index", per_phase, || {
        if failed.is_none() {
            failed = engine_build_index(&db).err();
        }
    });
    let mut found = 0u64;
    run_phase("query", per_phase, || {
        if failed.is_none() {
            failed = engine_point_queries(&db, rows, &mut found).err();
        }
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    println!("engine rows {rows} found {found}");
    Ok(())
}

/// The keys are a permutation-like spread of the row ids, so the index build has to sort.
fn key_of(id: u64) -> i64 {
    (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16) as i64
}

/// Phase 1: one transaction of 1000 rows per call.
#[no_mangle]
#[inline(never)]
pub fn engine_bulk_insert(db: &Connection, rows: &mut u64) -> rusqlite::Result<()> {
    let tx = db.unchecked_transaction()?;
    {
        let mut insert = tx.prepare_cached("INSERT INTO items (id, key, payload) VALUES (?1, ?2, ?3)")?;
        let payload = [0x5au8; PAYLOAD];
        for _ in 0..1000 {
            *rows += 1;
            insert.execute(params![*rows as i64, key_of(*rows), &payload[..]])?;
        }
    }
    tx.commit()
}

/// Phase 2: builds an index over the keys (a table scan and a sort), drops it, again.
#[no_mangle]
#[inline(never)]
pub fn engine_build_index(db: &Connection) -> rusqlite::Result<()> {
    // Not a tail call: this frame stays on the stack under SQLite's, as a real caller's would.
    let built = db.execute_batch("CREATE INDEX items_key ON items (key); DROP INDEX items_key;");
    black_box(&built);
    built
}

/// Phase 3: point queries by primary key, 1000 a call, at random rows of the first eighth
/// (recent customers, say): a hot set of its own.
#[no_mangle]
#[inline(never)]
pub fn engine_point_queries(db: &Connection, rows: u64, found: &mut u64) -> rusqlite::Result<()> {
    let mut select = db.prepare_cached("SELECT length(payload) FROM items WHERE id = ?1")?;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..1000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let id = x % (rows / 8).max(1) + 1;
        let len: i64 = select.query_row(params![id as i64], |r| r.get(0))?;
        *found += black_box(len) as u64;
    }
    Ok(())
}
