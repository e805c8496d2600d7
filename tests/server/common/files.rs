//! Changing files the way the things that change them in a cluster do: a careful writer (rename over),
//! and the kubelet updating a ConfigMap or Secret volume (a `..data` symlink swap).

use std::path::{Path, PathBuf};

/// Replaces a file the way a careful writer does: a hidden temporary file in the same directory,
/// renamed over the target, so a reader never sees half of it.
pub fn write_atomically(path: &Path, bytes: impl AsRef<[u8]>) {
    let name = path.file_name().expect("a file name").to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).expect("writing the temporary file");
    std::fs::rename(&tmp, path).expect("renaming over the target");
}

/// A directory laid out the way the kubelet projects a ConfigMap or Secret volume: every file is a
/// symlink `name -> ..data/name`, `..data` is a symlink to a timestamped directory, and an update
/// writes a new timestamped directory and swaps `..data` atomically (a rename over a temporary link).
pub struct ProjectedVolume {
    dir: PathBuf,
    version: u32,
}

impl ProjectedVolume {
    /// Projects `files` into `dir` (replacing plain files of the same names).
    pub fn create(dir: &Path, files: &[(&str, &[u8])]) -> Self {
        let mut volume = Self {
            dir: dir.to_path_buf(),
            version: 0,
        };
        let data = volume.write_version(files);
        std::os::unix::fs::symlink(&data, dir.join("..data")).expect("linking ..data");
        for (name, _) in files {
            let link = dir.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link).expect("linking a file");
        }
        volume
    }

    /// Publishes new contents: a new version directory, then one atomic swap of `..data`, then the
    /// old version is removed (as the kubelet does).
    pub fn update(&mut self, files: &[(&str, &[u8])]) {
        let old = self.version_dir(self.version);
        let data = self.write_version(files);
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&data, &tmp).expect("linking ..data_tmp");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("swapping ..data");
        std::fs::remove_dir_all(old).expect("removing the old version");
    }

    fn version_dir(&self, version: u32) -> PathBuf {
        self.dir
            .join(format!("..2026_11_24_16_27_{version:02}.000000001"))
    }

    /// Writes the next version directory; returns its name (relative, as the kubelet links it).
    fn write_version(&mut self, files: &[(&str, &[u8])]) -> PathBuf {
        self.version += 1;
        let dir = self.version_dir(self.version);
        std::fs::create_dir(&dir).expect("creating a version directory");
        for (name, contents) in files {
            std::fs::write(dir.join(name), contents).expect("writing a projected file");
        }
        PathBuf::from(dir.file_name().expect("a directory name"))
    }
}
