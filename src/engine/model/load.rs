//! Parsing and checking a model file: TOML in, a [`Model`] or every problem
//! out, each with file, line and the rule broken.

use std::fmt;
use std::path::Path;

use super::Model;

/// One problem in a model file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line of the offending key or value.
    pub line: usize,
    /// What is wrong and what to do, in a model author's words.
    pub message: String,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Every problem found in a model file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ModelErrors(pub Vec<ModelError>);

impl fmt::Display for ModelErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Parses and checks model text; `file` names it in messages.
pub fn load(file: &str, text: &str) -> Result<Model, ModelErrors> {
    let _ = (file, text);
    unimplemented!("loader: being written")
}

/// Reads, parses and checks a model file.
pub fn load_file(path: &Path) -> Result<Model, ModelErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ModelErrors(vec![ModelError {
            file: name.clone(),
            line: 0,
            message: format!("cannot read the model file: {e}"),
        }])
    })?;
    load(&name, &text)
}
