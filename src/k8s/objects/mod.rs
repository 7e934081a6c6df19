//! The objects `up` installs (issue 3), built as typed k8s-openapi values and handed on as [`Manifest`]s.
//!
//! Restate follows its Helm chart (one-replica StatefulSet, `restate` and `restate-cluster` Services); the service
//! follows the local-development shape of Restate's Kubernetes guide. Above one service replica, an Envoy sidecar
//! in the Restate pod balances HTTP/2 per request over a headless `service` Service.

mod envoy;
mod restate;
mod service;

use std::any::TypeId;
use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Namespace, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::core::{ApiResource, DynamicObject};
use serde::Serialize;

use crate::config::ObjectSettings;
use crate::k8s::Manifest;

/// The name of Restate's StatefulSet, its ClusterIP Service, ServiceAccount and container, and its pods' `app`.
pub const RESTATE_NAME: &str = "restate";
/// Ports of the `restate` Service (and container).
pub const ADMIN_PORT: u16 = 9070;
pub const INGRESS_PORT: u16 = 8080;
/// The Service that publishes ingress and admin on node ports, where a runtime can reach the node.
pub const NODE_PORT_SERVICE: &str = "restate-nodeport";
/// Node ports of `restate-nodeport`, inside the 30000-32767 range; the kind runtime maps host ports onto them.
pub const INGRESS_NODE_PORT: u16 = 30080;
pub const ADMIN_NODE_PORT: u16 = 30070;
/// The name of the service's Deployment, Service and container, and its pods' `app`; Restate registers
/// `http://SERVICE_NAME.NAMESPACE:SERVICE_PORT`.
pub const SERVICE_NAME: &str = "service";
pub const SERVICE_PORT: u16 = 9080;

/// The pod-template annotation that carries the ID of the image a workload runs, as loaded into the cluster. A
/// rebuilt image under the same tag changes it, so server-side apply changes the template and the pods roll;
/// with an unchanged template and `IfNotPresent`, the old pods would go on running the old build.
pub const IMAGE_ID_ANNOTATION: &str = "dev.restate/image-id";

/// The IDs of the images `up` loaded, when it knows them (not for an existing cluster, which pulls by tag).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageIds {
    pub restate: Option<String>,
    pub service: Option<String>,
}

/// The URLs Restate is told to advertise for its ingress and admin API (its `/version` and the UI show them):
/// the ones the user reaches on the host, where the runtime knows them before installing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    pub ingress: String,
    pub admin: String,
}

/// Every object for these settings, in apply order. `node_ports` adds the `restate-nodeport` Service that a
/// kind cluster's host port mappings point at; `ids` become the workloads' [`IMAGE_ID_ANNOTATION`].
pub fn render(
    settings: &ObjectSettings,
    service_image: &str,
    node_ports: bool,
    ids: &ImageIds,
    advertised: Option<&Advertised>,
) -> Vec<Manifest> {
    let sidecar = settings.replicas > 1;
    let mut manifests = vec![
        manifest(&namespace(settings)),
        manifest(&restate::service_account(settings)),
    ];
    if sidecar {
        manifests.push(manifest(&envoy::config_map(settings)));
    }
    manifests.push(manifest(&restate::cluster_service(settings)));
    manifests.push(manifest(&restate::service(settings)));
    if node_ports {
        manifests.push(manifest(&restate::node_port_service(settings)));
    }
    let mut stateful_set = restate::stateful_set(settings, advertised);
    if let Some(spec) = stateful_set.spec.as_mut() {
        annotate(&mut spec.template, ids.restate.as_deref());
    }
    manifests.push(manifest(&stateful_set));
    manifests.push(manifest(&service::service(settings)));
    let mut deployment = service::deployment(settings, service_image);
    if let Some(spec) = deployment.spec.as_mut() {
        annotate(&mut spec.template, ids.service.as_deref());
    }
    manifests.push(manifest(&deployment));
    manifests
}

fn annotate(template: &mut PodTemplateSpec, image_id: Option<&str>) {
    if let Some(id) = image_id {
        let metadata = template.metadata.get_or_insert_with(ObjectMeta::default);
        metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(IMAGE_ID_ANNOTATION.to_string(), id.to_string());
    }
}

/// The [`IMAGE_ID_ANNOTATION`] of a live workload's pod template.
pub fn image_id_of(template: Option<&PodTemplateSpec>) -> Option<&str> {
    template?
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(IMAGE_ID_ANNOTATION)
        .map(String::as_str)
}

fn namespace(settings: &ObjectSettings) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(settings.namespace.clone()),
            labels: Some(crate::labels::for_loop(&settings.name)),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// Metadata of a namespaced object of one app: the loop's labels plus `app: APP`.
fn metadata(settings: &ObjectSettings, name: &str, app: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(settings.namespace.clone()),
        labels: Some(labels(settings, app)),
        ..ObjectMeta::default()
    }
}

/// Labels of objects and pod templates; selectors use only [`app`], so they never change with the loop's name.
fn labels(settings: &ObjectSettings, app: &str) -> BTreeMap<String, String> {
    let mut labels = crate::labels::for_loop(&settings.name);
    labels.extend(app_label(app));
    labels
}

fn app_label(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), app.to_string())])
}

fn app_selector(app: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(app_label(app)),
        ..LabelSelector::default()
    }
}

fn manifest<K>(object: &K) -> Manifest
where
    K: kube::Resource<DynamicType = ()> + k8s_openapi::Resource + Serialize,
    <K as k8s_openapi::Resource>::Scope: 'static,
{
    let value = serde_json::to_value(object).expect("typed Kubernetes objects serialize to JSON");
    let object: DynamicObject =
        serde_json::from_value(value).expect("a typed Kubernetes object reads back as a dynamic object");
    Manifest {
        resource: ApiResource::erase::<K>(&()),
        namespaced: TypeId::of::<<K as k8s_openapi::Resource>::Scope>() == TypeId::of::<NamespaceResourceScope>(),
        object,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Resources;
    use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
    use k8s_openapi::api::core::v1::{ConfigMap, Container, Service};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use serde::de::DeserializeOwned;

    const IMAGE: &str = "example.com/greeter:1.0";

    fn settings(replicas: u32) -> ObjectSettings {
        ObjectSettings {
            name: "demo".into(),
            namespace: "dev-ns".into(),
            replicas,
            restate_image: "docker.restate.dev/restatedev/restate:1.7.12".into(),
            service_image: None,
            envoy_image: "envoyproxy/envoy:distroless-v1.37.2".into(),
            resources: Resources {
                cpu_request: "100m".into(),
                cpu_limit: "1".into(),
                memory_request: "256Mi".into(),
                memory_limit: "1Gi".into(),
            },
            storage_size: "3Gi".into(),
        }
    }

    fn typed<K: DeserializeOwned>(manifests: &[Manifest], kind: &str, name: &str) -> K {
        let m = manifests
            .iter()
            .find(|m| m.resource.kind == kind && m.object.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no {kind} {name}"));
        serde_json::from_value(serde_json::to_value(&m.object).unwrap()).unwrap()
    }

    fn order(manifests: &[Manifest]) -> Vec<String> {
        manifests
            .iter()
            .map(|m| {
                format!(
                    "{}/{}",
                    m.resource.kind,
                    m.object.metadata.name.clone().unwrap_or_default()
                )
            })
            .collect()
    }

    fn env(container: &Container) -> BTreeMap<String, String> {
        container
            .env
            .iter()
            .flatten()
            .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
            .collect()
    }

    #[test]
    fn apply_order() {
        assert_eq!(
            order(&render(&settings(1), IMAGE, true, &ImageIds::default(), None)),
            [
                "Namespace/dev-ns",
                "ServiceAccount/restate",
                "Service/restate-cluster",
                "Service/restate",
                "Service/restate-nodeport",
                "StatefulSet/restate",
                "Service/service",
                "Deployment/service"
            ]
        );
        assert_eq!(
            order(&render(&settings(3), IMAGE, false, &ImageIds::default(), None)),
            [
                "Namespace/dev-ns",
                "ServiceAccount/restate",
                "ConfigMap/envoy-config",
                "Service/restate-cluster",
                "Service/restate",
                "StatefulSet/restate",
                "Service/service",
                "Deployment/service"
            ]
        );
    }

    #[test]
    fn resources_scopes_and_namespaces() {
        for m in render(&settings(3), IMAGE, true, &ImageIds::default(), None) {
            let types = m.object.types.as_ref().unwrap();
            assert_eq!(types.kind, m.resource.kind);
            assert_eq!(types.api_version, m.resource.api_version);
            if m.resource.kind == "Namespace" {
                assert!(!m.namespaced);
                assert_eq!(m.object.metadata.namespace, None);
            } else {
                assert!(m.namespaced, "{}", m.resource.kind);
                assert_eq!(m.object.metadata.namespace.as_deref(), Some("dev-ns"));
            }
        }
        let plurals: Vec<_> = render(&settings(3), IMAGE, true, &ImageIds::default(), None)
            .iter()
            .map(|m| m.resource.plural.clone())
            .collect();
        assert!(plurals.contains(&"statefulsets".to_string()) && plurals.contains(&"configmaps".to_string()));
    }

    #[test]
    fn everything_carries_the_loop_labels_and_selectors_only_the_app() {
        let has_loop_labels = |labels: &BTreeMap<String, String>| crate::labels::is_loops(labels, "demo");
        let manifests = render(&settings(3), IMAGE, true, &ImageIds::default(), None);
        for m in &manifests {
            let labels = m.object.metadata.labels.clone().unwrap_or_default();
            assert!(has_loop_labels(&labels), "{:?}", m.object.metadata.name);
            if m.resource.kind != "Namespace" {
                assert!(labels.contains_key("app"), "{:?}", m.object.metadata.name);
            }
        }
        let sts: StatefulSet = typed(&manifests, "StatefulSet", "restate");
        let spec = sts.spec.unwrap();
        assert_eq!(spec.selector.match_labels, Some(app_label("restate")));
        let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
        assert!(has_loop_labels(&pod_labels) && pod_labels["app"] == "restate");
        let claim_labels = spec.volume_claim_templates.unwrap()[0].metadata.labels.clone().unwrap();
        assert!(has_loop_labels(&claim_labels));
        let deployment: Deployment = typed(&manifests, "Deployment", "service");
        let spec = deployment.spec.unwrap();
        assert_eq!(spec.selector.match_labels, Some(app_label("service")));
        let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
        assert!(has_loop_labels(&pod_labels) && pod_labels["app"] == "service");
        for name in ["restate", "restate-cluster", "restate-nodeport", "service"] {
            let service: Service = typed(&manifests, "Service", name);
            let selector = service.spec.unwrap().selector.unwrap();
            assert_eq!(selector.len(), 1, "{name}");
            assert!(selector.contains_key("app"), "{name}");
        }
    }

    #[test]
    fn restate_follows_the_helm_chart() {
        let manifests = render(&settings(1), IMAGE, true, &ImageIds::default(), None);
        let spec = typed::<StatefulSet>(&manifests, "StatefulSet", "restate").spec.unwrap();
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.service_name.as_deref(), Some("restate-cluster"));
        assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("restate"));
        assert_eq!(pod.security_context.unwrap().fs_group, Some(2000));
        assert_eq!(pod.containers.len(), 1);
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("docker.restate.dev/restatedev/restate:1.7.12"));
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
        let ports: Vec<_> = c
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone().unwrap(), p.container_port))
            .collect();
        assert_eq!(
            ports,
            [("admin".into(), 9070), ("ingress".into(), 8080), ("node".into(), 5122)]
        );
        let env = env(c);
        assert_eq!(env["SERVICE_NAME"], "restate-cluster");
        assert_eq!(env["RESTATE_NODE_NAME"], "$(POD_NAME)");
        assert_eq!(
            env["RESTATE_ADVERTISED_ADDRESS"],
            "http://$(POD_NAME).$(SERVICE_NAME):5122"
        );
        assert_eq!(env["RESTATE_LOG_FORMAT"], "json");
        assert_eq!(env["RESTATE_CLUSTER_NAME"], "demo");
        assert_eq!(env["RESTATE_DISABLE_TELEMETRY"], "true");
        assert!(!env.contains_key("HTTP_PROXY"));
        let pod_name = &c.env.as_ref().unwrap()[0];
        assert_eq!(pod_name.name, "POD_NAME");
        let field = pod_name.value_from.clone().unwrap().field_ref.unwrap();
        assert_eq!(field.field_path, "metadata.name");
        let probe = c.readiness_probe.clone().unwrap();
        let get = probe.http_get.unwrap();
        assert_eq!(get.path.as_deref(), Some("/restate/health"));
        assert_eq!(get.port, IntOrString::String("ingress".into()));
        assert_eq!((probe.initial_delay_seconds, probe.period_seconds), (Some(5), Some(5)));
        assert_restricted(c);
        let resources = c.resources.clone().unwrap();
        assert_eq!(resources.requests.unwrap()["cpu"].0, "100m");
        assert_eq!(resources.limits.unwrap()["memory"].0, "1Gi");
        let mounts: Vec<_> = c
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| (m.name.as_str(), m.mount_path.as_str()))
            .collect();
        assert_eq!(mounts, [("storage", "/restate-data"), ("tmp", "/tmp")]);
        assert!(pod.volumes.unwrap()[0].empty_dir.is_some());
        let claim = &spec.volume_claim_templates.unwrap()[0];
        assert_eq!(claim.metadata.name.as_deref(), Some("storage"));
        let claim_spec = claim.spec.clone().unwrap();
        assert_eq!(claim_spec.access_modes.unwrap(), ["ReadWriteOnce"]);
        assert_eq!(claim_spec.resources.unwrap().requests.unwrap()["storage"].0, "3Gi");
    }

    fn assert_restricted(c: &Container) {
        let sc = c.security_context.clone().unwrap();
        assert_eq!(sc.run_as_non_root, Some(true), "{}", c.name);
        assert_eq!(
            (sc.run_as_user, sc.run_as_group),
            (Some(1000), Some(3000)),
            "{}",
            c.name
        );
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_eq!(sc.capabilities.unwrap().drop.unwrap(), ["ALL"], "{}", c.name);
    }

    fn ports(service: &Service) -> Vec<(String, i32, Option<i32>)> {
        let spec = service.spec.clone().unwrap();
        spec.ports
            .unwrap()
            .into_iter()
            .map(|p| (p.name.unwrap(), p.port, p.node_port))
            .collect()
    }

    #[test]
    fn restate_services() {
        let manifests = render(&settings(1), IMAGE, true, &ImageIds::default(), None);
        let restate: Service = typed(&manifests, "Service", "restate");
        assert_eq!(
            ports(&restate),
            [
                ("admin".into(), 9070, None),
                ("ingress".into(), 8080, None),
                ("node".into(), 5122, None)
            ]
        );
        assert_eq!(restate.spec.unwrap().type_.as_deref(), Some("ClusterIP"));
        let cluster: Service = typed(&manifests, "Service", "restate-cluster");
        assert_eq!(ports(&cluster), [("node".into(), 5122, None)]);
        let spec = cluster.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        let node_port: Service = typed(&manifests, "Service", "restate-nodeport");
        assert_eq!(
            ports(&node_port),
            [
                (
                    "ingress".into(),
                    i32::from(INGRESS_PORT),
                    Some(i32::from(INGRESS_NODE_PORT))
                ),
                ("admin".into(), i32::from(ADMIN_PORT), Some(i32::from(ADMIN_NODE_PORT)))
            ]
        );
        assert_eq!(node_port.spec.unwrap().type_.as_deref(), Some("NodePort"));
    }

    #[test]
    fn restate_gets_half_its_memory_limit_for_rocksdb_and_the_host_urls_to_advertise() {
        let restate_env = |advertised: Option<&Advertised>| {
            let manifests = render(&settings(1), IMAGE, true, &ImageIds::default(), advertised);
            let sts = typed::<StatefulSet>(&manifests, "StatefulSet", RESTATE_NAME);
            env(&sts.spec.unwrap().template.spec.unwrap().containers[0])
        };
        let plain = restate_env(None);
        // settings(1) limits memory to 1Gi.
        assert_eq!(plain["RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE"], (512u64 << 20).to_string());
        assert!(!plain.contains_key("RESTATE_INGRESS__ADVERTISED_ADDRESS"), "{plain:?}");
        let advertised = Advertised {
            ingress: "http://127.0.0.1:41000/".into(),
            admin: "http://127.0.0.1:41001/".into(),
        };
        let told = restate_env(Some(&advertised));
        assert_eq!(told["RESTATE_INGRESS__ADVERTISED_ADDRESS"], "http://127.0.0.1:41000/");
        assert_eq!(told["RESTATE_ADMIN__ADVERTISED_ADDRESS"], "http://127.0.0.1:41001/");
    }

    #[test]
    fn the_service_in_the_local_development_shape() {
        let manifests = render(&settings(1), IMAGE, true, &ImageIds::default(), None);
        let spec = typed::<Deployment>(&manifests, "Deployment", SERVICE_NAME)
            .spec
            .unwrap();
        assert_eq!(spec.replicas, Some(1));
        let pod = spec.template.spec.unwrap();
        let c = &pod.containers[0];
        assert_eq!(c.name, "service");
        assert_eq!(c.image.as_deref(), Some(IMAGE));
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(env(c)["PORT"], "9080");
        let port = &c.ports.as_ref().unwrap()[0];
        assert_eq!((port.name.as_deref(), port.container_port), (Some("http2"), 9080));
        let probe = c.readiness_probe.as_ref().expect("a readiness probe");
        let tcp = probe.tcp_socket.as_ref().expect("probed by TCP");
        assert_eq!(tcp.port, IntOrString::String("http2".into()));
        let service: Service = typed(&manifests, "Service", SERVICE_NAME);
        assert_eq!(ports(&service), [("http2".into(), i32::from(SERVICE_PORT), None)]);
        let spec = service.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.cluster_ip, None);
    }

    #[test]
    fn more_replicas_add_the_envoy_sidecar_and_a_headless_service() {
        let manifests = render(&settings(3), IMAGE, true, &ImageIds::default(), None);
        let deployment = typed::<Deployment>(&manifests, "Deployment", SERVICE_NAME);
        assert_eq!(deployment.spec.unwrap().replicas, Some(3));
        let service: Service = typed(&manifests, "Service", SERVICE_NAME);
        assert_eq!(service.spec.unwrap().cluster_ip.as_deref(), Some("None"));

        let pod = typed::<StatefulSet>(&manifests, "StatefulSet", "restate")
            .spec
            .unwrap()
            .template
            .spec
            .unwrap();
        let restate_env = env(&pod.containers[0]);
        assert_eq!(restate_env["HTTP_PROXY"], "http://127.0.0.1:10001");
        let no_proxy: Vec<_> = restate_env["NO_PROXY"].split(',').collect();
        for host in [
            "127.0.0.1",
            "localhost",
            "restate-cluster",
            "restate-cluster.dev-ns.svc.cluster.local",
        ] {
            assert!(no_proxy.contains(&host), "{host} missing from {no_proxy:?}");
        }
        assert!(!no_proxy.iter().any(|h| h.starts_with("service")));

        let envoy = pod.containers.iter().find(|c| c.name == "envoy").unwrap();
        assert_eq!(envoy.image.as_deref(), Some("envoyproxy/envoy:distroless-v1.37.2"));
        assert_restricted(envoy);
        let mount = &envoy.volume_mounts.as_ref().unwrap()[0];
        assert_eq!(
            (mount.name.as_str(), mount.mount_path.as_str()),
            ("envoy-config", "/etc/envoy")
        );
        let volume = pod
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "envoy-config")
            .unwrap();
        assert_eq!(volume.config_map.unwrap().name, "envoy-config");

        let config_map: ConfigMap = typed(&manifests, "ConfigMap", "envoy-config");
        let text = &config_map.data.unwrap()["envoy.yaml"];
        let config: serde_json::Value = serde_saphyr::from_str(text).unwrap();
        let listener = &config["static_resources"]["listeners"][0]["address"]["socket_address"];
        assert_eq!(
            format!(
                "http://{}:{}",
                listener["address"].as_str().unwrap(),
                listener["port_value"]
            ),
            restate_env["HTTP_PROXY"]
        );
        let cluster = &config["static_resources"]["clusters"][0]["cluster_type"]["typed_config"];
        assert_eq!(cluster["sub_clusters_config"]["lb_policy"], "ROUND_ROBIN");
    }

    #[test]
    fn loaded_image_ids_annotate_the_pod_templates_so_a_rebuild_rolls_the_pods() {
        let plain = render(&settings(1), IMAGE, true, &ImageIds::default(), None);
        let deployment: Deployment = typed(&plain, "Deployment", "service");
        assert_eq!(image_id_of(Some(&deployment.spec.unwrap().template)), None);

        let ids = |service: &str| ImageIds {
            restate: Some("sha256:aaa".into()),
            service: Some(service.into()),
        };
        let first = render(&settings(1), IMAGE, true, &ids("sha256:111"), None);
        let rebuilt = render(&settings(1), IMAGE, true, &ids("sha256:222"), None);
        let template = |manifests: &[Manifest], kind: &str, name: &str| -> PodTemplateSpec {
            match kind {
                "Deployment" => typed::<Deployment>(manifests, kind, name).spec.unwrap().template,
                _ => typed::<StatefulSet>(manifests, kind, name).spec.unwrap().template,
            }
        };
        let restate = template(&first, "StatefulSet", "restate");
        assert_eq!(image_id_of(Some(&restate)), Some("sha256:aaa"));
        let (before, after) = (
            template(&first, "Deployment", "service"),
            template(&rebuilt, "Deployment", "service"),
        );
        assert_eq!(image_id_of(Some(&before)), Some("sha256:111"));
        assert_eq!(image_id_of(Some(&after)), Some("sha256:222"));
        // Only the annotation differs: the image reference is the same tag, so without it the template would not.
        assert_eq!(before.spec, after.spec);
        assert_ne!(before, after);
        assert_eq!(
            template(&rebuilt, "StatefulSet", "restate"),
            restate,
            "the Restate pod must not roll when only the service changed"
        );
    }
}
