//! The kubeconfig entries for a cluster, and their merge into (and removal from) the user's kubeconfig files.
//!
//! Which files: the paths in `$KUBECONFIG`, else `~/.kube/config` (see [`Files`]). Entries are written to one file
//! and removed from all of them, as kind does.
//!
//! Documents are read with kube's own [`Kubeconfig`] types, which keep the fields they do not model. Trade-off:
//! writing the whole document back would reorder keys and drop comments in entries that are not ours. So the
//! file is edited as text: our items are cut out of, or appended to, the `clusters`, `users` and `contexts`
//! sequences, and the `current-context` line is replaced. Everything else keeps its bytes. The edit is then
//! checked: the edited text, read, must equal the original document with the change applied. When the file is
//! laid out in a way the text edit does not handle (flow style, several documents, odd indentation), or the check
//! fails, the file is written from the changed document instead, which keeps every setting but not the
//! formatting. The caller learns which happened.
//!
//! Writers take `<file>.lock`, created exclusively as kubectl and kind do, so the three tools never interleave.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use kube::config::{Context as KubeContext, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext, Preferences};
use serde_json::Value;

use crate::error::{Context, Error, Kind, Result};

const SECTIONS: [&str; 3] = ["clusters", "users", "contexts"];
/// A lock older than this was left by a writer that died: kubeconfig writes take milliseconds.
const STALE_LOCK: Duration = Duration::from_secs(30);
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The cluster, user and context of one cluster, already renamed.
#[derive(Debug, Clone)]
pub struct Entries {
    pub name: String,
    pub cluster: NamedCluster,
    pub user: NamedAuthInfo,
    pub context: NamedContext,
}

/// `kind-NAME`, the name of all three entries.
pub fn context_name(cluster: &str) -> String {
    format!("kind-{cluster}")
}

/// Renames admin.conf's single cluster, user and context to `kind-NAME`, pointing at `https://127.0.0.1:PORT`.
pub fn from_admin_conf(admin_conf: &str, cluster: &str, api_port: u16) -> Result<Entries> {
    let conf = Kubeconfig::from_yaml(admin_conf).failed(|| "the node's admin.conf is not a kubeconfig".into())?;
    let missing = |section: &str| Error::failed(format!("the node's admin.conf has no entry in `{section}`"));
    let name = context_name(cluster);
    let mut named_cluster = conf.clusters.into_iter().next().ok_or_else(|| missing("clusters"))?;
    named_cluster.name = name.clone();
    named_cluster.cluster.get_or_insert_default().server = Some(format!("https://127.0.0.1:{api_port}"));
    let mut user = conf.auth_infos.into_iter().next().ok_or_else(|| missing("users"))?;
    user.name = name.clone();
    let context = NamedContext {
        name: name.clone(),
        context: Some(KubeContext {
            cluster: name.clone(),
            user: Some(name.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(Entries {
        name,
        cluster: named_cluster,
        user,
        context,
    })
}

impl Entries {
    /// The API server these entries point at.
    pub fn server(&self) -> Option<&str> {
        self.cluster.cluster.as_ref().and_then(|c| c.server.as_deref())
    }

    /// A kubeconfig holding only these entries, for building a client without reading the user's files.
    pub fn to_kubeconfig(&self) -> Kubeconfig {
        Kubeconfig {
            clusters: vec![self.cluster.clone()],
            auth_infos: vec![self.user.clone()],
            contexts: vec![self.context.clone()],
            current_context: Some(self.name.clone()),
            ..new_document()
        }
    }

    /// The item of `section` as the YAML text edit writes it.
    fn item(&self, section: &str) -> Value {
        let item = match section {
            "clusters" => serde_json::to_value(&self.cluster),
            "users" => serde_json::to_value(&self.user),
            _ => serde_json::to_value(&self.context),
        };
        item.unwrap_or_default()
    }
}

/// What an empty or missing file starts as, as kubectl writes it.
fn new_document() -> Kubeconfig {
    Kubeconfig {
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        preferences: Some(Preferences::default()),
        ..Default::default()
    }
}

/// The kubeconfig files, as kubectl and kind find them (kind v0.33.0 kubeconfig/internal/kubeconfig/paths.go):
/// the paths in `$KUBECONFIG` without empty or repeated ones, else `~/.kube/config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files(Vec<PathBuf>);

impl Files {
    pub fn from_env() -> Result<Files> {
        let listed = std::env::var_os("KUBECONFIG")
            .map(|v| std::env::split_paths(&v).collect())
            .unwrap_or_default();
        let files = Files::new(listed);
        if !files.0.is_empty() {
            return Ok(files);
        }
        let home = std::env::var_os("HOME").ok_or_else(|| {
            Error::prerequisite("neither KUBECONFIG nor HOME is set").hint("set KUBECONFIG to a file path")
        })?;
        Ok(Files(vec![PathBuf::from(home).join(".kube").join("config")]))
    }

    /// These paths, without empty or repeated ones.
    pub fn new(paths: Vec<PathBuf>) -> Files {
        let mut kept: Vec<PathBuf> = Vec::new();
        for path in paths {
            if !path.as_os_str().is_empty() && !kept.contains(&path) {
                kept.push(path);
            }
        }
        Files(kept)
    }

    /// Where the entries named `name` are written. The first file that holds any of them, so that a re-`up`
    /// updates them where they are, as kubectl modifies an entry in the file that defines it. Otherwise the file
    /// kind merges new entries into (paths.go `pathForMerge`): the first that exists, else the last.
    pub fn target(&self, name: &str) -> Result<PathBuf> {
        for path in &self.0 {
            if holds(path, name)? {
                return Ok(path.clone());
            }
        }
        let existing = self.0.iter().find(|p| p.is_file());
        existing
            .or(self.0.last())
            .cloned()
            .ok_or_else(|| Error::prerequisite("no kubeconfig file to write to").hint("set KUBECONFIG to a file path"))
    }

    /// Adds (or replaces) the entries in their [`target`](Files::target) file and makes them the current context.
    pub fn merge(&self, entries: &Entries) -> Result<(PathBuf, Written)> {
        let path = self.target(&entries.name)?;
        let written = update(&path, &Change::Merge(entries))?;
        Ok((path, written))
    }

    /// The server of the cluster entry named `name` in the file entries of that name are written to, when it has
    /// one: what a merge would replace.
    pub fn server(&self, name: &str) -> Result<Option<String>> {
        let path = self.target(name)?;
        let doc = match read(&path)? {
            Some(text) if !text.trim().is_empty() => parse(&path, &text)?,
            _ => return Ok(None),
        };
        Ok(server_of(&doc, name))
    }

    /// Removes the entries named `name` from every file whose cluster entry of that name points at `server` (or
    /// that has none): the entries of our node, and no other cluster's. kind removes `kind-NAME` whatever it
    /// points at (remove.go); but another kind, or an older node since removed by hand, may have written those
    /// names, and their entries are not ours to delete.
    pub fn remove_pointing_at(&self, name: &str, server: &str) -> Result<Vec<Removal>> {
        let mut done = Vec::new();
        for path in self.0.iter().filter(|p| p.exists()) {
            let _lock = Lock::acquire(path, LOCK_WAIT)?;
            let original = read(path)?.unwrap_or_default();
            if original.trim().is_empty() {
                continue;
            }
            if let Some(other) = server_of(&parse(path, &original)?, name).filter(|s| s != server) {
                done.push(Removal::Kept {
                    file: path.clone(),
                    server: other,
                });
                continue;
            }
            let (text, written) = rewrite(path, &original, &Change::Remove(name))?;
            if written != Written::Unchanged {
                write_replacing(path, &text)?;
                done.push(Removal::Removed(path.clone()));
            }
        }
        Ok(done)
    }

    /// Removes the entries named `name` from every file, as kind's delete does (remove.go); the files changed.
    pub fn remove(&self, name: &str) -> Result<Vec<PathBuf>> {
        let mut changed = Vec::new();
        for path in self.0.iter().filter(|p| p.exists()) {
            if update(path, &Change::Remove(name))? != Written::Unchanged {
                changed.push(path.clone());
            }
        }
        Ok(changed)
    }
}

/// What [`Files::remove_pointing_at`] did in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Removed(PathBuf),
    /// The file's entries of that name point at another server, so they stay.
    Kept {
        file: PathBuf,
        server: String,
    },
}

/// The server of the cluster entry named `name`.
fn server_of(doc: &Kubeconfig, name: &str) -> Option<String> {
    doc.clusters
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
}

/// Whether the file at `path` has a cluster, user or context named `name`; a missing file has none.
fn holds(path: &Path, name: &str) -> Result<bool> {
    let doc = match read(path)? {
        Some(text) => parse(path, &text)?,
        None => return Ok(false),
    };
    Ok(doc.clusters.iter().any(|c| c.name == name)
        || doc.auth_infos.iter().any(|u| u.name == name)
        || doc.contexts.iter().any(|c| c.name == name))
}

fn read(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::failed(format!("cannot read kubeconfig {}", path.display())).source(e)),
    }
}

fn parse(path: &Path, text: &str) -> Result<Kubeconfig> {
    Kubeconfig::from_yaml(text).map_err(|e| {
        Error::failed(format!("kubeconfig {} is not a valid kubeconfig", path.display()))
            .source(e)
            .hint("fix or move the file, then run the command again")
    })
}

/// How the file was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Only our entries' text changed.
    Edited,
    /// The file was re-serialized (settings kept, formatting of other entries not).
    Reformatted,
    /// The file was missing or empty, and now holds our entries.
    Created,
    /// Nothing to change.
    Unchanged,
}

#[derive(Debug, Clone)]
enum Change<'a> {
    /// Replace our entries (or add them) and make ours the current context.
    Merge(&'a Entries),
    /// Remove entries with this name; clear the current context if it was ours.
    Remove(&'a str),
}

impl Change<'_> {
    fn name(&self) -> &str {
        match self {
            Change::Merge(entries) => &entries.name,
            Change::Remove(name) => name,
        }
    }
}

/// Changes the file at `path` under its lock.
fn update(path: &Path, change: &Change) -> Result<Written> {
    let _lock = Lock::acquire(path, LOCK_WAIT)?;
    let original = read(path)?.unwrap_or_default();
    let (text, written) = rewrite(path, &original, change)?;
    if written != Written::Unchanged {
        write_replacing(path, &text)?;
    }
    Ok(written)
}

/// The document as the text edit is checked against it: kube's types, in JSON form for comparing.
fn as_value(doc: &Kubeconfig) -> Value {
    serde_json::to_value(doc).unwrap_or_default()
}

/// The new file text for `change`, preferring the text edit.
fn rewrite(path: &Path, original: &str, change: &Change) -> Result<(String, Written)> {
    let empty = original.trim().is_empty();
    let mut expected = if empty { new_document() } else { parse(path, original)? };
    let before = as_value(&expected);
    apply(&mut expected, change);
    let expected = as_value(&expected);
    if expected == before {
        return Ok((original.to_string(), Written::Unchanged));
    }
    if empty {
        return Ok((to_yaml(&expected), Written::Created));
    }
    if let Some(edited) = edit_text(original, change)
        && Kubeconfig::from_yaml(&edited).ok().as_ref().map(as_value) == Some(expected.clone())
    {
        return Ok((edited, Written::Edited));
    }
    Ok((to_yaml(&expected), Written::Reformatted))
}

fn to_yaml(value: &Value) -> String {
    // long certificate data must stay on one line, as kubectl writes it
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    serde_saphyr::to_string_with_options(value, options).unwrap_or_default()
}

/// The change on the document: the reference the text edit is checked against.
fn apply(doc: &mut Kubeconfig, change: &Change) {
    let name = change.name();
    doc.clusters.retain(|c| c.name != name);
    doc.auth_infos.retain(|u| u.name != name);
    doc.contexts.retain(|c| c.name != name);
    match change {
        Change::Merge(entries) => {
            doc.clusters.push(entries.cluster.clone());
            doc.auth_infos.push(entries.user.clone());
            doc.contexts.push(entries.context.clone());
            doc.current_context = Some(entries.name.clone());
        }
        Change::Remove(name) if doc.current_context.as_deref() == Some(*name) => {
            doc.current_context = Some(String::new());
        }
        Change::Remove(_) => {}
    }
}

/// The text edit. `None` when the layout is not the plain block style kubectl writes.
fn edit_text(original: &str, change: &Change) -> Option<String> {
    let mut lines: Vec<String> = original.split_inclusive('\n').map(str::to_string).collect();
    if let Some(last) = lines.last_mut()
        && !last.ends_with('\n')
    {
        last.push('\n');
    }
    if lines
        .iter()
        .any(|l| l.starts_with("---") || l.starts_with("...") || l.starts_with('\t'))
    {
        return None;
    }
    for section in SECTIONS {
        let item = match change {
            Change::Merge(entries) => Some(entries.item(section)),
            Change::Remove(_) => None,
        };
        lines = edit_section(lines, section, change.name(), item.as_ref())?;
    }
    lines = edit_current_context(lines, change)?;
    Some(lines.concat())
}

/// A top-level mapping key starts in column 0 and is not a sequence item or a comment.
fn top_level_key(line: &str) -> Option<&str> {
    let first = line.chars().next()?;
    if first.is_whitespace() || first == '#' || first == '-' {
        return None;
    }
    line.split_once(':').map(|(key, _)| key.trim())
}

fn is_filler(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

fn edit_section(mut lines: Vec<String>, section: &str, name: &str, add: Option<&Value>) -> Option<Vec<String>> {
    let header = lines.iter().position(|l| top_level_key(l) == Some(section));
    let Some(header) = header else {
        let Some(item) = add else { return Some(lines) };
        lines.push(format!("{section}:\n"));
        lines.extend(render_item(item, 0));
        return Some(lines);
    };
    let inline = lines[header].split_once(':')?.1.trim();
    let inline = inline.split(" #").next().unwrap_or("").trim();
    if !matches!(inline, "" | "[]" | "null" | "~") {
        return None;
    }
    let mut end = lines[header + 1..]
        .iter()
        .position(|l| top_level_key(l).is_some())
        .map_or(lines.len(), |i| header + 1 + i);
    while end > header + 1 && is_filler(&lines[end - 1]) {
        end -= 1;
    }
    let body = &lines[header + 1..end];
    let indent = match body.iter().find(|l| !is_filler(l)) {
        Some(first) => {
            let indent = first.len() - first.trim_start_matches(' ').len();
            if !first[indent..].starts_with('-') || !inline.is_empty() {
                return None;
            }
            indent
        }
        None => 0,
    };
    let starts: Vec<usize> = body
        .iter()
        .enumerate()
        .filter(|(_, l)| l.len() > indent && l[..indent].trim().is_empty() && l[indent..].starts_with('-'))
        .map(|(i, _)| i)
        .collect();
    // every non-filler line before the first item would be foreign structure
    if body[..starts.first().copied().unwrap_or(body.len())]
        .iter()
        .any(|l| !is_filler(l))
    {
        return None;
    }
    let mut kept: Vec<String> = Vec::new();
    let mut remaining = 0;
    for (n, &start) in starts.iter().enumerate() {
        let stop = starts.get(n + 1).copied().unwrap_or(body.len());
        let item = &body[start..stop];
        let dedented: String = item.iter().map(|l| l.get(indent..).unwrap_or("\n")).collect();
        let parsed: Vec<Value> = serde_saphyr::from_str(&dedented).ok()?;
        if parsed.len() != 1 {
            return None;
        }
        if parsed[0]["name"] != name {
            kept.extend(item.iter().cloned());
            remaining += 1;
        }
    }
    if let Some(item) = add {
        kept.extend(render_item(item, indent));
        remaining += 1;
    }
    let header_line = if remaining == 0 {
        format!("{section}: []\n")
    } else {
        format!("{section}:\n")
    };
    let mut out: Vec<String> = lines[..header].to_vec();
    out.push(header_line);
    out.extend(kept);
    out.extend(lines[end..].iter().cloned());
    Some(out)
}

fn render_item(item: &Value, indent: usize) -> Vec<String> {
    let text = to_yaml(&Value::Array(vec![item.clone()]));
    let pad = " ".repeat(indent);
    text.split_inclusive('\n').map(|l| format!("{pad}{l}")).collect()
}

fn edit_current_context(mut lines: Vec<String>, change: &Change) -> Option<Vec<String>> {
    let at = lines.iter().position(|l| top_level_key(l) == Some("current-context"));
    let line = match change {
        Change::Merge(entries) => format!("current-context: {}\n", entries.name),
        Change::Remove(name) => {
            let Some(at) = at else { return Some(lines) };
            let current: Value = serde_saphyr::from_str(&lines[at]).ok()?;
            if current["current-context"] != *name {
                return Some(lines);
            }
            "current-context: \"\"\n".to_string()
        }
    };
    match at {
        Some(at) => lines[at] = line,
        None => lines.push(line),
    }
    Some(lines)
}

/// Writes beside the file and renames over it, so a reader never sees half a kubeconfig; keeps the mode.
fn write_replacing(path: &Path, text: &str) -> Result<()> {
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if let Some(dir) = target.parent() {
        fs::create_dir_all(dir).failed(|| format!("cannot create {}", dir.display()))?;
    }
    let temp = target.with_extension("restate-dev.tmp");
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::File::create(&temp)?;
        let mode = fs::metadata(&target).map(|m| m.permissions()).ok();
        match mode {
            Some(mode) => file.set_permissions(mode)?,
            None => {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(fs::Permissions::from_mode(0o600))?
            }
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, &target)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&temp);
        Error::failed(format!("cannot write kubeconfig {}", target.display())).source(e)
    })
}

/// `<file>.lock`, held while the file is read, changed and written.
struct Lock {
    path: PathBuf,
}

impl Lock {
    fn acquire(file: &Path, wait: Duration) -> Result<Lock> {
        let mut path = file.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).failed(|| format!("cannot create {}", dir.display()))?;
        }
        let deadline = Instant::now() + wait;
        loop {
            match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let age = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok());
                    if age.is_some_and(|age| age > STALE_LOCK) {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    if Instant::now() >= deadline {
                        return Err(Error::new(
                            Kind::Timeout,
                            format!("kubeconfig lock {} is held by another writer", path.display()),
                        )
                        .hint(format!(
                            "if no kubectl, kind or restate-dev is running, remove {}",
                            path.display()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(Error::failed(format!("cannot create kubeconfig lock {}", path.display())).source(e));
                }
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests;
