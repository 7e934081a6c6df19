use std::sync::{Arc, Barrier};

use super::*;

const ADMIN_CONF: &str = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EtREFUQS1USEFULUlTLUxPTkctRU5PVUdILVRPLUJFLVdSQVBQRUQtQlktQS1GT0xESU5HLVNFUklBTElaRVItSUYtSVQtV0VSRS1DQVJFTEVTUw==
    server: https://restate-dev-control-plane:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
";

/// A kubeconfig as people have them: comments, another tool's entries, kubectl's layout.
const EXISTING: &str = "# my clusters
apiVersion: v1
clusters:
- cluster:
    server: https://prod.example:6443   # do not touch
  name: prod
contexts:
- context:
    cluster: prod
    user: me
  name: prod
current-context: prod
kind: Config
preferences: {}
users:
- name: me
  user:
    token: abc
";

fn entries(cluster: &str, port: u16) -> Entries {
    from_admin_conf(ADMIN_CONF, cluster, port).expect("admin.conf parses")
}

/// One file, as `KUBECONFIG=path` gives it.
fn merge(path: &Path, entries: &Entries) -> Result<Written> {
    let (written_to, written) = Files::new(vec![path.to_path_buf()]).merge(entries)?;
    assert_eq!(written_to, path);
    Ok(written)
}

fn remove(path: &Path, name: &str) -> Result<Written> {
    let changed = Files::new(vec![path.to_path_buf()]).remove(name)?;
    Ok(if changed.is_empty() {
        Written::Unchanged
    } else {
        Written::Edited
    })
}

fn temp_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config");
    if !text.is_empty() {
        fs::write(&path, text).expect("write");
    }
    (dir, path)
}

#[test]
fn admin_conf_is_renamed_and_pointed_at_loopback() {
    let e = entries("restate-dev", 41234);
    assert_eq!(e.name, "kind-restate-dev");
    let (cluster, user, context) = (e.item("clusters"), e.item("users"), e.item("contexts"));
    assert_eq!(cluster["name"], "kind-restate-dev");
    assert_eq!(cluster["cluster"]["server"], "https://127.0.0.1:41234");
    assert!(
        cluster["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap()
            .starts_with("Q0EtREFU")
    );
    assert_eq!(user["name"], "kind-restate-dev");
    assert_eq!(user["user"]["client-key-data"], "a2V5");
    assert_eq!(context["context"]["cluster"], "kind-restate-dev");
    assert_eq!(context["context"]["user"], "kind-restate-dev");
    let kubeconfig = e.to_kubeconfig();
    assert_eq!(kubeconfig.current_context.as_deref(), Some("kind-restate-dev"));
}

#[test]
fn merge_then_remove_leaves_other_entries_byte_for_byte() {
    let (_dir, path) = temp_file(EXISTING);
    assert_eq!(merge(&path, &entries("a", 1111)).unwrap(), Written::Edited);
    let merged = fs::read_to_string(&path).unwrap();
    // the untouched entries keep their bytes, comments included
    assert!(merged.starts_with("# my clusters\napiVersion: v1\nclusters:\n- cluster:\n    server: https://prod.example:6443   # do not touch\n  name: prod\n"));
    assert!(merged.contains("current-context: kind-a\n"));
    let doc: Value = serde_saphyr::from_str(&merged).unwrap();
    assert_eq!(doc["clusters"][1]["cluster"]["server"], "https://127.0.0.1:1111");
    assert_eq!(doc["users"][1]["user"]["client-certificate-data"], "Y2VydA==");
    // the whole certificate stays on one line, as kubectl writes it
    assert!(merged.contains("certificate-authority-data: Q0EtREFU"));

    // merging again replaces our entries instead of adding a second copy
    assert_eq!(merge(&path, &entries("a", 2222)).unwrap(), Written::Edited);
    let doc: Value = serde_saphyr::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(doc["clusters"].as_array().unwrap().len(), 2);
    assert_eq!(doc["clusters"][1]["cluster"]["server"], "https://127.0.0.1:2222");

    assert_eq!(remove(&path, "kind-a").unwrap(), Written::Edited);
    let after = fs::read_to_string(&path).unwrap();
    // like kind, removing the current context leaves none selected; every other byte is as before
    assert_eq!(
        after,
        EXISTING.replace("current-context: prod\n", "current-context: \"\"\n")
    );
    assert_eq!(remove(&path, "kind-a").unwrap(), Written::Unchanged);
}

#[test]
fn remove_keeps_a_current_context_that_is_not_ours() {
    let (_dir, path) = temp_file(EXISTING);
    merge(&path, &entries("a", 1111)).unwrap();
    let selected = fs::read_to_string(&path)
        .unwrap()
        .replace("current-context: kind-a", "current-context: prod");
    fs::write(&path, &selected).unwrap();
    remove(&path, "kind-a").unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), EXISTING);
}

#[test]
fn a_missing_file_is_created_private() {
    let (_dir, path) = temp_file("");
    let path = path.parent().unwrap().join("nested").join("config");
    assert_eq!(merge(&path, &entries("a", 1111)).unwrap(), Written::Created);
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("kube reads it");
    assert_eq!(kubeconfig.current_context.as_deref(), Some("kind-a"));
    assert_eq!(kubeconfig.clusters.len(), 1);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!path.with_extension("lock").exists());
}

#[test]
fn flow_style_falls_back_to_reformatting_with_values_kept() {
    let flow = "apiVersion: v1\nkind: Config\nclusters: [{name: prod, cluster: {server: 'https://p:6443'}}]\n\
                users: [{name: me, user: {token: abc}}]\ncontexts: []\ncurrent-context: ''\n";
    let (_dir, path) = temp_file(flow);
    assert_eq!(merge(&path, &entries("a", 1111)).unwrap(), Written::Reformatted);
    let doc: Value = serde_saphyr::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(doc["clusters"][0]["cluster"]["server"], "https://p:6443");
    assert_eq!(doc["users"][0]["user"]["token"], "abc");
    assert_eq!(doc["contexts"][0]["name"], "kind-a");
}

#[test]
fn indented_sequences_are_edited_in_place() {
    let indented = "apiVersion: v1\nclusters:\n  - cluster:\n      server: https://p:6443\n    name: prod\n\
                    contexts: []\nusers: []\ncurrent-context: prod\nkind: Config\n";
    let (_dir, path) = temp_file(indented);
    assert_eq!(merge(&path, &entries("a", 1111)).unwrap(), Written::Edited);
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("apiVersion: v1\nclusters:\n  - cluster:\n      server: https://p:6443\n    name: prod\n  - ")
    );
    assert_eq!(remove(&path, "kind-a").unwrap(), Written::Edited);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        indented.replace("current-context: prod", "current-context: \"\"")
    );
}

#[test]
fn two_concurrent_writers_both_land() {
    let (_dir, path) = temp_file(EXISTING);
    let rounds = 25;
    let barrier = Arc::new(Barrier::new(2));
    let writers: Vec<_> = ["one", "two"]
        .into_iter()
        .map(|cluster| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for round in 0..rounds {
                    merge(&path, &entries(cluster, 20000 + round)).expect("merge under contention");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer thread");
    }
    let doc: Value = serde_saphyr::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let names: Vec<&str> = doc["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&"prod") && names.contains(&"kind-one") && names.contains(&"kind-two"));
    let last = format!("https://127.0.0.1:{}", 20000 + rounds - 1);
    assert!(
        doc["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"] != "prod")
            .all(|c| c["cluster"]["server"] == last.as_str())
    );
}

#[test]
fn a_stale_lock_is_taken_over_and_a_live_one_times_out() {
    let (_dir, path) = temp_file(EXISTING);
    let lock_path = PathBuf::from(format!("{}.lock", path.display()));
    let stale = fs::File::create(&lock_path).unwrap();
    stale
        .set_modified(SystemTime::now() - Duration::from_secs(120))
        .unwrap();
    merge(&path, &entries("a", 1111)).expect("a stale lock does not block");
    assert!(!lock_path.exists());

    let held = Lock::acquire(&path, Duration::from_secs(1)).expect("lock");
    let err = Lock::acquire(&path, Duration::from_millis(100))
        .err()
        .expect("second writer waits, then gives up");
    assert_eq!(err.kind, Kind::Timeout);
    assert!(err.message.contains(".lock"), "{}", err.message);
    drop(held);
    assert!(Lock::acquire(&path, Duration::from_millis(100)).is_ok());
}

/// `KUBECONFIG=a:b:c` with the files in `dir`; the ones in `exist` are written with `text`.
fn chain(dir: &Path, exist: &[(&str, &str)]) -> (Files, Vec<PathBuf>) {
    let paths: Vec<PathBuf> = ["a", "b", "c"].iter().map(|n| dir.join(n)).collect();
    for (name, text) in exist {
        fs::write(dir.join(name), text).unwrap();
    }
    (Files::new(paths.clone()), paths)
}

#[test]
fn kubeconfig_paths_drop_empty_and_repeated_entries() {
    let files = Files::new(vec!["/a".into(), "".into(), "/b".into(), "/a".into()]);
    assert_eq!(files, Files::new(vec!["/a".into(), "/b".into()]));
}

#[test]
fn new_entries_go_to_the_first_file_that_exists_else_the_last() {
    let dir = tempfile::tempdir().unwrap();
    // none exists: kind (and kubectl) create the last file
    let (files, paths) = chain(dir.path(), &[]);
    assert_eq!(files.target("kind-a").unwrap(), paths[2]);
    // b exists, a does not: b
    let (files, paths) = chain(dir.path(), &[("b", EXISTING)]);
    assert_eq!(
        files.merge(&entries("a", 1111)).unwrap(),
        (paths[1].clone(), Written::Edited)
    );
    assert!(!paths[0].exists() && !paths[2].exists());
}

#[test]
fn entries_are_updated_in_the_file_that_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let (files, paths) = chain(dir.path(), &[("a", EXISTING), ("c", "")]);
    // put our entries in c, as another tool or an earlier KUBECONFIG might have
    Files::new(vec![paths[2].clone()]).merge(&entries("a", 1111)).unwrap();
    let before_a = fs::read_to_string(&paths[0]).unwrap();
    let (file, _) = files.merge(&entries("a", 2222)).unwrap();
    assert_eq!(file, paths[2]);
    assert_eq!(fs::read_to_string(&paths[0]).unwrap(), before_a, "a is left alone");
    let c = kube::config::Kubeconfig::read_from(&paths[2]).unwrap();
    assert_eq!(c.clusters.len(), 1);
    let server = c.clusters[0].cluster.as_ref().unwrap().server.as_deref();
    assert_eq!(server, Some("https://127.0.0.1:2222"));
    // kube, reading the chain as kubectl does, finds the context
    let merged = kube::config::Kubeconfig::read_from(&paths[0])
        .unwrap()
        .merge(c)
        .unwrap();
    assert!(merged.contexts.iter().any(|c| c.name == "kind-a"));
}

#[test]
fn remove_takes_our_entries_out_of_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let (files, paths) = chain(dir.path(), &[("a", EXISTING), ("b", ""), ("c", "")]);
    for path in &paths {
        Files::new(vec![path.clone()]).merge(&entries("a", 1111)).unwrap();
    }
    Files::new(vec![paths[1].clone()])
        .merge(&entries("other", 3333))
        .unwrap();
    let changed = files.remove("kind-a").unwrap();
    assert_eq!(changed, paths);
    for path in &paths {
        let doc = kube::config::Kubeconfig::read_from(path).unwrap();
        assert!(!doc.clusters.iter().any(|c| c.name == "kind-a"), "{}", path.display());
        assert!(!doc.contexts.iter().any(|c| c.name == "kind-a"), "{}", path.display());
    }
    // another cluster's entries and the untouched file's bytes stay
    let b = kube::config::Kubeconfig::read_from(&paths[1]).unwrap();
    assert_eq!(b.current_context.as_deref(), Some("kind-other"));
    assert_eq!(
        fs::read_to_string(&paths[0]).unwrap(),
        EXISTING.replace("current-context: prod\n", "current-context: \"\"\n")
    );
    assert!(files.remove("kind-a").unwrap().is_empty());
    assert!(
        paths
            .iter()
            .all(|p| !PathBuf::from(format!("{}.lock", p.display())).exists())
    );
}

#[test]
fn a_broken_file_in_the_chain_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (files, paths) = chain(dir.path(), &[("a", "clusters: [unclosed\n")]);
    let err = files.target("kind-a").unwrap_err();
    assert!(err.message.contains(&paths[0].display().to_string()), "{}", err.message);
}

/// `down` removes `kind-a` only where it points at this loop's node: a file where another cluster of that name
/// (a kind cluster on another Docker, an old node removed by hand) wrote it keeps every byte.
#[test]
fn down_removes_only_the_entries_that_point_at_our_node() {
    let dir = tempfile::tempdir().unwrap();
    let (files, paths) = chain(dir.path(), &[("a", EXISTING), ("b", ""), ("c", "")]);
    Files::new(vec![paths[0].clone()]).merge(&entries("a", 1111)).unwrap();
    Files::new(vec![paths[2].clone()]).merge(&entries("a", 4444)).unwrap();
    let elsewhere = fs::read_to_string(&paths[2]).unwrap();
    let done = files.remove_pointing_at("kind-a", "https://127.0.0.1:1111").unwrap();
    assert_eq!(
        done,
        [
            Removal::Removed(paths[0].clone()),
            Removal::Kept {
                file: paths[2].clone(),
                server: "https://127.0.0.1:4444".into()
            }
        ]
    );
    assert_eq!(
        fs::read_to_string(&paths[0]).unwrap(),
        EXISTING.replace("current-context: prod\n", "current-context: \"\"\n")
    );
    assert_eq!(fs::read_to_string(&paths[2]).unwrap(), elsewhere);
    assert_eq!(fs::read_to_string(&paths[1]).unwrap(), "", "an empty file stays empty");
}

/// What a merge would replace is known beforehand, so `up` can say it replaced another cluster's entries.
#[test]
fn the_server_a_merge_replaces_is_read_from_the_target_file() {
    let dir = tempfile::tempdir().unwrap();
    let (files, paths) = chain(dir.path(), &[("b", EXISTING)]);
    assert_eq!(files.server("kind-a").unwrap(), None);
    assert_eq!(
        files.server("prod").unwrap().as_deref(),
        Some("https://prod.example:6443")
    );
    Files::new(vec![paths[1].clone()]).merge(&entries("a", 4444)).unwrap();
    assert_eq!(
        files.server("kind-a").unwrap().as_deref(),
        Some("https://127.0.0.1:4444")
    );
    assert_eq!(entries("a", 1111).server(), Some("https://127.0.0.1:1111"));
}
