//! One command at a time per loop. `up`, `down` and `smoke` take an exclusive lock on a file named after the loop
//! before they touch anything, so that two of them never race each other's creates and removals: the later one
//! says whom it waits for ("waiting for another `up` of loop X (pid N)…") and then runs on what the first left.
//!
//! The lock is flock(2), which the kernel releases when its holder's process ends however it ends (a crash,
//! SIGKILL), so no stale lock outlives a command. The file also names its holder (pid and verb) for that line.
//! Lock files are never removed: a process waiting on a removed file's lock would hold a lock no one else sees.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, flock};
use rustix::io::Errno;

use crate::error::{Context, Error, Result};
use crate::ui::Ui;

/// How often a waiter tries again. Polling, not a blocking flock, keeps the wait cancellable by a signal.
const POLL: Duration = Duration::from_millis(100);
/// How long a holder may take to write its name before a waiter says it waits without naming it.
const NAMELESS_AFTER: Duration = Duration::from_secs(1);

/// Held until dropped (or the process ends).
#[derive(Debug)]
pub struct LoopLock {
    _file: File,
}

/// Who holds a lock, as its file says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    pid: u32,
    verb: String,
}

impl Holder {
    fn parse(text: &str) -> Option<Holder> {
        let (pid, verb) = text.trim().split_once(' ')?;
        Some(Holder {
            pid: pid.parse().ok()?,
            verb: verb.to_string(),
        })
    }
}

/// Where lock files live: one directory per user in the temp dir. Not `$XDG_RUNTIME_DIR`, which a desktop session
/// has and an ssh session without pam_systemd, cron or an IDE's terminal may not: the same user's commands would
/// lock different files and not be serialised.
pub fn dir() -> PathBuf {
    std::env::temp_dir().join(format!("restate-dev-{}", rustix::process::getuid().as_raw()))
}

/// What this process is waiting for, while it waits for a lock: a signal then ends a command that made nothing.
static WAITING: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// While this process waits for a loop's lock: for whom, as "another `up` of loop X (pid N)".
pub fn waiting_for() -> Option<String> {
    WAITING.lock().ok().and_then(|w| w.clone())
}

fn set_waiting(what: Option<String>) {
    if let Ok(mut waiting) = WAITING.lock() {
        *waiting = what;
    }
}

/// Takes loop `name`'s lock for `verb`, waiting (and saying so on stderr) while another command holds it.
pub async fn acquire(name: &str, verb: &str, ui: &Ui) -> Result<LoopLock> {
    acquire_in(&dir(), name, verb, ui).await
}

async fn acquire_in(dir: &Path, name: &str, verb: &str, ui: &Ui) -> Result<LoopLock> {
    let path = dir.join(format!("{name}.lock"));
    let mut file = open(dir, &path)?;
    let started = Instant::now();
    let mut announced: Option<Option<Holder>> = None;
    while !try_lock(&file, &path)? {
        let holder = std::fs::read_to_string(&path).ok().and_then(|t| Holder::parse(&t));
        // Say whom we wait for, again when the holder changes; a holder that has not written its name yet
        // gets a moment to.
        let nameless = holder.is_none() && started.elapsed() >= NAMELESS_AFTER && announced.is_none();
        if (holder.is_some() && announced.as_ref() != Some(&holder)) || nameless {
            let whom = match &holder {
                Some(h) => format!("another `{}` of loop {name} (pid {})", h.verb, h.pid),
                None => format!("another command on loop {name} (lock {})", path.display()),
            };
            ui.info(format!("waiting for {whom}…"));
            set_waiting(Some(whom));
            announced = Some(holder);
        }
        tokio::time::sleep(POLL).await;
    }
    set_waiting(None);
    let write = |file: &mut File| -> std::io::Result<()> {
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{} {verb}", std::process::id())
    };
    write(&mut file).failed(|| format!("cannot write the lock file {}", path.display()))?;
    Ok(LoopLock { _file: file })
}

/// True when the lock was taken; false when another open file holds it.
/// The command that holds loop `name`'s lock now, as "`up` (pid N)"; None when none does (or it cannot tell).
pub fn holder(name: &str) -> Option<String> {
    let path = dir().join(format!("{name}.lock"));
    let file = File::open(&path).ok()?;
    // Taking it means nobody held it; it is let go again when `file` is dropped.
    if try_lock(&file, &path).ok()? {
        return None;
    }
    let holder = Holder::parse(&std::fs::read_to_string(&path).ok()?)?;
    Some(format!("`{}` (pid {})", holder.verb, holder.pid))
}

fn try_lock(file: &File, path: &Path) -> Result<bool> {
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(Errno::WOULDBLOCK) => Ok(false),
        Err(errno) => Err(Error::prerequisite(format!("cannot lock {}", path.display()))
            .source(std::io::Error::from(errno))
            .hint("restate-dev locks each loop with flock(2); the file system must support it")),
    }
}

/// Opens (creating as needed) the lock file in `dir`, which must be the user's own: in a shared temp dir,
/// someone else's directory could hold files that lock us out.
fn open(dir: &Path, path: &Path) -> Result<File> {
    // Something in the way of a lock (exit 3), not a failure of the loop.
    let hint = "set TMPDIR to a directory of your own (every restate-dev command of yours must use the same one)";
    DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| {
        Error::prerequisite(format!("cannot create the lock directory {}", dir.display()))
            .source(e)
            .hint(hint)
    })?;
    let owner = std::fs::metadata(dir).map(|m| m.uid()).unwrap_or(u32::MAX);
    if owner != rustix::process::getuid().as_raw() {
        return Err(Error::prerequisite(format!(
            "the lock directory {} belongs to another user (uid {owner})",
            dir.display()
        ))
        .hint(hint));
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            Error::prerequisite(format!("cannot open the lock file {}", path.display()))
                .source(e)
                .hint(hint)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ui() -> Ui {
        Ui::new(None, true)
    }

    #[test]
    fn holders_are_read_from_their_line() {
        let holder = Holder::parse("4242 up\n").unwrap();
        assert_eq!((holder.pid, holder.verb.as_str()), (4242, "up"));
        assert_eq!(Holder::parse(""), None);
        assert_eq!(Holder::parse("up 4242"), None);
    }

    #[tokio::test]
    async fn a_second_lock_of_a_loop_waits_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let ui = ui();
        let first = acquire_in(dir.path(), "a", "up", &ui).await.unwrap();
        let text = std::fs::read_to_string(dir.path().join("a.lock")).unwrap();
        assert_eq!(text, format!("{} up\n", std::process::id()));
        // another loop's lock is independent
        let other = acquire_in(dir.path(), "b", "down", &ui).await.unwrap();

        let second = acquire_in(dir.path(), "a", "down", &ui);
        tokio::pin!(second);
        let waited = tokio::time::timeout(Duration::from_millis(400), &mut second).await;
        assert!(waited.is_err(), "the second lock must wait while the first is held");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(2), second)
            .await
            .expect("the second lock is taken once the first is dropped")
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join("a.lock")).unwrap();
        assert_eq!(text, format!("{} down\n", std::process::id()));
        drop((second, other));
    }

    #[test]
    fn the_directory_is_private_to_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let locks = dir.path().join("restate-dev");
        open(&locks, &locks.join("x.lock")).unwrap();
        let mode = std::fs::metadata(&locks).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
