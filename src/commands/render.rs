//! `restate-dev render`: every object `up` installs, in apply order, as YAML documents or one JSON list.

use kube::core::DynamicObject;

use crate::cli::{OutputFormat, RenderArgs};
use crate::commands::Ctx;
use crate::error::{Context, Result};
use crate::k8s::objects;

pub fn run(ctx: &Ctx, args: &RenderArgs) -> Result<()> {
    let settings = ctx.layers.objects(&ctx.global, &args.objects)?;
    let service_image = match &settings.service_image {
        Some(image) => image.clone(),
        None => crate::images::sample_reference()?,
    };
    // As for the default runtime, kind, whose host port mappings need the NodePort Service.
    let manifests = objects::render(&settings, &service_image, true, &objects::ImageIds::default(), None);
    let documents: Vec<&DynamicObject> = manifests.iter().map(|m| &m.object).collect();
    match ctx.global.output {
        Some(OutputFormat::Json) => {
            let list = serde_json::to_value(&documents).failed(|| "cannot write the objects as JSON".into())?;
            ctx.ui.print_json(&list);
        }
        Some(OutputFormat::Yaml | OutputFormat::Human) | None => ctx.ui.print(yaml(&documents)?.trim_end()),
    }
    Ok(())
}

/// Multi-document YAML, one document per object.
fn yaml(documents: &[&DynamicObject]) -> Result<String> {
    serde_saphyr::to_string_multiple(documents).failed(|| "cannot write the objects as YAML".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ObjectSettings, Resources};

    fn settings(replicas: u32) -> ObjectSettings {
        ObjectSettings {
            name: "demo".into(),
            namespace: "restate".into(),
            replicas,
            restate_image: "docker.restate.dev/restatedev/restate:1.7.12".into(),
            service_image: None,
            envoy_image: "envoyproxy/envoy:distroless-v1.37.2".into(),
            resources: Resources::default(),
            storage_size: "2Gi".into(),
        }
    }

    #[test]
    fn yaml_reads_back_as_the_same_objects() {
        for replicas in [1, 3] {
            let manifests = objects::render(
                &settings(replicas),
                "example.com/greeter:1",
                true,
                &Default::default(),
                None,
            );
            let documents: Vec<&DynamicObject> = manifests.iter().map(|m| &m.object).collect();
            let text = yaml(&documents).unwrap();
            let read: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
            let expected: Vec<serde_json::Value> = documents.iter().map(|d| serde_json::to_value(d).unwrap()).collect();
            assert_eq!(read, expected);
        }
    }

    #[test]
    fn strings_that_look_like_other_types_stay_strings() {
        let manifests = objects::render(&settings(1), "example.com/greeter:1", true, &Default::default(), None);
        let documents: Vec<&DynamicObject> = manifests.iter().map(|m| &m.object).collect();
        let text = yaml(&documents).unwrap();
        assert!(
            text.contains("value: \"9080\"") || text.contains("value: '9080'"),
            "{text}"
        );
        assert!(
            text.contains("value: \"true\"") || text.contains("value: 'true'"),
            "{text}"
        );
    }
}
