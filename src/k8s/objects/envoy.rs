//! The Envoy sidecar for more than one service replica: Restate's calls to deployments go through
//! `HTTP_PROXY=http://127.0.0.1:10001`, and Envoy spreads each request over the pods behind the headless Service.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, ConfigMapVolumeSource, Container, EnvVar, ResourceRequirements, Volume};

use super::restate::{CLUSTER_SERVICE, cpu_and_memory, env_var, restricted, volume_mount};
use super::{RESTATE_NAME, metadata};
use crate::config::ObjectSettings;

const CONFIG_MAP: &str = "envoy-config";
const CONFIG_FILE: &str = "envoy.yaml";
/// The image reads `/etc/envoy/envoy.yaml` by default.
const CONFIG_DIR: &str = "/etc/envoy";
/// Where Envoy listens; the address is also in [`ENVOY_CONFIG`].
const PROXY_URL: &str = "http://127.0.0.1:10001";
const ENVOY_CONFIG: &str = include_str!("envoy.yaml");

pub fn config_map(settings: &ObjectSettings) -> ConfigMap {
    ConfigMap {
        metadata: metadata(settings, CONFIG_MAP, RESTATE_NAME),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_string(), ENVOY_CONFIG.to_string())])),
        ..ConfigMap::default()
    }
}

pub fn container(settings: &ObjectSettings) -> Container {
    Container {
        name: "envoy".into(),
        image: Some(settings.envoy_image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        resources: Some(ResourceRequirements {
            requests: Some(cpu_and_memory("50m", "64Mi")),
            limits: Some(cpu_and_memory("500m", "256Mi")),
            ..ResourceRequirements::default()
        }),
        security_context: Some(restricted()),
        volume_mounts: Some(vec![volume_mount(CONFIG_MAP, CONFIG_DIR)]),
        ..Container::default()
    }
}

pub fn config_volume() -> Volume {
    Volume {
        name: CONFIG_MAP.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: CONFIG_MAP.into(),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// The Restate container's proxy settings. Restate honours NO_PROXY for subdomains too, so naming the headless
/// Service keeps node-to-node traffic (`restate-0.restate-cluster`) off the proxy.
pub fn proxy_env(settings: &ObjectSettings) -> Vec<EnvVar> {
    let ns = &settings.namespace;
    let no_proxy = ["127.0.0.1", "::1", "localhost", CLUSTER_SERVICE]
        .into_iter()
        .map(str::to_string)
        .chain([
            format!("{CLUSTER_SERVICE}.{ns}"),
            format!("{CLUSTER_SERVICE}.{ns}.svc.cluster.local"),
        ])
        .collect::<Vec<_>>()
        .join(",");
    vec![env_var("HTTP_PROXY", PROXY_URL), env_var("NO_PROXY", &no_proxy)]
}
