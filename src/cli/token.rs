//! `handoff token new`: makes a bearer token for one principal, prints it
//! once, and prints the `[[credentials]]` entry (its hash) for the node's
//! config. The node never sees or stores the token itself.

use std::path::PathBuf;

use anyhow::bail;

use crate::auth::{CredentialConfig, Principal, new_token, token_hash_hex};
use crate::engine::model::load_file;

/// Who the new token is for: exactly one of the three.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Who {
    /// A source system, by its name in the model's [sources].
    #[arg(long)]
    pub source: Option<String>,
    /// A team, by its name in the model's teams.
    #[arg(long)]
    pub team: Option<String>,
    /// An operator (a person or tool that may do everything), any name.
    #[arg(long)]
    pub operator: Option<String>,
}

/// `handoff token new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    #[command(flatten)]
    pub who: Who,
    /// Check the source or team against this model first.
    #[arg(long)]
    pub model: Option<PathBuf>,
}

impl Who {
    fn principal(&self) -> anyhow::Result<Principal> {
        let text = match (&self.source, &self.team, &self.operator) {
            (Some(s), None, None) => format!("source:{s}"),
            (None, Some(t), None) => format!("team:{t}"),
            (None, None, Some(o)) => format!("operator:{o}"),
            _ => bail!("name exactly one of --source, --team, --operator"),
        };
        Ok(Principal::parse(&text)?)
    }
}

/// Prints the token (once: it is not kept anywhere) and the config entry.
pub fn new(args: NewArgs) -> anyhow::Result<()> {
    let principal = args.who.principal()?;
    if let Some(path) = &args.model {
        let model = load_file(path).map_err(|problems| {
            anyhow::anyhow!(
                "{problems}\nthe model does not load: fix it first (handoff model check)"
            )
        })?;
        principal.check_in(&model)?;
    }
    let token = new_token()?;
    let entry = CredentialConfig {
        principal: principal.to_string(),
        sha256: token_hash_hex(&token),
    };
    let toml = toml::to_string(&entry)?;
    println!(
        "# The token for {principal}. It is shown only now: give it to its holder's secret store"
    );
    println!("# (clients read --token or HANDOFF_TOKEN). Anyone who has it is {principal}.");
    println!("{token}");
    println!();
    println!("# Add this to the node's config file and restart the node (it keeps only the hash):");
    println!("[[credentials]]");
    print!("{toml}");
    Ok(())
}
