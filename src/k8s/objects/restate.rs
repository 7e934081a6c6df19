//! Restate as its Helm chart installs it: a StatefulSet of one, a ClusterIP Service for clients, a headless
//! Service for the nodes, and a ServiceAccount.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecurityContext, Service, ServiceAccount,
    ServicePort, ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{
    ADMIN_NODE_PORT, ADMIN_PORT, Advertised, INGRESS_NODE_PORT, INGRESS_PORT, NODE_PORT_SERVICE, RESTATE_NAME,
    app_label, app_selector, envoy, labels, metadata,
};
use crate::config::ObjectSettings;
use crate::config::quantity::rocksdb_memory;

/// The headless Service that gives each node a stable DNS name.
pub(super) const CLUSTER_SERVICE: &str = "restate-cluster";
const NODE_PORT: u16 = 5122;
const DATA_VOLUME: &str = "storage";
const DATA_PATH: &str = "/restate-data";
const TMP_VOLUME: &str = "tmp";

pub fn service_account(settings: &ObjectSettings) -> ServiceAccount {
    ServiceAccount {
        metadata: metadata(settings, RESTATE_NAME, RESTATE_NAME),
        ..ServiceAccount::default()
    }
}

/// Clients reach admin, ingress and the node port here.
pub fn service(settings: &ObjectSettings) -> Service {
    restate_service(
        settings,
        RESTATE_NAME,
        ServiceSpec {
            type_: Some("ClusterIP".into()),
            ports: Some(vec![
                port("admin", ADMIN_PORT, None),
                port("ingress", INGRESS_PORT, None),
                port("node", NODE_PORT, None),
            ]),
            ..ServiceSpec::default()
        },
    )
}

/// Headless, and listing pods before they are ready, so that nodes can find each other while starting.
pub fn cluster_service(settings: &ObjectSettings) -> Service {
    restate_service(
        settings,
        CLUSTER_SERVICE,
        ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            ports: Some(vec![port("node", NODE_PORT, None)]),
            ..ServiceSpec::default()
        },
    )
}

pub fn node_port_service(settings: &ObjectSettings) -> Service {
    restate_service(
        settings,
        NODE_PORT_SERVICE,
        ServiceSpec {
            type_: Some("NodePort".into()),
            ports: Some(vec![
                port("ingress", INGRESS_PORT, Some(INGRESS_NODE_PORT)),
                port("admin", ADMIN_PORT, Some(ADMIN_NODE_PORT)),
            ]),
            ..ServiceSpec::default()
        },
    )
}

fn restate_service(settings: &ObjectSettings, name: &str, spec: ServiceSpec) -> Service {
    Service {
        metadata: metadata(settings, name, RESTATE_NAME),
        spec: Some(ServiceSpec {
            selector: Some(app_label(RESTATE_NAME)),
            ..spec
        }),
        ..Service::default()
    }
}

fn port(name: &str, port: u16, node_port: Option<u16>) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port: port.into(),
        node_port: node_port.map(i32::from),
        ..ServicePort::default()
    }
}

pub fn stateful_set(settings: &ObjectSettings, advertised: Option<&Advertised>) -> StatefulSet {
    let sidecar = settings.replicas > 1;
    let mut containers = vec![restate_container(settings, advertised)];
    let mut volumes = vec![Volume {
        name: TMP_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }];
    if sidecar {
        containers.push(envoy::container(settings));
        volumes.push(envoy::config_volume());
    }
    StatefulSet {
        metadata: metadata(settings, RESTATE_NAME, RESTATE_NAME),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(CLUSTER_SERVICE.into()),
            pod_management_policy: Some("Parallel".into()),
            selector: app_selector(RESTATE_NAME),
            // The data of a dev loop goes with it.
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some("Delete".into()),
                when_scaled: Some("Retain".into()),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(settings, RESTATE_NAME)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(RESTATE_NAME.into()),
                    security_context: Some(PodSecurityContext {
                        fs_group: Some(2000),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers,
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(DATA_VOLUME.into()),
                    labels: Some(labels(settings, RESTATE_NAME)),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_string(),
                            Quantity(settings.storage_size.clone()),
                        )])),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                ..PersistentVolumeClaim::default()
            }]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

fn restate_container(settings: &ObjectSettings, advertised: Option<&Advertised>) -> Container {
    let mut env = vec![
        EnvVar {
            name: "POD_NAME".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.name".into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        },
        env_var("SERVICE_NAME", CLUSTER_SERVICE),
        // `$(VAR)` expands only variables defined above it in this list.
        env_var("RESTATE_NODE_NAME", "$(POD_NAME)"),
        env_var(
            "RESTATE_ADVERTISED_ADDRESS",
            &format!("http://$(POD_NAME).$(SERVICE_NAME):{NODE_PORT}"),
        ),
        env_var("RESTATE_LOG_FORMAT", "json"),
        env_var("RESTATE_CLUSTER_NAME", &settings.name),
        env_var("RESTATE_DISABLE_TELEMETRY", "true"),
    ];
    // A limit too small to halve keeps Restate's default; Restate says so in its log.
    if let Ok(bytes) = rocksdb_memory(&settings.resources.memory_limit) {
        env.push(env_var("RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE", &bytes.to_string()));
    }
    if let Some(advertised) = advertised {
        env.push(env_var("RESTATE_INGRESS__ADVERTISED_ADDRESS", &advertised.ingress));
        env.push(env_var("RESTATE_ADMIN__ADVERTISED_ADDRESS", &advertised.admin));
    }
    if settings.replicas > 1 {
        env.extend(envoy::proxy_env(settings));
    }
    let resources = &settings.resources;
    Container {
        name: RESTATE_NAME.into(),
        image: Some(settings.restate_image.clone()),
        // Images are often loaded into the node rather than pulled.
        image_pull_policy: Some("IfNotPresent".into()),
        env: Some(env),
        ports: Some(vec![
            container_port("admin", ADMIN_PORT),
            container_port("ingress", INGRESS_PORT),
            container_port("node", NODE_PORT),
        ]),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/restate/health".into()),
                port: IntOrString::String("ingress".into()),
                ..HTTPGetAction::default()
            }),
            initial_delay_seconds: Some(5),
            period_seconds: Some(5),
            ..Probe::default()
        }),
        resources: Some(ResourceRequirements {
            requests: Some(cpu_and_memory(&resources.cpu_request, &resources.memory_request)),
            limits: Some(cpu_and_memory(&resources.cpu_limit, &resources.memory_limit)),
            ..ResourceRequirements::default()
        }),
        security_context: Some(restricted()),
        volume_mounts: Some(vec![
            volume_mount(DATA_VOLUME, DATA_PATH),
            volume_mount(TMP_VOLUME, "/tmp"),
        ]),
        ..Container::default()
    }
}

/// The chart's container security context; the Envoy sidecar gets the same.
pub(super) fn restricted() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(1000),
        run_as_group: Some(3000),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

pub(super) fn cpu_and_memory(cpu: &str, memory: &str) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu.to_string())),
        ("memory".to_string(), Quantity(memory.to_string())),
    ])
}

pub(super) fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

pub(super) fn container_port(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port.into(),
        ..ContainerPort::default()
    }
}

pub(super) fn volume_mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..VolumeMount::default()
    }
}
