//! Who owns an object in the cluster. restate-dev's rule: an object (a namespace included) that exists without
//! this loop's labels is someone else's, and is never modified, relabelled or deleted. An object labelled for
//! another loop is that loop's.
//!
//! A namespace is shared ground, so its labels say too little: `up` records on a namespace it creates that it
//! created it ([`CREATED_BY_ANNOTATION`]), and `down` deletes a namespace only with that record. Releases before
//! the record labelled the namespaces they applied, including ones that existed before (a forced server-side
//! apply took them over); such a namespace counts as created by restate-dev only when every field manager that
//! ever wrote it is restate-dev's own.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::labels;

/// The annotation `up` sets on a namespace it creates: the loop's name.
pub const CREATED_BY_ANNOTATION: &str = "dev.restate/created-by-loop";
/// Helm's release annotations, on every object a Helm release owns.
const HELM_RELEASE: &str = "meta.helm.sh/release-name";
const HELM_RELEASE_NAMESPACE: &str = "meta.helm.sh/release-namespace";

/// Whose an existing object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    ThisLoop,
    /// Labelled by restate-dev for the loop of this name.
    OtherLoop(String),
    /// Not restate-dev's: what the object says of its owner.
    Foreign(Foreign),
}

/// What an object not made by restate-dev says of who made it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Foreign {
    /// Its `app.kubernetes.io/managed-by` label.
    pub managed_by: Option<String>,
    /// Its Helm release and the release's namespace.
    pub helm_release: Option<(String, String)>,
    /// The field managers in its `managedFields`, in order, without repeats.
    pub managers: Vec<String>,
}

/// Whose the object is. Helm's release annotations win over our labels: releases before this check force-applied
/// over objects they found, which relabelled Helm's objects as the loop's but left Helm's annotations.
pub fn owner(meta: &ObjectMeta, loop_name: &str) -> Owner {
    let label = |key: &str| meta.labels.as_ref().and_then(|l| l.get(key)).cloned();
    let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key)).cloned();
    let helm_release = annotation(HELM_RELEASE).map(|release| {
        let namespace = annotation(HELM_RELEASE_NAMESPACE).unwrap_or_default();
        (release, namespace)
    });
    let managed_by = label(labels::MANAGED_BY_KEY);
    if managed_by.as_deref() == Some(labels::MANAGED_BY) && helm_release.is_none() {
        match label(labels::LOOP_KEY) {
            Some(name) if name == loop_name => return Owner::ThisLoop,
            Some(name) => return Owner::OtherLoop(name),
            // Ours but no loop's (shared); never an object a loop writes.
            None => {}
        }
    }
    Owner::Foreign(Foreign {
        managed_by,
        helm_release,
        managers: managers(meta),
    })
}

/// The distinct field managers of `managedFields`.
fn managers(meta: &ObjectMeta) -> Vec<String> {
    let mut managers: Vec<String> = Vec::new();
    for entry in meta.managed_fields.iter().flatten() {
        if let Some(manager) = &entry.manager
            && !managers.contains(manager)
        {
            managers.push(manager.clone());
        }
    }
    managers
}

/// restate-dev's field managers: `restate-dev` and `restate-dev-…` (the port-forward record's).
fn is_own_manager(manager: &str) -> bool {
    manager == crate::k8s::apply::FIELD_MANAGER || manager.starts_with("restate-dev-")
}

/// Whether restate-dev created this namespace for loop `loop_name`: it carries the record, or (made by an older
/// release) the loop's labels and no field manager but restate-dev's.
pub fn created_by_loop(meta: &ObjectMeta, loop_name: &str) -> bool {
    let recorded = meta.annotations.as_ref().and_then(|a| a.get(CREATED_BY_ANNOTATION));
    if let Some(recorded) = recorded {
        return recorded == loop_name;
    }
    let managers = managers(meta);
    owner(meta, loop_name) == Owner::ThisLoop && !managers.is_empty() && managers.iter().all(|m| is_own_manager(m))
}

/// Why a namespace that exists is not one restate-dev created for the loop, to follow "namespace NS exists and".
pub fn why_not_created(meta: &ObjectMeta, loop_name: &str) -> String {
    let recorded = meta.annotations.as_ref().and_then(|a| a.get(CREATED_BY_ANNOTATION));
    match (recorded, owner(meta, loop_name)) {
        (Some(other), _) => format!("was created by restate-dev for loop {other}"),
        (None, Owner::OtherLoop(other)) => format!("is labelled for restate-dev loop {other}"),
        (None, Owner::Foreign(foreign)) => format!("is not restate-dev's ({})", foreign.describe()),
        // Labelled by an older release over a namespace someone else made.
        (None, Owner::ThisLoop) => format!(
            "was not created by restate-dev ({})",
            Foreign {
                managers: managers(meta),
                ..Foreign::default()
            }
            .describe()
        ),
    }
}

impl Foreign {
    /// "Helm release restate in namespace restate, managed-by Helm, field managers helm".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some((release, namespace)) = &self.helm_release {
            parts.push(format!("Helm release {release} in namespace {namespace}"));
        }
        if let Some(managed_by) = &self.managed_by {
            parts.push(format!("{}: {managed_by}", labels::MANAGED_BY_KEY));
        }
        match self.managers.as_slice() {
            [] => {}
            [one] => parts.push(format!("field manager {one}")),
            many => parts.push(format!("field managers {}", many.join(", "))),
        }
        if parts.is_empty() {
            return "no owner recorded on it".into();
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn meta(value: serde_json::Value) -> ObjectMeta {
        serde_json::from_value(value).expect("metadata")
    }

    fn fields(managers: &[&str]) -> serde_json::Value {
        json!(
            managers
                .iter()
                .map(|m| json!({"manager": m, "operation": "Apply", "apiVersion": "v1"}))
                .collect::<Vec<_>>()
        )
    }

    #[test]
    fn owners_are_read_from_labels_helm_and_managers() {
        assert_eq!(
            owner(&meta(json!({"labels": labels::for_loop("dev")})), "dev"),
            Owner::ThisLoop
        );
        assert_eq!(
            owner(&meta(json!({"labels": labels::for_loop("other")})), "dev"),
            Owner::OtherLoop("other".into())
        );
        let helm = meta(json!({
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "restate", "meta.helm.sh/release-namespace": "restate"},
            "managedFields": fields(&["helm", "helm"]),
        }));
        let Owner::Foreign(foreign) = owner(&helm, "dev") else {
            panic!("Helm's object is foreign")
        };
        assert_eq!(
            foreign.describe(),
            "Helm release restate in namespace restate; app.kubernetes.io/managed-by: Helm; field manager helm"
        );
        // Helm's object relabelled by an older release's forced apply is still Helm's.
        let taken_over = meta(json!({
            "labels": labels::for_loop("dev"),
            "annotations": {"meta.helm.sh/release-name": "restate", "meta.helm.sh/release-namespace": "restate"},
            "managedFields": fields(&["helm", "restate-dev"]),
        }));
        let Owner::Foreign(foreign) = owner(&taken_over, "dev") else {
            panic!("Helm's object is foreign")
        };
        assert_eq!(
            foreign.describe(),
            "Helm release restate in namespace restate; app.kubernetes.io/managed-by: restate-dev; field managers \
             helm, restate-dev"
        );
        // Our shared label alone makes no loop's object.
        let Owner::Foreign(foreign) = owner(&meta(json!({"labels": labels::shared()})), "dev") else {
            panic!("foreign")
        };
        assert_eq!(foreign.describe(), "app.kubernetes.io/managed-by: restate-dev");
        let Owner::Foreign(foreign) = owner(&meta(json!({})), "dev") else {
            panic!("foreign")
        };
        assert_eq!(foreign.describe(), "no owner recorded on it");
    }

    #[test]
    fn a_namespace_is_ours_by_record_or_by_an_older_release_alone() {
        let recorded = |loop_name: &str| json!({CREATED_BY_ANNOTATION: loop_name});
        // The record decides, whatever else wrote the namespace since.
        let ns = meta(
            json!({"labels": labels::for_loop("dev"), "annotations": recorded("dev"),
                             "managedFields": fields(&["restate-dev", "kubectl-label"])}),
        );
        assert!(created_by_loop(&ns, "dev"));
        let ns = meta(json!({"labels": labels::for_loop("dev"), "annotations": recorded("other")}));
        assert!(!created_by_loop(&ns, "dev"));
        assert_eq!(why_not_created(&ns, "dev"), "was created by restate-dev for loop other");
        // An older release's namespace: our labels and only our managers.
        let old = meta(json!({"labels": labels::for_loop("dev"),
                              "managedFields": fields(&["restate-dev", "restate-dev-port-forward"])}));
        assert!(created_by_loop(&old, "dev"));
        // Made by someone else, then taken over by an older release's forced apply.
        let taken = meta(json!({"labels": labels::for_loop("dev"),
                                "managedFields": fields(&["kubectl-create", "restate-dev"])}));
        assert!(!created_by_loop(&taken, "dev"));
        assert_eq!(
            why_not_created(&taken, "dev"),
            "was not created by restate-dev (field managers kubectl-create, restate-dev)"
        );
        // Labels without any manager recorded prove nothing.
        assert!(!created_by_loop(
            &meta(json!({"labels": labels::for_loop("dev")})),
            "dev"
        ));
        let helm = meta(json!({"managedFields": fields(&["helm"])}));
        assert!(!created_by_loop(&helm, "dev"));
        assert_eq!(
            why_not_created(&helm, "dev"),
            "is not restate-dev's (field manager helm)"
        );
    }
}
