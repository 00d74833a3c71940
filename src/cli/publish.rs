//! `handoff model publish FILE --target ADDR` and `handoff model list`:
//! a model version goes to a running node (operators only). The file is
//! checked here first, as `handoff model check` does, so a broken model
//! never leaves the operator's machine; the node checks it again against
//! what it serves (same name, a new version or the same content, not
//! lower than a version a rollout uses).

use std::path::PathBuf;

use anyhow::Context;

use crate::api::pb;
use crate::api::pb::models_client::ModelsClient;
use crate::cli::print::*;
use crate::cli::target::{Authed, Target};
use crate::engine::model::{catalog, load_file};

/// `handoff model publish FILE`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The model file (TOML).
    pub file: PathBuf,
    #[command(flatten)]
    pub target: Target,
}

/// `handoff model list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

/// The Models client of a target (the token added to every call).
pub async fn client(target: &Target) -> anyhow::Result<ModelsClient<Authed>> {
    Ok(ModelsClient::with_interceptor(
        target.channel().await?,
        target.bearer()?,
    ))
}

pub async fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let path = args.file.display().to_string();
    load_file(&args.file).map_err(|errors| {
        anyhow::anyhow!("{errors}\n{path}: the model has problems; nothing was published")
    })?;
    let text =
        std::fs::read_to_string(&args.file).with_context(|| format!("{path}: cannot read it"))?;
    let r = client(&args.target)
        .await?
        .publish_model(pb::PublishModelRequest {
            model_toml: text,
            file_name: path.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let fp = catalog::short(&r.fingerprint);
    if r.published {
        say!(
            "published model {} v{} [{fp}] from {path}",
            r.name,
            r.version
        );
    } else {
        say!(
            "model {} v{} [{fp}] is already published with this content: nothing changed",
            r.name,
            r.version
        );
    }
    Ok(())
}

pub async fn list(args: ListArgs) -> anyhow::Result<()> {
    let r = client(&args.target)
        .await?
        .list_models(pb::ListModelsRequest {})
        .await
        .map_err(status_error)?
        .into_inner();
    for v in &r.versions {
        if args.json {
            say!(
                "{}",
                serde_json::json!({
                    "model": r.name,
                    "version": v.version,
                    "fingerprint": v.fingerprint,
                    "stored": v.stored,
                })
            );
        } else {
            say!(
                "{} v{} [{}]{}",
                r.name,
                v.version,
                catalog::short(&v.fingerprint),
                if v.stored {
                    ""
                } else {
                    " (served before versions were kept: not stored)"
                }
            );
        }
    }
    Ok(())
}
