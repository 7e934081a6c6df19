//! `restate-dev port-forward`: holds the port-forwards of a loop on minikube or an existing context, on the ports
//! `up` recorded, until Ctrl-C. The loop itself keeps running.

use crate::cli::PortForwardArgs;
use crate::cluster::Reach;
use crate::commands::Ctx;
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::runtime::kube::{self, Forwarded};

pub async fn run(ctx: &Ctx, args: &PortForwardArgs) -> Result<()> {
    let name = ctx.name()?;
    let namespace = ctx.namespace()?;
    let docker = match args.context {
        Some(_) => None,
        None => Docker::connect().await.ok(),
    };
    let located = kube::locate(docker.as_ref(), &name, args.context.as_deref())
        .await?
        .ok_or_else(|| {
            Error::failed(format!("no cluster found for loop {name}"))
                .hint("start one with `restate-dev up --runtime minikube`, or name its context with --context")
        })?;
    if located.reach != Reach::PortForward {
        return Err(Error::usage(format!(
            "loop {name} runs on {}, which publishes ingress and admin itself",
            located.runtime
        ))
        .hint("`restate-dev status` shows the URLs"));
    }
    let client = located.client().await?;
    let recorded = kube::forward_record(&client, &namespace).await?;
    let wanted = Forwarded {
        ingress: args.ingress_port.or(recorded.ingress),
        admin: args.admin_port.or(recorded.admin),
    };
    let ((ingress, admin), got) = kube::start_forwards(&client, &namespace, wanted).await?;
    let (ingress_url, admin_url) = got.urls();
    if ctx.ui.is_json() {
        ctx.ui
            .print_json(&serde_json::json!({ "name": name, "ingress_url": ingress_url, "admin_url": admin_url }));
    } else {
        ctx.ui.print(format!(
            "Forwarding loop {name} (context {}):\n  ingress   {ingress_url}\n  admin     {admin_url}",
            located.context
        ));
    }
    ctx.ui.info("Press Ctrl-C to stop forwarding; the loop keeps running.");
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Error::failed("cannot wait for Ctrl-C").source(e))?;
    for forward in [ingress.status(), admin.status()] {
        let error = forward
            .last_error
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        ctx.ui.info(format!(
            "{} -> {}: {} connections{error}",
            forward.local, forward.target, forward.connections
        ));
    }
    Ok(())
}
