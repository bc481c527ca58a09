//! Published numbers (`experiments/references.yaml`, embedded as the default) and which
//! dataset a study evaluates on, so the report compares like with like.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::ReportError;

/// The file shipped in `experiments/`, compiled in so reports work from any folder.
pub const EMBEDDED: &str = include_str!("../../../experiments/references.yaml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// A few words for table cells; `title` has the full citation.
    pub short: String,
    pub title: String,
    pub url: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Score {
    pub f1: f64,
    pub em: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub name: String,
    pub family: String,
    #[serde(default)]
    pub params_m: Option<f64>,
    pub source: String,
    #[serde(default)]
    pub speedup: Option<f64>,
    /// How the source trained it (batch, length, epochs, learning rate), where it says.
    #[serde(default)]
    pub setting: Option<String>,
    pub results: BTreeMap<String, Score>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct References {
    pub sources: BTreeMap<String, Source>,
    pub models: Vec<Reference>,
}

impl References {
    pub fn embedded() -> Result<Self, ReportError> {
        Self::parse(EMBEDDED, "experiments/references.yaml (embedded)")
    }

    pub fn from_file(path: &Path) -> Result<Self, ReportError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ReportError::Input(format!("{}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, origin: &str) -> Result<Self, ReportError> {
        let r: References =
            serde_yaml::from_str(text).map_err(|e| ReportError::Input(format!("{origin}: {e}")))?;
        for m in &r.models {
            if !r.sources.contains_key(&m.source) {
                return Err(ReportError::Input(format!(
                    "{origin}: model {:?} names unknown source {:?}",
                    m.name, m.source
                )));
            }
        }
        Ok(r)
    }

    /// Published models with a result on `dataset`.
    pub fn on(&self, dataset: &str) -> Vec<(&Reference, Score)> {
        self.models
            .iter()
            .filter_map(|m| m.results.get(dataset).map(|s| (m, *s)))
            .collect()
    }
}

/// The reference key of an evaluation file, from its name (`DRCD_dev.json` → `drcd-dev`).
pub fn dataset_key(eval_path: &str) -> Option<&'static str> {
    let name = Path::new(eval_path)
        .file_name()?
        .to_string_lossy()
        .to_lowercase();
    let keys = [
        ("drcd_dev", "drcd-dev"),
        ("drcd_test", "drcd-test"),
        ("cmrc2018_dev", "cmrc2018-dev"),
        ("dev-v1.1", "squad1.1-dev"),
        ("dev-v2.0", "squad2.0-dev"),
    ];
    keys.iter()
        .find(|(needle, _)| name.contains(needle))
        .map(|(_, k)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_references_parse_and_cover_the_papers() {
        let r = References::embedded().unwrap();
        assert_eq!(r.on("squad1.1-dev").len(), 6);
        assert!(r.on("drcd-dev").len() >= 4);
        assert_eq!(dataset_key("/x/DRCD_dev.json"), Some("drcd-dev"));
        assert_eq!(dataset_key("synthetic_dev.json"), None);
    }
}
