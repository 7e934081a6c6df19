//! Server-side apply of the rendered objects, in order, as field manager `restate-dev`. Forced, so that a second
//! `up` takes back fields another manager (a `kubectl edit`) changed: the loop's objects are ours to define.

use kube::api::{Api, DynamicObject, Patch, PatchParams};

use crate::error::{Error, Result};
use crate::k8s::Manifest;
use crate::ui::Ui;

pub const FIELD_MANAGER: &str = "restate-dev";

/// Applies every manifest in order (the namespace first, as `render` orders them); how many of them the API
/// server changed. An object whose resourceVersion the apply left as it was is unchanged, so a re-`up` of a loop
/// nobody touched changes nothing and can say so.
pub async fn apply_all(client: &kube::Client, manifests: &[Manifest], ui: &Ui) -> Result<usize> {
    let step = ui.step("apply");
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut changed = 0;
    for (done, manifest) in manifests.iter().enumerate() {
        let id = describe(manifest);
        step.set_message(format!("{id} ({}/{})", done + 1, manifests.len()));
        let name =
            manifest.object.metadata.name.as_deref().ok_or_else(|| {
                Error::failed(format!("{id} has no name")).hint("this is a bug in restate-dev's objects")
            })?;
        let api = api_for(client, manifest);
        let before = api.get_opt(name).await.map_err(|e| apply_error(&id, e))?;
        let after = api
            .patch(name, &params, &Patch::Apply(&with_types(manifest)))
            .await
            .map_err(|e| apply_error(&id, e))?;
        let version = |o: &DynamicObject| o.metadata.resource_version.clone();
        if before.as_ref().map(version) != Some(version(&after)) {
            changed += 1;
        }
    }
    step.done(format!("{changed} of {} objects changed", manifests.len()));
    Ok(changed)
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

    #[tokio::test]
    async fn applies_each_object_in_order_server_side_and_forced() {
        let (client, mut server) = mock::client();
        let applying = tokio::spawn(async move { apply_all(&client, &objects(), &quiet()).await });
        let expected = [
            ("/api/v1/namespaces/restate", "v1", "Namespace"),
            (
                "/api/v1/namespaces/restate/serviceaccounts/restate",
                "v1",
                "ServiceAccount",
            ),
            (
                "/apis/apps/v1/namespaces/restate/statefulsets/restate",
                "apps/v1",
                "StatefulSet",
            ),
        ];
        for (path, api_version, kind) in expected {
            let (_, reply) = server.expect("GET", path).await;
            reply.json(404, mock::status(404, "NotFound", "not found"));
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
            reply.json(200, body);
        }
        assert_eq!(applying.await.expect("apply task").expect("apply succeeds"), 3);
    }

    #[tokio::test]
    async fn objects_the_apply_left_alone_are_not_counted_as_changed() {
        let (client, mut server) = mock::client();
        let applying = tokio::spawn(async move { apply_all(&client, &objects(), &quiet()).await });
        // The namespace is as applied before (same resourceVersion), the ServiceAccount changes, the StatefulSet is
        // new.
        let stored = |body: &serde_json::Value, version: &str| {
            let mut body = body.clone();
            body["metadata"]["resourceVersion"] = json!(version);
            body
        };
        let ns = "/api/v1/namespaces/restate";
        let (_, reply) = server.expect("GET", ns).await;
        reply.json(
            200,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "restate", "resourceVersion": "7"}}),
        );
        let (seen, reply) = server.expect("PATCH", ns).await;
        reply.json(200, stored(&seen.body.unwrap(), "7"));
        let sa = "/api/v1/namespaces/restate/serviceaccounts/restate";
        let (_, reply) = server.expect("GET", sa).await;
        reply.json(200, json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "restate", "resourceVersion": "8"}}));
        let (seen, reply) = server.expect("PATCH", sa).await;
        reply.json(200, stored(&seen.body.unwrap(), "9"));
        let sts = "/apis/apps/v1/namespaces/restate/statefulsets/restate";
        let (_, reply) = server.expect("GET", sts).await;
        reply.json(404, mock::status(404, "NotFound", "not found"));
        let (seen, reply) = server.expect("PATCH", sts).await;
        reply.json(200, stored(&seen.body.unwrap(), "10"));
        assert_eq!(applying.await.expect("apply task").expect("apply succeeds"), 2);
    }

    #[tokio::test]
    async fn a_rejected_object_is_named_with_the_apiservers_reason() {
        let (client, mut server) = mock::client();
        let applying = tokio::spawn(async move { apply_all(&client, &objects(), &quiet()).await });
        let (_, reply) = server.expect("GET", "/api/v1/namespaces/restate").await;
        reply.json(404, mock::status(404, "NotFound", "not found"));
        let (seen, reply) = server.expect("PATCH", "/api/v1/namespaces/restate").await;
        reply.json(200, seen.body.expect("body"));
        let sa = "/api/v1/namespaces/restate/serviceaccounts/restate";
        let (_, reply) = server.expect("GET", sa).await;
        reply.json(404, mock::status(404, "NotFound", "not found"));
        let (_, reply) = server.expect("PATCH", sa).await;
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
}
