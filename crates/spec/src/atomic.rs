//! Writing files and folders so that nobody ever reads half of one: not a later run after a
//! kill, a full disk or a file-size limit, not the runner tailing a trial, not a reboot.
//!
//! A file is written beside its destination as `<name>.partial`, flushed to disk, renamed
//! over the destination and the folder entry flushed; until the rename the old file stays
//! whole, and a failed write removes its partial file. A folder (a checkpoint, a resume
//! state, a report) is staged whole under `<name>.partial`, then swapped in with two renames
//! (`<name>` → `<name>.old`, staged → `<name>`); [`recover_dir`] puts `.old` back if a
//! process died between the two. Every error names the path.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An I/O error and the path it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError {
        path: path.to_path_buf(),
        source,
    }
}

/// `path` with `suffix` appended to its file name (`model.safetensors` → `model.safetensors.partial`).
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Flushes a folder's entries (a rename is durable once its folder is).
fn sync_dir(dir: &Path) {
    // Not every filesystem lets a folder be opened for syncing; the rename has happened
    // either way, so a failure here is not an error.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn parent(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Replaces `path` with `value` as pretty-printed JSON: all or nothing.
pub fn write_json<T: serde::Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), FileError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| FileError {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    write_file(path, text.as_bytes())
}

/// Replaces `path` with `bytes`: all or nothing.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let partial = sibling(path, ".partial");
    let result = (|| {
        let mut f = File::create(&partial).map_err(at(&partial))?;
        f.write_all(bytes).map_err(at(&partial))?;
        f.sync_all().map_err(at(&partial))?;
        std::fs::rename(&partial, path).map_err(at(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    } else {
        sync_dir(&parent(path));
    }
    result
}

/// The folder to stage a replacement of `dst` in: `<dst>.partial`, emptied.
pub fn staging_dir(dst: &Path) -> Result<PathBuf, FileError> {
    let staged = sibling(dst, ".partial");
    if staged.exists() {
        std::fs::remove_dir_all(&staged).map_err(at(&staged))?;
    }
    std::fs::create_dir_all(&staged).map_err(at(&staged))?;
    Ok(staged)
}

/// Swaps the staged folder in as `dst`; the old `dst` stays whole until then and is removed
/// after. On error the staged folder is removed and `dst` is as it was.
pub fn replace_dir(staged: &Path, dst: &Path) -> Result<(), FileError> {
    let old = sibling(dst, ".old");
    let result = (|| {
        recover_dir(dst)?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(at(&old))?;
        }
        if dst.exists() {
            std::fs::rename(dst, &old).map_err(at(dst))?;
        }
        std::fs::rename(staged, dst).map_err(at(dst))
    })();
    match result {
        Ok(()) => {
            sync_dir(&parent(dst));
            let _ = std::fs::remove_dir_all(&old);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(staged);
            let _ = recover_dir(dst);
            Err(e)
        }
    }
}

/// Puts `<dst>.old` back as `dst` when a process died between the two renames of
/// [`replace_dir`] (so `dst` is missing); a leftover `.partial` is never trusted.
pub fn recover_dir(dst: &Path) -> Result<(), FileError> {
    let old = sibling(dst, ".old");
    if !dst.exists() && old.is_dir() {
        std::fs::rename(&old, dst).map_err(at(dst))?;
    }
    Ok(())
}

/// Stages a folder with `fill`, then swaps it in as `dst` (see [`replace_dir`]). `fill`'s
/// error type must take a [`FileError`].
pub fn write_dir<E: From<FileError>>(
    dst: &Path,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let staged = staging_dir(dst)?;
    if let Err(e) = fill(&staged) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(e);
    }
    replace_dir(&staged, dst)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("spec-atomic-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn files_are_replaced_whole() {
        let d = tmp("file");
        let f = d.join("a.json");
        write_file(&f, b"one").unwrap();
        write_file(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert!(!sibling(&f, ".partial").exists());
        // A write that cannot happen leaves the old file and no partial one.
        let e = write_file(&d.join("missing/a.json"), b"x").unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn folders_swap_whole_and_recover() {
        let d = tmp("dir");
        let dst = d.join("checkpoint");
        write_dir::<FileError>(&dst, |s| write_file(&s.join("w"), b"1")).unwrap();
        let failed = write_dir::<FileError>(&dst, |s| {
            write_file(&s.join("w"), b"2")?;
            Err(FileError {
                path: s.to_path_buf(),
                source: std::io::Error::other("disk full"),
            })
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(dst.join("w")).unwrap(), b"1");
        assert!(!sibling(&dst, ".partial").exists());
        // A death between the two renames: only `.old` is left; recovery brings it back.
        std::fs::rename(&dst, sibling(&dst, ".old")).unwrap();
        recover_dir(&dst).unwrap();
        assert_eq!(std::fs::read(dst.join("w")).unwrap(), b"1");
        write_dir::<FileError>(&dst, |s| write_file(&s.join("w"), b"3")).unwrap();
        assert_eq!(std::fs::read(dst.join("w")).unwrap(), b"3");
        assert!(!sibling(&dst, ".old").exists());
    }
}
