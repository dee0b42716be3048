//! The durable embedded store (`--store file`, the default): the registry's
//! changes (registrations, deregistrations, evictions, status and owner
//! changes) kept in a data directory, never its heartbeats, and loaded before
//! the controller serves, so a restart loses nothing and workers are not
//! asked to register again.
//!
//! The directory holds `registry.snapshot` (every record at some moment,
//! written whole to a temporary file, synced, then renamed over the old one)
//! and `registry.log` (each change after it, appended as checksummed
//! [`records`] by one writer thread that commits in groups: under a
//! registration storm one `fsync` covers every change that arrived while the
//! last one ran). When the log outgrows the snapshot the writer writes a new
//! snapshot and empties the log. A `LOCK` file, held with `flock` for the
//! life of the process, keeps a second controller off the directory.
//!
//! What `--fsync` can lose on a power cut: `always` nothing acknowledged
//! (each change is synced before the next is written); `batch` (the default)
//! the changes of the last group, a few milliseconds; `never` what the
//! kernel had not written back (up to about 30 s with Linux defaults). A
//! process crash (`kill -9`) loses nothing in any mode: written data is in the
//! kernel's cache.

pub mod records;
mod writer;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crank_proto::wire::ReplicatedWorker;
use crank_registry::{ChangeKind, ChangeSink, Origin, RegistryEvent};
use nix::fcntl::{Flock, FlockArg};

use records::{Record, Tail};

/// The controller id the embedded store writes records under.
pub const LOCAL_OWNER: &str = "local";
const SNAPSHOT: &str = "registry.snapshot";
const LOG: &str = "registry.log";
const LOCK: &str = "LOCK";

/// How the writer syncs what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    Always,
    Batch,
    Never,
}

impl std::str::FromStr for Fsync {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "always" => Ok(Fsync::Always),
            "batch" => Ok(Fsync::Batch),
            "never" => Ok(Fsync::Never),
            other => Err(format!("{other:?} is not always, batch or never")),
        }
    }
}

/// Why the store cannot be opened. Each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is in use by another running controller (its LOCK is held); stop it, or give this one another --data-dir", dir.display())]
    Locked { dir: PathBuf },
    #[error("{} is damaged at byte {offset}: {problem}; the controller does not start on data it cannot read. Move the file away to start empty, or keep the records before the damage with `crank store repair --discard-after-corruption --data-dir {}`", path.display(), dir.display())]
    Corrupt {
        path: PathBuf,
        dir: PathBuf,
        offset: u64,
        problem: String,
    },
    #[error("{}: not a snapshot of the registry ({problem}); move it away to start from the log alone", path.display())]
    BadSnapshot { path: PathBuf, problem: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What the store did, for `/metrics` and `/health`.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub writes: AtomicU64,
    pub fsyncs: AtomicU64,
    pub write_errors: AtomicU64,
    pub pending: AtomicU64,
    pub bytes_on_disk: AtomicU64,
    /// Unix milliseconds of the last successful write; 0 before any.
    pub last_write_ms: AtomicU64,
}

/// An open data directory: its lock, what it held, and the writer.
pub struct FileStore {
    _lock: Flock<File>,
    pub stats: Arc<StoreStats>,
    sender: std::sync::mpsc::Sender<Record>,
}

/// What loading found.
pub struct Loaded {
    pub workers: Vec<ReplicatedWorker>,
    /// The torn last record dropped, if any: its offset in the log.
    pub dropped_torn_record_at: Option<u64>,
}

/// The records of `dir` without opening it for writing (`crank store check`).
pub fn read(dir: &Path) -> Result<Loaded, StoreError> {
    let mut workers = read_snapshot(&dir.join(SNAPSHOT))?;
    let log_path = dir.join(LOG);
    let bytes = read_file(&log_path)?;
    let scan = records::scan(&bytes);
    let dropped = match scan.tail {
        Tail::Clean => None,
        Tail::Torn { offset } => Some(offset),
        Tail::Corrupt { offset, problem } => {
            return Err(StoreError::Corrupt {
                path: log_path,
                dir: dir.to_owned(),
                offset,
                problem,
            })
        }
    };
    for record in scan.records {
        apply(&mut workers, record);
    }
    Ok(Loaded {
        workers: workers.into_values().collect(),
        dropped_torn_record_at: dropped,
    })
}

/// Keeps the valid records before the first damaged one and drops the rest
/// (`crank store repair --discard-after-corruption`); how many bytes it cut.
pub fn repair(dir: &Path) -> Result<u64, StoreError> {
    let _lock = lock(dir)?;
    let log_path = dir.join(LOG);
    let bytes = read_file(&log_path)?;
    let scan = records::scan(&bytes);
    let cut = bytes.len() as u64 - scan.valid_len;
    if cut > 0 {
        truncate(&log_path, scan.valid_len)?;
    }
    Ok(cut)
}

impl FileStore {
    /// Locks `dir` (made if missing), loads it, drops a torn last record
    /// (one log line), and starts the writer.
    pub fn open(dir: &Path, fsync: Fsync) -> Result<(FileStore, Loaded), StoreError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock = lock(dir)?;
        let loaded = read(dir)?;
        let log_path = dir.join(LOG);
        if let Some(offset) = loaded.dropped_torn_record_at {
            log::warn!(
                "{}: the last change (at byte {offset}) was cut short by a crash; it is dropped and the rest loaded",
                log_path.display()
            );
            truncate(&log_path, offset)?;
        }
        let stats = Arc::new(StoreStats::default());
        let sender = writer::start(dir, fsync, &loaded.workers, stats.clone())?;
        Ok((
            FileStore {
                _lock: lock,
                stats,
                sender,
            },
            loaded,
        ))
    }

    /// The registry's end: its local changes go to the writer.
    pub fn sink(&self) -> FileSink {
        FileSink {
            sender: self.sender.clone(),
            stats: self.stats.clone(),
        }
    }
}

/// A [`ChangeSink`] that hands the registry's local changes to the writer.
pub struct FileSink {
    sender: std::sync::mpsc::Sender<Record>,
    stats: Arc<StoreStats>,
}

impl ChangeSink for FileSink {
    fn publish(&mut self, events: &[RegistryEvent]) {
        // Records loaded from the store come back as replica events: not
        // written again.
        for event in events.iter().filter(|e| e.origin == Origin::Local) {
            let record = match (event.kind, &event.replica) {
                (ChangeKind::Deregistered | ChangeKind::Evicted, _) => Record::Delete {
                    worker_id: event.worker_id.to_string(),
                },
                (_, Some(replica)) => Record::Put {
                    worker: Box::new((**replica).clone()),
                },
                (_, None) => continue,
            };
            self.stats.pending.fetch_add(1, Ordering::Relaxed);
            // The writer lives as long as the process.
            let _ = self.sender.send(record);
        }
    }
}

fn lock(dir: &Path) -> Result<Flock<File>, StoreError> {
    let path = dir.join(LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| StoreError::Locked {
        dir: dir.to_owned(),
    })
}

/// Cuts the file at `path` to `len` bytes, synced.
fn truncate(path: &Path, len: u64) -> Result<(), StoreError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io(path))?;
    file.set_len(len).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

fn read_file(path: &Path) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes).map_err(io(path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(path)(e)),
    }
    Ok(bytes)
}

type Workers = std::collections::BTreeMap<String, ReplicatedWorker>;

fn read_snapshot(path: &Path) -> Result<Workers, StoreError> {
    let bytes = read_file(path)?;
    if bytes.is_empty() {
        return Ok(Workers::new());
    }
    let workers: Vec<ReplicatedWorker> =
        serde_json::from_slice(&bytes).map_err(|e| StoreError::BadSnapshot {
            path: path.to_owned(),
            problem: e.to_string(),
        })?;
    Ok(workers
        .into_iter()
        .map(|w| (w.worker_id.clone(), w))
        .collect())
}

fn apply(workers: &mut Workers, record: Record) {
    match record {
        Record::Put { worker } => {
            workers.insert(worker.worker_id.clone(), *worker);
        }
        Record::Delete { worker_id } => {
            workers.remove(&worker_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crank_proto::wire::{Capability, WorkerStatus};

    fn worker(id: &str) -> ReplicatedWorker {
        ReplicatedWorker {
            worker_id: id.into(),
            worker_url: format!("https://{id}.local:8500"),
            capabilities: vec![Capability::new("invoke", "hello.greet", "1.0.0")],
            instance: None,
            registered_by: "worker/x".into(),
            registered_at: chrono::Utc::now(),
            owner: LOCAL_OWNER.into(),
            status: WorkerStatus::Healthy,
        }
    }

    fn drained(stats: &StoreStats) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while stats.pending.load(Ordering::Relaxed) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer never drained"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn churn_is_compacted_and_what_remains_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let (store, loaded) = FileStore::open(dir.path(), Fsync::Never).unwrap();
        assert!(loaded.workers.is_empty());
        // 50,000 register/deregister cycles of 100 ids, then 10 left registered.
        for i in 0..50_000u32 {
            let id = format!("w{}", (i / 2) % 100);
            // Each id registered, then deregistered.
            let record = if i % 2 == 0 {
                Record::Put {
                    worker: Box::new(worker(&id)),
                }
            } else {
                Record::Delete { worker_id: id }
            };
            store.stats.pending.fetch_add(1, Ordering::Relaxed);
            store.sender.send(record).unwrap();
        }
        for i in 0..10 {
            store.stats.pending.fetch_add(1, Ordering::Relaxed);
            store
                .sender
                .send(Record::Put {
                    worker: Box::new(worker(&format!("kept-{i}"))),
                })
                .unwrap();
        }
        drained(&store.stats);
        // The last group's compaction may still run: poll, with a deadline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let on_disk = store.stats.bytes_on_disk.load(Ordering::Relaxed);
            if on_disk < 2 * 1024 * 1024 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{on_disk} bytes after the churn: not compacted"
            );
            std::thread::yield_now();
        }
        drop(store);
        let (_store, loaded) = FileStore::open(dir.path(), Fsync::Never).unwrap();
        let mut ids: Vec<String> = loaded.workers.into_iter().map(|w| w.worker_id).collect();
        ids.sort();
        let expected: Vec<String> = (0..10).map(|i| format!("kept-{i}")).collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn a_second_open_of_a_directory_in_use_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_first, _) = FileStore::open(dir.path(), Fsync::Batch).unwrap();
        assert!(matches!(
            FileStore::open(dir.path(), Fsync::Batch),
            Err(StoreError::Locked { .. })
        ));
    }
}
