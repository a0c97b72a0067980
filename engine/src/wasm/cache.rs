//! The on-disk cache of compiled components (`$XDG_CACHE_HOME/confiture/wasm`).
//!
//! Loading a cached artifact runs native code, so a cache that someone else could write — a CI
//! cache restored from another job, a shared home directory — would be code execution in a job
//! that may hold production credentials. An artifact is therefore used only if:
//!
//! - the cache directory is owned by the current user and writable by nobody else (it is
//!   created 0700; an existing one that group or others may write is not used at all);
//! - the artifact is a regular file owned by the current user, not group- or world-writable;
//! - its HMAC-SHA-256, recorded beside it when it was written, verifies under a key kept outside
//!   the cache (`$XDG_STATE_HOME/confiture/wasm-cache.key`, created 0600): a cache restored from
//!   elsewhere, or edited in place, does not carry a valid digest.
//!
//! Anything else is refused with a warning and the component is compiled again (and the entry
//! rewritten).

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A verified cache directory and the key its digests are made with.
pub struct Cache {
    dir: PathBuf,
    key: [u8; 32],
}

impl Cache {
    /// Open (creating if needed) the cache directory `dir`; `Err` says why it cannot be trusted.
    pub fn open(dir: PathBuf) -> Result<Cache, String> {
        create_private_dir(&dir)?;
        let key = key(&key_path().ok_or("no home directory for the cache key")?)?;
        Ok(Cache { dir, key })
    }

    /// The verified bytes of the artifact `name`, or `None` (missing, or refused and removed).
    pub fn load(&self, name: &str) -> Option<Vec<u8>> {
        let path = self.dir.join(name);
        let mac_path = self.dir.join(format!("{name}.mac"));
        let refuse = |why: &str| {
            tracing::warn!("refusing the cached plugin {}: {why}; compiling it again", path.display());
            let _ = fs::remove_file(&path);
            let _ = fs::remove_file(&mac_path);
            None
        };
        // Opened without following a symlink, then checked and read through that one handle, so
        // what is checked is what is read.
        let open = |p: &Path| OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(p);
        let mut file = match open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(_) => return refuse("it cannot be opened (a symlink?)"),
        };
        if let Err(why) = file.metadata().map_err(|e| e.to_string()).and_then(|m| private_file(&m)) {
            return refuse(&why);
        }
        let mut data = Vec::new();
        if file.read_to_end(&mut data).is_err() {
            return refuse("it cannot be read");
        }
        let mut recorded = String::new();
        let mac_ok = open(&mac_path)
            .and_then(|mut f| {
                let meta = f.metadata()?;
                private_file(&meta).map_err(std::io::Error::other)?;
                f.read_to_string(&mut recorded)
            })
            .is_ok();
        if !mac_ok {
            return refuse("its digest is missing or not private");
        }
        if recorded.trim() != self.mac(&data) {
            return refuse("its digest does not match (it was changed, or written by another key)");
        }
        Some(data)
    }

    /// Write the artifact `name` and its digest (atomically: a temporary file, then a rename).
    pub fn store(&self, name: &str, data: &[u8], label: &str) {
        let written = write_private(&self.dir.join(name), data)
            .and_then(|()| write_private(&self.dir.join(format!("{name}.mac")), self.mac(data).as_bytes()));
        if let Err(e) = written {
            tracing::debug!("could not cache the compiled {label} in {}: {e}", self.dir.display());
        }
    }

    fn mac(&self, data: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(data);
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// `$XDG_STATE_HOME/confiture/wasm-cache.key`, else `~/.local/state/confiture/wasm-cache.key`.
fn key_path() -> Option<PathBuf> {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .map(|d| d.join("confiture").join("wasm-cache.key"))
}

/// The key at `path`, created (32 random bytes, 0600) if it does not exist.
fn key(path: &Path) -> Result<[u8; 32], String> {
    let parent = path.parent().ok_or("the key path has no directory")?;
    create_private_dir(parent)?;
    match fs::symlink_metadata(path) {
        Ok(meta) => {
            private_file(&meta).map_err(|why| format!("the cache key {}: {why}", path.display()))?;
            let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            bytes.try_into().map_err(|_| format!("{} is not a cache key (32 bytes)", path.display()))
        }
        Err(_) => {
            let mut key = [0u8; 32];
            fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut key))
                .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
            // Written aside, then linked into place: the key appears whole or not at all, and a
            // process that loses the race uses the winner's.
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            let _ = fs::remove_file(&tmp);
            let written = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .and_then(|mut f| f.write_all(&key))
                .and_then(|()| fs::hard_link(&tmp, path));
            let _ = fs::remove_file(&tmp);
            match written {
                Ok(()) => Ok(key),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    bytes.try_into().map_err(|_| format!("{} is not a cache key (32 bytes)", path.display()))
                }
                Err(e) => Err(format!("cannot create {}: {e}", path.display())),
            }
        }
    }
}

/// Create `dir` (0700) if needed; refuse one that is not ours or is open to others.
fn create_private_dir(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let meta = fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(format!("{} belongs to another user", dir.display()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by other users (mode {:o}); `chmod 700` it to use the cache",
            dir.display(),
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// A regular file of ours that nobody else may write.
fn private_file(meta: &fs::Metadata) -> Result<(), String> {
    if !meta.file_type().is_file() {
        return Err("it is not a regular file".into());
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err("it belongs to another user".into());
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!("it is writable by others (mode {:o})", meta.mode() & 0o777));
    }
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let tmp = path.with_extension(format!("tmp{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(data))
        .and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    // The rename replaces any entry there was, with its permissions, by our 0600 file.
    result
}
