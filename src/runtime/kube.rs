//! The Kubernetes runtimes: a kind-native cluster, a minikube profile, or an existing context. `up` ensures the
//! cluster, loads our images into it, applies the rendered objects with server-side apply, waits for them, makes
//! ingress and admin reachable on 127.0.0.1, then registers and verifies.

use crate::cluster::kind::KindCluster;
use crate::cluster::select::{self, Env, Selected};
use crate::cluster::{Access, Provider, Reach};
use crate::config::{ObjectSettings, Runtime};
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::images;
use crate::k8s::objects::{self, ADMIN_PORT, INGRESS_PORT, RESTATE_NAME, SERVICE_NAME, SERVICE_PORT};
use crate::k8s::{apply, wait};
use crate::pipeline::{Done, Pipeline};
use crate::restate::{Admin, Ingress};
use crate::runtime::{Plan, Summary, register_and_verify, require_local_image};

pub type AnyProvider = Selected<KindCluster>;

/// The provider for a Kubernetes runtime. Docker is connected only where images are built or loaded through it.
pub async fn provider(plan: &Plan) -> Result<(Option<Docker>, AnyProvider)> {
    let docker = match plan.setup.runtime {
        Runtime::Context(_) => None,
        _ => Some(Docker::connect().await?),
    };
    let kind = |name: &str| match &docker {
        Some(docker) => KindCluster::new(docker.clone(), name, &plan.setup, plan.retain),
        None => Err(Error::failed("the kind runtime needs Docker")),
    };
    let selected = select::select(&plan.setup.runtime, &plan.name, &Env::from_process(), kind)?
        .ok_or_else(|| Error::failed("the docker runtime has no cluster"))?;
    Ok((docker, selected))
}

pub async fn up(plan: &Plan, pipeline: &mut Pipeline) -> Result<Summary> {
    let ui = pipeline.ui().clone();
    let namespace = plan.objects.namespace.clone();
    let (docker, provider) = pipeline
        .step("preflight", async |_| {
            let (docker, provider) = provider(plan).await?;
            if let Some(binary) = &plan.setup.restate_binary {
                images::check_restate_binary(binary)?;
            }
            if let (Some(docker), Some(image)) = (&docker, &plan.objects.service_image) {
                require_local_image(docker, image).await?;
            }
            provider.preflight(&ui).await?;
            let detail = provider.describe();
            Ok(Done::ok((docker, provider), detail))
        })
        .await?;
    let access = pipeline
        .step("cluster", async |_| {
            let access = provider.ensure(&ui).await?;
            let detail = format!("{} (context {})", provider.describe(), access.context);
            Ok(if access.created { Done::ok(access, detail) } else { Done::skipped(access, detail) })
        })
        .await?;
    let (restate_image, service_image) = pipeline
        .step("images", async |_| {
            let (restate, service) = match &docker {
                Some(docker) => {
                    let binary = plan.setup.restate_binary.as_deref();
                    let restate = images::ensure_restate_image(docker, &plan.objects.restate_image, binary, &ui).await?;
                    let service = match &plan.objects.service_image {
                        Some(image) => image.clone(),
                        None => images::ensure_sample_image(docker, &ui).await?,
                    };
                    (restate.reference, service)
                }
                // An existing cluster pulls images itself.
                None => (plan.objects.restate_image.clone(), service_image_for_context(plan)?),
            };
            let mut loaded = Vec::new();
            for image in [&restate, &service] {
                if provider.load_image(&access, image, &ui).await? {
                    loaded.push(image.clone());
                }
            }
            let detail = format!("{restate}, {service}");
            Ok(if loaded.is_empty() { Done::skipped((restate, service), detail) } else { Done::ok((restate, service), format!("loaded {}", loaded.join(", "))) })
        })
        .await?;
    let settings = ObjectSettings { restate_image, ..plan.objects.clone() };
    let node_ports = matches!(access.reach, Reach::NodePorts { .. });
    let manifests = objects::render(&settings, &service_image, node_ports);
    pipeline
        .step("install", async |step| {
            apply::apply_all(&access.client, &manifests, &ui).await?;
            step.set_message("waiting for Restate and the service");
            wait::wait_statefulset_ready(&access.client, &namespace, RESTATE_NAME, plan.setup.timeout, &ui).await?;
            wait::wait_deployment_ready(&access.client, &namespace, SERVICE_NAME, plan.setup.timeout, &ui).await?;
            Ok(Done::ok((), format!("{} objects in namespace {namespace}", manifests.len())))
        })
        .await?;
    let (ingress_url, admin_url) = reach(&access)?;
    let admin = Admin::new(&admin_url)?;
    let ingress = Ingress::new(&ingress_url)?;
    let service_uri = format!("http://{SERVICE_NAME}.{namespace}.svc.cluster.local:{SERVICE_PORT}");
    let (registration, verified) = register_and_verify(plan, pipeline, &admin, &ingress, &service_uri).await?;
    Ok(Summary {
        name: plan.name.clone(),
        runtime: plan.runtime_name(),
        context: Some(access.context.clone()),
        namespace: Some(namespace),
        ingress_url,
        admin_url,
        service_uri,
        deployment_id: registration.id,
        services: registration.services,
        verified,
    })
}

fn service_image_for_context(plan: &Plan) -> Result<String> {
    plan.objects.service_image.clone().ok_or_else(|| {
        Error::usage("the built-in sample exists only in the local Docker, which an existing cluster cannot see")
            .hint("pass --service-image with an image the cluster can pull, or use --runtime kind or minikube")
    })
}

fn reach(access: &Access) -> Result<(String, String)> {
    match access.reach {
        Reach::NodePorts { ingress, admin } => {
            Ok((format!("http://127.0.0.1:{ingress}"), format!("http://127.0.0.1:{admin}")))
        }
        Reach::PortForward => {
            let _ = (INGRESS_PORT, ADMIN_PORT);
            Err(Error::failed("port-forward not wired yet"))
        }
    }
}
