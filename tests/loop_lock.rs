//! One loop per name under any race: `up`, `down` and `smoke` of a loop are serialised by a lock the user can
//! see, and duplicates that a race or an older release left are settled and removed. The first test needs
//! nothing but the binary; the others run against the real Docker Engine and Restate server (`#[ignore]`d:
//! `scripts/test.sh` runs them).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "support/loop_probes.rs"]
mod loop_probes;

use loop_probes::{invoke, json, labelled};

/// A loop name unique to this test run, so parallel tests and other developers' loops never collide.
fn loop_name(test: &str) -> String {
    format!("t-lock-{test}-{}", std::process::id())
}

/// restate-dev for loop `name`, with its lock files in `tmp_dir` (as `$TMPDIR/restate-dev-UID/`). A session's
/// `$XDG_RUNTIME_DIR` plays no part: it points elsewhere here.
fn restate_dev(name: &str, tmp_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_restate-dev"));
    command
        .args(["--name", name])
        .args(args)
        .env_remove("DOCKER_HOST")
        .env("TMPDIR", tmp_dir)
        .env("XDG_RUNTIME_DIR", tmp_dir.join("session"));
    command
}

fn restate_server() -> String {
    std::env::var("RESTATE_SERVER_BIN")
        .expect("RESTATE_SERVER_BIN must name the restate-server binary; run `. scripts/install-deps.sh` first")
}

/// `up --runtime docker` as JSON, started and not waited for.
fn spawn_up(name: &str, tmp_dir: &Path) -> Child {
    let server = restate_server();
    restate_dev(
        name,
        tmp_dir,
        &["up", "--runtime", "docker", "--restate-binary", &server],
    )
    .args(["--output", "json"])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("restate-dev starts")
}

/// The user's lock directory in `tmp_dir`: one per uid, whatever the session.
fn lock_dir(tmp_dir: &Path) -> std::path::PathBuf {
    let uid = std::fs::metadata(tmp_dir).unwrap().uid();
    tmp_dir.join(format!("restate-dev-{uid}"))
}

fn lock_file(tmp_dir: &Path, name: &str) -> std::path::PathBuf {
    lock_dir(tmp_dir).join(format!("{name}.lock"))
}

fn succeeded(output: &Output) -> bool {
    output.status.success()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Removes the loop even when an assertion failed half-way.
struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let dir = tempfile::tempdir().unwrap();
        let _ = restate_dev(&self.0, dir.path(), &["down"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// While another process holds the loop's lock, `up` says whom it waits for, and a signal ends the wait as it
/// ends any command (exit 130 or 143), before anything is touched.
#[test]
fn a_waiting_up_names_the_holder_and_a_signal_ends_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let name = loop_name("held");
    std::fs::create_dir_all(lock_dir(dir.path())).unwrap();
    // The session's runtime directory exists, and is not where the lock is looked for.
    std::fs::create_dir_all(dir.path().join("session")).unwrap();
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let mut holder = File::create(lock_file(dir.path(), &name)).unwrap();
        holder.lock().unwrap();
        writeln!(holder, "4242 up").unwrap();
        let child = restate_dev(&name, dir.path(), &["up", "--runtime", "docker"])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        let pid = child.id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
        let output = child.wait_with_output().unwrap();
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(code), "{stderr}");
        assert!(
            stderr.contains(&format!("waiting for another `up` of loop {name} (pid 4242)…")),
            "{stderr}"
        );
        // It never got as far as Docker, whose address here does not exist.
        assert!(!stderr.contains("Docker"), "{stderr}");
        // It made nothing, so it must not send the user to `down` the loop the other command is making.
        assert!(stderr.contains("nothing was made"), "{stderr}");
        assert!(!stderr.contains("restate-dev down"), "{stderr}");
        drop(holder);
    }
}

/// A lock directory that cannot be made is something in the way (exit 3), named with a hint, before anything
/// is touched.
#[test]
fn a_lock_directory_in_the_way_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let name = loop_name("blocked");
    std::fs::write(lock_dir(dir.path()), "not a directory").unwrap();
    let output = restate_dev(&name, dir.path(), &["up", "--runtime", "docker"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let blocked = format!("cannot create the lock directory {}", lock_dir(dir.path()).display());
    assert!(stderr.contains(&blocked), "{stderr}");
    assert!(stderr.contains("TMPDIR"), "{stderr}");
    assert!(!stderr.contains("Docker"), "{stderr}");
}

/// Three `up`s of one new name at once: all succeed, one after another (the later ones re-up), and leave one
/// loop, with one network, one Restate and one service container; `down` removes everything.
#[tokio::test]
#[ignore = "needs a Docker daemon and restate-server: scripts/test.sh starts and installs them, and runs this tier"]
async fn three_ups_at_once_give_one_loop_and_down_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let name = loop_name("three");
    let _cleanup = Cleanup(name.clone());
    let ups: Vec<Child> = (0..3).map(|_| spawn_up(&name, dir.path())).collect();
    let outputs: Vec<Output> = ups.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for output in &outputs {
        assert!(succeeded(output), "an up failed:\n{}", stderr(output));
    }
    let urls: Vec<String> = outputs
        .iter()
        .map(|o| json(o)["ingress_url"].as_str().unwrap().to_string())
        .collect();
    assert!(urls.iter().all(|u| *u == urls[0]), "one loop, one ingress: {urls:?}");
    let (status, answer) = invoke(&urls[0], "Greeter/greet", "\"Ada\"").await;
    assert_eq!((status, answer.as_str()), (200, "\"Hello, Ada!\""));
    // The loop's record is a labelled volume too, `NAME-record` (or named after its generation,
    // `NAME-record-…`): exactly one of them.
    let record = format!("volume {name}-record");
    let (records, mut found): (Vec<String>, Vec<String>) =
        labelled(&name).into_iter().partition(|l| l.starts_with(&record));
    assert_eq!(records.len(), 1, "one record volume: {records:?}");
    found.sort();
    assert_eq!(
        found,
        [
            format!("container {name}-restate"),
            format!("container {name}-service"),
            format!("network {name}-net"),
            format!("volume {name}-restate-data"),
        ]
    );
    let down = restate_dev(&name, dir.path(), &["down"]).output().unwrap();
    assert!(succeeded(&down), "{}", stderr(&down));
    assert_eq!(labelled(&name), Vec::<String>::new());
}

/// While an `up` is in progress, a `down` of the same loop waits for it, naming its pid, and then removes
/// what it made.
#[test]
#[ignore = "needs a Docker daemon and restate-server: scripts/test.sh starts and installs them, and runs this tier"]
fn a_down_during_an_up_waits_for_it_naming_its_pid() {
    let dir = tempfile::tempdir().unwrap();
    let name = loop_name("wait");
    let _cleanup = Cleanup(name.clone());
    let up = spawn_up(&name, dir.path());
    let pid = up.id();
    let held = format!("{pid} up\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(lock_file(dir.path(), &name)).ok().as_deref() != Some(held.as_str()) {
        assert!(Instant::now() < deadline, "up did not take the lock within 30 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    let down = restate_dev(&name, dir.path(), &["down"]).output().unwrap();
    let up = up.wait_with_output().unwrap();
    assert!(succeeded(&up), "{}", stderr(&up));
    assert!(succeeded(&down), "{}", stderr(&down));
    let waited = format!("waiting for another `up` of loop {name} (pid {pid})…");
    assert!(stderr(&down).contains(&waited), "{}", stderr(&down));
    // It ran after the `up`, so it found the whole loop to remove.
    assert!(String::from_utf8_lossy(&down.stdout).contains(&format!("removed container {name}-restate")));
    assert_eq!(labelled(&name), Vec::<String>::new());
}

/// A loop whose network has a duplicate of the same name (made by a race in an older release, which Docker
/// before API 1.44 allows): `up` settles it and succeeds, and `down` removes every network of the name.
#[tokio::test]
#[ignore = "needs a Docker daemon and restate-server: scripts/test.sh starts and installs them, and runs this tier"]
async fn duplicate_networks_are_settled_by_up_and_all_removed_by_down() {
    use restate_dev::docker::{Docker, NetworkSpec};
    let dir = tempfile::tempdir().unwrap();
    let name = loop_name("dup");
    let _cleanup = Cleanup(name.clone());
    let docker = Docker::connect().await.expect("these tests need a Docker daemon");
    let spec = NetworkSpec {
        name: format!("{name}-net"),
        labels: restate_dev::labels::for_loop(&name),
        mtu: None,
        masquerade: true,
    };
    docker.create_network(&spec).await.unwrap();
    if docker.create_network(&spec).await.is_err() {
        eprintln!("this engine refuses a second network of one name: no duplicates to settle");
        return;
    }
    let networks = |name: &str| labelled(name).into_iter().filter(|l| l.starts_with("network ")).count();
    assert_eq!(networks(&name), 2);
    let up = spawn_up(&name, dir.path()).wait_with_output().unwrap();
    assert!(succeeded(&up), "{}", stderr(&up));
    assert_eq!(networks(&name), 1, "up keeps one of the duplicates");

    // Duplicates `down` meets (an older release's `up` racing this one's) are removed by ID, each of them.
    docker.create_network(&spec).await.unwrap();
    assert_eq!(networks(&name), 2);
    let down = restate_dev(&name, dir.path(), &["down"]).output().unwrap();
    assert!(succeeded(&down), "{}", stderr(&down));
    assert_eq!(labelled(&name), Vec::<String>::new());
}

/// While the first `up` of a loop holds its lock, the loop may not exist yet: `status` says it is being made, by
/// whom, instead of "no loop named X exists" and a hint to start one.
#[test]
#[ignore = "needs a Docker daemon: scripts/test.sh starts one and runs this tier"]
fn status_of_a_loop_being_made_names_the_up_making_it() {
    let dir = tempfile::tempdir().unwrap();
    let name = loop_name("making");
    std::fs::create_dir_all(lock_dir(dir.path())).unwrap();
    let mut holder = File::create(lock_file(dir.path(), &name)).unwrap();
    holder.lock().unwrap();
    writeln!(holder, "4242 up").unwrap();
    let output = restate_dev(&name, dir.path(), &["status"]).output().unwrap();
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("loop {name} is being made: `up` (pid 4242) is under way")),
        "{said}"
    );
    drop(holder);
    let output = restate_dev(&name, dir.path(), &["status"]).output().unwrap();
    assert!(stderr(&output).contains(&format!("no loop named {name} exists")));
}
