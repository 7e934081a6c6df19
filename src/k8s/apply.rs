//! Server-side apply of the rendered objects, in order, as field manager `restate-dev`. Forced, so that a second
//! `up` takes back fields another manager (a `kubectl edit`) changed: the loop's objects are ours to define.
//!
//! Forcing is sound only on objects that are ours, so every object is read first ([`ownership`]): when any of
//! them exists and is not this loop's, nothing is written. A namespace that exists and is not ours is left as it
//! is (its Namespace object is not applied at all) and the loop goes in beside what it holds.
//!
//! A namespace that does not exist is created (POST), not applied: two loops of different names (whose locks do
//! not serialise them) making one namespace at once would otherwise both apply it, and the second, forced, would
//! take the first's namespace over. The one whose create loses (409) reads whose it is and goes in beside.

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;

use crate::error::{Error, Result};
use crate::k8s::Manifest;
use crate::k8s::ownership::{self, CREATED_BY_ANNOTATION, Owner};
use crate::ui::Ui;

pub const FIELD_MANAGER: &str = "restate-dev";

/// What [`apply_all`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// How many objects the API server changed.
    pub changed: usize,
    /// How many objects were applied.
    pub applied: usize,
    /// Set when the namespace existed and is not one restate-dev created for this loop: why not. Its Namespace
    /// object was then not applied.
    pub beside: Option<String>,
}

/// Applies every manifest in order (the namespace first, as `render` orders them), after checking that each one
/// that exists is loop `loop_name`'s. An object whose resourceVersion the apply left as it was is unchanged, so a
/// re-`up` of a loop nobody touched changes nothing and can say so.
pub async fn apply_all(client: &kube::Client, manifests: &[Manifest], loop_name: &str, ui: &Ui) -> Result<Applied> {
    let step = ui.step("apply");
    step.set_message("reading who owns each object");
    let mut existing = Vec::new();
    let mut foreign = Vec::new();
    let mut beside = None;
    for manifest in manifests {
        let id = describe(manifest);
        let before = get(client, manifest).await?;
        if let Some(object) = &before {
            if is_namespace(manifest) {
                if !ownership::created_by_loop(&object.metadata, loop_name) {
                    beside = Some(ownership::why_not_created(&object.metadata, loop_name));
                }
            } else if let owner @ (Owner::OtherLoop(_) | Owner::Foreign(_)) =
                ownership::owner(&object.metadata, loop_name)
            {
                foreign.push((id, owner));
            }
        }
        foreign.extend(foreign_claims(client, manifest, loop_name).await?);
        existing.push(before);
    }
    if !foreign.is_empty() {
        return Err(not_ours(&foreign, manifests, loop_name));
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let (mut changed, mut applied) = (0, 0);
    for (done, (manifest, before)) in manifests.iter().zip(&existing).enumerate() {
        if is_namespace(manifest) && beside.is_some() {
            continue;
        }
        let id = describe(manifest);
        step.set_message(format!("{id} ({}/{})", done + 1, manifests.len()));
        if is_namespace(manifest) && before.is_none() {
            match create_namespace(client, manifest, loop_name).await? {
                // Made by this call, and applied at once as well: the apply takes over the create's fields, so
                // that the first re-`up` finds nothing to change.
                None => {}
                Some(made) if !ownership::created_by_loop(&made.metadata, loop_name) => {
                    beside = Some(ownership::why_not_created(&made.metadata, loop_name));
                    continue;
                }
                // Made for this loop after all: applied as a namespace of ours.
                Some(_) => {}
            }
        }
        let mut object = with_types(manifest);
        if is_namespace(manifest) && records_creation(before.as_ref(), loop_name) {
            object
                .metadata
                .annotations
                .get_or_insert_default()
                .insert(CREATED_BY_ANNOTATION.to_string(), loop_name.to_string());
        }
        let after = api_for(client, manifest)
            .patch(name_of(manifest)?, &params, &Patch::Apply(&object))
            .await
            .map_err(|e| apply_error(&id, e))?;
        let version = |o: &DynamicObject| o.metadata.resource_version.clone();
        if before.as_ref().map(version) != Some(version(&after)) {
            changed += 1;
        }
        applied += 1;
    }
    step.done(format!("{changed} of {applied} objects changed"));
    Ok(Applied {
        changed,
        applied,
        beside,
    })
}

fn is_namespace(manifest: &Manifest) -> bool {
    manifest.resource.kind == "Namespace" && !manifest.namespaced
}

/// The namespace gets the record when this apply creates it, and keeps it when it has it (server-side apply
/// would drop an annotation our manager set before and applies no more).
fn records_creation(before: Option<&DynamicObject>, loop_name: &str) -> bool {
    let recorded = |o: &DynamicObject| {
        o.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CREATED_BY_ANNOTATION))
            .map(String::as_str)
            == Some(loop_name)
    };
    before.is_none_or(recorded)
}

/// Creates the namespace, recording that restate-dev created it for this loop. None when this call made it; the
/// namespace as it is now when another made it first (409).
async fn create_namespace(
    client: &kube::Client,
    manifest: &Manifest,
    loop_name: &str,
) -> Result<Option<DynamicObject>> {
    let id = describe(manifest);
    let mut object = with_types(manifest);
    (object.metadata.annotations.get_or_insert_default())
        .insert(CREATED_BY_ANNOTATION.to_string(), loop_name.to_string());
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    match api_for(client, manifest).create(&params, &object).await {
        Ok(_) => Ok(None),
        Err(kube::Error::Api(status)) if status.code == 409 => match get(client, manifest).await? {
            Some(made) => Ok(Some(made)),
            None => Err(
                Error::failed(format!("{id} was created by someone else and is gone again"))
                    .hint("run `restate-dev up` again"),
            ),
        },
        Err(e) => Err(apply_error(&id, e)),
    }
}

fn name_of(manifest: &Manifest) -> Result<&str> {
    manifest.object.metadata.name.as_deref().ok_or_else(|| {
        Error::failed(format!("{} has no name", describe(manifest))).hint("this is a bug in restate-dev's objects")
    })
}

async fn get(client: &kube::Client, manifest: &Manifest) -> Result<Option<DynamicObject>> {
    let id = describe(manifest);
    api_for(client, manifest)
        .get_opt(name_of(manifest)?)
        .await
        .map_err(|e| apply_error(&id, e))
}

/// The claims a StatefulSet's volumeClaimTemplates name (`TEMPLATE-STS-ORDINAL`) that exist and are not this
/// loop's. The StatefulSet controller would mount such a claim (someone's data, such as the claim a Helm release
/// leaves behind on uninstall) and take it over, so it stops `up` like any object in the way.
async fn foreign_claims(client: &kube::Client, manifest: &Manifest, loop_name: &str) -> Result<Vec<(String, Owner)>> {
    if manifest.resource.kind != "StatefulSet" {
        return Ok(Vec::new());
    }
    let spec = &manifest.object.data["spec"];
    let replicas = spec["replicas"].as_u64().unwrap_or(1);
    let templates = spec["volumeClaimTemplates"].as_array().cloned().unwrap_or_default();
    let set = name_of(manifest)?;
    let namespace = manifest.object.metadata.namespace.clone().unwrap_or_default();
    let resource = ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&());
    let claims: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
    let mut foreign = Vec::new();
    for template in templates.iter().filter_map(|t| t["metadata"]["name"].as_str()) {
        for ordinal in 0..replicas {
            let name = format!("{template}-{set}-{ordinal}");
            let id = format!("PersistentVolumeClaim {namespace}/{name}");
            let found = claims.get_opt(&name).await.map_err(|e| apply_error(&id, e))?;
            if let Some(claim) = found
                && let owner @ (Owner::OtherLoop(_) | Owner::Foreign(_)) = ownership::owner(&claim.metadata, loop_name)
            {
                foreign.push((id, owner));
            }
        }
    }
    Ok(foreign)
}

/// The error for objects in the way: each named with its owner, and what to do.
fn not_ours(foreign: &[(String, Owner)], manifests: &[Manifest], loop_name: &str) -> Error {
    let owned_by = |owner: &Owner| match owner {
        Owner::OtherLoop(other) => format!("it belongs to restate-dev loop {other}"),
        Owner::Foreign(f) => format!("owner: {}", f.describe()),
        Owner::ThisLoop => "it is this loop's".to_string(),
    };
    let namespace = manifests
        .iter()
        .find_map(|m| m.object.metadata.namespace.clone())
        .unwrap_or_default();
    let (first, first_owner) = &foreign[0];
    let mut error = Error::prerequisite(format!(
        "{first} exists and is not loop {loop_name}'s ({}); `up` changed nothing",
        owned_by(first_owner)
    ));
    for (id, owner) in &foreign[1..] {
        error = error.detail(format!("also in the way: {id} ({})", owned_by(owner)));
    }
    let other = if namespace == loop_name {
        format!("{loop_name}-dev")
    } else {
        loop_name.to_string()
    };
    let mut hint = format!(
        "install beside it in a namespace of the loop's own: `--namespace {other}` (`status` and `down` read it \
         from RESTATE_DEV_NAMESPACE={other} or the config file)"
    );
    let releases: Vec<String> = foreign
        .iter()
        .filter_map(|(_, owner)| match owner {
            Owner::Foreign(f) => f.helm_release.clone(),
            _ => None,
        })
        .map(|(release, ns)| format!("`helm uninstall {release} --namespace {ns}`"))
        .collect();
    if let Some(uninstall) = releases.first() {
        hint.push_str(&format!(
            "; or, if that Helm release is not needed, remove it ({uninstall})"
        ));
    }
    if let Some(Owner::OtherLoop(other)) = foreign
        .iter()
        .map(|(_, o)| o)
        .find(|o| matches!(o, Owner::OtherLoop(_)))
    {
        hint.push_str(&format!("; or remove loop {other} (`restate-dev down --name {other}`)"));
    }
    error.hint(hint)
}

/// `kind namespace/name`, or `kind name` for cluster-wide objects: how errors name an object.
pub fn describe(manifest: &Manifest) -> String {
    let name = manifest.object.metadata.name.as_deref().unwrap_or("<unnamed>");
    match (&manifest.object.metadata.namespace, manifest.namespaced) {
        (Some(ns), true) => format!("{} {ns}/{name}", manifest.resource.kind),
        _ => format!("{} {name}", manifest.resource.kind),
    }
}

fn api_for(client: &kube::Client, manifest: &Manifest) -> Api<DynamicObject> {
    let namespace = manifest.object.metadata.namespace.as_deref();
    match (manifest.namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &manifest.resource),
        (true, None) => Api::default_namespaced_with(client.clone(), &manifest.resource),
        (false, _) => Api::all_with(client.clone(), &manifest.resource),
    }
}

/// Apply needs `apiVersion` and `kind` in the body; a DynamicObject built by hand may lack them.
fn with_types(manifest: &Manifest) -> DynamicObject {
    let mut object = manifest.object.clone();
    if object.types.is_none() {
        object.types = Some(kube::core::TypeMeta {
            api_version: manifest.resource.api_version.clone(),
            kind: manifest.resource.kind.clone(),
        });
    }
    object
}

fn apply_error(id: &str, error: kube::Error) -> Error {
    match &error {
        kube::Error::Api(status) => {
            let e = Error::failed(format!(
                "the API server rejected {id}: {} ({}, {})",
                status.message, status.reason, status.code
            ));
            match status.code {
                401 | 403 => e.hint("the kube context's user may not create this object; check its RBAC"),
                404 => e.hint("the API server does not serve this kind; is the cluster's Kubernetes too old?"),
                _ => e.hint("run with -v for the request, or `restate-dev render` to see the object"),
            }
        }
        _ => Error::failed(format!("cannot apply {id}"))
            .source(error)
            .hint("check that the cluster is reachable: `restate-dev status`"),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
    use kube::core::ApiResource;
    use serde_json::json;

    use super::*;
    use crate::k8s::mock;
    use crate::labels;

    fn manifest(resource: ApiResource, namespaced: bool, object: serde_json::Value) -> Manifest {
        Manifest {
            resource,
            namespaced,
            object: serde_json::from_value(object).expect("a DynamicObject"),
        }
    }

    fn objects() -> Vec<Manifest> {
        vec![
            manifest(
                ApiResource::erase::<Namespace>(&()),
                false,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "restate"}}),
            ),
            // No apiVersion/kind in the object: apply must add them from the resource.
            manifest(
                ApiResource::erase::<ServiceAccount>(&()),
                true,
                json!({"metadata": {"name": "restate", "namespace": "restate"}}),
            ),
            manifest(
                ApiResource::erase::<StatefulSet>(&()),
                true,
                json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                       "metadata": {"name": "restate", "namespace": "restate"},
                       "spec": {"replicas": 1}}),
            ),
        ]
    }

    fn quiet() -> Ui {
        Ui::new(None, true)
    }

    const NS: &str = "/api/v1/namespaces/restate";
    const SA: &str = "/api/v1/namespaces/restate/serviceaccounts/restate";
    const STS: &str = "/apis/apps/v1/namespaces/restate/statefulsets/restate";

    #[tokio::test]
    async fn reads_every_object_then_applies_each_in_order_server_side_and_forced() {
        let (client, mut server) = mock::client();
        let applying = tokio::spawn(async move { apply_all(&client, &objects(), "dev", &quiet()).await });
        for path in [NS, SA, STS] {
            let (_, reply) = server.expect("GET", path).await;
            reply.json(404, mock::status(404, "NotFound", "not found"));
        }
        // The namespace that does not exist is created first (not applied: a create cannot take over another
        // loop's), recording that restate-dev created it for this loop; then applied like the rest, so that the
        // first re-`up` finds nothing to change.
        let (seen, reply) = server.expect("POST", "/api/v1/namespaces").await;
        assert_eq!(seen.query.get("fieldManager").map(String::as_str), Some("restate-dev"));
        let body = seen.body.expect("a namespace");
        assert_eq!(
            (body["apiVersion"].as_str(), body["kind"].as_str()),
            (Some("v1"), Some("Namespace"))
        );
        assert_eq!(body["metadata"]["annotations"][CREATED_BY_ANNOTATION], "dev");
        reply.json(201, body);
        let (seen, reply) = server.expect("PATCH", NS).await;
        let body = seen.body.expect("an applied namespace");
        assert_eq!(body["metadata"]["annotations"][CREATED_BY_ANNOTATION], "dev");
        reply.json(200, body);
        for (path, api_version, kind) in [(SA, "v1", "ServiceAccount"), (STS, "apps/v1", "StatefulSet")] {
            let (seen, reply) = server.expect("PATCH", path).await;
            assert_eq!(seen.query.get("fieldManager").map(String::as_str), Some("restate-dev"));
            assert_eq!(seen.query.get("force").map(String::as_str), Some("true"));
            assert_eq!(seen.content_type.as_deref(), Some("application/apply-patch+yaml"));
            let body = seen.body.expect("an applied object");
            assert_eq!(
                (body["apiVersion"].as_str(), body["kind"].as_str()),
                (Some(api_version), Some(kind))
            );
            assert_eq!(body["metadata"]["name"], "restate");
            assert_eq!(
                body["metadata"]["annotations"][CREATED_BY_ANNOTATION],
                json!(null),
                "{body}"
            );
            reply.json(200, body);
        }
        let applied = applying.await.expect("apply task").expect("apply succeeds");
        assert_eq!(
            applied,
            Applied {
                changed: 3,
                applied: 3,
                beside: None
            }
        );
    }

    #[tokio::test]
    async fn objects_the_apply_left_alone_are_not_counted_as_changed() {
        let (client, mut server) = mock::client();
        let applying = tokio::spawn(async move { apply_all(&client, &objects(), "dev", &quiet()).await });
        // The namespace is as applied before (same resourceVersion), the ServiceAccount changes, the StatefulSet is
        // new.
        let stored = |body: &serde_json::Value, version: &str| {
            let mut body = body.clone();
            body["metadata"]["resourceVersion"] = json!(version);
            body
        };
        let (_, reply) = server.expect("GET", NS).await;
        reply.json(
            200,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "restate", "resourceVersion": "7",
                   "labels": labels::for_loop("dev"), "annotations": {CREATED_BY_ANNOTATION: "dev"}}}),
        );
        let (_, reply) = server.expect("GET", SA).await;
        reply.json(200, json!({"apiVersion": "v1", "kind": "ServiceAccount",
                                "metadata": {"name": "restate", "resourceVersion": "8", "labels": labels::for_loop("dev")}}));
        let (_, reply) = server.expect("GET", STS).await;
        reply.json(404, mock::status(404, "NotFound", "not found"));
        let (seen, reply) = server.expect("PATCH", NS).await;
        let body = seen.body.unwrap();
        // Applied again with the record, so that server-side apply keeps it.
        assert_eq!(body["metadata"]["annotations"][CREATED_BY_ANNOTATION], "dev");
        reply.json(200, stored(&body, "7"));
        let (seen, reply) = server.expect("PATCH", SA).await;
        reply.json(200, stored(&seen.body.unwrap(), "9"));
        let (seen, reply) = server.expect("PATCH", STS).await;
        reply.json(200, stored(&seen.body.unwrap(), "10"));
        assert_eq!(applying.await.expect("apply task").expect("apply succeeds").changed, 2);
    }

    #[tokio::test]
    async fn a_rejected_object_is_named_with_the_apiservers_reason() {
        let (client, mut server) = mock::client();
        let applying = tokio::spawn(async move { apply_all(&client, &objects(), "dev", &quiet()).await });
        for path in [NS, SA, STS] {
            let (_, reply) = server.expect("GET", path).await;
            reply.json(404, mock::status(404, "NotFound", "not found"));
        }
        let (seen, reply) = server.expect("POST", "/api/v1/namespaces").await;
        reply.json(201, seen.body.expect("body"));
        let (seen, reply) = server.expect("PATCH", NS).await;
        reply.json(200, seen.body.expect("body"));
        let (_, reply) = server.expect("PATCH", SA).await;
        reply.json(
            403,
            mock::status(
                403,
                "Forbidden",
                "serviceaccounts is forbidden: User \"dev\" cannot patch",
            ),
        );
        let error = applying.await.expect("apply task").expect_err("apply fails");
        assert_eq!(error.kind, crate::error::Kind::Failed);
        assert!(error.message.contains("ServiceAccount restate/restate"), "{error}");
        assert!(error.message.contains("User \"dev\" cannot patch"), "{error}");
        assert!(error.hint.as_deref().unwrap_or_default().contains("RBAC"), "{error}");
    }

    /// The objects with a StatefulSet whose claim template makes `storage-restate-0`.
    fn objects_with_claims() -> Vec<Manifest> {
        let mut objects = objects();
        objects[2].object.data["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "storage"}}]);
        objects
    }

    fn helm_made(kind: &str, name: &str) -> serde_json::Value {
        json!({"kind": kind, "metadata": {"name": name, "namespace": "restate",
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "restate", "meta.helm.sh/release-namespace": "restate"},
            "managedFields": [{"manager": "helm", "operation": "Update"}]}})
    }

    /// Answers with these objects (by path), 404 for the rest; panics on any write.
    async fn read_only(
        cluster: Vec<(&'static str, serde_json::Value)>,
        loop_name: &'static str,
    ) -> (Result<Applied>, Vec<mock::Seen>) {
        let (client, server) = mock::client();
        let serving = tokio::spawn(server.serve(move |seen| {
            assert_eq!(seen.method, "GET", "nothing may be written: {seen:?}");
            match cluster.iter().find(|(path, _)| *path == seen.path) {
                Some((_, object)) => (200, object.clone()),
                None => (404, mock::status(404, "NotFound", "not found")),
            }
        }));
        let result = apply_all(&client, &objects_with_claims(), loop_name, &quiet()).await;
        drop(client);
        (result, serving.await.expect("server"))
    }

    /// The cluster: `helm install restate … --namespace restate --create-namespace` made the namespace and
    /// the StatefulSet, and `helm uninstall` of an earlier release left its data claim. Before, a forced apply
    /// took Helm's objects over; now `up` reads them all, writes nothing and names each with its owner.
    #[tokio::test]
    async fn objects_of_someone_else_stop_up_before_anything_is_written() {
        let helm_namespace = json!({"kind": "Namespace", "metadata": {"name": "restate",
            "managedFields": [{"manager": "helm", "operation": "Update"}]}});
        let claim = "/api/v1/namespaces/restate/persistentvolumeclaims/storage-restate-0";
        let cluster = vec![
            (NS, helm_namespace),
            (STS, helm_made("StatefulSet", "restate")),
            (
                claim,
                json!({"kind": "PersistentVolumeClaim", "metadata": {"name": "storage-restate-0"}}),
            ),
        ];
        let (result, seen) = read_only(cluster, "dev").await;
        let error = result.expect_err("objects in the way");
        assert_eq!(error.kind, crate::error::Kind::Prerequisite);
        assert_eq!(
            error.message,
            "StatefulSet restate/restate exists and is not loop dev's (owner: Helm release restate in namespace \
             restate; app.kubernetes.io/managed-by: Helm; field manager helm); `up` changed nothing"
        );
        assert_eq!(
            error.details,
            ["also in the way: PersistentVolumeClaim restate/storage-restate-0 (owner: no owner recorded on it)"]
        );
        let hint = error.hint.unwrap_or_default();
        assert!(
            hint.contains("`--namespace dev` (`status` and `down` read it from RESTATE_DEV_NAMESPACE=dev"),
            "{hint}"
        );
        assert!(hint.contains("`helm uninstall restate --namespace restate`"), "{hint}");
        assert!(seen.iter().any(|s| s.path == claim), "the claim was read");
    }

    #[tokio::test]
    async fn an_object_of_another_loop_is_not_ours_either() {
        let other = json!({"kind": "ServiceAccount", "metadata": {"name": "restate", "labels": labels::for_loop("b")}});
        let (result, _) = read_only(vec![(SA, other)], "a").await;
        let error = result.expect_err("another loop's object");
        assert!(
            error.message.starts_with(
                "ServiceAccount restate/restate exists and is not loop a's (it belongs to restate-dev loop b)"
            ),
            "{error}"
        );
        assert!(error.hint.unwrap_or_default().contains("restate-dev down --name b"));
    }

    /// A namespace someone else made, holding nothing `up` writes: the loop goes in beside what it holds, and the
    /// Namespace object itself is not applied, so none of its labels or fields change.
    #[tokio::test]
    async fn a_foreign_namespace_without_collisions_is_installed_beside() {
        let (client, server) = mock::client();
        let serving = tokio::spawn(server.serve(|seen| match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", NS) => (
                200,
                json!({"kind": "Namespace", "metadata": {"name": "restate",
                       "managedFields": [{"manager": "kubectl-create", "operation": "Update"}]}}),
            ),
            ("GET", _) => (404, mock::status(404, "NotFound", "not found")),
            ("PATCH", NS) => panic!("the namespace must not be applied"),
            ("PATCH", _) => (200, seen.body.clone().expect("body")),
            other => panic!("unexpected {other:?}"),
        }));
        let applied = apply_all(&client, &objects_with_claims(), "dev", &quiet())
            .await
            .expect("installed beside");
        drop(client);
        let seen = serving.await.expect("server");
        assert_eq!(
            applied,
            Applied {
                changed: 2,
                applied: 2,
                beside: Some("is not restate-dev's (field manager kubectl-create)".into())
            }
        );
        let patched: Vec<&str> = seen
            .iter()
            .filter(|s| s.method == "PATCH")
            .map(|s| s.path.as_str())
            .collect();
        assert_eq!(patched, [SA, STS]);
    }

    /// Loops `dev` and `other` (different names, so different locks) make namespace `restate` at once: both
    /// found none; `other`'s create won. `dev`'s create meets 409, reads whose it is and goes in beside,
    /// without applying (and so taking over) the namespace.
    #[tokio::test]
    async fn a_namespace_another_loop_created_first_is_not_taken_over() {
        let (client, mut server) = mock::client();
        let applying = tokio::spawn(async move { apply_all(&client, &objects(), "dev", &quiet()).await });
        for path in [NS, SA, STS] {
            let (_, reply) = server.expect("GET", path).await;
            reply.json(404, mock::status(404, "NotFound", "not found"));
        }
        let (_, reply) = server.expect("POST", "/api/v1/namespaces").await;
        reply.json(
            409,
            mock::status(409, "AlreadyExists", "namespaces \"restate\" already exists"),
        );
        let (_, reply) = server.expect("GET", NS).await;
        reply.json(
            200,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "restate",
                   "labels": labels::for_loop("other"), "annotations": {CREATED_BY_ANNOTATION: "other"}}}),
        );
        for path in [SA, STS] {
            let (seen, reply) = server.expect("PATCH", path).await;
            reply.json(200, seen.body.expect("body"));
        }
        let applied = applying.await.expect("apply task").expect("installed beside");
        assert_eq!(
            applied,
            Applied {
                changed: 2,
                applied: 2,
                beside: Some("was created by restate-dev for loop other".into())
            }
        );
    }
}
