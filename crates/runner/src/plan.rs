//! From a study to trials with ids: the effective config of each trial (what can change its
//! results), its id (a hash of that), and which variants share a run because they differ
//! only in keys the model never reads.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use spec::model_keys::{key_effect, Arch, KeyEffect};
use spec::protocol::TrialId;
use spec::{PlannedTrial, Study, TrialConfig};

use crate::RunnerError;

/// One trial of a study, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanEntry {
    pub trial: PlannedTrial,
    /// Hex SHA-256 prefix of the canonical effective config (seed included).
    pub trial_id: TrialId,
    /// Canonical JSON of what can change the result.
    pub effective_config: String,
    /// The earlier variant this one shares its run with, and why.
    pub duplicate_of: Option<String>,
    pub duplicate_reason: Option<String>,
}

/// A planned study.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub study: Study,
    pub entries: Vec<PlanEntry>,
}

impl Plan {
    /// The number of distinct trials (runs) the plan needs.
    pub fn distinct_trials(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.duplicate_of.is_none())
            .count()
    }

    /// The rows the store records.
    pub fn rows(&self) -> Result<Vec<store::PlannedRow>, RunnerError> {
        self.entries
            .iter()
            .map(|e| {
                Ok(store::PlannedRow {
                    ordinal: e.trial.ordinal,
                    variant: e.trial.variant.clone(),
                    ablation: e.trial.ablation.clone(),
                    grid_point: e.trial.grid_point.clone(),
                    seed: e.trial.seed,
                    params: serde_json::to_string(&e.trial.params)?,
                    trial_id: e.trial_id.to_string(),
                    effective_config: e.effective_config.clone(),
                    config: serde_json::to_string(&e.trial.config)?,
                    duplicate_of: e.duplicate_of.clone(),
                    duplicate_reason: e.duplicate_reason.clone(),
                })
            })
            .collect()
    }
}

/// The plan of a study without `search:` (see [`crate::plan_with`], which picks).
pub fn plan_with(study: &Study, require_models: bool) -> Result<Plan, RunnerError> {
    let initial = study.seeds.initial();
    let seeds: BTreeMap<String, usize> = study
        .variant_names()
        .into_iter()
        .map(|v| (v, initial))
        .collect();
    plan_with_seeds(study, &seeds, &BTreeMap::new(), require_models)
}

/// A plan with `seeds[variant]` seeds per variant (a sequential study after its claims
/// asked for more). The seeds beyond the initial ones come after all initial trials, the
/// variants whose claims' intervals are widest relative to their margin first
/// (`priority`), so the runner spends the next runs where they decide the most.
pub fn plan_with_seeds(
    study: &Study,
    seeds: &BTreeMap<String, usize>,
    priority: &BTreeMap<String, f64>,
    require_models: bool,
) -> Result<Plan, RunnerError> {
    let initial = study.seeds.initial();
    let all_seeds = study.seeds.all();
    let mut trials = study.expand_with(&|v| seeds.get(v).copied().unwrap_or(initial))?;
    let rank = |t: &PlannedTrial| {
        let index = all_seeds.iter().position(|s| *s == t.seed).unwrap_or(0);
        if index < initial {
            (0, 0.0, 0, t.ordinal)
        } else {
            let p = priority.get(&t.variant).copied().unwrap_or(0.0);
            (1, -p, index, t.ordinal)
        }
    };
    trials.sort_by(|a, b| {
        let (x, y) = (rank(a), rank(b));
        x.0.cmp(&y.0)
            .then(x.1.total_cmp(&y.1))
            .then(x.2.cmp(&y.2))
            .then(x.3.cmp(&y.3))
    });
    for (i, t) in trials.iter_mut().enumerate() {
        t.ordinal = i;
    }
    plan_trials(study, trials, require_models)
}

/// Gives `trials` (in their order) ids and finds the ones that share a run.
pub fn plan_trials(
    study: &Study,
    trials: Vec<PlannedTrial>,
    require_models: bool,
) -> Result<Plan, RunnerError> {
    let mut model_configs: HashMap<PathBuf, Map<String, Value>> = HashMap::new();
    let mut first_by_id: HashMap<TrialId, usize> = HashMap::new();
    let mut code_hashes: HashMap<PathBuf, Value> = HashMap::new();
    let mut entries: Vec<PlanEntry> = Vec::with_capacity(trials.len());
    for trial in trials {
        let init_config = match &trial.config.model.init {
            Some(dir) => Some(match model_configs.get(dir) {
                Some(c) => c.clone(),
                None => {
                    let c = match read_model_config(dir) {
                        Ok(c) => c,
                        Err(e) if !require_models => {
                            tracing::warn!("{e}; assuming BERT, so ids may change once it exists");
                            Map::new()
                        }
                        Err(e) => return Err(e),
                    };
                    model_configs.insert(dir.clone(), c.clone());
                    c
                }
            }),
            None => None,
        };
        let arch = arch_of(&trial.config, init_config.as_ref());
        let effective = effective_config(&trial.config, arch, init_config.as_ref(), &mut |p| {
            code_hash(&mut code_hashes, p, require_models)
        })?;
        let text = canonical_json(&effective);
        let trial_id =
            TrialId::parse(&hash_hex(text.as_bytes(), 16)).map_err(RunnerError::Invalid)?;
        let (duplicate_of, duplicate_reason) = match first_by_id.get(&trial_id) {
            Some(&i) => {
                let first = &entries[i];
                let reason = explain_duplicate(&first.trial, &trial, arch, init_config.as_ref());
                (Some(first.trial.variant.clone()), Some(reason))
            }
            None => {
                first_by_id.insert(trial_id.clone(), entries.len());
                (None, None)
            }
        };
        entries.push(PlanEntry {
            trial,
            trial_id,
            effective_config: text,
            duplicate_of,
            duplicate_reason,
        });
    }
    Ok(Plan {
        study: study.clone(),
        entries,
    })
}

fn read_model_config(dir: &Path) -> Result<Map<String, Value>, RunnerError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| RunnerError::Check {
        what: format!("model.init {}", dir.display()),
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(RunnerError::Check {
            what: path.display().to_string(),
            message: "expected a JSON object".into(),
        }),
        Err(e) => Err(RunnerError::Check {
            what: path.display().to_string(),
            message: format!("invalid JSON: {e}"),
        }),
    }
}

/// The architecture a trial trains: a preset's, or the checkpoint's `model_type`.
fn arch_of(config: &TrialConfig, init: Option<&Map<String, Value>>) -> Arch {
    if let Some(c) = init {
        return c
            .get("model_type")
            .and_then(Value::as_str)
            .and_then(Arch::from_model_type)
            .unwrap_or(Arch::Bert);
    }
    let albert = config.model.preset == Some(spec::Preset::AlbertTiny)
        || config.model.arch.as_deref() == Some("albert");
    if albert {
        Arch::Albert
    } else {
        Arch::Bert
    }
}

/// Why a `model_config` key cannot change this trial's result, if it cannot.
fn no_op_reason(
    key: &str,
    value: &Value,
    arch: Arch,
    init: Option<&Map<String, Value>>,
) -> Option<String> {
    if let KeyEffect::Inert(reason) = key_effect(arch, key) {
        return Some(reason);
    }
    if init.and_then(|c| c.get(key)) == Some(value) {
        return Some(format!(
            "{key}: {value} is already the model's config.json value"
        ));
    }
    None
}

/// The trial config minus what cannot change its result: the device (the runner picks it)
/// and `model_config` overrides that are inert or equal the checkpoint's own value.
pub fn effective_config(
    config: &TrialConfig,
    arch: Arch,
    init: Option<&Map<String, Value>>,
    code_hash: &mut dyn FnMut(&Path) -> Result<Value, RunnerError>,
) -> Result<Value, RunnerError> {
    let mut v = serde_json::to_value(config)?;
    if let Some(Value::Object(train)) = v.get_mut("train") {
        train.remove("device");
    }
    if let Some(Value::Object(mc)) = v.get_mut("model_config") {
        mc.retain(|k, val| no_op_reason(k, val, arch, init).is_none());
    }
    // A program trial's code files enter the id by content, not by name: editing the
    // training script makes new trials.
    if let Some(Value::Array(code)) = v.get_mut("code") {
        let mut hashed = Vec::with_capacity(code.len());
        for path in &config.code {
            hashed.push(serde_json::json!({
                "path": path.display().to_string(),
                "sha256": code_hash(path)?,
            }));
        }
        *code = hashed;
    }
    Ok(v)
}

/// The SHA-256 of a `code:` file, read once per plan. With `require` false, a file that
/// cannot be read hashes as `null` (warned about once): `sweep plan --no-check-files`
/// before the scripts are there.
fn code_hash(
    cache: &mut HashMap<PathBuf, Value>,
    path: &Path,
    require: bool,
) -> Result<Value, RunnerError> {
    if let Some(v) = cache.get(path) {
        return Ok(v.clone());
    }
    let v = match std::fs::read(path) {
        Ok(bytes) => Value::from(hash_hex(&bytes, 64)),
        Err(e) if !require => {
            tracing::warn!(
                "code {}: {e}; ids will change once it exists",
                path.display()
            );
            Value::Null
        }
        Err(e) => {
            return Err(RunnerError::Check {
                what: "code".into(),
                message: format!("cannot read {}: {e}", path.display()),
            })
        }
    };
    cache.insert(path.to_path_buf(), v.clone());
    Ok(v)
}

fn explain_duplicate(
    first: &PlannedTrial,
    this: &PlannedTrial,
    arch: Arch,
    init: Option<&Map<String, Value>>,
) -> String {
    let mut reasons = Vec::new();
    let keys: std::collections::BTreeSet<&String> =
        first.params.keys().chain(this.params.keys()).collect();
    for k in keys {
        if first.params.get(k) == this.params.get(k) {
            continue;
        }
        let reason = match (k.strip_prefix("model_config."), this.params.get(k)) {
            (Some(key), Some(v)) => no_op_reason(key, v, arch, init),
            (Some(key), None) => first
                .params
                .get(k)
                .and_then(|v| no_op_reason(key, v, arch, init)),
            _ if k == "train.device" => Some("train.device is chosen by the runner".into()),
            _ => None,
        };
        reasons.push(reason.unwrap_or_else(|| format!("{k} makes no difference")));
    }
    if reasons.is_empty() {
        reasons.push("identical configuration".into());
    }
    format!(
        "{} = {}: {}",
        this.variant,
        first.variant,
        reasons.join("; ")
    )
}

/// JSON with object keys sorted at every level: the same config always gives the same text.
pub fn canonical_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// The first `chars` hex digits of SHA-256.
pub fn hash_hex(bytes: &[u8], chars: usize) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s.truncate(chars);
    s
}
