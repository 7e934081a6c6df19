//! `restate-dev port-forward`: holds the port-forwards of a loop on minikube or an existing context, on the ports
//! `up` recorded, until Ctrl-C. The loop itself keeps running.
//!
//! It starts only once no `up` or `down` of the loop is running (an `up` holds the same forwards while it
//! verifies), but does not hold the loop's lock while it forwards: that would keep `up` and `down` waiting
//! for as long as it runs.

use crate::cli::PortForwardArgs;
use crate::cluster::Reach;
use crate::commands::Ctx;
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::k8s::portforward::PortForward;
use crate::lock;
use crate::runtime::{
    self,
    kube::{self, Forwarded},
};
use crate::signals::Signals;

pub async fn run(ctx: &Ctx, args: &PortForwardArgs, mut signals: Signals) -> Result<()> {
    let (ingress, admin) = tokio::select! {
        started = start(ctx, args) => started?,
        kind = signals.next() => return Err(crate::commands::interrupted(kind)),
    };
    ctx.ui.info("Press Ctrl-C to stop forwarding; the loop keeps running.");
    // Stopping is what this command is for: either signal ends it normally.
    signals.next().await;
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

/// Finds the loop's cluster, starts both forwards and says where they answer.
async fn start(ctx: &Ctx, args: &PortForwardArgs) -> Result<(PortForward, PortForward)> {
    let name = ctx.name()?;
    let _lock = lock::acquire(&name, "port-forward", &ctx.ui).await?;
    let place = ctx
        .find_loop(&name, None, args.context.as_deref(), args.namespace.as_deref())
        .await?;
    let (context, namespace) = (place.context.as_deref(), place.namespace);
    let docker = match context {
        Some(_) => None,
        None => Docker::connect().await.ok(),
    };
    let Some(located) = kube::locate(docker.as_ref(), &name, context).await? else {
        if let Some(docker) = &docker
            && runtime::docker::exists(docker, &name).await?
        {
            return Err(Error::usage(format!(
                "loop {name} runs on the docker runtime, which publishes ingress and admin on 127.0.0.1 itself"
            ))
            .hint("`restate-dev status` shows the URLs"));
        }
        return Err(Error::failed(format!("no cluster found for loop {name}")).hint(
            "port-forward is for loops on minikube or an existing context: start one with \
             `restate-dev up --runtime minikube`, or name its context with --context",
        ));
    };
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
    Ok((ingress, admin))
}
