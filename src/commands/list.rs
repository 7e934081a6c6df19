//! `restate-dev list`: every loop on this machine, with its runtime, health and URLs. None is not an error.

use serde::Serialize;

use crate::commands::Ctx;
use crate::docker::Docker;
use crate::error::Result;
use crate::runtime::{self, record};

/// One loop, as a row of the table or an object of the JSON array.
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    runtime: String,
    healthy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ingress_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    /// Why its health could not be read (a stopped node's API does not answer); the other loops are still listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

pub async fn run(ctx: &Ctx) -> Result<()> {
    let docker = Docker::connect().await?;
    let mut rows = Vec::new();
    // `--name` narrows the list to that loop.
    let wanted = ctx.global.name.as_deref();
    for name in record::loop_names(&docker).await? {
        if wanted.is_some_and(|wanted| wanted != name) {
            continue;
        }
        let Some(found) = record::find(&docker, &name).await? else {
            continue;
        };
        let layers = ctx.layers.clone().with_record(&name, &found.record);
        let namespace = layers
            .objects(&ctx.global, &crate::cli::ObjectArgs::default())?
            .namespace;
        let context = found.record.get("context");
        let mut row = Row {
            name: name.clone(),
            runtime: found.record.place(),
            healthy: false,
            ingress_url: None,
            admin_url: None,
            context: context.map(str::to_string),
            namespace: None,
            problem: None,
        };
        match runtime::status(&name, &namespace, context).await {
            Ok(status) => {
                row.healthy = status.healthy;
                row.ingress_url = status.ingress_url;
                row.admin_url = status.admin_url;
                row.context = status.context.or(row.context);
                row.namespace = status.namespace;
            }
            Err(e) => row.problem = Some(e.message),
        }
        rows.push(row);
    }
    if ctx.ui.is_json() {
        ctx.ui.print_json(&serde_json::to_value(&rows).expect("rows serialize"));
    } else {
        ctx.ui.print(table(&rows));
    }
    Ok(())
}

fn table(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "No loops.".to_string();
    }
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|row| {
            let health = match (&row.problem, row.healthy) {
                (Some(problem), _) => format!("unknown: {problem}"),
                (None, true) => "healthy".into(),
                (None, false) => "NOT healthy".into(),
            };
            let place = match (&row.context, &row.namespace) {
                (Some(context), Some(namespace)) => format!("{context}/{namespace}"),
                _ => "-".into(),
            };
            let url = |url: &Option<String>| url.clone().unwrap_or_else(|| "-".into());
            [
                row.name.clone(),
                row.runtime.clone(),
                url(&row.ingress_url),
                url(&row.admin_url),
                place,
                health,
            ]
        })
        .collect();
    let header = ["NAME", "RUNTIME", "INGRESS", "ADMIN", "CONTEXT/NAMESPACE", "HEALTH"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |row: &[String; 6]| {
        let padded: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    std::iter::once(&header)
        .chain(&cells)
        .map(line)
        .collect::<Vec<_>>()
        .join("\n")
}
