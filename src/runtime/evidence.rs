//! The loop's logs, collected on demand: `smoke` adds them to its report before its teardown removes the
//! containers or pods, for failures whose error carries none (Restate that runs but never gets healthy, any wait
//! that runs out).

use std::time::Duration;

use crate::config::Runtime;
use crate::docker::Docker;
use crate::k8s::diagnose;
use crate::labels;
use crate::runtime::{Plan, docker, kube};

/// How long collecting may take: a failed `smoke` should not hang on a cluster that stopped answering.
const COLLECT_WITHIN: Duration = Duration::from_secs(10);

/// The last log lines of each of the loop's containers (the docker runtime) or pods (a cluster: with their
/// state and events), one detail line each; a line saying why when there are none.
pub async fn loop_logs(plan: &Plan) -> Vec<String> {
    let collect = async {
        let context = match &plan.setup.runtime {
            Runtime::Context(context) => Some(context.as_str()),
            _ => None,
        };
        let docker = match context {
            Some(_) => None,
            None => match Docker::connect().await {
                Ok(docker) => Some(docker),
                Err(e) => return vec![format!("cannot collect the loop's logs: {}", e.message)],
            },
        };
        if plan.setup.runtime == Runtime::Docker {
            let docker = docker.as_ref().expect("connected above");
            return docker::loop_logs(docker, &plan.name).await;
        }
        let located = match kube::locate(docker.as_ref(), &plan.name, context).await {
            Ok(Some(located)) => located,
            Ok(None) => return vec![format!("no cluster of loop {} to collect logs from", plan.name)],
            Err(e) => return vec![format!("cannot collect the loop's logs: {}", e.message)],
        };
        match located.client().await {
            Ok(client) => diagnose::diagnose(&client, &plan.objects.namespace, &labels::selector(&plan.name)).await,
            Err(e) => vec![format!("cannot collect the loop's logs: {}", e.message)],
        }
    };
    tokio::time::timeout(COLLECT_WITHIN, collect).await.unwrap_or_else(|_| {
        vec![format!(
            "the loop's logs could not be collected within {}s",
            COLLECT_WITHIN.as_secs()
        )]
    })
}

/// Whether `details` quote log lines already (a container's or pod's, as the runtimes quote them: `| line`),
/// or say that there were none.
pub fn quote_logs(details: &[String]) -> bool {
    details
        .iter()
        .any(|line| line.trim_start().starts_with("| ") || line.ends_with(" logged nothing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_of_either_runtime_are_recognised() {
        let docker = ["the last lines t-restate logged:".to_string(), "| starting".into()];
        let kube = [
            "last log lines of restate-0/restate:".to_string(),
            "  | starting".into(),
        ];
        let nothing = ["t-service logged nothing".to_string()];
        for details in [&docker[..], &kube, &nothing] {
            assert!(quote_logs(details), "{details:?}");
        }
        let hint_only = ["container t-restate is running; `docker logs t-restate` shows why".to_string()];
        assert!(!quote_logs(&hint_only));
        assert!(!quote_logs(&[]));
    }
}
