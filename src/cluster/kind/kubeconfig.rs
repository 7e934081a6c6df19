//! The kubeconfig entries for a cluster, and their merge into (and removal from) the user's kubeconfig file.
//!
//! Trade-off: parsing the whole file and writing it back would reorder keys and drop comments in entries that are
//! not ours. So the file is edited as text: our items are cut out of, or appended to, the `clusters`, `users` and
//! `contexts` sequences, and the `current-context` line is replaced. Everything else keeps its bytes. The edit is
//! then checked: the edited text, parsed, must equal the parsed original with the change applied. When the file is
//! laid out in a way the text edit does not handle (flow style, several documents, odd indentation), or the check
//! fails, the file is written from the parsed document instead, which keeps every value but not the formatting.
//! The caller learns which happened.
//!
//! Writers take `<file>.lock`, created exclusively as kubectl and kind do, so the three tools never interleave.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::error::{Context, Error, Kind, Result};

const SECTIONS: [&str; 3] = ["clusters", "users", "contexts"];
/// A lock older than this was left by a writer that died: kubeconfig writes take milliseconds.
const STALE_LOCK: Duration = Duration::from_secs(30);
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The cluster, user and context of one cluster, already renamed; each is a named kubeconfig item.
#[derive(Debug, Clone, PartialEq)]
pub struct Entries {
    pub name: String,
    pub cluster: Value,
    pub user: Value,
    pub context: Value,
}

/// `kind-NAME`, the name of all three entries.
pub fn context_name(cluster: &str) -> String {
    format!("kind-{cluster}")
}

/// Renames admin.conf's single cluster, user and context to `kind-NAME`, pointing at `https://127.0.0.1:PORT`.
pub fn from_admin_conf(admin_conf: &str, cluster: &str, api_port: u16) -> Result<Entries> {
    let doc: Value = serde_saphyr::from_str(admin_conf).failed(|| "the node's admin.conf is not YAML".into())?;
    let first = |section: &str| -> Result<Value> {
        doc[section]
            .get(0)
            .cloned()
            .ok_or_else(|| Error::failed(format!("the node's admin.conf has no entry in `{section}`")))
    };
    let name = context_name(cluster);
    let mut named_cluster = first("clusters")?;
    let mut user = first("users")?;
    named_cluster["name"] = json!(name);
    named_cluster["cluster"]["server"] = json!(format!("https://127.0.0.1:{api_port}"));
    user["name"] = json!(name);
    let context = json!({"name": name, "context": {"cluster": name, "user": name}});
    Ok(Entries {
        name,
        cluster: named_cluster,
        user,
        context,
    })
}

impl Entries {
    /// A kubeconfig holding only these entries, for building a client without reading the user's file.
    pub fn to_kubeconfig(&self) -> Result<kube::config::Kubeconfig> {
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [self.cluster],
            "users": [self.user],
            "contexts": [self.context],
            "current-context": self.name,
        });
        serde_json::from_value(doc).failed(|| "the rewritten kubeconfig entries are not a kubeconfig".into())
    }

    fn item(&self, section: &str) -> &Value {
        match section {
            "clusters" => &self.cluster,
            "users" => &self.user,
            _ => &self.context,
        }
    }
}

/// The file `kubectl` writes to: the first path in `$KUBECONFIG`, else `~/.kube/config`.
pub fn default_path() -> Result<PathBuf> {
    if let Some(first) =
        std::env::var_os("KUBECONFIG").and_then(|v| std::env::split_paths(&v).find(|p| !p.as_os_str().is_empty()))
    {
        return Ok(first);
    }
    let home = std::env::var_os("HOME").ok_or_else(|| {
        Error::prerequisite("neither KUBECONFIG nor HOME is set").hint("set KUBECONFIG to a file path")
    })?;
    Ok(PathBuf::from(home).join(".kube").join("config"))
}

/// How the file was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Only our entries' text changed.
    Edited,
    /// The file was re-serialized (values kept, formatting of other entries not).
    Reformatted,
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

/// Adds (or replaces) the entries in the file at `path` and makes them the current context.
pub fn merge(path: &Path, entries: &Entries) -> Result<Written> {
    update(path, &Change::Merge(entries))
}

/// Removes the entries named `name` from the file at `path`; a missing file has nothing to remove.
pub fn remove(path: &Path, name: &str) -> Result<Written> {
    if !path.exists() {
        return Ok(Written::Unchanged);
    }
    update(path, &Change::Remove(name))
}

fn update(path: &Path, change: &Change) -> Result<Written> {
    let _lock = Lock::acquire(path, LOCK_WAIT)?;
    let original = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::failed(format!("cannot read kubeconfig {}", path.display())).source(e)),
    };
    let (text, written) = rewrite(&original, change).map_err(|e| {
        Error::failed(format!("kubeconfig {} is not valid YAML", path.display()))
            .source(e)
            .hint("fix or move the file, then run the command again")
    })?;
    if written != Written::Unchanged {
        write_replacing(path, &text)?;
    }
    Ok(written)
}

/// The new file text for `change`, preferring the text edit.
fn rewrite(original: &str, change: &Change) -> std::result::Result<(String, Written), serde_saphyr::Error> {
    let mut expected: Value = if original.trim().is_empty() {
        Value::Null
    } else {
        serde_saphyr::from_str(original)?
    };
    let before = expected.clone();
    apply(&mut expected, change);
    if expected == before {
        return Ok((original.to_string(), Written::Unchanged));
    }
    if !original.trim().is_empty()
        && let Some(edited) = edit_text(original, change)
        && serde_saphyr::from_str::<Value>(&edited).ok().as_ref() == Some(&expected)
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

/// The change on the parsed document: the reference the text edit is checked against.
fn apply(doc: &mut Value, change: &Change) {
    if !doc.is_object() {
        *doc = json!({"apiVersion": "v1", "kind": "Config", "preferences": {}});
    }
    let name = change.name();
    for section in SECTIONS {
        let items = doc[section].as_array().cloned().unwrap_or_default();
        let mut kept: Vec<Value> = items.into_iter().filter(|item| item["name"] != name).collect();
        if let Change::Merge(entries) = change {
            kept.push(entries.item(section).clone());
        }
        doc[section] = Value::Array(kept);
    }
    match change {
        Change::Merge(entries) => doc["current-context"] = json!(entries.name),
        Change::Remove(name) if doc["current-context"] == *name => doc["current-context"] = json!(""),
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
        lines = edit_section(lines, section, change.name(), item)?;
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
