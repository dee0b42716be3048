//! The store's writer thread: appends records in groups, syncs per
//! [`Fsync`], and compacts the log into a new snapshot when it has grown
//! past the snapshot.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use crank_proto::wire::ReplicatedWorker;

use super::records::{encode, Record};
use super::{apply, io, Fsync, StoreError, StoreStats, LOG, SNAPSHOT};

/// The log is compacted once it is larger than this and than the snapshot.
const COMPACT_AFTER_BYTES: u64 = 1024 * 1024;
/// Most changes in one group: a storm is written in appends of bounded size,
/// with a chance to compact between them.
const MAX_GROUP: usize = 4096;

struct Writer {
    dir: PathBuf,
    fsync: Fsync,
    log: File,
    log_bytes: u64,
    snapshot_bytes: u64,
    /// Every record as the store holds it: what a snapshot writes.
    workers: BTreeMap<String, ReplicatedWorker>,
    stats: Arc<StoreStats>,
    /// A write failed (a full disk): said once until one succeeds again.
    failing: bool,
}

/// Starts the writer over `dir`, whose records are `loaded`.
pub fn start(
    dir: &Path,
    fsync: Fsync,
    loaded: &[ReplicatedWorker],
    stats: Arc<StoreStats>,
) -> Result<Sender<Record>, StoreError> {
    let log_path = dir.join(LOG);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io(&log_path))?;
    let log_bytes = log.metadata().map_err(io(&log_path))?.len();
    let snapshot_bytes = std::fs::metadata(dir.join(SNAPSHOT)).map_or(0, |m| m.len());
    stats
        .bytes_on_disk
        .store(log_bytes + snapshot_bytes, Ordering::Relaxed);
    let mut writer = Writer {
        dir: dir.to_owned(),
        fsync,
        log,
        log_bytes,
        snapshot_bytes,
        workers: loaded
            .iter()
            .map(|w| (w.worker_id.clone(), w.clone()))
            .collect(),
        stats,
        failing: false,
    };
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("crank-store".into())
        .spawn(move || writer.run(receiver))
        .map_err(io(dir))?;
    Ok(sender)
}

impl Writer {
    fn run(&mut self, receiver: Receiver<Record>) {
        // One group: the first change, and every one that arrived meanwhile.
        while let Ok(first) = receiver.recv() {
            let mut group = vec![first];
            group.extend(receiver.try_iter().take(MAX_GROUP - 1));
            let count = group.len() as u64;
            self.write_group(group);
            self.stats.pending.fetch_sub(count, Ordering::Relaxed);
            if self.log_bytes > COMPACT_AFTER_BYTES && self.log_bytes > self.snapshot_bytes {
                if let Err(e) = self.compact() {
                    log::error!("could not compact the store into a new snapshot: {e}; the log keeps growing until it can");
                }
            }
        }
    }

    fn write_group(&mut self, group: Vec<Record>) {
        let mut bytes = Vec::new();
        for record in group {
            encode(&record, &mut bytes);
            apply(&mut self.workers, record);
            if self.fsync == Fsync::Always {
                self.append(&std::mem::take(&mut bytes), true);
            }
        }
        if !bytes.is_empty() {
            self.append(&bytes, self.fsync == Fsync::Batch);
        }
    }

    /// Appends `bytes`, and syncs them if `sync`.
    fn append(&mut self, bytes: &[u8], sync: bool) {
        let result =
            self.log
                .write_all(bytes)
                .and_then(|()| if sync { self.log.sync_data() } else { Ok(()) });
        match result {
            Ok(()) => {
                if self.failing {
                    self.failing = false;
                    log::info!("the store writes again in {}", self.dir.display());
                }
                self.log_bytes += bytes.len() as u64;
                self.stats.writes.fetch_add(1, Ordering::Relaxed);
                if sync {
                    self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
                }
                self.stats
                    .bytes_on_disk
                    .store(self.log_bytes + self.snapshot_bytes, Ordering::Relaxed);
                let now = chrono::Utc::now().timestamp_millis();
                self.stats
                    .last_write_ms
                    .store(u64::try_from(now).unwrap_or(0), Ordering::Relaxed);
            }
            Err(e) => {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                if !self.failing {
                    self.failing = true;
                    log::error!(
                        "the store cannot write to {}: {e}; the controller keeps serving from memory, and changes made now are lost if it restarts before the store writes again",
                        self.dir.join(LOG).display()
                    );
                }
            }
        }
    }

    /// Writes every record to a new snapshot, then empties the log.
    fn compact(&mut self) -> std::io::Result<()> {
        let workers: Vec<&ReplicatedWorker> = self.workers.values().collect();
        let body = serde_json::to_vec(&workers).map_err(std::io::Error::other)?;
        let temporary = self.dir.join(format!("{SNAPSHOT}.tmp"));
        let mut file = File::create(&temporary)?;
        file.write_all(&body)?;
        file.sync_all()?;
        std::fs::rename(&temporary, self.dir.join(SNAPSHOT))?;
        File::open(&self.dir)?.sync_all()?;
        self.log.set_len(0)?;
        self.log.sync_all()?;
        self.snapshot_bytes = body.len() as u64;
        self.log_bytes = 0;
        self.stats
            .bytes_on_disk
            .store(self.snapshot_bytes, Ordering::Relaxed);
        log::debug!(
            "compacted the store: a snapshot of {} workers, {} bytes",
            workers.len(),
            self.snapshot_bytes
        );
        Ok(())
    }
}
