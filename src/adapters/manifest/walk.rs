//! Which files a list of paths means: directories walked the way kubeconform and kube-linter walk them,
//! and `--exclude` globs.
//!
//! - A directory is read recursively, in sorted order, for files whose name ends in `.yaml`, `.yml` or
//!   `.json` (in any case: `.YAML` too, as kubeconform).
//! - Entries whose name starts with `.` (`.git`, `.github`, `.helm`) are skipped inside directories; a
//!   hidden path given by name is read.
//! - Inside a directory, a symbolic link to a file is read and a symbolic link to a directory is not
//!   followed (as Go's `filepath.Walk` in kubeconform and kube-linter): a link loop cannot make the walk
//!   endless. A link given by name is followed.
//! - `--exclude GLOB` leaves out every path it matches, files given by name included (so a pre-commit hook
//!   and a directory walk agree), and the whole of a directory it matches. A glob with a `/` is matched
//!   against the path as given or walked (`./` prefixes dropped); one without is matched against each
//!   entry's name. `*` and `?` stay within one name, `**` crosses directories, `{a,b}` and `[ab]` as in
//!   git and kube-linter's `--ignore-paths`.

use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use super::{EXTENSIONS, ManifestError, io_error};

/// The `--exclude` globs.
#[derive(Clone, Debug, Default)]
pub struct Exclude {
    /// Globs with a `/`: matched against the whole path.
    paths: GlobSet,
    /// Globs without: matched against each entry's name.
    names: GlobSet,
}

/// A glob as `--exclude` takes it: `*` does not cross `/`.
pub fn parse_glob(s: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(s).literal_separator(true).build()
}

impl Exclude {
    /// Excludes what any of `globs` matches.
    pub fn new(globs: &[Glob]) -> Result<Self, globset::Error> {
        let (mut paths, mut names) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        for g in globs {
            if g.glob().contains('/') {
                paths.add(g.clone());
            } else {
                names.add(g.clone());
            }
        }
        Ok(Self {
            paths: paths.build()?,
            names: names.build()?,
        })
    }

    /// Whether `path` is left out.
    pub fn matches(&self, path: &Path) -> bool {
        // `./deploy/./x.yaml` is `deploy/x.yaml` to a glob.
        let plain: PathBuf = path.components().filter(|c| *c != Component::CurDir).collect();
        self.paths.is_match(&plain) || path.file_name().is_some_and(|n| self.names.is_match(n))
    }
}

/// The files a list of paths means, and how many paths `--exclude` left out.
#[derive(Debug, Default)]
pub struct Expanded {
    /// Every file to read, in order (or why a path could not be listed).
    pub files: Vec<Result<PathBuf, ManifestError>>,
    /// Files and directories left out by `--exclude`.
    pub excluded: usize,
}

/// Expands `paths` (see the module's rules); `-` stays as given.
pub fn expand(paths: &[PathBuf], exclude: &Exclude) -> Expanded {
    let mut out = Expanded::default();
    for p in paths {
        if p.as_os_str() == "-" {
            out.files.push(Ok(p.clone()));
        } else if exclude.matches(p) {
            tracing::debug!(path = %p.display(), "Excluded");
            out.excluded += 1;
        } else if p.is_dir() {
            walk(p, exclude, &mut out);
        } else {
            out.files.push(Ok(p.clone()));
        }
    }
    out
}

fn walk(dir: &Path, exclude: &Exclude, out: &mut Expanded) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return out.files.push(Err(io_error(dir, &e))),
    };
    let mut entries: Vec<std::fs::DirEntry> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::path);
    for entry in entries {
        let p = entry.path();
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        // The entry's own type: a link is not followed into a directory.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let is_dir = kind.is_dir();
        let is_manifest = !is_dir && has_manifest_extension(name) && (!kind.is_symlink() || p.is_file());
        if !is_dir && !is_manifest {
            continue;
        }
        if exclude.matches(&p) {
            tracing::debug!(path = %p.display(), "Excluded");
            out.excluded += 1;
        } else if is_dir {
            walk(&p, exclude, out);
        } else {
            out.files.push(Ok(p));
        }
    }
}

fn has_manifest_extension(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exclude(globs: &[&str]) -> Exclude {
        let globs: Vec<Glob> = globs.iter().map(|g| parse_glob(g).unwrap()).collect();
        Exclude::new(&globs).unwrap()
    }

    #[test]
    fn a_glob_with_a_slash_matches_the_path_and_one_without_the_name() {
        let e = exclude(&["vendor/**", "*.test.yaml"]);
        assert!(e.matches(Path::new("vendor/chart/a.yaml")));
        assert!(e.matches(Path::new("./vendor/chart/a.yaml")));
        assert!(e.matches(Path::new("vendor/./chart/a.yaml")));
        assert!(!e.matches(Path::new("apps/vendor/a.yaml")));
        assert!(e.matches(Path::new("apps/web.test.yaml")));
        assert!(!e.matches(Path::new("apps/web.yaml")));
    }

    #[test]
    fn a_star_stays_within_one_name() {
        let e = exclude(&["apps/*.yaml"]);
        assert!(e.matches(Path::new("apps/web.yaml")));
        assert!(!e.matches(Path::new("apps/prod/web.yaml")));
        let e = exclude(&["apps/**/*.yaml"]);
        assert!(e.matches(Path::new("apps/prod/web.yaml")));
    }

    #[test]
    fn extensions_are_matched_in_any_case() {
        assert!(has_manifest_extension("a.YAML"));
        assert!(has_manifest_extension("a.b.Json"));
        assert!(!has_manifest_extension("yaml"));
        assert!(!has_manifest_extension("a.yaml.bak"));
    }

    #[test]
    fn a_bad_glob_is_refused() {
        assert!(parse_glob("apps/[").is_err());
    }
}
