//! Removes what `up` installed into a cluster, found by the loop's labels: never by remembered state, and never
//! anything without them. Deleting what is already gone is fine, so `down` can run any number of times.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount};
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams};

use crate::cluster::Removed;
use crate::error::{Error, Result};
use crate::k8s::diagnose::api_message;
use crate::labels;

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

/// Deletes the loop's objects in `namespace`, the data volumes of its StatefulSets, then the namespace itself
/// when it carries the loop's labels (it was made by `up`), waiting up to `timeout` for it to be gone so that
/// the next `up` does not meet a namespace still terminating.
pub async fn delete_installed(
    client: &kube::Client,
    namespace: &str,
    loop_name: &str,
    timeout: Duration,
) -> Result<Removed> {
    let selector = labels::selector(loop_name);
    let mut removed = Removed::new();
    let mut claims = claims_of_statefulsets(client, namespace, &selector).await?;
    for resource in installed_kinds() {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let found = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| list_error(&resource.kind, namespace, e))?;
        for object in found.items {
            let name = object.metadata.name.unwrap_or_default();
            claims.retain(|c| c != &name || resource.kind != "PersistentVolumeClaim");
            if delete_one(&api, &resource.kind, namespace, &name).await? {
                removed.push(format!("{} {namespace}/{name}", resource.kind));
            }
        }
    }
    // Claims made from volumeClaimTemplates without our labels.
    let pvc_resource = ApiResource::erase::<PersistentVolumeClaim>(&());
    let pvcs: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &pvc_resource);
    for name in claims {
        if delete_one(&pvcs, "PersistentVolumeClaim", namespace, &name).await? {
            removed.push(format!("PersistentVolumeClaim {namespace}/{name}"));
        }
    }
    if let Some(line) = delete_namespace_if_ours(client, namespace, loop_name, timeout).await? {
        removed.push(line);
    }
    Ok(removed)
}

/// Names of the PVCs the loop's StatefulSets made from their volumeClaimTemplates (`TEMPLATE-STS-ORDINAL`).
/// The StatefulSet controller copies only the template's own labels and the pod selector onto them, so they
/// carry our labels only when the template does; matching by name catches them either way.
async fn claims_of_statefulsets(client: &kube::Client, namespace: &str, selector: &str) -> Result<Vec<String>> {
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let sets = sets
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| list_error("StatefulSet", namespace, e))?;
    let prefixes: Vec<String> = sets
        .items
        .iter()
        .flat_map(|sts| {
            let name = sts.metadata.name.clone().unwrap_or_default();
            let templates = sts
                .spec
                .as_ref()
                .and_then(|s| s.volume_claim_templates.clone())
                .unwrap_or_default();
            templates
                .into_iter()
                .map(move |t| format!("{}-{name}-", t.metadata.name.unwrap_or_default()))
        })
        .collect();
    if prefixes.is_empty() {
        return Ok(Vec::new());
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let claims = claims
        .list(&ListParams::default())
        .await
        .map_err(|e| list_error("PersistentVolumeClaim", namespace, e))?;
    Ok(claims
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|name| {
            prefixes.iter().any(|p| {
                name.strip_prefix(p.as_str())
                    .is_some_and(|ordinal| !ordinal.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit()))
            })
        })
        .collect())
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

async fn delete_namespace_if_ours(
    client: &kube::Client,
    namespace: &str,
    loop_name: &str,
    timeout: Duration,
) -> Result<Option<String>> {
    let api: Api<Namespace> = Api::all(client.clone());
    let Some(ns) = api.get_opt(namespace).await.map_err(|e| {
        Error::failed(format!("cannot read namespace {namespace}: {}", api_message(&e)))
            .hint("check that the cluster is reachable: `restate-dev status`")
    })?
    else {
        return Ok(None);
    };
    let ours = labels::for_loop(loop_name)
        .iter()
        .all(|(k, v)| ns.labels().get(k) == Some(v));
    if !ours {
        return Ok(None);
    }
    match api.delete(namespace, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(None),
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
    Ok(Some(format!("Namespace {namespace}")))
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

    fn named(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "restate"}})
    }

    fn namespace(ours: bool) -> Value {
        let labels = if ours {
            json!(labels::for_loop("dev"))
        } else {
            json!({})
        };
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "restate", "labels": labels}})
    }

    #[tokio::test(start_paused = true)]
    async fn removes_labeled_objects_template_claims_and_our_namespace() {
        let (client, server) = mock::client();
        let namespace_reads = AtomicU32::new(0);
        let serving = tokio::spawn(server.serve(move |seen| {
            let labeled = seen.query.get("labelSelector").map(String::as_str) == Some(SELECTOR);
            let list = |items: Vec<Value>| (200, mock::list("v1", "List", items));
            match (seen.method.as_str(), seen.path.as_str()) {
                ("GET", "/apis/apps/v1/namespaces/restate/statefulsets") if labeled => list(vec![json!({
                    "metadata": {"name": "restate", "namespace": "restate"},
                    "spec": {"selector": {}, "serviceName": "restate-cluster", "template": {},
                             "volumeClaimTemplates": [{"metadata": {"name": "storage"}}]}})]),
                ("GET", "/api/v1/namespaces/restate/persistentvolumeclaims") if !labeled => list(
                    [
                        "storage-restate-0",
                        "storage-restate-10",
                        "storage-restate-x",
                        "storage-other-0",
                    ]
                    .into_iter()
                    .map(named)
                    .collect(),
                ),
                ("GET", "/apis/apps/v1/namespaces/restate/deployments") if labeled => list(vec![named("greeter")]),
                ("GET", "/api/v1/namespaces/restate/services") if labeled => {
                    list(vec![named("restate"), named("greeter")])
                }
                ("GET", "/api/v1/namespaces/restate/serviceaccounts") if labeled => list(vec![named("restate")]),
                ("GET", "/api/v1/namespaces/restate/persistentvolumeclaims") if labeled => {
                    list(vec![named("storage-restate-0")])
                }
                ("GET", path) if labeled && path.starts_with("/api") => list(vec![]),
                // Someone removed it already: fine.
                ("DELETE", "/apis/apps/v1/namespaces/restate/statefulsets/restate") => {
                    (404, mock::not_found("statefulsets.apps", "restate"))
                }
                ("DELETE", path) if path.starts_with("/api") => (200, named("deleted")),
                ("GET", "/api/v1/namespaces/restate") => match namespace_reads.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => (200, namespace(true)),
                    _ => (404, mock::not_found("namespaces", "restate")),
                },
                other => panic!("unexpected request {other:?} {:?}", seen.query),
            }
        }));
        let removed = delete_installed(&client, "restate", "dev", Duration::from_secs(30))
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
                "PersistentVolumeClaim restate/storage-restate-10",
                "Namespace restate",
            ]
        );
        let deletes: Vec<&str> = seen
            .iter()
            .filter(|s| s.method == "DELETE")
            .map(|s| s.path.as_str())
            .collect();
        assert!(deletes.contains(&"/api/v1/namespaces/restate"));
        assert!(
            !deletes
                .iter()
                .any(|p| p.ends_with("storage-restate-x") || p.ends_with("storage-other-0"))
        );
        // Each claim is deleted once, though it matched both by label and by template name.
        assert_eq!(deletes.iter().filter(|p| p.ends_with("/storage-restate-0")).count(), 1);
    }

    #[tokio::test]
    async fn leaves_a_namespace_without_our_labels_and_is_idempotent() {
        let (client, server) = mock::client();
        let serving = tokio::spawn(server.serve(|seen| match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", "/api/v1/namespaces/restate") => (200, namespace(false)),
            ("GET", _) => (200, mock::list("v1", "List", vec![])),
            other => panic!("unexpected request {other:?}"),
        }));
        let removed = delete_installed(&client, "restate", "dev", Duration::from_secs(30))
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
        let error = delete_installed(&client, "restate", "dev", Duration::from_secs(30))
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
