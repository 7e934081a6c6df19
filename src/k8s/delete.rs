//! Removes what `up` installed into a cluster, found by the loop's labels: never by remembered state, and never
//! anything without them; the namespace only when restate-dev created it for the loop. Deleting what is already
//! gone is fine, so `down` can run any number of times.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams};

use crate::cluster::Removed;
use crate::error::{Error, Result};
use crate::k8s::diagnose::api_message;
use crate::k8s::ownership::{self, Owner};
use crate::labels;
use crate::ui::Ui;

const POLL: Duration = Duration::from_secs(1);

/// The namespaced kinds `up` creates, in the order they are removed: workloads first, so that nothing restarts
/// what is being removed.
fn installed_kinds() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<StatefulSet>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<Secret>(&()),
        ApiResource::erase::<ServiceAccount>(&()),
        ApiResource::erase::<PersistentVolumeClaim>(&()),
    ]
}

/// Deletes the loop's objects in `namespace`, then the namespace itself when restate-dev created it for this
/// loop (see [`ownership::created_by_loop`]), waiting up to `timeout` for it to be gone so that the next `up`
/// does not meet a namespace still terminating. A namespace kept is said on `ui`, with why.
///
/// Restate's data claims carry our labels (the StatefulSet's claim template has them), so they are found like
/// the rest; a claim without them is not ours, whatever its name: a Helm release's `storage-restate-0`.
pub async fn delete_installed(
    client: &kube::Client,
    namespace: &str,
    loop_name: &str,
    timeout: Duration,
    ui: &Ui,
) -> Result<Removed> {
    let selector = labels::selector(loop_name);
    let mut removed = Removed::new();
    for resource in installed_kinds() {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let found = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| list_error(&resource.kind, namespace, e))?;
        for object in found.items {
            let name = object.metadata.name.clone().unwrap_or_default();
            if let Owner::Foreign(foreign) = ownership::owner(&object.metadata, loop_name) {
                ui.info(format!(
                    "kept {} {namespace}/{name}: it carries the loop's labels but is not restate-dev's ({})",
                    resource.kind,
                    foreign.describe()
                ));
                continue;
            }
            if delete_one(&api, &resource.kind, namespace, &name).await? {
                removed.push(format!("{} {namespace}/{name}", resource.kind));
            }
        }
    }
    match delete_namespace_if_ours(client, namespace, loop_name, timeout).await? {
        NamespaceFate::Deleted => removed.push(format!("Namespace {namespace}")),
        NamespaceFate::Kept(why) if !removed.is_empty() => {
            ui.info(format!("kept namespace {namespace} and what else it holds: it {why}"));
        }
        NamespaceFate::Kept(_) | NamespaceFate::Missing => {}
    }
    Ok(removed)
}

/// Deletes one object; false when it was already gone.
async fn delete_one(api: &Api<DynamicObject>, kind: &str, namespace: &str, name: &str) -> Result<bool> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(e) => Err(
            Error::failed(format!("cannot delete {kind} {namespace}/{name}: {}", api_message(&e)))
                .hint("check that the kube context's user may delete it, or delete it with kubectl"),
        ),
    }
}

/// What became of the loop's namespace.
enum NamespaceFate {
    Deleted,
    /// Not created by restate-dev for this loop: why.
    Kept(String),
    Missing,
}

async fn delete_namespace_if_ours(
    client: &kube::Client,
    namespace: &str,
    loop_name: &str,
    timeout: Duration,
) -> Result<NamespaceFate> {
    let api: Api<Namespace> = Api::all(client.clone());
    let Some(ns) = api.get_opt(namespace).await.map_err(|e| {
        Error::failed(format!("cannot read namespace {namespace}: {}", api_message(&e)))
            .hint("check that the cluster is reachable: `restate-dev status`")
    })?
    else {
        return Ok(NamespaceFate::Missing);
    };
    if !ownership::created_by_loop(&ns.metadata, loop_name) {
        return Ok(NamespaceFate::Kept(ownership::why_not_created(&ns.metadata, loop_name)));
    }
    if let Some(neighbour) = other_loops_object(client, namespace, loop_name).await? {
        return Ok(NamespaceFate::Kept(format!(
            "holds another loop's objects, installed beside this one ({neighbour})"
        )));
    }
    match api.delete(namespace, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(NamespaceFate::Missing),
        Err(e) => {
            return Err(
                Error::failed(format!("cannot delete namespace {namespace}: {}", api_message(&e)))
                    .hint("check that the kube context's user may delete namespaces"),
            );
        }
    }
    let gone = async {
        loop {
            match api.get_opt(namespace).await {
                Ok(None) => break,
                Ok(Some(_)) | Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    };
    tokio::time::timeout(timeout, gone).await.map_err(|_| {
        Error::timeout(format!("namespace {namespace} was still terminating after {timeout:?}")).hint(format!(
            "see `kubectl get namespace {namespace} -o yaml` for what holds it (finalizers)"
        ))
    })?;
    Ok(NamespaceFate::Deleted)
}

/// One object of another restate-dev loop in `namespace` (`up --namespace` of another name installs beside
/// this loop), named with its loop; deleting the namespace would delete it too.
async fn other_loops_object(client: &kube::Client, namespace: &str, loop_name: &str) -> Result<Option<String>> {
    let others = format!(
        "{}={},{}!={loop_name}",
        labels::MANAGED_BY_KEY,
        labels::MANAGED_BY,
        labels::LOOP_KEY
    );
    for resource in installed_kinds() {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let found = api
            .list(&ListParams::default().labels(&others).limit(1))
            .await
            .map_err(|e| list_error(&resource.kind, namespace, e))?;
        if let Some(object) = found.items.first() {
            let name = object.metadata.name.as_deref().unwrap_or_default();
            let owner = (object.metadata.labels.as_ref())
                .and_then(|l| l.get(labels::LOOP_KEY))
                .map_or("no loop label".to_string(), |l| format!("loop {l}"));
            return Ok(Some(format!("{} {namespace}/{name}, {owner}", resource.kind)));
        }
    }
    Ok(None)
}

fn list_error(kind: &str, namespace: &str, error: kube::Error) -> Error {
    Error::failed(format!(
        "cannot list {kind} objects in namespace {namespace}: {}",
        api_message(&error)
    ))
    .hint("check that the cluster is reachable and the kube context's user may list them")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use serde_json::{Value, json};

    use super::*;
    use crate::k8s::mock;

    const SELECTOR: &str = "app.kubernetes.io/managed-by=restate-dev,dev.restate.loop=dev";
    /// Other loops' objects, which keep a namespace.
    const OTHERS: &str = "app.kubernetes.io/managed-by=restate-dev,dev.restate.loop!=dev";

    /// One of the loop's objects, as a labelled list returns it.
    fn named(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "restate", "labels": labels::for_loop("dev")}})
    }

    /// The namespace `restate` with this metadata besides its name.
    fn namespace(metadata: Value) -> Value {
        let mut metadata = metadata;
        metadata["name"] = json!("restate");
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})
    }

    fn created_for(loop_name: &str) -> Value {
        json!({"labels": labels::for_loop(loop_name),
               "annotations": {ownership::CREATED_BY_ANNOTATION: loop_name}})
    }

    fn managed_by(managers: &[&str]) -> Value {
        json!(
            managers
                .iter()
                .map(|m| json!({"manager": m, "operation": "Apply"}))
                .collect::<Vec<_>>()
        )
    }

    fn quiet() -> Ui {
        Ui::new(None, true)
    }

    /// Only labelled lists are asked for (an unlabelled one panics the route): a claim named like Restate's
    /// but without our labels, such as a Helm release's `storage-restate-0`, is never even listed.
    #[tokio::test(start_paused = true)]
    async fn removes_labeled_objects_and_the_namespace_made_for_the_loop() {
        let (client, server) = mock::client();
        let namespace_reads = AtomicU32::new(0);
        let serving = tokio::spawn(server.serve(move |seen| {
            let selector = seen.query.get("labelSelector").map(String::as_str);
            let labeled = selector == Some(SELECTOR);
            let list = |items: Vec<Value>| (200, mock::list("v1", "List", items));
            match (seen.method.as_str(), seen.path.as_str()) {
                ("GET", path) if selector == Some(OTHERS) && path.starts_with("/api") => list(vec![]),
                ("GET", "/apis/apps/v1/namespaces/restate/statefulsets") if labeled => list(vec![named("restate")]),
                ("GET", "/apis/apps/v1/namespaces/restate/deployments") if labeled => list(vec![named("greeter")]),
                ("GET", "/api/v1/namespaces/restate/services") if labeled => {
                    // Helm's Service, relabelled by an older release's forced apply, is still Helm's.
                    let relabelled = json!({"metadata": {"name": "helms", "namespace": "restate",
                        "labels": labels::for_loop("dev"),
                        "annotations": {"meta.helm.sh/release-name": "restate"}}});
                    list(vec![named("restate"), relabelled, named("greeter")])
                }
                ("GET", "/api/v1/namespaces/restate/serviceaccounts") if labeled => list(vec![named("restate")]),
                ("GET", "/api/v1/namespaces/restate/persistentvolumeclaims") if labeled => {
                    list(vec![named("storage-restate-0")])
                }
                ("GET", path) if labeled && path.starts_with("/api") => list(vec![]),
                ("DELETE", "/api/v1/namespaces/restate/services/helms") => panic!("Helm's Service was deleted"),
                // Someone removed it already: fine.
                ("DELETE", "/apis/apps/v1/namespaces/restate/statefulsets/restate") => {
                    (404, mock::not_found("statefulsets.apps", "restate"))
                }
                ("DELETE", path) if path.starts_with("/api") => (200, named("deleted")),
                ("GET", "/api/v1/namespaces/restate") => match namespace_reads.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => (200, namespace(created_for("dev"))),
                    _ => (404, mock::not_found("namespaces", "restate")),
                },
                other => panic!("unexpected request {other:?} {:?}", seen.query),
            }
        }));
        let removed = delete_installed(&client, "restate", "dev", Duration::from_secs(30), &quiet())
            .await
            .expect("deleted");
        drop(client);
        let seen = serving.await.expect("server");
        assert_eq!(
            removed,
            [
                "Deployment restate/greeter",
                "Service restate/restate",
                "Service restate/greeter",
                "ServiceAccount restate/restate",
                "PersistentVolumeClaim restate/storage-restate-0",
                "Namespace restate",
            ]
        );
        let deletes: Vec<&str> = seen
            .iter()
            .filter(|s| s.method == "DELETE")
            .map(|s| s.path.as_str())
            .collect();
        assert!(deletes.contains(&"/api/v1/namespaces/restate"));
    }

    /// Which namespaces `down` deletes after removing the loop's objects in them: the one `up` recorded creating
    /// for this loop, and an older release's labelled one that nothing but restate-dev wrote. Never one labelled
    /// by an older release over someone else's (the Helm-made `restate`), nor another loop's.
    #[tokio::test]
    async fn deletes_a_namespace_only_when_restate_dev_created_it_for_the_loop() {
        let older = json!({"labels": labels::for_loop("dev"),
                           "managedFields": managed_by(&["restate-dev", "restate-dev-port-forward"])});
        let taken_over = json!({"labels": labels::for_loop("dev"),
                                "managedFields": managed_by(&["helm", "restate-dev"])});
        let cases = [
            (created_for("dev"), true),
            (older, true),
            (taken_over, false),
            (created_for("other"), false),
            (json!({"managedFields": managed_by(&["kubectl-create"])}), false),
        ];
        for (metadata, deleted) in cases {
            let (client, server) = mock::client();
            let ns = namespace(metadata.clone());
            let serving = tokio::spawn(
                server.serve(move |seen| match (seen.method.as_str(), seen.path.as_str()) {
                    ("GET", "/api/v1/namespaces/restate") if seen.query.is_empty() => (200, ns.clone()),
                    ("GET", "/api/v1/namespaces/restate/services") if seen.query["labelSelector"] == SELECTOR => {
                        (200, mock::list("v1", "List", vec![named("restate")]))
                    }
                    ("GET", _) => (200, mock::list("v1", "List", vec![])),
                    ("DELETE", "/api/v1/namespaces/restate/services/restate") => (200, named("restate")),
                    ("DELETE", "/api/v1/namespaces/restate") => (200, ns.clone()),
                    other => panic!("unexpected request {other:?}"),
                }),
            );
            // The namespace never goes away in this server: a deleted one times out waiting, which is enough here.
            let result = delete_installed(&client, "restate", "dev", Duration::from_millis(50), &quiet()).await;
            drop(client);
            let seen = serving.await.expect("server");
            let namespace_deleted = seen
                .iter()
                .any(|s| s.method == "DELETE" && s.path == "/api/v1/namespaces/restate");
            assert_eq!(namespace_deleted, deleted, "{metadata}");
            if !deleted {
                assert_eq!(result.expect("kept"), ["Service restate/restate"], "{metadata}");
            }
        }
    }

    /// The namespace `up` created for loop `dev` also holds loop `beside`'s objects (`up --name beside
    /// --namespace restate`): `down` of `dev` removes its own objects and keeps the namespace, saying whose
    /// objects keep it.
    #[tokio::test]
    async fn keeps_its_namespace_while_another_loop_is_installed_beside_it() {
        let (client, server) = mock::client();
        let ns = namespace(created_for("dev"));
        let serving = tokio::spawn(server.serve(move |seen| {
            let selector = seen.query.get("labelSelector").map(String::as_str);
            let list = |items: Vec<Value>| (200, mock::list("v1", "List", items));
            match (seen.method.as_str(), seen.path.as_str()) {
                ("GET", "/api/v1/namespaces/restate") => (200, ns.clone()),
                ("GET", "/api/v1/namespaces/restate/services") if selector == Some(SELECTOR) => {
                    list(vec![named("restate")])
                }
                ("GET", "/apis/apps/v1/namespaces/restate/statefulsets") if selector == Some(OTHERS) => {
                    let beside = json!({"metadata": {"name": "beside-restate", "namespace": "restate",
                        "labels": labels::for_loop("beside")}});
                    list(vec![beside])
                }
                ("GET", _) => list(vec![]),
                ("DELETE", "/api/v1/namespaces/restate/services/restate") => (200, named("restate")),
                ("DELETE", "/api/v1/namespaces/restate") => panic!("the other loop's namespace was deleted"),
                other => panic!("unexpected request {other:?}"),
            }
        }));
        let fate = delete_namespace_if_ours(&client, "restate", "dev", Duration::from_secs(30)).await;
        let removed = delete_installed(&client, "restate", "dev", Duration::from_secs(30), &quiet()).await;
        drop(client);
        serving.await.expect("server");
        assert_eq!(removed.expect("removed"), ["Service restate/restate"]);
        match fate.expect("kept") {
            NamespaceFate::Kept(why) => assert_eq!(
                why,
                "holds another loop's objects, installed beside this one \
                 (StatefulSet restate/beside-restate, loop beside)"
            ),
            _ => panic!("the namespace was not kept"),
        }
    }

    #[tokio::test]
    async fn leaves_a_namespace_without_our_labels_and_is_idempotent() {
        let (client, server) = mock::client();
        let serving = tokio::spawn(server.serve(|seen| match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", "/api/v1/namespaces/restate") => (200, namespace(json!({}))),
            ("GET", _) => (200, mock::list("v1", "List", vec![])),
            other => panic!("unexpected request {other:?}"),
        }));
        let removed = delete_installed(&client, "restate", "dev", Duration::from_secs(30), &quiet())
            .await
            .expect("nothing to delete is fine");
        drop(client);
        let seen = serving.await.expect("server");
        assert!(removed.is_empty());
        assert!(seen.iter().all(|s| s.method == "GET"));
    }

    #[tokio::test]
    async fn a_forbidden_delete_names_the_object() {
        let (client, server) = mock::client();
        let serving = tokio::spawn(server.serve(|seen| match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", "/apis/apps/v1/namespaces/restate/deployments") => {
                (200, mock::list("apps/v1", "DeploymentList", vec![named("greeter")]))
            }
            ("GET", _) => (200, mock::list("v1", "List", vec![])),
            ("DELETE", _) => (
                403,
                mock::status(403, "Forbidden", "deployments.apps \"greeter\" is forbidden"),
            ),
            other => panic!("unexpected request {other:?}"),
        }));
        let error = delete_installed(&client, "restate", "dev", Duration::from_secs(30), &quiet())
            .await
            .expect_err("forbidden");
        drop(client);
        serving.await.expect("server");
        assert_eq!(
            error.message,
            "cannot delete Deployment restate/greeter: deployments.apps \"greeter\" is forbidden"
        );
    }
}
