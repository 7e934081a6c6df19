//! The service deployment, in the local-development shape of Restate's Kubernetes guide: a Deployment and a
//! Service on port 9080 (HTTP/2 cleartext). With more than one replica the Service is headless, so that the Envoy
//! sidecar in the Restate pod sees every pod.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, PodSpec, PodTemplateSpec, Probe, Service, ServicePort, ServiceSpec, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::restate::{container_port, env_var};
use super::{SERVICE_NAME, SERVICE_PORT, app_label, app_selector, labels, metadata};
use crate::config::ObjectSettings;

/// Restate reaches the endpoint over HTTP/2 only; the port name says so.
const PORT_NAME: &str = "http2";

pub fn service(settings: &ObjectSettings) -> Service {
    Service {
        metadata: metadata(settings, SERVICE_NAME, SERVICE_NAME),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            cluster_ip: (settings.replicas > 1).then(|| "None".into()),
            selector: Some(app_label(SERVICE_NAME)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                port: SERVICE_PORT.into(),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// Without a probe a pod is ready the moment its process starts, so a service that exits a second later would pass
/// the rollout wait and fail only at registration. Any Restate endpoint listens on its port; probed every second,
/// a starting service is ready as soon as it does.
fn endpoint_listens() -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(PORT_NAME.into()),
            ..TCPSocketAction::default()
        }),
        period_seconds: Some(1),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

pub fn deployment(settings: &ObjectSettings, image: &str) -> Deployment {
    Deployment {
        metadata: metadata(settings, SERVICE_NAME, SERVICE_NAME),
        spec: Some(DeploymentSpec {
            replicas: Some(i32::try_from(settings.replicas).unwrap_or(i32::MAX)),
            selector: app_selector(SERVICE_NAME),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(settings, SERVICE_NAME)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: SERVICE_NAME.into(),
                        image: Some(image.into()),
                        // Images are often loaded into the node rather than pulled.
                        image_pull_policy: Some("IfNotPresent".into()),
                        env: Some(vec![env_var("PORT", &SERVICE_PORT.to_string())]),
                        ports: Some(vec![container_port(PORT_NAME, SERVICE_PORT)]),
                        readiness_probe: Some(endpoint_listens()),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}
